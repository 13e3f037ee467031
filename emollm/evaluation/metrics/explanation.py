"""Judge-free, deterministic scores for explanation (EMER-style description) tasks, over the paired
descriptions of ``emollm.evaluation.descriptions`` (re-exported here) that the LLM judge scores too:

    gold = read_descriptions("EMER/dataset-v1/gt-chi.csv")            # id -> text
    pred = read_descriptions("runs/x/emer.csv", text_column="chi_reasons")
    pairs = pair_descriptions(gold, pred)                              # missing predictions are listed
    emotion_word_overlap(pairs, EmotionLexicon.from_label_space("mer6"))   # set P / R / F1 / Jaccard
    text_similarity(pairs)                                             # TF-IDF cosine

``text_similarity`` uses English words and Chinese character uni/bigrams (sklearn TF-IDF).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emollm.evaluation.descriptions import (
    DescriptionPair,
    PairedDescriptions,
    _as_paired,
    pair_descriptions,
    read_descriptions,
)
from emollm.evaluation.lexicon import _IS_CJK, _TOKEN_RE, EmotionLexicon
from emollm.log import get_logger

log = get_logger(__name__)


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


__all__ = [
    "DescriptionPair",
    "OverlapReport",
    "PairedDescriptions",
    "SimilarityReport",
    "emotion_word_overlap",
    "log",
    "pair_descriptions",
    "read_descriptions",
    "set_overlap",
    "text_similarity",
]
