"""Seeded percentile-bootstrap confidence intervals for any metric, with shared resample indices.

    idx = resample_indices(n_items=834, n_boot=1000, seed=0)          # int array [1000, 834]
    ci = bootstrap(lambda i: waf(gold[i], pred[i]), idx)              # point, low, high, std
    diff = bootstrap_difference(score_a, score_b, idx)                # paired: same resamples for A and B

A metric is a function ``idx -> float`` that scores the items at positions ``idx`` (a resample drawn
with replacement); the same index matrix is reused for every variant so differences between variants
are paired (the prompt-robustness protocol asks for this). ``point`` is the metric on all items
(``idx = arange(n)``); the interval is the (alpha/2, 1 - alpha/2) percentile of the resampled values.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

Metric = Callable[[np.ndarray], float]


def resample_indices(n_items: int, n_boot: int, seed: int = 0) -> np.ndarray:
    """[n_boot, n_items] int64 positions drawn uniformly with replacement (``numpy`` PCG64, ``seed``)."""
    if n_items <= 0:
        raise ValueError("bootstrap needs at least one item")
    if n_boot <= 0:
        raise ValueError(f"bootstrap needs at least one resample, got {n_boot}")
    return np.random.default_rng(seed).integers(0, n_items, size=(n_boot, n_items))


@dataclass(frozen=True)
class BootstrapCI:
    point: float
    """The metric on all items."""
    low: float
    high: float
    std: float
    """Standard deviation of the resampled values."""
    mean: float
    """Mean of the resampled values."""
    n_boot: int
    alpha: float
    seed: int | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def _values(metric: Metric, indices: np.ndarray, desc: str) -> np.ndarray:
    rows = tqdm(indices, desc=desc, unit="resample", leave=False, disable=None)
    return np.asarray([float(metric(row)) for row in rows], dtype=float)


def _ci(point: float, vals: np.ndarray, alpha: float, seed: int | None) -> BootstrapCI:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    lo, hi = np.percentile(vals, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return BootstrapCI(
        point=float(point),
        low=float(lo),
        high=float(hi),
        std=float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
        mean=float(np.mean(vals)),
        n_boot=len(vals),
        alpha=alpha,
        seed=seed,
    )


def bootstrap(
    metric: Metric, indices: np.ndarray, alpha: float = 0.05, seed: int | None = None, point: float | None = None
) -> BootstrapCI:
    """Percentile CI of ``metric`` over the resamples in ``indices`` [n_boot, n_items].

    point: the full-sample value to report (default ``metric(arange(n_items))``); pass the metric's own
    reported score when ``metric`` is a faster re-implementation that may differ in the last ulp.
    """
    if point is None:
        point = metric(np.arange(indices.shape[1]))
    return _ci(point, _values(metric, indices, "bootstrap"), alpha, seed)


def bootstrap_difference(
    metric_a: Metric, metric_b: Metric, indices: np.ndarray, alpha: float = 0.05, seed: int | None = None
) -> BootstrapCI:
    """Paired CI of ``metric_a - metric_b`` on the same resamples (both score the same items in order)."""
    n = indices.shape[1]
    point = metric_a(np.arange(n)) - metric_b(np.arange(n))
    a = _values(metric_a, indices, "bootstrap A")
    b = _values(metric_b, indices, "bootstrap B")
    return _ci(point, a - b, alpha, seed)


def bootstrap_ci(
    metric: Metric, n_items: int, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05, point: float | None = None
) -> BootstrapCI:
    """``bootstrap`` with freshly drawn indices (``resample_indices(n_items, n_boot, seed)``)."""
    return bootstrap(metric, resample_indices(n_items, n_boot, seed), alpha, seed, point)
