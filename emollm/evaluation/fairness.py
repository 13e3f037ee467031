"""Group fairness: any metric split by a metadata column, with per-group values and the largest gap.

    groups = groups_from_metadata([s.metadata for s in samples], "gender")   # one group name per sample
    rep = metric_by_group(gold, pred, groups, metric="waf", labels=space.labels, min_group_size=20)
    rep.per_group["female"].value, rep.gap, rep.worst_group
    atomic_write_json("runs/x/fairness_gender.json", rep.to_dict())

``metric`` is a name (``waf``, ``macro_f1``, ``accuracy`` for labels; ``mse``, ``mae`` for valence)
or any callable ``(y_true, y_pred) -> float``. For the label metrics a ``None`` prediction (an answer
that could not be read) counts as a miss, as in ``metrics.classification``. Groups smaller than ``min_group_size`` are reported
but left out of the gap. A sample without a group value raises (naming the row) unless
``missing`` names a group for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emollm.evaluation.metrics.classification import UNPARSED

MetricFn = Callable[[Sequence[Any], Sequence[Any]], float]
HIGHER_IS_BETTER = {"waf": True, "macro_f1": True, "accuracy": True, "mse": False, "mae": False}
LABEL_METRICS = ("waf", "macro_f1", "accuracy")


def _metric(metric: str | MetricFn, labels: Sequence[str] | None) -> MetricFn:
    if callable(metric):
        return metric
    from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error

    labs = list(labels) if labels is not None else None
    fns: dict[str, MetricFn] = {
        "waf": lambda y, p: float(f1_score(y, p, labels=labs, average="weighted", zero_division=0)),
        "macro_f1": lambda y, p: float(f1_score(y, p, labels=labs, average="macro", zero_division=0)),
        "accuracy": lambda y, p: float(accuracy_score(y, p)),
        "mse": lambda y, p: float(mean_squared_error(y, p)),
        "mae": lambda y, p: float(mean_absolute_error(y, p)),
    }
    if metric not in fns:
        raise ValueError(f"unknown fairness metric {metric!r}; known: {', '.join(fns)} (or pass a callable)")
    return fns[metric]


def groups_from_metadata(metadata: Sequence[Mapping[str, Any]], column: str, missing: str | None = None) -> list[str]:
    """The value of ``column`` in each sample's metadata, as a string group name.

    A row without the column (or with an empty value) raises naming the row, unless ``missing``
    gives the group name to use for such rows.
    """
    out: list[str] = []
    for i, meta in enumerate(metadata):
        v = meta.get(column)
        if v is None or (isinstance(v, str) and not v.strip()):
            if missing is None:
                raise ValueError(f"row {i}: metadata has no value for {column!r} (keys: {sorted(meta)})")
            out.append(missing)
        else:
            out.append(str(v))
    return out


@dataclass(frozen=True)
class GroupValue:
    n: int
    value: float
    in_gap: bool
    """False when the group is smaller than ``min_group_size``."""


@dataclass(frozen=True)
class GroupReport:
    """A metric per group; ``gap`` = max − min over groups counted in the gap (None if fewer than 2)."""

    metric: str
    column: str
    overall: float
    per_group: dict[str, GroupValue]
    gap: float | None
    worst_group: str | None
    best_group: str | None
    higher_is_better: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "column": self.column,
            "overall": self.overall,
            "per_group": {g: v.__dict__ for g, v in self.per_group.items()},
            "gap": self.gap,
            "worst_group": self.worst_group,
            "best_group": self.best_group,
            "higher_is_better": self.higher_is_better,
        }


def metric_by_group(
    y_true: Sequence[Any],
    y_pred: Sequence[Any],
    groups: Sequence[str],
    metric: str | MetricFn = "waf",
    labels: Sequence[str] | None = None,
    min_group_size: int = 1,
    column: str = "group",
    higher_is_better: bool | None = None,
) -> GroupReport:
    """``metric`` overall and within each group (groups sorted by name).

    ``labels`` fixes the classes of F1 metrics, so an unparsed prediction outside them counts as a
    miss. ``higher_is_better`` (default: known for named metrics, True for callables) decides which
    group is the worst.
    """
    n = len(y_true)
    if len(y_pred) != n or len(groups) != n:
        raise ValueError(f"lengths differ: {n} gold, {len(y_pred)} predictions, {len(groups)} group values")
    if n == 0:
        raise ValueError("no samples to score")
    fn = _metric(metric, labels)
    if isinstance(metric, str) and None in y_pred:
        if metric not in LABEL_METRICS:
            raise ValueError(f"prediction at row {list(y_pred).index(None)} is None; metric {metric!r} needs numbers")
        y_pred = [UNPARSED if p is None else p for p in y_pred]
    name = metric if isinstance(metric, str) else getattr(metric, "__name__", "custom")
    hib = higher_is_better if higher_is_better is not None else HIGHER_IS_BETTER.get(name, True)
    idx: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        idx.setdefault(g, []).append(i)
    per_group: dict[str, GroupValue] = {}
    for g in sorted(idx):
        ii = idx[g]
        val = fn([y_true[i] for i in ii], [y_pred[i] for i in ii])
        per_group[g] = GroupValue(len(ii), float(val), len(ii) >= min_group_size)
    counted = {g: v.value for g, v in per_group.items() if v.in_gap}
    gap = worst = best = None
    if len(counted) >= 2:
        lo, hi = min(counted, key=counted.__getitem__), max(counted, key=counted.__getitem__)
        gap = counted[hi] - counted[lo]
        worst, best = (lo, hi) if hib else (hi, lo)
    return GroupReport(name, column, float(fn(list(y_true), list(y_pred))), per_group, gap, worst, best, hib)
