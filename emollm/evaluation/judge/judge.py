"""Explanation judging for EMER-style descriptions: LLM judges (Clue / Label Overlap) and judge-free scores.

LLM judges (mer_eval.md §3.2) score a predicted emotion description against a gold one from 1 to 10:

- **Clue Overlap**: one call; the judge compares the emotional cues of the whole descriptions.
- **Label Overlap**: two steps; each description (gold and predicted) is first summarised to emotion
  words, then a second call scores the overlap of the two word lists.

::

    gold = read_descriptions("EMER/dataset-v1/gt-chi.csv")            # id -> text
    pred = read_descriptions("runs/x/emer.csv", text_column="chi_reasons")
    pairs = pair_descriptions(gold, pred)                              # missing predictions are listed
    judge = Judge(JudgeConfig(backend="openai", model="gpt-3.5-turbo-16k-0613", cache_dir="runs/judge-cache"))
    report = judge.clue_overlap(pairs)      # JudgeReport: mean over readable replies + unparsed bucket
    report = judge.label_overlap(pairs)
    atomic_write_json("runs/x/emer_clue.json", report.to_dict())

Backends (``JUDGE_BACKENDS`` registry in ``backends.py``), always greedy / temperature 0:

- ``local``: a local causal LM (``model`` = a Hugging Face folder, a ``.gguf`` file or ``smollm2``),
  loaded by ``emollm.model.llm.load_llm`` and prompted through its chat template; nothing is downloaded.
- ``openai``: any OpenAI-compatible ``/v1/chat/completions`` server. Base URL and key come from the
  environment (``EMOLLM_JUDGE_BASE_URL``, e.g. ``https://api.openai.com/v1`` or ``http://host:8000``;
  ``EMOLLM_JUDGE_API_KEY``), the model name from the config. Timeouts, and retries with exponential
  backoff on transport errors, 408/409/429 and 5xx.

Every raw reply is cached on disk (``cache_dir``) keyed by (sample id, call, sha256 of the rendered
prompt, judge id); the judge id names the backend, the model and the decoding parameters. A rerun
replays from the cache without building the backend at all, and reports name the judge id and the
hash of each prompt template (``prompts/judges/*.{zh,en}.txt``).

Replies are read by ``parse_judge_score``, which prefers the number after a score key
(``'预测分数'：7``, ``Score: 7/10``) and never falls back to "the first number" (a list marker "1."
would read as 1). A reply it cannot read goes to the report's ``unparsed`` bucket, never to a number.

Backends live in ``backends.py``, the reply cache in ``cache.py``; the judge-free scores of the same
pairs in ``emollm.evaluation.metrics.explanation`` (emotion words through ``emollm.evaluation.lexicon``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from emollm.evaluation.descriptions import DescriptionPair, PairedDescriptions, _as_paired
from emollm.evaluation.judge.backends import JUDGE_BACKENDS, JudgeBackend, JudgeConfig
from emollm.evaluation.judge.cache import ReplyCache
from emollm.io import sha256_text
from emollm.log import get_logger
from emollm.paths import resolve_resource

log = get_logger(__name__)


Metric = Literal["clue_overlap", "label_overlap"]


@dataclass(frozen=True)
class JudgePrompt:
    """A judge prompt template with ``{name}`` placeholders; ``hash`` is sha256 of the template text."""

    name: str
    text: str
    fields: tuple[str, ...]
    source: str = ""

    def __post_init__(self) -> None:
        found = set(re.findall(r"\{(\w+)\}", self.text))
        missing = [f for f in self.fields if f not in found]
        if missing:
            raise ValueError(f"judge prompt {self.source or self.name}: missing placeholder(s) {missing}")

    @property
    def hash(self) -> str:
        return sha256_text(self.text)

    def render(self, **values: str) -> str:
        if set(values) != set(self.fields):
            raise ValueError(f"judge prompt {self.name} takes {list(self.fields)}, got {sorted(values)}")
        # replace only the known placeholders, so braces elsewhere in the text stay as written
        return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), self.text)


@dataclass(frozen=True)
class JudgePrompts:
    """The three prompts of the EMER protocol in one language."""

    clue: JudgePrompt
    summary: JudgePrompt
    label: JudgePrompt

    def hashes(self) -> dict[str, str]:
        return {p.name: p.hash for p in (self.clue, self.summary, self.label)}


_PROMPT_FILES: dict[str, tuple[str, tuple[str, ...]]] = {
    "clue": ("clue_overlap", ("gold", "pred")),
    "summary": ("label_summary", ("text",)),
    "label": ("label_overlap", ("gold", "pred")),
}


def load_judge_prompts(prompts_dir: str | os.PathLike[str], language: str) -> JudgePrompts:
    """Read ``clue_overlap.<lang>.txt``, ``label_summary.<lang>.txt`` and ``label_overlap.<lang>.txt``."""
    root = resolve_resource(prompts_dir, kind="judge prompt folder")
    loaded: dict[str, JudgePrompt] = {}
    for key, (stem, fields) in _PROMPT_FILES.items():
        p = root / f"{stem}.{language}.txt"
        if not p.is_file():
            raise FileNotFoundError(f"judge prompt {stem!r} for language {language!r} not found: {p}")
        loaded[key] = JudgePrompt(stem, p.read_text(encoding="utf-8").strip() + "\n", fields, str(p))
    return JudgePrompts(**loaded)


_NUM = r"(\d+(?:\.\d+)?)"


_OPEN = r"[\s\"'‘’“”`*_\[\(（【<《]*"


_CLOSE = r"[\s\"'‘’“”`*_\]\)）】>》]*"


_SEP = r"(?:[:：=]|是|为|is|of)?"


# score keys, most specific first; the value right after the first matching key wins. The quoted
# keys of the requested output format ('预测分数'：7 / 'Score': 7) come before any bare key.
_SCORE_KEYS = (
    r"['‘\"“]预测分数['’\"”]",
    r"['‘\"“]score['’\"”]",
    r"预测分数",
    r"预测得分",
    r"分数",
    r"得分",
    r"评分",
    r"打分",
    r"predicted\s+score",
    r"final\s+score",
    r"overlap\s+score",
    r"score",
    r"rating",
)


_KEY_RES = [re.compile(r"(?<![A-Za-z])" + k + _CLOSE + _SEP + _OPEN + _NUM, re.IGNORECASE) for k in _SCORE_KEYS]


_OUT_OF_RE = re.compile(_NUM + r"\s*(?:/|out\s+of)\s*10(?![\d.])", re.IGNORECASE)


_BOLD_RE = re.compile(r"\*\*\s*" + _NUM + r"\s*(?:/\s*10\s*)?\*\*")


_BARE_RE = re.compile(r"^" + _OPEN + _NUM + r"\s*(?:分|points?)?" + _CLOSE + r"[.。]?$", re.IGNORECASE)


def parse_judge_score(reply: str | None, lo: float = 1.0, hi: float = 10.0) -> float | None:
    """The score in a judge reply, or None when it cannot be read.

    Tried in order: the number after a score key (``'预测分数'：7``, ``Score: 7``, ``评分为8``),
    ``N/10`` / ``N out of 10``, a bold ``**N**``, a reply that is only a number. A value outside
    ``[lo, hi]`` is unreadable (None). There is deliberately no "first number anywhere" fallback.
    """
    if not reply or not reply.strip():
        return None
    text = reply.strip()
    candidates: list[re.Match[str] | None] = [r.search(text) for r in _KEY_RES]
    candidates += [_OUT_OF_RE.search(text), _BOLD_RE.search(text), _BARE_RE.match(text)]
    for m in candidates:
        if m is None:
            continue
        value = float(m.group(1))
        if lo <= value <= hi:
            return value
        return None  # the score the judge meant is out of range: unreadable, not clipped
    return None


@dataclass
class SampleJudgement:
    """One sample's score (None = unparsed) and the raw replies of every call that produced it."""

    sample_id: str
    score: float | None
    replies: dict[str, str]


