"""The metric registry: what a file-level scorer is (``MetricSpec``), what it returns (``Scored``), the
options every scorer accepts and the gold/prediction name alignment they share.

The protocol modules (classification, mer, openset, unibench, wheel) import this module and register
their metric names with ``register_metric``; ``emollm.evaluation.metrics`` imports them all, so
``from emollm.evaluation.metrics import METRICS`` sees every built-in metric.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from emollm.config import Strict
from emollm.evaluation.readers import NameTable
from emollm.registry import Registry

Mode = Literal["published", "clean"]


class ScoreOptions(Strict):
    """Options every file-level scorer accepts."""

    mode: Mode = "published"
    """published: keep the quirks of the official scorer; clean: the documented, more careful variant."""


@dataclass(frozen=True)
class Scored:
    """What a file-level scorer returns."""

    values: dict[str, Any]
    """Everything computed; must hold ``score`` (the protocol's main number, a float in 0..1)."""
    n_items: int
    """How many items (names) the bootstrap resamples over."""
    resample: Callable[[np.ndarray], float] | None = None
    """Main score on a resample: ``idx`` int array [n_items] of positions in the scored items."""


@dataclass(frozen=True)
class MetricSpec:
    """One metric name: its options schema and the function scoring a gold file against a prediction file."""

    name: str
    summary: str
    options: type[ScoreOptions]
    run: Callable[[Path, Path, Any], Scored]


METRICS: Registry[MetricSpec] = Registry("metric")


def register_metric(
    name: str, summary: str, options: type[ScoreOptions] = ScoreOptions
) -> Callable[[Callable[[Path, Path, Any], Scored]], Callable[[Path, Path, Any], Scored]]:
    """Decorator: register a file-level scorer ``run(gold, pred, options) -> Scored`` under ``name``."""

    def deco(fn: Callable[[Path, Path, Any], Scored]) -> Callable[[Path, Path, Any], Scored]:
        METRICS.add(name, MetricSpec(name, summary, options, fn))
        return fn

    return deco


def _show(names: list[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def align_names(gold: NameTable, pred: NameTable, *, allow_extra: bool = True) -> tuple[list[str], list[str]]:
    """Gold names in gold-file order and the prediction names not in the gold.

    A gold name without a prediction is always an error naming it; extra prediction names are an error
    only when ``allow_extra`` is False (protocols that assert equal name sets).
    """
    missing = [n for n in gold.names if n not in pred]
    if missing:
        raise ValueError(f"{pred.path}: no prediction for {len(missing)} gold name(s) of {gold.path}: {_show(missing)}")
    extra = [n for n in pred.names if n not in gold]
    if extra and not allow_extra:
        raise ValueError(
            f"{pred.path}: {len(extra)} name(s) not in the gold file {gold.path}: {_show(extra)} "
            "(this protocol requires the same names in both files)"
        )
    return list(gold.names), extra
