"""Judge-free, deterministic scores for explanation (EMER-style description) tasks, and the paired
descriptions they and the LLM judge score:

    gold = read_descriptions("EMER/dataset-v1/gt-chi.csv")            # id -> text
    pred = read_descriptions("runs/x/emer.csv", text_column="chi_reasons")
    pairs = pair_descriptions(gold, pred)                              # missing predictions are listed
    emotion_word_overlap(pairs, EmotionLexicon.from_label_space("mer6"))   # set P / R / F1 / Jaccard
    text_similarity(pairs)                                             # TF-IDF cosine

``text_similarity`` uses English words and Chinese character uni/bigrams (sklearn TF-IDF).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emollm.evaluation.lexicon import _IS_CJK, _TOKEN_RE, EmotionLexicon
from emollm.log import get_logger

log = get_logger(__name__)


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
