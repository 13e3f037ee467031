"""Single-label classification metrics (sklearn underneath) with an explicit ``unparsed`` bucket.

    m = classification_metrics(["happy", "sad", "sad"], ["happy", None, "sad"])
    m["weighted_f1"], m["accuracy"], m["n_unparsed"]       # WAF, accuracy (= WAR), 1

- ``None`` in the predictions means "the answer could not be read". It counts as wrong for every
  metric and is reported as ``n_unparsed`` / ``unparsed_rate``; it is never mapped to a label.
- The averaged label set (``labels``) defaults to sklearn's default: the sorted union of the gold labels
  and the parsed predictions. ``weighted_*`` weight each class by its gold support, so the WAF equals
  ``sklearn.metrics.f1_score(gold, pred, average="weighted")`` of the official MER scorers.
- ``accuracy`` = WAR (weighted average recall); ``macro_recall`` = UAR.
- ``metrics_from_confusion(matrix, labels)`` scores a published confusion matrix (rows gold, columns
  predicted) by expanding it to label lists, e.g. Emotion-LLaMA's MER2023 test3 matrix.

The ``classification`` metric of ``emollm score`` reads ``name,discrete`` CSVs (see docs/METRICS.md):
published mode accepts only the label space's canonical strings (anything else is an error, as in the
official scorer's ``emo2idx`` lookup); clean mode also reads synonyms ("Happiness." -> happy) and
counts unknown words as unparsed. An empty prediction cell is unparsed in both modes. Extra prediction
names are ignored (reported as ``n_extra_pred``); a gold name without a prediction is an error.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from emollm.answers import read_label_cell
from emollm.evaluation.metrics.registry import Mode, Scored, ScoreOptions, align_names, register_metric
from emollm.evaluation.readers import LabelFile, read_label_csv
from emollm.labels import LabelSpace, label_space

UNPARSED = "<unparsed>"
"""Stand-in for an unreadable prediction inside sklearn calls; never one of the averaged labels."""


def label_arrays(
    gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str] | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Validated object arrays [N] (None -> ``UNPARSED``) and the averaged label list."""
    if len(gold) != len(pred):
        raise ValueError(f"gold has {len(gold)} labels but predictions have {len(pred)}")
    if not len(gold):
        raise ValueError("no samples to score")
    if any(g is None for g in gold):
        raise ValueError("gold labels must not be None")
    parsed = {p for p in pred if p is not None}
    if labels is None:
        labs = sorted(set(gold) | parsed)
    else:
        labs = list(labels)
        unknown = sorted((set(gold) | parsed) - set(labs))
        if unknown:
            raise ValueError(f"label(s) {', '.join(map(repr, unknown))} not in the label set {labs}")
    if UNPARSED in labs:
        raise ValueError(f"{UNPARSED!r} is reserved for unparsed predictions")
    g = np.asarray(list(gold), dtype=object)
    p = np.asarray([UNPARSED if x is None else x for x in pred], dtype=object)
    return g, p, labs


def weighted_f1(gold: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> float:
    """WAF on arrays that may hold ``UNPARSED`` (counted wrong); ``labels`` fixes the averaged classes."""
    return float(f1_score(gold, pred, labels=list(labels), average="weighted", zero_division=0))


def label_codes(values: np.ndarray, labels: Sequence[str]) -> np.ndarray:
    """Object array [N] -> int codes [N]: position in ``labels``, ``len(labels)`` for anything else (unparsed)."""
    index = {lab: i for i, lab in enumerate(labels)}
    return np.asarray([index.get(v, len(labels)) for v in values], dtype=np.int64)


def weighted_f1_codes(gold: np.ndarray, pred: np.ndarray, n_labels: int) -> float:
    """WAF from int codes (gold in 0..n_labels-1; pred code ``n_labels`` = outside the label set, counted wrong).

    The same arithmetic as sklearn's ``f1_score(average="weighted", zero_division=0)``
    (per class 2*tp / (support + predicted), averaged with the supports as weights), without its
    per-call overhead; used for bootstrap resamples. gold, pred: int arrays [N].
    """
    k = n_labels + 1
    cm = np.bincount(gold * k + pred, minlength=n_labels * k).reshape(n_labels, k)
    tp = np.diag(cm[:, :n_labels]).astype(np.float64)
    support = cm.sum(axis=1).astype(np.float64)
    denom = support + cm[:, :n_labels].sum(axis=0)
    f1 = np.divide(2.0 * tp, denom, out=np.zeros(n_labels), where=denom > 0)
    return float(np.average(f1, weights=support)) if support.sum() > 0 else 0.0


def classification_metrics(
    gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str] | None = None
) -> dict[str, Any]:
    """Accuracy/WAR, weighted and macro P/R/F1 (UAR = macro recall), per-class P/R/F1 and the confusion matrix.

    gold: N labels; pred: N labels or None (unparsed); labels: the averaged classes (default: sorted union
    of gold and parsed predictions).
    """
    g, p, labs = label_arrays(gold, pred, labels)
    out: dict[str, Any] = {"n": len(g)}
    out["accuracy"] = float(accuracy_score(g, p))
    for avg in ("weighted", "macro"):
        pr, rc, f1, _ = precision_recall_fscore_support(g, p, labels=labs, average=avg, zero_division=0)
        out[f"{avg}_precision"], out[f"{avg}_recall"], out[f"{avg}_f1"] = float(pr), float(rc), float(f1)
    out["waf"] = out["weighted_f1"]
    out["war"] = out["accuracy"]
    out["uar"] = out["macro_recall"]
    n_unparsed = int(sum(1 for x in p if x == UNPARSED))
    out["n_unparsed"] = n_unparsed
    out["unparsed_rate"] = n_unparsed / len(g)
    pr, rc, f1, sup = precision_recall_fscore_support(g, p, labels=labs, average=None, zero_division=0)
    out["labels"] = labs
    out["per_class"] = {
        lab: {"precision": float(pr[i]), "recall": float(rc[i]), "f1": float(f1[i]), "support": int(sup[i])}
        for i, lab in enumerate(labs)
    }
    cols = labs + ([UNPARSED] if n_unparsed else [])
    with warnings.catch_warnings():  # sklearn warns about a single label even when labels= is given
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        cm = confusion_matrix(g, p, labels=cols)[: len(labs)]
    out["confusion_matrix"] = {"rows": labs, "columns": cols, "matrix": cm.tolist()}
    return out


