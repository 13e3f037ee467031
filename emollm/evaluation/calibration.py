"""Calibration of class probabilities: ECE, multiclass Brier score, reliability diagram, temperature scaling.

The model's label scores (e.g. the log-likelihood of each candidate label) become probabilities
``probs: [N, C]`` (rows sum to 1) with integer gold ``labels: [N]`` in ``0..C-1``::

    report = calibration_report(probs, labels, n_bins=15)     # ece, brier, nll, accuracy, confidence
    bins = reliability_bins(probs, labels, n_bins=15)
    plot_reliability(bins, "runs/x/reliability.png")
    ts = TemperatureScaler().fit(val_logits, val_labels)       # logits: [N_val, C]; fits T on validation only
    test_probs = ts.transform(test_logits)                      # softmax(logits / T)

ECE uses the top-label confidence and ``n_bins`` equal-width bins ``(lo, hi]`` over [0, 1] (the
first bin also holds 0): ECE = Σ_b |B_b|/N · |accuracy(B_b) − confidence(B_b)|. The Brier score is
the multiclass form mean_i Σ_c (p_ic − y_ic)² (range 0..2; sklearn ``brier_score_loss`` without halving).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

from emollm.evaluation.plots import save_figure


def _check(probs: np.ndarray | Any, labels: np.ndarray | Any, atol: float = 1e-4) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(labels)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probabilities must have shape [N, C] with C >= 2, got {p.shape}")
    if y.shape != (p.shape[0],):
        raise ValueError(f"labels must have shape [{p.shape[0]}] to match probabilities {p.shape}, got {y.shape}")
    if p.shape[0] == 0:
        raise ValueError("no samples to score")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integer class indices, got dtype {y.dtype}")
    bad = np.flatnonzero((y < 0) | (y >= p.shape[1]))
    if bad.size:
        raise ValueError(f"label {int(y[bad[0]])} at row {int(bad[0])} is outside 0..{p.shape[1] - 1}")
    bad = np.flatnonzero(~np.isfinite(p).all(axis=1) | (p < 0).any(axis=1) | (np.abs(p.sum(axis=1) - 1) > atol))
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"row {i} is not a probability distribution (sum {p[i].sum():.6g}, min {p[i].min():.6g})")
    return p, y.astype(np.int64)


@dataclass(frozen=True)
class ReliabilityBins:
    """Per-bin statistics of top-label confidence. Arrays have shape ``[n_bins]`` (edges ``[n_bins + 1]``)."""

    edges: np.ndarray
    counts: np.ndarray
    confidence: np.ndarray
    """Mean top-label confidence per bin (NaN for empty bins)."""
    accuracy: np.ndarray
    """Share of correct top-label predictions per bin (NaN for empty bins)."""

    @property
    def ece(self) -> float:
        n = self.counts.sum()
        keep = self.counts > 0
        gap = np.abs(self.accuracy[keep] - self.confidence[keep])
        return float((self.counts[keep] / n * gap).sum())

    @property
    def mce(self) -> float:
        """Maximum calibration error: the largest gap over non-empty bins."""
        keep = self.counts > 0
        return float(np.abs(self.accuracy[keep] - self.confidence[keep]).max())


def reliability_bins(probs: np.ndarray | Any, labels: np.ndarray | Any, n_bins: int = 15) -> ReliabilityBins:
    """Bin samples by top-label confidence into ``n_bins`` equal-width bins ``(lo, hi]``."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    p, y = _check(probs, labels)
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.searchsorted(edges[1:-1], conf, side="left")  # number of inner edges below conf
    counts = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / counts
        acc = np.bincount(idx, weights=correct, minlength=n_bins) / counts
    return ReliabilityBins(edges, counts, mean_conf, acc)


def expected_calibration_error(probs: np.ndarray | Any, labels: np.ndarray | Any, n_bins: int = 15) -> float:
    """Top-label ECE with equal-width bins (0 = perfectly calibrated)."""
    return reliability_bins(probs, labels, n_bins).ece


def brier_score(probs: np.ndarray | Any, labels: np.ndarray | Any) -> float:
    """Multiclass Brier score mean_i Σ_c (p_ic − 1[y_i = c])², in [0, 2]."""
    from sklearn.metrics import brier_score_loss

    p, y = _check(probs, labels)
    if p.shape[1] == 2:  # sklearn treats a 2-column input as binary; keep the multiclass definition
        return float(np.mean(((p - np.eye(2)[y]) ** 2).sum(axis=1)))
    return float(brier_score_loss(y, p, labels=list(range(p.shape[1])), scale_by_half=False))


