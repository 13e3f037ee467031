"""Prompt-robustness statistics (PR-MER, mer_eval.md §5.2) over K prompt variants × N samples.

Input is the label each prompt variant predicted for each sample; a reply that could not be read
is ``None`` or ``UNPARSED`` (``"<unparsed>"``, shared with ``metrics.classification``). It counts as
wrong and is reported, never mapped to a label::

    vp = VariantPredictions.from_mapping({"base": [...], "P1": [...], "O_rev": [...]}, labels=space.labels, base="base")
    scores = variant_scores(vp, gold)                   # {variant: WAF}
    summarize_scores(scores)                            # mean, std (ddof 1), worst, best, spread, CV
    agreement(vp), entropy_sensitivity(vp), flip_rates(vp), fleiss_kappa(rating_counts(vp))
    order_bias(vp, gold, orders={"O_rev": reversed_labels, ...})   # label-order family only
    report = robustness_report(vp, gold, families={"P": [...], "O": [...]}, orders=...)

Definitions (C labels; UNPARSED is an extra category where noted):

- agreement: mean_i max_c (1/K)·#{k : ŷ_ik = c}  (1 = every variant agrees on every sample);
- entropy sensitivity: mean_i −Σ_c p_ic log p_ic / log(C+1), p over the C labels + UNPARSED;
- flip rate of variant k: mean_i [ŷ_ik ≠ ŷ_i,base]; the overall flip rate averages variants k ≠ base;
- Fleiss' κ with the K variants as raters and the C labels + UNPARSED as categories;
- order bias at position j: P(ŷ = the label shown at position j) − P(gold = that label), averaged
  over the order variants; first and last position reported;
- parse-failure rate of variant k: mean_i [ŷ_ik = UNPARSED];
- bootstrap: percentile intervals for the mean, the worst variant and each variant − base, with the
  same resampled sample indices for every variant.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from emollm.evaluation.metrics.classification import UNPARSED  # the project's one "unreadable answer" value

ScoreFn = Callable[[Sequence[str], Sequence[str]], float]


@dataclass(frozen=True)
class VariantPredictions:
    """Predicted labels ``preds: [K, N]`` (strings) of K named prompt variants on the same N samples."""

    variants: tuple[str, ...]
    labels: tuple[str, ...]
    preds: np.ndarray
    base: str

    def __post_init__(self) -> None:
        k, n = self.preds.shape if self.preds.ndim == 2 else (-1, -1)
        if k != len(self.variants):
            raise ValueError(f"predictions have shape {self.preds.shape}; expected [{len(self.variants)} variants, N]")
        if len(set(self.variants)) != len(self.variants):
            raise ValueError(f"duplicate variant names in {self.variants}")
        if UNPARSED in self.labels or len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels must be distinct and must not contain {UNPARSED!r}: {self.labels}")
        if self.base not in self.variants:
            raise ValueError(f"base variant {self.base!r} is not one of {list(self.variants)}")
        allowed = set(self.labels) | {UNPARSED}
        for vi, name in enumerate(self.variants):
            for i in range(n):
                if self.preds[vi, i] not in allowed:
                    raise ValueError(
                        f"variant {name!r}, sample {i}: prediction {self.preds[vi, i]!r} is neither a label "
                        f"({', '.join(self.labels)}) nor {UNPARSED!r}"
                    )

    @classmethod
    def from_mapping(
        cls, preds: Mapping[str, Sequence[str | None]], labels: Sequence[str], base: str | None = None
    ) -> VariantPredictions:
        """``{variant: [label, UNPARSED or None per sample]}`` (None = unparsed, as in ``metrics.classification``).

        The base prompt defaults to the first variant.
        """
        if not preds:
            raise ValueError("no prompt variants given")
        lengths = {name: len(p) for name, p in preds.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"every variant must predict the same samples; lengths differ: {lengths}")
        names = tuple(preds)
        rows = [[UNPARSED if x is None else x for x in preds[v]] for v in names]
        arr = np.array(rows, dtype=object).reshape(len(names), -1)
        return cls(names, tuple(labels), arr, base if base is not None else names[0])

    @property
    def n_samples(self) -> int:
        return int(self.preds.shape[1])

    @property
    def categories(self) -> tuple[str, ...]:
        """The C labels followed by UNPARSED."""
        return (*self.labels, UNPARSED)

    def row(self, variant: str) -> list[str]:
        return list(self.preds[self.variants.index(variant)])

    def subset(self, variants: Sequence[str]) -> VariantPredictions:
        """The same samples for some variants; the base stays the base if kept, else the first one."""
        unknown = [v for v in variants if v not in self.variants]
        if unknown:
            raise ValueError(f"unknown variant(s) {unknown}; known: {list(self.variants)}")
        idx = [self.variants.index(v) for v in variants]
        base = self.base if self.base in variants else variants[0]
        return VariantPredictions(tuple(variants), self.labels, self.preds[idx], base)


# ----------------------------------------------------------------------------------------------
# scores per variant


def _score_fn(score: str | ScoreFn, labels: Sequence[str]) -> ScoreFn:
    if callable(score):
        return score
    from sklearn.metrics import accuracy_score, f1_score

    labs = list(labels)
    fns: dict[str, ScoreFn] = {
        # labels= keeps UNPARSED out of the averaged classes: it only ever counts as a miss
        "waf": lambda y, p: float(f1_score(y, p, labels=labs, average="weighted", zero_division=0)),
        "macro_f1": lambda y, p: float(f1_score(y, p, labels=labs, average="macro", zero_division=0)),
        "accuracy": lambda y, p: float(accuracy_score(y, p)),
    }
    if score not in fns:
        raise ValueError(f"unknown robustness score {score!r}; known: {', '.join(fns)} (or pass a callable)")
    return fns[score]


def _check_gold(vp: VariantPredictions, gold: Sequence[str]) -> list[str]:
    g = list(gold)
    if len(g) != vp.n_samples:
        raise ValueError(f"{len(g)} gold labels for {vp.n_samples} predicted samples")
    for i, lab in enumerate(g):
        if lab not in vp.labels:
            raise ValueError(f"gold label {lab!r} of sample {i} is not one of {', '.join(vp.labels)}")
    return g


def variant_scores(vp: VariantPredictions, gold: Sequence[str], score: str | ScoreFn = "waf") -> dict[str, float]:
    """Task score of every variant: ``waf`` (weighted F1, MER), ``macro_f1``, ``accuracy`` or a callable."""
    g = _check_gold(vp, gold)
    fn = _score_fn(score, vp.labels)
    return {name: fn(g, vp.row(name)) for name in vp.variants}


@dataclass(frozen=True)
class ScoreSummary:
    """Spread of one score over K variants; ``std`` (ddof 1) and ``cv`` are None with fewer than 2."""

    k: int
    mean: float
    std: float | None
    worst: float
    best: float
    worst_variant: str
    best_variant: str
    spread: float
    cv: float | None


def summarize_scores(scores: Mapping[str, float]) -> ScoreSummary:
    """Mean, sample std (ddof 1), worst (headline robust score), best, spread = best − worst, CV = std / mean."""
    if not scores:
        raise ValueError("no variant scores to summarise")
    names = list(scores)
    vals = np.array([scores[n] for n in names], dtype=np.float64)
    std = float(vals.std(ddof=1)) if len(vals) > 1 else None
    mean = float(vals.mean())
    lo, hi = int(vals.argmin()), int(vals.argmax())
    cv = std / mean if std is not None and mean != 0 else None
    return ScoreSummary(
        len(vals), mean, std, float(vals[lo]), float(vals[hi]), names[lo], names[hi], float(vals[hi] - vals[lo]), cv
    )


# ----------------------------------------------------------------------------------------------
# label-free stability


def rating_counts(vp: VariantPredictions) -> np.ndarray:
    """``[N, C+1]`` counts of variants predicting each category (labels, then UNPARSED) per sample."""
    cats = {c: j for j, c in enumerate(vp.categories)}
    codes = np.vectorize(cats.__getitem__, otypes=[np.int64])(vp.preds)  # [K, N]
    out = np.zeros((vp.n_samples, len(cats)), dtype=np.int64)
    for k in range(codes.shape[0]):
        out[np.arange(vp.n_samples), codes[k]] += 1
    return out


def agreement(vp: VariantPredictions) -> float:
    """Mean over samples of the largest share of variants that agree (UNPARSED is a category)."""
    counts = rating_counts(vp)
    return float((counts.max(axis=1) / len(vp.variants)).mean())


def entropy_sensitivity(vp: VariantPredictions) -> float:
    """Mean normalised entropy of each sample's prediction distribution over variants (0 = stable)."""
    p = rating_counts(vp) / len(vp.variants)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
    return float((h / math.log(len(vp.categories))).mean())


