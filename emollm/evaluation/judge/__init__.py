"""LLM judges for EMER-style explanation tasks (Clue Overlap, Label Overlap), in three modules:

- ``judge``: the prompts (``prompts/judges/*.{zh,en}.txt``), reading a score from a reply
  (``parse_judge_score``), ``Judge`` and its ``JudgeReport``;
- ``backends``: ``JudgeConfig`` and the ``local`` / ``openai`` backends (``JUDGE_BACKENDS``), ``JudgeError``;
- ``cache``: ``ReplyCache``, every raw reply on disk keyed by sample, call, prompt hash and judge id.

The judge-free scores of the same pairs are metrics (``emollm.evaluation.metrics.explanation``) and the
emotion lexicon they use is ``emollm.evaluation.lexicon``; their names stay importable from here::

    from emollm.evaluation.judge import Judge, JudgeConfig, pair_descriptions, read_descriptions
    judge = Judge(JudgeConfig(backend="openai", model="gpt-3.5-turbo-16k-0613", cache_dir="runs/judge-cache"))
    report = judge.clue_overlap(pair_descriptions(read_descriptions("gt.csv"), read_descriptions("pred.csv")))
"""

from emollm.evaluation.judge.backends import (
    ENV_API_KEY,
    ENV_BASE_URL,
    JudgeBackend,
    JudgeConfig,
    JudgeError,
    LocalBackend,
    OpenAIBackend,
    chat_completions_url,
)
from emollm.evaluation.judge.cache import ReplyCache
from emollm.evaluation.judge.judge import (
    Judge,
    JudgePrompt,
    JudgePrompts,
    JudgeReport,
    Metric,
    SampleJudgement,
    load_judge_prompts,
    parse_judge_score,
)
from emollm.evaluation.lexicon import EmotionLexicon
from emollm.evaluation.metrics.explanation import (
    DescriptionPair,
    OverlapReport,
    PairedDescriptions,
    SimilarityReport,
    emotion_word_overlap,
    pair_descriptions,
    read_descriptions,
    set_overlap,
    text_similarity,
)

__all__ = [
    "DescriptionPair",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "EmotionLexicon",
    "Judge",
    "JudgeBackend",
    "JudgeConfig",
    "JudgeError",
    "JudgePrompt",
    "JudgePrompts",
    "JudgeReport",
    "LocalBackend",
    "Metric",
    "OpenAIBackend",
    "OverlapReport",
    "PairedDescriptions",
    "ReplyCache",
    "SampleJudgement",
    "SimilarityReport",
    "chat_completions_url",
    "emotion_word_overlap",
    "load_judge_prompts",
    "pair_descriptions",
    "parse_judge_score",
    "read_descriptions",
    "set_overlap",
    "text_similarity",
]