def negative_log_likelihood(probs: np.ndarray | Any, labels: np.ndarray | Any) -> float:
    """Mean −log p_i,y_i (sklearn ``log_loss``; probabilities are clipped away from 0 by sklearn)."""
    from sklearn.metrics import log_loss

    p, y = _check(probs, labels)
    return float(log_loss(y, p, labels=list(range(p.shape[1]))))


def calibration_report(probs: np.ndarray | Any, labels: np.ndarray | Any, n_bins: int = 15) -> dict[str, float]:
    """ECE, MCE, Brier, NLL, accuracy and mean confidence in one JSON-ready dict."""
    p, y = _check(probs, labels)
    bins = reliability_bins(p, y, n_bins)
    return {
        "n": int(len(y)),
        "n_bins": n_bins,
        "ece": bins.ece,
        "mce": bins.mce,
        "brier": brier_score(p, y),
        "nll": negative_log_likelihood(p, y),
        "accuracy": float((p.argmax(axis=1) == y).mean()),
        "mean_confidence": float(p.max(axis=1).mean()),
    }


class TemperatureScaler:
    """One temperature T for all classes: probs = softmax(logits / T), fitted by NLL on a validation split.

    The fit minimises the mean NLL over log T with scipy's L-BFGS-B (analytic gradient), so T stays
    positive; argmax predictions never change.
    """

    def __init__(self, temperature: float = 1.0) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = float(temperature)

    @staticmethod
    def _nll_and_grad(log_t: np.ndarray, z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
        t = float(np.exp(log_t[0]))
        lp = log_softmax(z / t, axis=1)
        nll = -lp[np.arange(len(y)), y].mean()
        p = np.exp(lp)
        # d nll / d t = mean( z_y - Σ_c p_c z_c ) / t² ; chain rule through t = exp(log_t)
        d_t = ((z[np.arange(len(y)), y] - (p * z).sum(axis=1)) / t**2).mean()
        return float(nll), np.array([d_t * t])

    def fit(self, logits: np.ndarray | Any, labels: np.ndarray | Any) -> TemperatureScaler:
        """Fit T on validation ``logits: [N, C]`` and integer ``labels: [N]``. Returns self."""
        z = np.asarray(logits, dtype=np.float64)
        if z.ndim != 2 or not np.isfinite(z).all():
            raise ValueError(f"logits must be a finite [N, C] array, got shape {z.shape}")
        _, y = _check(softmax(z, axis=1), labels)
        res = minimize(
            self._nll_and_grad, x0=np.array([0.0]), args=(z, y), jac=True, method="L-BFGS-B", bounds=[(-5.0, 5.0)]
        )
        if not res.success:
            raise RuntimeError(f"temperature scaling did not converge: {res.message}")
        self.temperature = float(np.exp(res.x[0]))
        return self

    def transform(self, logits: np.ndarray | Any) -> np.ndarray:
        """Calibrated probabilities ``[N, C]``."""
        return softmax(np.asarray(logits, dtype=np.float64) / self.temperature, axis=1)


def plot_reliability(bins: ReliabilityBins, path: str | os.PathLike[str], title: str | None = None) -> Path:
    """Reliability diagram (accuracy vs confidence per bin, with the diagonal) over a confidence histogram."""
    fig = Figure(figsize=(5.5, 6.5))
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    width = np.diff(bins.edges)
    keep = bins.counts > 0
    top.bar(
        bins.edges[:-1][keep], bins.accuracy[keep], width=width[keep], align="edge", edgecolor="black", label="accuracy"
    )
    gap_lo = np.minimum(bins.accuracy[keep], bins.confidence[keep])
    gap = np.abs(bins.accuracy[keep] - bins.confidence[keep])
    top.bar(
        bins.edges[:-1][keep],
        gap,
        bottom=gap_lo,
        width=width[keep],
        align="edge",
        color="tab:red",
        alpha=0.3,
        label="gap",
    )
    top.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    top.set_xlim(0, 1)
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.legend(loc="upper left", fontsize=9)
    top.set_title(title or f"reliability diagram (ECE {bins.ece:.3f}, {len(bins.counts)} bins)")
    bottom.bar(bins.edges[:-1], bins.counts, width=width, align="edge", color="gray", edgecolor="black")
    bottom.set_xlabel("confidence (top label)")
    bottom.set_ylabel("samples")
    return save_figure(fig, path)