def flip_rates(vp: VariantPredictions, base: str | None = None) -> dict[str, float]:
    """Share of samples on which each non-base variant differs from the base prompt's prediction."""
    base = base or vp.base
    b = vp.preds[vp.variants.index(base)]
    return {name: float((vp.preds[k] != b).mean()) for k, name in enumerate(vp.variants) if name != base}


def flip_rate(vp: VariantPredictions, base: str | None = None) -> float | None:
    """Flip rate vs the base prompt, averaged over the variants k ≠ base (None with one variant)."""
    rates = flip_rates(vp, base)
    return float(np.mean(list(rates.values()))) if rates else None


def parse_failure_rates(vp: VariantPredictions) -> dict[str, float]:
    """Share of UNPARSED predictions per variant."""
    return {name: float((vp.preds[k] == UNPARSED).mean()) for k, name in enumerate(vp.variants)}


def fleiss_kappa(counts: np.ndarray | Sequence[Sequence[int]]) -> float:
    """Fleiss' κ from ``counts: [N subjects, M categories]`` (each row sums to the same rater count n).

    P_i = (Σ_j n_ij² − n) / (n(n − 1)), P̄ = mean_i P_i, p_j = Σ_i n_ij / (N n), P_e = Σ_j p_j²,
    κ = (P̄ − P_e) / (1 − P_e). NaN when P_e = 1 (every rating in one category: κ is undefined).
    """
    m = np.asarray(counts, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] == 0:
        raise ValueError(f"counts must be a non-empty [subjects, categories] array, got shape {m.shape}")
    raters = m.sum(axis=1)
    n = raters[0]
    if not np.all(raters == n):
        bad = int(np.flatnonzero(raters != n)[0])
        raise ValueError(
            f"every subject needs the same number of ratings: row 0 has {n:g}, row {bad} has {raters[bad]:g}"
        )
    if n < 2:
        raise ValueError(f"Fleiss' kappa needs at least 2 raters per subject, got {n:g}")
    p_i = ((m**2).sum(axis=1) - n) / (n * (n - 1))
    p_bar = p_i.mean()
    p_j = m.sum(axis=0) / (m.shape[0] * n)
    p_e = float((p_j**2).sum())
    if math.isclose(p_e, 1.0):
        return float("nan")
    return float((p_bar - p_e) / (1 - p_e))