@dataclass
class JudgeReport:
    """Scores of one metric over a set of pairs; ``mean`` is over readable replies only."""

    metric: str
    judge_id: str
    language: str
    prompt_hashes: dict[str, str]
    samples: list[SampleJudgement]
    missing: list[str]
    calls: int
    cache_hits: int

    @property
    def scores(self) -> list[float]:
        return [s.score for s in self.samples if s.score is not None]

    @property
    def unparsed(self) -> list[str]:
        return [s.sample_id for s in self.samples if s.score is None]

    @property
    def mean(self) -> float | None:
        return float(np.mean(self.scores)) if self.scores else None

    def to_dict(self, with_samples: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "metric": self.metric,
            "judge_id": self.judge_id,
            "language": self.language,
            "prompt_hashes": self.prompt_hashes,
            "n": len(self.samples),
            "n_scored": len(self.scores),
            "mean": self.mean,
            "std": float(np.std(self.scores, ddof=1)) if len(self.scores) > 1 else None,
            "unparsed": {"count": len(self.unparsed), "ids": self.unparsed},
            "missing": {"count": len(self.missing), "ids": self.missing},
            "calls": self.calls,
            "cache_hits": self.cache_hits,
        }
        if with_samples:
            out["samples"] = [asdict(s) for s in self.samples]
        return out


