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

from emollm.evaluation.metrics import classification, mer, openset, unibench, wheel  # noqa: F401  (register)
from emollm.evaluation.metrics.registry import (
    METRICS,
    MetricSpec,
    Mode,
    Scored,
    ScoreOptions,
    align_names,
    register_metric,
)

__all__ = ["METRICS", "MetricSpec", "Mode", "ScoreOptions", "Scored", "align_names", "register_metric"]
