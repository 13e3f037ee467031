"""DFEW / MAFW dynamic facial expression recognition: UAR and WAR, per fold and over the 5 folds.

    m = uar_war(["happy", "sad", "sad"], ["happy", "sad", None])
    m["uar"], m["war"]          # 1.0 ... mean recall of the classes present in the gold; accuracy

- **WAR** (weighted average recall) = accuracy: correct / all samples.
- **UAR** (unweighted average recall) = the mean over the classes present in the gold labels of each
  class's recall (R1-Omni's ``eval_mafw_dfew.py``; the DFER literature). A predicted class with no gold
  sample is not averaged in (sklearn's macro recall over gold ∪ predicted would count it as 0).
- An unreadable prediction (``None`` / empty cell) is wrong for both and counted in ``n_unparsed``.
- **Folds.** When the gold CSV has a ``fold`` column (``emollm eval`` writes one task per fold, the
  DFEW/MAFW 5-fold protocol), UAR/WAR are computed per fold and ``fold_mean`` holds their means
  (the usual reported number: the mean over the 5 folds' test sets).

The ``uar_war`` metric of ``emollm score`` reads gold ``name,discrete[,fold]`` and predictions
``name,discrete``; labels are read in the ``label_space`` (``dfew7``, ``mafw11``): published mode
needs canonical labels (anything else is an error), clean mode reads synonyms and counts unknown
words as unparsed. Main score: UAR (the mean over folds when there are several).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emollm.evaluation.metrics.classification import ClassificationOptions, read_gold_label, read_pred_label
from emollm.evaluation.metrics.registry import Scored, align_names, register_metric
from emollm.evaluation.readers import _read_rows, read_label_csv
from emollm.labels import label_space


def uar_war(gold: Sequence[str], pred: Sequence[str | None]) -> dict[str, Any]:
    """UAR over the gold classes, WAR (accuracy), per-class recall and the unparsed count."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    if not gold:
        raise ValueError("no samples to score")
    g = np.asarray(list(gold), dtype=object)
    p = np.asarray(["" if x is None else x for x in pred], dtype=object)
    hit = g == p
    classes = sorted(set(gold))
    recall = {c: float(hit[g == c].mean()) for c in classes}
    return {
        "uar": float(np.mean(list(recall.values()))),
        "war": float(hit.mean()),
        "n": len(g),
        "n_unparsed": int(sum(1 for x in pred if x is None)),
        "per_class_recall": recall,
        "support": {c: int((g == c).sum()) for c in classes},
    }


class UARWAROptions(ClassificationOptions):
    label_space: str = "dfew7"
    """dfew7 (DFEW: happy, sad, neutral, angry, surprise, disgust, fear) or mafw11 (MAFW's 11 labels)."""


@register_metric("uar_war", "DFEW/MAFW UAR (main score) and WAR, per fold and mean over folds", UARWAROptions)
def score_uar_war(gold_path: Path, pred_path: Path, opts: UARWAROptions) -> Scored:
    space = label_space(opts.label_space)
    gold = read_label_csv(gold_path, valence="absent")
    pred = read_label_csv(pred_path, valence="absent")
    names, extra = align_names(gold, pred)
    g = [read_gold_label(gold.discrete[n], space, opts.mode, gold.where(n, "discrete")) for n in names]
    p = [read_pred_label(pred.discrete[n], space, opts.mode, pred.where(n, "discrete")) for n in names]
    rows = _read_rows(gold_path, ("name", "discrete"))
    folds: dict[str, str] = {}
    if "fold" in rows.header:
        for row_no, rec in rows.rows:
            f = rec["fold"].strip()
            if not f:
                raise ValueError(f"{gold_path}: row {row_no}, column fold: empty (every row needs its fold)")
            folds[rec["name"].strip()] = f
    m = uar_war(g, p)
    values: dict[str, Any] = {"score": m["uar"], **m, "label_space": space.name, "n_extra_pred": len(extra)}
    fold_of = np.asarray([folds.get(n, "") for n in names], dtype=object)
    if folds:
        per = {}
        for f in sorted(set(fold_of), key=lambda x: (len(x), x)):
            idx = np.flatnonzero(fold_of == f)
            r = uar_war([g[i] for i in idx], [p[i] for i in idx])
            per[f] = {"uar": r["uar"], "war": r["war"], "n": r["n"]}
        values["folds"] = per
        values["fold_mean"] = {
            "uar": float(np.mean([v["uar"] for v in per.values()])),
            "war": float(np.mean([v["war"] for v in per.values()])),
            "n_folds": len(per),
        }
        values["score"] = values["fold_mean"]["uar"]
    garr = np.asarray(g, dtype=object)
    parr = np.asarray(["" if x is None else x for x in p], dtype=object)

    def _uar(gi: np.ndarray, hit: np.ndarray) -> float:
        return float(np.mean([hit[gi == c].mean() for c in set(gi)]))

    def resample(idx: np.ndarray) -> float:  # the main score on a resample: fold mean when there are folds
        gi, hit, fi = garr[idx], garr[idx] == parr[idx], fold_of[idx]
        if not folds:
            return _uar(gi, hit)
        return float(np.mean([_uar(gi[fi == f], hit[fi == f]) for f in set(fi)]))

    return Scored(values, len(names), resample)
