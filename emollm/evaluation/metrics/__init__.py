"""Evaluation metrics that reproduce the published MER / OV-MER / MER-UniBench protocols, and their registry.

Each protocol module holds the pure functions (label lists or word sets in, numbers out) and one
file-level scorer per metric name, registered in ``METRICS``:

==============  ==========================  ===============================================================
name            module                      main ``score``
==============  ==========================  ===============================================================
classification  ``classification``          weighted F1 (WAF); also accuracy/WAR, macro F1, UAR, per class
mer2023         ``mer``                     test1/test2: WAF - 0.25*MSE; test3: WAF
mer2024         ``mer``                     WAF (MER-SEMI / MER-NOISE)
ov              ``openset``                 MER2024 MER-OV (Accuracy_s + Recall_s) / 2 with cached GPT groups
wheel           ``wheel``                   EW-L1 (or L2) F-score averaged over the 5 emotion wheels
hitrate         ``unibench``                MER-UniBench hit rate, mean over the 5 level-1 wheels
sentiment       ``unibench``                binary weighted F1 on non-zero gold
uar_war         ``dfer``                    DFEW / MAFW UAR (mean over folds when the gold has a fold column)
mer2025_semi    ``mer2025``                 MER2025 Track 1 WAF (optionally the 20,000-candidate check)
mer2025_fg      ``mer2025``                 MER2025 Track 2 mean of EW-L1 and EW-L2 F
emobench        ``emobench``                EmoBench-M accuracy (official: empty dropped; clean: wrong)
emobench_joint  ``emobench``                EmoBench-M MC-EIU joint emotion + intent accuracy
mme_emotion     ``mme_emotion``             MME-Emotion CoT = (Rec + Rea) / 2 with the two-stage judge
mme_emotion_rec ``mme_emotion``             MME-Emotion judge-free recognition (gold labels among the words)
==============  ==========================  ===============================================================

Use them through ``emollm.evaluation.score.score`` (``emollm score`` on the command line)::

    from emollm.evaluation.metrics import METRICS
    spec = METRICS.get("ov")
    opts = spec.options.model_validate({"synonyms": "openset-synonym.zip"})
    scored = spec.run(Path("check-openset.csv"), Path("predict-openset.csv"), opts)
    scored.values["score"]

``Scored.resample(idx)`` recomputes the main score on a resample of the scored items (an int array of
indices into ``0..n_items-1``), which ``bootstrap`` uses for confidence intervals. The formulas, quirks
and modes are documented in docs/METRICS.md.
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


# populate the registry (each module registers its own metric names)
from emollm.evaluation.metrics import (  # noqa: E402,F401
    classification,
    dfer,
    emobench,
    mer,
    mer2025,
    mme_emotion,
    openset,
    unibench,
    wheel,
)
