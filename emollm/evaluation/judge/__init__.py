"""LLM judges for EMER-style explanation tasks (Clue Overlap, Label Overlap), in three modules:

- ``judge``: the prompts (``prompts/judges/*.{zh,en}.txt``), reading a score from a reply
  (``parse_judge_score``), ``Judge`` and its ``JudgeReport``;
- ``backends``: ``JudgeConfig`` and the ``local`` / ``openai`` backends (``JUDGE_BACKENDS``), ``JudgeError``;
- ``cache``: ``ReplyCache``, every raw reply on disk keyed by sample, call, prompt hash and judge id.

The pairs it scores come from ``emollm.evaluation.descriptions`` (re-exported here); the judge-free
scores of the same pairs are metrics (``emollm.evaluation.metrics.explanation``, emotion words through
``emollm.evaluation.lexicon``), kept out of this package so metrics may use the judge::

    from emollm.evaluation.judge import Judge, JudgeConfig, pair_descriptions, read_descriptions
    judge = Judge(JudgeConfig(backend="openai", model="gpt-3.5-turbo-16k-0613", cache_dir="runs/judge-cache"))
    report = judge.clue_overlap(pair_descriptions(read_descriptions("gt.csv"), read_descriptions("pred.csv")))
"""

from emollm.evaluation.descriptions import DescriptionPair, PairedDescriptions, pair_descriptions, read_descriptions
from emollm.evaluation.judge.backends import (
    ENV_API_KEY,
    ENV_BASE_URL,
    JUDGE_BACKENDS,
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

__all__ = [
    "DescriptionPair",
    "ENV_API_KEY",
    "ENV_BASE_URL",
    "JUDGE_BACKENDS",
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
    "PairedDescriptions",
    "ReplyCache",
    "SampleJudgement",
    "chat_completions_url",
    "load_judge_prompts",
    "pair_descriptions",
    "parse_judge_score",
    "read_descriptions",
]