# ----------------------------------------------------------------------------------------------
# label-order bias


@dataclass(frozen=True)
class OrderBias:
    """P(pred = label at position j) − P(gold = label at position j), averaged over order variants."""

    per_position: list[float]
    first: float
    last: float
    per_variant: dict[str, list[float]]


def order_bias(vp: VariantPredictions, gold: Sequence[str], orders: Mapping[str, Sequence[str]]) -> OrderBias:
    """Position bias of label-order variants; ``orders[variant]`` is the label list as shown in its prompt."""
    g = np.array(_check_gold(vp, gold), dtype=object)
    if not orders:
        raise ValueError("order_bias needs at least one label-order variant")
    per_variant: dict[str, list[float]] = {}
    for name, order in orders.items():
        if name not in vp.variants:
            raise ValueError(f"order given for unknown variant {name!r}; known: {list(vp.variants)}")
        if sorted(order) != sorted(vp.labels):
            raise ValueError(
                f"label order of variant {name!r} must be a permutation of {list(vp.labels)}, got {list(order)}"
            )
        p = vp.preds[vp.variants.index(name)]
        per_variant[name] = [float((p == lab).mean() - (g == lab).mean()) for lab in order]
    pos = np.mean(np.array(list(per_variant.values())), axis=0)
    return OrderBias([float(x) for x in pos], float(pos[0]), float(pos[-1]), per_variant)


