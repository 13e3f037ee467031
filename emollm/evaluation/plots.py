"""Report figures: confusion-matrix heatmap, robustness curves, modality-ablation bars.

All figures use matplotlib's object API (``matplotlib.figure.Figure``, Agg rendering, no pyplot
global state, safe in threads and headless jobs) and are written atomically, so a report never
links a half-written image::

    plot_confusion_matrix(cm, ["neutral", "angry", ...], "runs/x/confusion.png", normalize="true")
    plot_robustness_curves({"model A": {0.0: 0.71, 0.1: 0.66, 0.2: 0.60}}, "runs/x/noise.png",
                           xlabel="SNR noise level", ylabel="WAF")
    plot_robustness_curves({"paraphrase": {"P0": 0.70, "P1": 0.68}, "order": {"O0": 0.69}}, "runs/x/variants.png")
    plot_modality_ablation({"all": 0.72, "-audio": 0.65, "-face": 0.60}, "runs/x/ablation.png", baseline="all")

Shapes: ``cm`` is ``[n_gold_labels, n_pred_labels]`` with rows = gold, columns = predicted (the
prediction axis may carry one extra ``UNPARSED`` column).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from matplotlib.figure import Figure

from emollm.io import atomic_path

_FORMATS = {".png": "png", ".pdf": "pdf", ".svg": "svg"}


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 150) -> Path:
    """Write ``fig`` atomically; the format follows the suffix (.png, .pdf, .svg)."""
    dst = Path(path)
    fmt = _FORMATS.get(dst.suffix.lower())
    if fmt is None:
        raise ValueError(f"figure path {str(dst)!r}: unsupported suffix; use one of {', '.join(_FORMATS)}")
    with atomic_path(dst) as tmp:
        fig.savefig(tmp, format=fmt, dpi=dpi, bbox_inches="tight")
    return dst


def plot_confusion_matrix(
    cm: np.ndarray | Sequence[Sequence[float]],
    labels: Sequence[str],
    path: str | os.PathLike[str],
    pred_labels: Sequence[str] | None = None,
    normalize: Literal["none", "true", "pred"] = "none",
    title: str | None = None,
) -> Path:
    """Heatmap of a confusion matrix ``[gold, pred]`` with each cell annotated.

    ``normalize="true"`` divides each row by its gold count (recall per class), ``"pred"`` each
    column by its prediction count; empty rows/columns stay 0.
    """
    m = np.asarray(cm, dtype=float)
    cols = list(pred_labels) if pred_labels is not None else list(labels)
    if m.ndim != 2 or m.shape != (len(labels), len(cols)):
        raise ValueError(
            f"confusion matrix of shape {m.shape} does not match {len(labels)} gold x {len(cols)} predicted labels"
        )
    if normalize == "true":
        m = np.divide(m, m.sum(axis=1, keepdims=True), out=np.zeros_like(m), where=m.sum(axis=1, keepdims=True) > 0)
    elif normalize == "pred":
        m = np.divide(m, m.sum(axis=0, keepdims=True), out=np.zeros_like(m), where=m.sum(axis=0, keepdims=True) > 0)
    side = max(4.0, 0.7 * max(len(labels), len(cols)) + 2.0)
    fig = Figure(figsize=(side + 1.0, side))
    ax = fig.add_subplot()
    im = ax.imshow(m, cmap="Blues", vmin=0.0, vmax=1.0 if normalize != "none" else max(float(m.max()), 1.0))
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    threshold = (m.max() if m.size else 0.0) / 2.0
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            text = f"{m[i, j]:.2f}" if normalize != "none" else f"{m[i, j]:.0f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color="white" if m[i, j] > threshold else "black")
    ax.set_title(
        title or ("confusion matrix" if normalize == "none" else f"confusion matrix (normalised by {normalize})")
    )
    return save_figure(fig, path)


def plot_robustness_curves(
    series: Mapping[str, Mapping[float | str, float]],
    path: str | os.PathLike[str],
    errors: Mapping[str, Mapping[float | str, float]] | None = None,
    xlabel: str = "noise level",
    ylabel: str = "score",
    title: str | None = None,
) -> Path:
    """One line per series (a model, or a prompt-variant family): score against x.

    Numeric x values (noise levels) are placed on a numeric axis; string x values (variant names)
    are placed in first-seen order on a categorical axis. ``errors`` adds ±error bars per point.
    """
    if not series:
        raise ValueError("plot_robustness_curves: no series to plot")
    xs_all = [x for s in series.values() for x in s]
    numeric = all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs_all)
    order: list[float | str] = sorted(set(xs_all)) if numeric else list(dict.fromkeys(xs_all))  # type: ignore[type-var]
    pos = {x: (float(x) if numeric else float(i)) for i, x in enumerate(order)}
    fig = Figure(figsize=(max(6.0, 0.5 * len(order) + 3.0), 4.5))
    ax = fig.add_subplot()
    for name, pts in series.items():
        xs = [x for x in order if x in pts]
        ys = [pts[x] for x in xs]
        err = [errors[name].get(x, 0.0) for x in xs] if errors and name in errors else None
        ax.errorbar([pos[x] for x in xs], ys, yerr=err, marker="o", capsize=3, label=name)
    if not numeric:
        ax.set_xticks([pos[x] for x in order], [str(x) for x in order], rotation=45, ha="right")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9)
    ax.set_title(title or f"{ylabel} vs {xlabel}")
    return save_figure(fig, path)


def plot_modality_ablation(
    scores: Mapping[str, float],
    path: str | os.PathLike[str],
    errors: Mapping[str, float] | None = None,
    baseline: str | None = None,
    ylabel: str = "score",
    title: str | None = None,
) -> Path:
    """Bar per modality condition (e.g. ``all``, ``-audio``, ``face only``), values written on the bars.

    ``baseline`` (a key of ``scores``) is drawn in a different colour and as a dashed reference line.
    """
    if not scores:
        raise ValueError("plot_modality_ablation: no scores to plot")
    if baseline is not None and baseline not in scores:
        raise ValueError(f"baseline {baseline!r} is not one of the conditions {list(scores)}")
    names = list(scores)
    vals = [scores[n] for n in names]
    err = [errors.get(n, 0.0) for n in names] if errors else None
    fig = Figure(figsize=(max(5.0, 0.9 * len(names) + 2.0), 4.5))
    ax = fig.add_subplot()
    colours = ["tab:orange" if n == baseline else "tab:blue" for n in names]
    bars = ax.bar(range(len(names)), vals, yerr=err, capsize=3, color=colours)
    ax.bar_label(bars, labels=[f"{v:.3f}" for v in vals], padding=2, fontsize=9)
    if baseline is not None:
        ax.axhline(scores[baseline], color="tab:orange", linestyle="--", linewidth=1)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel(ylabel)
    top = max(vals) + (max(err) if err else 0.0)
    ax.set_ylim(min(0.0, min(vals)), top * 1.15 if top > 0 else 1.0)
    ax.set_title(title or "modality ablation")
    return save_figure(fig, path)