class Judge:
    """Scores description pairs with an LLM judge; the backend is built on the first cache miss."""

    def __init__(self, cfg: JudgeConfig, backend: JudgeBackend | None = None) -> None:
        self.cfg = cfg
        self.prompts = load_judge_prompts(cfg.prompts_dir, cfg.language)
        self._spec = JUDGE_BACKENDS.get(cfg.backend)
        self._backend = backend
        self.judge_id = backend.identity if backend is not None else self._spec.identity_for(cfg)
        self.cache = ReplyCache(cfg.cache_dir, self.judge_id) if cfg.cache_dir else None
        self.calls = 0
        self.cache_hits = 0

    @property
    def backend(self) -> JudgeBackend:
        if self._backend is None:
            log.info("building judge backend %s", self.judge_id)
            self._backend = self._spec(self.cfg)
        return self._backend

    def ask(self, sample_id: str, call: str, prompt: str) -> str:
        """One raw reply, from the cache when (sample, call, prompt hash, judge) was seen before."""
        key = sha256_text(prompt)
        if self.cache is not None:
            hit = self.cache.get(sample_id, call, key)
            if hit is not None:
                self.cache_hits += 1
                return hit
        reply = self.backend.complete(prompt)
        self.calls += 1
        if self.cache is not None:
            self.cache.put(sample_id, call, key, reply)
        return reply

    def _report(
        self, metric: str, samples: list[SampleJudgement], paired: PairedDescriptions, c0: int, h0: int
    ) -> JudgeReport:
        rep = JudgeReport(
            metric=metric,
            judge_id=self.judge_id,
            language=self.cfg.language,
            prompt_hashes=self.prompts.hashes(),
            samples=samples,
            missing=list(paired.missing),
            calls=self.calls - c0,
            cache_hits=self.cache_hits - h0,
        )
        if rep.unparsed:
            log.warning(
                "%s: %d of %d judge replies could not be read (unparsed)", metric, len(rep.unparsed), len(samples)
            )
        return rep

    def clue_overlap(self, pairs: PairedDescriptions | Sequence[DescriptionPair]) -> JudgeReport:
        """EMER Clue Overlap: one call per sample comparing the whole descriptions (1-10)."""
        paired = _as_paired(pairs)
        c0, h0 = self.calls, self.cache_hits
        out = []
        for p in tqdm(paired.pairs, desc="clue overlap", unit="sample", leave=False):
            reply = self.ask(p.sample_id, "clue", self.prompts.clue.render(gold=p.gold, pred=p.pred))
            out.append(SampleJudgement(p.sample_id, parse_judge_score(reply), {"clue": reply}))
        return self._report("clue_overlap", out, paired, c0, h0)

    def label_overlap(self, pairs: PairedDescriptions | Sequence[DescriptionPair]) -> JudgeReport:
        """EMER Label Overlap: summarise gold and prediction to emotion words, then score their overlap."""
        paired = _as_paired(pairs)
        c0, h0 = self.calls, self.cache_hits
        out = []
        for p in tqdm(paired.pairs, desc="label overlap", unit="sample", leave=False):
            g = self.ask(p.sample_id, "summary.gold", self.prompts.summary.render(text=p.gold)).strip()
            q = self.ask(p.sample_id, "summary.pred", self.prompts.summary.render(text=p.pred)).strip()
            replies = {"summary.gold": g, "summary.pred": q}
            if not g or not q:  # nothing to compare: unreadable, not a low score
                out.append(SampleJudgement(p.sample_id, None, replies))
                continue
            reply = self.ask(p.sample_id, "label", self.prompts.label.render(gold=g, pred=q))
            replies["label"] = reply
            out.append(SampleJudgement(p.sample_id, parse_judge_score(reply), replies))
        return self._report("label_overlap", out, paired, c0, h0)

    def score(self, metric: Metric, pairs: PairedDescriptions | Sequence[DescriptionPair]) -> JudgeReport:
        return {"clue_overlap": self.clue_overlap, "label_overlap": self.label_overlap}[metric](pairs)

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
        close = getattr(self._backend, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Judge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
