"""Analyses of a classification task across its conditions, as a suite entry asks for them: modality
ablation, prompt robustness, noise levels, calibration and fairness by metadata group. Each returns
the numbers for results.json and adds its plots to ``plot_files``.

    res.update(classification_analyses(tp, store, answers, plots, out, res["plots"]))
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emollm.evaluation.metrics.classification import classification_metrics
from emollm.evaluation.scoring import LabelAnswers, _rel, _short_metrics, label_answers

if TYPE_CHECKING:
    from emollm.evaluation.plan import RecordStore, TaskPlan


def _ablation(
    tp: TaskPlan, store: RecordStore, gold: list[str], plots: Path, out: Path, plot_paths: dict[str, str]
) -> dict[str, Any]:
    from emollm.evaluation.plots import plot_modality_ablation

    labels = list(tp.data.space.labels)
    rows: dict[str, Any] = {}
    for c in tp.conditions:
        if c.kind != "ablation":
            continue
        preds, _, _, _ = label_answers(tp, c, store)
        m = classification_metrics(gold, preds, labels=labels)
        rows[c.title] = {"modalities": list(c.modalities), "subtitle": c.subtitle, **_short_metrics(m)}
    full = max(rows, key=lambda k: len(k.split("+")))
    plot_paths["ablation"] = _rel(
        plot_modality_ablation(
            {k: v["weighted_f1"] for k, v in rows.items()},
            plots / f"{tp.task.name}_ablation.png",
            baseline=full,
            ylabel="weighted F1",
            title=f"{tp.task.name}: modality ablation",
        ),
        out,
    )
    return {
        "metric": "weighted_f1",
        "mode": "clean (unparsed answers count as wrong)",
        "full": full,
        "conditions": rows,
    }


def _robustness(
    tp: TaskPlan, store: RecordStore, gold: list[str], plots: Path, out: Path, plot_paths: dict[str, str]
) -> dict[str, Any]:
    from emollm.evaluation.plots import plot_robustness_curves
    from emollm.evaluation.robustness import VariantPredictions, robustness_report
    from emollm.evaluation.variants import FAMILY_NAMES

    spec = tp.entry.robustness
    assert spec is not None
    labels = list(tp.data.space.labels)
    base = tp.condition("base")
    conds = [base] + [c for c in tp.conditions if c.kind == "robustness"]
    preds = {c.id: label_answers(tp, c, store)[0] for c in conds}
    vp = VariantPredictions.from_mapping(preds, labels=labels, base="base")
    families: dict[str, list[str]] = {}
    for c in conds[1:]:
        families.setdefault(c.family or "other", ["base"]).append(c.id)
    orders = {c.id: c.labels.order for c in conds if c.labels is not None and (c.family == "O" or c.id == "base")}
    if not any(c.family == "O" for c in conds):
        orders = {}
    rep = robustness_report(
        vp, gold, "waf", families=families, orders=orders or None, n_boot=spec.n_boot, seed=spec.seed
    )
    rep["mode"] = "clean (unparsed answers count as wrong)"
    rep["variant_file"] = spec.variants
    rep["family_names"] = {f: FAMILY_NAMES.get(f, f) for f in families}
    rep["variants"] = {c.id: c.describe() for c in conds}
    scores = rep["overall"]["scores"]
    series: dict[str, dict[float | str, float]] = {"base prompt": {"base": scores["base"]}}
    for f, ids in families.items():  # one line per family through its own variants (the base is its own point)
        series[f"{f} ({FAMILY_NAMES.get(f, f)})"] = {v: scores[v] for v in ids if v != "base"}
    if len(series) > 1:
        plot_paths["robustness"] = _rel(
            plot_robustness_curves(
                series,
                plots / f"{tp.task.name}_robustness.png",
                xlabel="prompt variant",
                ylabel="weighted F1",
                title=f"{tp.task.name}: prompt robustness",
            ),
            out,
        )
    return rep


def _noise(
    tp: TaskPlan,
    store: RecordStore,
    gold: list[str],
    overall: dict[str, Any],
    plots: Path,
    out: Path,
    plot_paths: dict[str, str],
) -> dict[str, Any]:
    from emollm.evaluation.plots import plot_robustness_curves

    labels = list(tp.data.space.labels)
    levels: dict[str, Any] = {"clean": {"noise": None, **_short_metrics(overall)}}
    for c in tp.conditions:
        if c.kind != "noise":
            continue
        preds, _, _, _ = label_answers(tp, c, store)
        m = classification_metrics(gold, preds, labels=labels)
        levels[c.title] = {"noise": c.noise.model_dump() if c.noise else None, **_short_metrics(m)}
        if not c.modalities:
            levels[c.title]["note"] = "no media in the input (subtitle only): noise cannot act"
    plot_paths["noise"] = _rel(
        plot_robustness_curves(
            {"weighted F1": {k: v["weighted_f1"] for k, v in levels.items()}},
            plots / f"{tp.task.name}_noise.png",
            xlabel="noise level",
            ylabel="weighted F1",
            title=f"{tp.task.name}: noise robustness (MER-NOISE recipe, synthetic babble)",
        ),
        out,
    )
    return {"metric": "weighted_f1", "mode": "clean (unparsed answers count as wrong)", "levels": levels}


def _calibration(
    tp: TaskPlan,
    gold: list[str],
    probs: np.ndarray | None,
    n_bins: int,
    plots: Path,
    out: Path,
    plot_paths: dict[str, str],
) -> dict[str, Any]:
    from emollm.evaluation.calibration import calibration_report, plot_reliability, reliability_bins

    if probs is None:
        return {"skipped": "calibration needs probabilities (answers.method score_labels)"}
    labels = list(tp.data.space.labels)
    y = np.array([labels.index(g) for g in gold], dtype=np.int64)
    rep: dict[str, Any] = {"mode": "candidate probabilities of the base prompt"}
    rep.update(calibration_report(probs, y, n_bins=n_bins))
    bins = reliability_bins(probs, y, n_bins=n_bins)
    rep["bins"] = {
        "edges": bins.edges.tolist(),
        "counts": bins.counts.tolist(),
        "confidence": [None if math.isnan(x) else float(x) for x in bins.confidence],
        "accuracy": [None if math.isnan(x) else float(x) for x in bins.accuracy],
    }
    plot_paths["reliability"] = _rel(
        plot_reliability(bins, plots / f"{tp.task.name}_reliability.png", title=f"{tp.task.name}: reliability"), out
    )
    return rep


def _fairness(tp: TaskPlan, gold: list[str], preds: list[str | None]) -> dict[str, Any]:
    from emollm.evaluation.fairness import groups_from_metadata, metric_by_group

    spec = tp.entry.fairness
    assert spec is not None
    out: dict[str, Any] = {}
    meta = [s.meta for s in tp.samples]
    for col in spec.columns:
        try:
            groups = groups_from_metadata(meta, col, missing=spec.missing)
        except ValueError as e:
            raise ValueError(f"task {tp.task.name!r}: fairness column {col!r}: {e}") from None
        rep = metric_by_group(
            gold,
            preds,
            groups,
            metric=spec.metric,
            labels=list(tp.data.space.labels),
            min_group_size=spec.min_group_size,
            column=col,
        )
        out[col] = {**rep.to_dict(), "mode": "clean (unparsed answers count as wrong)"}
    return out


def classification_analyses(
    tp: TaskPlan, store: RecordStore, answers: LabelAnswers, plots: Path, out: Path, plot_files: dict[str, str]
) -> dict[str, Any]:
    """What the suite entry asks for beyond the base condition (ablation, robustness, noise, calibration,
    fairness), keyed as in results.json."""
    entry, gold = tp.entry, answers.gold
    res: dict[str, Any] = {}
    if entry.ablation is not None:
        res["ablation"] = _ablation(tp, store, gold, plots, out, plot_files)
    if entry.robustness is not None:
        res["robustness"] = _robustness(tp, store, gold, plots, out, plot_files)
    if entry.noise is not None:
        res["noise"] = _noise(tp, store, gold, answers.overall, plots, out, plot_files)
    if entry.calibration is not None:
        res["calibration"] = _calibration(tp, gold, answers.probs, entry.calibration.n_bins, plots, out, plot_files)
    if entry.fairness is not None:
        res["fairness"] = _fairness(tp, gold, answers.preds)
    return res
