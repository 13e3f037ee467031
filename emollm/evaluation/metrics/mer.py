"""MER2023 and MER2024 challenge scores (official ``main-release.py`` / MER2024 baseline protocol).

    m = mer2023_metrics(gold_labels, pred_labels, gold_valence, pred_valence)
    m["waf"], m["mse"], m["combined"]          # combined = WAF - 0.25 * MSE

- **MER2023** classes ``neutral, angry, happy, sad, worried, surprise`` (label space ``mer6``).
  WAF = ``f1_score(average="weighted")``, MSE = ``mean_squared_error`` on valence (range -5..5), and the
  "overall metric" ``WAF - 0.25*MSE``.
  * test1 (MER-MULTI, 411) and test2 (MER-NOISE, 412): main score = combined. The official scorer asserts
    equal lengths, so gold and predictions must hold exactly the same names (extra names are an error).
    Both files need a valence for every row. The combined score can be negative.
  * test3 (MER-SEMI, 834 labelled names hidden in a larger pool): WAF only; predictions may hold extra
    names (only gold names are scored); valence is ignored.
- **MER2024** MER-SEMI / MER-NOISE (test1 1,169 / test2 1,170 hidden in the unlabelled pool): WAF only,
  extra prediction names allowed.

Labels are read as in ``classification`` (published: canonical strings only, anything else is an error;
clean: synonyms, unknown -> unparsed; empty -> unparsed in both). Unparsed predictions count as wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sklearn.metrics import mean_squared_error

from emollm.evaluation.metrics.classification import (
    classification_metrics,
    make_resampler,
    read_label_pairs,
)
from emollm.evaluation.metrics.registry import Scored, ScoreOptions, register_metric
from emollm.evaluation.readers import LabelFile, read_label_csv
from emollm.labels import label_space

MER_LABELS: tuple[str, ...] = ("neutral", "angry", "happy", "sad", "worried", "surprise")
"""Canonical MER2023/2024 class order of the official code (``emos``)."""

VALENCE_WEIGHT = 0.25


def overall_metric(waf: float, mse: float) -> float:
    """MER2023 combined score ``WAF - 0.25 * MSE`` (higher is better)."""
    return waf - VALENCE_WEIGHT * mse


def mer2023_metrics(
    gold: Sequence[str],
    pred: Sequence[str | None],
    gold_valence: Sequence[float] | None = None,
    pred_valence: Sequence[float] | None = None,
) -> dict[str, Any]:
    """WAF (+ accuracy, unparsed count, per class) and, when valences are given, MSE and the combined score."""
    out = classification_metrics(gold, pred)
    out["waf"] = out["weighted_f1"]
    if (gold_valence is None) != (pred_valence is None):
        raise ValueError("give both gold and predicted valences, or neither")
    if gold_valence is not None and pred_valence is not None:
        if len(gold_valence) != len(gold) or len(pred_valence) != len(gold):
            raise ValueError(f"valence lists must have {len(gold)} values like the labels")
        out["mse"] = float(mean_squared_error(np.asarray(gold_valence, float), np.asarray(pred_valence, float)))
        out["combined"] = overall_metric(out["waf"], out["mse"])
    return out


def _valences(table: LabelFile, names: list[str], role: str) -> list[float]:
    if not table.has_valence_column:
        raise ValueError(f"{table.path}: missing column valence; MER2023 test1/test2 {role} need name,discrete,valence")
    vals = []
    for n in names:
        v = table.valence[n]
        if v is None:
            raise ValueError(f"{table.where(n, 'valence')}: empty; MER2023 test1/test2 {role} need a valence number")
        vals.append(v)
    return vals


class MER2023Options(ScoreOptions):
    split: Literal["test1", "test2", "test3"]
    """test1 = MER-MULTI, test2 = MER-NOISE (WAF - 0.25*MSE); test3 = MER-SEMI (WAF only)."""


@register_metric("mer2023", "MER2023: test1/test2 WAF - 0.25*MSE (main score), test3 WAF", MER2023Options)
def score_mer2023(gold_path: Path, pred_path: Path, opts: MER2023Options) -> Scored:
    space = label_space("mer6")
    semi = opts.split == "test3"
    gold = read_label_csv(gold_path, valence="absent" if semi else "optional")
    pred = read_label_csv(pred_path, valence="absent" if semi else "optional")
    names, g, p, extra = read_label_pairs(gold, pred, space, opts.mode, allow_extra=semi)
    if semi:
        m = mer2023_metrics(g, p)
        values = {"score": m["waf"], "split": opts.split, "track": "MER-SEMI", **m, "n_extra_pred": len(extra)}
        return Scored(values, len(g), make_resampler(g, p, m["labels"]))
    gv, pv = _valences(gold, names, "gold labels"), _valences(pred, names, "predictions")
    m = mer2023_metrics(g, p, gv, pv)
    track = "MER-MULTI" if opts.split == "test1" else "MER-NOISE"
    values = {"score": m["combined"], "split": opts.split, "track": track, **m}
    return Scored(values, len(g), _combined_resampler(g, p, m["labels"], gv, pv))


@register_metric("mer2024", "MER2024 MER-SEMI / MER-NOISE: WAF (main score)")
def score_mer2024(gold_path: Path, pred_path: Path, opts: ScoreOptions) -> Scored:
    gold = read_label_csv(gold_path, valence="absent")
    pred = read_label_csv(pred_path, valence="absent")
    _, g, p, extra = read_label_pairs(gold, pred, label_space("mer6"), opts.mode)
    m = mer2023_metrics(g, p)
    values = {"score": m["waf"], **m, "n_extra_pred": len(extra)}
    return Scored(values, len(g), make_resampler(g, p, m["labels"]))


def _combined_resampler(
    gold: list[str], pred: list[str | None], labels: list[str], gv: list[float], pv: list[float]
) -> Callable[[np.ndarray], float]:
    waf = make_resampler(gold, pred, labels)
    gva, pva = np.asarray(gv, float), np.asarray(pv, float)
    return lambda idx: overall_metric(waf(idx), float(np.mean((gva[idx] - pva[idx]) ** 2)))
