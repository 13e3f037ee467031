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
emobench_gene…  ``generation``              EmoBench-M SMILE ``emobench_generation``: ROUGE-L F; also sentence BLEU
bertscore       ``generation``              BERTScore F1 (needs a local model folder, e.g. roberta-large)
emobench_lau…   ``generation``              ``emobench_laughter``: the SMILE judge's (logical + multimodal) / 10
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

from emollm.evaluation.metrics import (  # noqa: F401  (each module registers its metric names)
    classification,
    dfer,
    emobench,
    generation,
    mer,
    mer2025,
    mme_emotion,
    openset,
    unibench,
    wheel,
)
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