# ----------------------------------------------------------------------------------------------
# bootstrap


def bootstrap_intervals(
    vp: VariantPredictions,
    gold: Sequence[str],
    score: str | ScoreFn = "waf",
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> dict[str, Any]:
    """Percentile intervals for the mean score, the worst variant and each variant − base.

    Every replicate draws one set of N sample indices (with replacement) used for all variants.
    """
    g = np.array(_check_gold(vp, gold), dtype=object)
    fn = _score_fn(score, vp.labels)
    rng = np.random.default_rng(seed)
    reps = np.empty((n_boot, len(vp.variants)))
    for b in tqdm(range(n_boot), desc="bootstrap", unit="rep", leave=False):
        idx = rng.integers(0, vp.n_samples, vp.n_samples)
        reps[b] = [fn(list(g[idx]), list(vp.preds[k, idx])) for k in range(len(vp.variants))]
    q = [100 * alpha / 2, 100 * (1 - alpha / 2)]

    def ci(x: np.ndarray) -> list[float]:
        return [float(v) for v in np.percentile(x, q)]

    bi = vp.variants.index(vp.base)
    return {
        "n_boot": n_boot,
        "alpha": alpha,
        "seed": seed,
        "mean": ci(reps.mean(axis=1)),
        "worst": ci(reps.min(axis=1)),
        "diff_vs_base": {name: ci(reps[:, k] - reps[:, bi]) for k, name in enumerate(vp.variants) if k != bi},
    }


# ----------------------------------------------------------------------------------------------
# the reporting unit


def _finite(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def stability_summary(vp: VariantPredictions, all_flips: Mapping[str, float]) -> dict[str, Any]:
    """Label-free numbers of one group of variants (flip rates looked up from the full set)."""
    flips = [all_flips[v] for v in vp.variants if v in all_flips]
    fails = parse_failure_rates(vp)
    return {
        "variants": list(vp.variants),
        "agreement": agreement(vp),
        "entropy_sensitivity": entropy_sensitivity(vp),
        "flip_rate": float(np.mean(flips)) if flips else None,
        "fleiss_kappa": _finite(fleiss_kappa(rating_counts(vp))) if len(vp.variants) > 1 else None,
        "parse_fail": fails,
        "parse_fail_mean": float(np.mean(list(fails.values()))),
    }


def robustness_report(
    vp: VariantPredictions,
    gold: Sequence[str] | None = None,
    score: str | ScoreFn = "waf",
    families: Mapping[str, Sequence[str]] | None = None,
    orders: Mapping[str, Sequence[str]] | None = None,
    n_boot: int = 0,
    seed: int = 0,
) -> dict[str, Any]:
    """Everything PR-MER reports, JSON-ready: overall and per family (scores only when ``gold`` is given).

    ``families`` maps a family name (P, O, S, L, R, F) to its variant names; ``orders`` gives the
    label order shown by each label-order variant; ``n_boot > 0`` adds bootstrap intervals.
    """
    all_flips = flip_rates(vp)
    scores = variant_scores(vp, gold, score) if gold is not None else None

    def block(sub: VariantPredictions) -> dict[str, Any]:
        out = stability_summary(sub, all_flips)
        if scores is not None:
            out["scores"] = {v: scores[v] for v in sub.variants}
            out["summary"] = summarize_scores(out["scores"]).__dict__
        return out

    report: dict[str, Any] = {
        "base": vp.base,
        "n_samples": vp.n_samples,
        "labels": list(vp.labels),
        "score": score if isinstance(score, str) else getattr(score, "__name__", "custom"),
        "overall": block(vp),
        "flip_rate_vs_base": all_flips,
    }
    if scores is not None:
        report["base_score"] = scores[vp.base]
    if families:
        report["families"] = {fam: block(vp.subset(list(names))) for fam, names in families.items()}
    if orders and gold is not None:
        report["order_bias"] = order_bias(vp, gold, orders).__dict__
    if n_boot > 0 and gold is not None:
        report["bootstrap"] = bootstrap_intervals(vp, gold, score, n_boot=n_boot, seed=seed)
    return report