def expand_confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> tuple[list[str], list[str]]:
    """A confusion matrix (rows gold, columns predicted, in ``labels`` order) -> gold and pred label lists."""
    m = np.asarray(matrix)
    if m.ndim != 2 or m.shape != (len(labels), len(labels)):
        raise ValueError(f"confusion matrix of shape {m.shape} does not match {len(labels)} labels")
    if (m < 0).any() or not np.issubdtype(m.dtype, np.integer):
        raise ValueError("confusion matrix entries must be non-negative integers")
    gold: list[str] = []
    pred: list[str] = []
    for i, gi in enumerate(labels):
        for j, pj in enumerate(labels):
            gold += [gi] * int(m[i, j])
            pred += [pj] * int(m[i, j])
    return gold, pred


def metrics_from_confusion(matrix: Sequence[Sequence[int]], labels: Sequence[str]) -> dict[str, Any]:
    """``classification_metrics`` of the label lists a confusion matrix stands for."""
    gold, pred = expand_confusion(matrix, labels)
    return classification_metrics(gold, pred)


# ----------------------------------------------------------------------------------------------
# reading label cells per mode


def read_gold_label(cell: str, space: LabelSpace, mode: Mode, where: str) -> str:
    """A gold cell -> canonical label; anything else is an error naming ``where``."""
    if mode == "published":
        if cell in space.labels:
            return cell
        raise ValueError(
            f"{where}: gold label {cell!r} is not one of {', '.join(space.labels)} (label space {space.name})"
        )
    return space.require(cell, where)


def read_pred_label(cell: str, space: LabelSpace, mode: Mode, where: str) -> str | None:
    """A prediction cell -> canonical label, or None (unparsed): ``emollm.answers.read_label_cell``, with
    errors naming ``where``."""
    try:
        return read_label_cell(cell, space, mode)
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None


def read_label_pairs(
    gold: LabelFile, pred: LabelFile, space: LabelSpace, mode: Mode, *, allow_extra: bool = True
) -> tuple[list[str], list[str], list[str | None], list[str]]:
    """Aligned (names, gold labels, predicted labels or None, extra prediction names)."""
    names, extra = align_names(gold, pred, allow_extra=allow_extra)
    g = [read_gold_label(gold.discrete[n], space, mode, gold.where(n, "discrete")) for n in names]
    p = [read_pred_label(pred.discrete[n], space, mode, pred.where(n, "discrete")) for n in names]
    return names, g, p, extra


def make_resampler(
    gold: Sequence[str], pred: Sequence[str | None], labels: Sequence[str]
) -> Callable[[np.ndarray], float]:
    """``idx -> WAF`` on a resample (labels fixed to the full-sample label set)."""
    g, p, labs = label_arrays(gold, pred, labels)
    gc, pc = label_codes(g, labs), label_codes(p, labs)
    return lambda idx: weighted_f1_codes(gc[idx], pc[idx], len(labs))


class ClassificationOptions(ScoreOptions):
    label_space: str = "mer6"
    """Label space of gold and predictions (``emollm ls labels``): mer6, merr9, dfew7, meld7, iemocap4..."""


@register_metric(
    "classification", "accuracy/WAR, weighted F1 (WAF, main score), macro F1, UAR, per class", ClassificationOptions
)
def score_classification(gold_path: Path, pred_path: Path, opts: ClassificationOptions) -> Scored:
    space = label_space(opts.label_space)
    gold = read_label_csv(gold_path, valence="absent")
    pred = read_label_csv(pred_path, valence="absent")
    _, g, p, extra = read_label_pairs(gold, pred, space, opts.mode)
    m = classification_metrics(g, p)
    values = {"score": m["weighted_f1"], **m, "label_space": space.name, "n_extra_pred": len(extra)}
    return Scored(values, len(g), make_resampler(g, p, m["labels"]))
