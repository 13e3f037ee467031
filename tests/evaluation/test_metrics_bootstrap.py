"""Bootstrap confidence intervals: seeded, shared resample indices, paired differences, and through ``score``."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from emollm.evaluation.metrics.bootstrap import bootstrap, bootstrap_ci, bootstrap_difference, resample_indices
from emollm.evaluation.metrics.classification import (
    label_arrays,
    label_codes,
    make_resampler,
    weighted_f1,
    weighted_f1_codes,
)
from emollm.evaluation.score import score

rng = np.random.default_rng(1)
GOLD = [str(x) for x in rng.choice(["happy", "sad", "angry"], size=60)]
PRED_A = [g if i % 10 else "sad" for i, g in enumerate(GOLD)]  # 90% right
PRED_B = [g if i % 2 else "angry" for i, g in enumerate(GOLD)]  # about 50% right


def _metric(pred: list[str]) -> Callable[[np.ndarray], float]:
    return make_resampler(GOLD, pred, sorted(set(GOLD) | set(pred)))


def test_fast_weighted_f1_equals_sklearn() -> None:
    """The bootstrap's bincount WAF is sklearn's weighted F1 (unparsed included) on every resample."""
    pred = [None if i % 7 == 0 else p for i, p in enumerate(PRED_B)]
    g, p, labs = label_arrays(GOLD, pred, ["angry", "happy", "sad", "worried"])
    gc, pc = label_codes(g, labs), label_codes(p, labs)
    for idx in [np.arange(len(GOLD)), *resample_indices(len(GOLD), 20, seed=5)]:
        assert weighted_f1_codes(gc[idx], pc[idx], len(labs)) == pytest.approx(
            weighted_f1(g[idx], p[idx], labs), abs=1e-15
        )


def test_indices_are_seeded() -> None:
    a, b = resample_indices(10, 5, seed=3), resample_indices(10, 5, seed=3)
    assert a.shape == (5, 10) and (a == b).all() and a.min() >= 0 and a.max() < 10
    assert not (a == resample_indices(10, 5, seed=4)).all()
    with pytest.raises(ValueError, match="at least one item"):
        resample_indices(0, 5)


def test_ci_contains_point_and_is_reproducible() -> None:
    ci = bootstrap_ci(_metric(PRED_A), len(GOLD), n_boot=200, seed=0)
    assert ci.low <= ci.point <= ci.high and ci.std > 0 and ci.n_boot == 200
    assert ci == bootstrap_ci(_metric(PRED_A), len(GOLD), n_boot=200, seed=0)
    mean = bootstrap_ci(lambda idx: float(np.mean(np.asarray([1.0, 2.0, 3.0])[idx])), 3, n_boot=500, seed=1)
    assert mean.point == 2.0 and 1.0 <= mean.low < 2.0 < mean.high <= 3.0


def test_paired_difference_with_shared_indices() -> None:
    idx = resample_indices(len(GOLD), 200, seed=0)
    same = bootstrap_difference(_metric(PRED_A), _metric(PRED_A), idx)
    assert same.point == same.low == same.high == 0.0
    diff = bootstrap_difference(_metric(PRED_A), _metric(PRED_B), idx)
    a, b = bootstrap(_metric(PRED_A), idx), bootstrap(_metric(PRED_B), idx)
    assert diff.point == pytest.approx(a.point - b.point)
    assert diff.mean == pytest.approx(a.mean - b.mean)  # the same resamples for both variants
    assert diff.low > 0  # A is clearly better: the paired interval excludes 0


def test_score_with_bootstrap(tmp_path: Path) -> None:
    for name, labels in (("gold.csv", GOLD), ("pred.csv", PRED_A)):
        with open(tmp_path / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["name", "discrete"])
            w.writerows([[f"s{i}", lab] for i, lab in enumerate(labels)])
    r = score("classification", tmp_path / "gold.csv", tmp_path / "pred.csv", bootstrap=100, seed=7)
    b = r["bootstrap"]
    assert b["point"] == r["score"] and b["n_boot"] == 100 and b["seed"] == 7
    assert b["low"] <= r["score"] <= b["high"]
    again = score("classification", tmp_path / "gold.csv", tmp_path / "pred.csv", bootstrap=100, seed=7)
    assert again["bootstrap"] == b
    with pytest.raises(ValueError, match=">= 0"):
        score("classification", tmp_path / "gold.csv", tmp_path / "pred.csv", bootstrap=-1)


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.mark.parametrize("mode", ["published", "clean"])
def test_resamplers_reproduce_the_main_score(tmp_path: Path, mode: str) -> None:
    """Each metric's fast resampler, on the full sample, gives the reported score (bootstrap is centred right)."""
    from emollm.evaluation.metrics import METRICS

    names = [f"s{i}" for i in range(len(GOLD))]
    pred = [None if i % 9 == 0 else p for i, p in enumerate(PRED_B)]
    g = _csv(
        tmp_path / "g.csv",
        ["name", "discrete", "valence"],
        [[n, x, i % 5 - 2] for i, (n, x) in enumerate(zip(names, GOLD, strict=True))],
    )
    p = _csv(
        tmp_path / "p.csv",
        ["name", "discrete", "valence"],
        [[n, x or "", i % 3 - 1] for i, (n, x) in enumerate(zip(names, pred, strict=True))],
    )
    sg = _csv(tmp_path / "sg.csv", ["name", "valence"], [[n, i % 5 - 2] for i, n in enumerate(names)])
    sp = _csv(
        tmp_path / "sp.csv",
        ["name", "discrete"],
        [[n, ["positive", "negative", "neutral", "?"][i % 4]] for i, n in enumerate(names)],
    )
    cases = [
        ("classification", g, p, {}),
        ("mer2023", g, p, {"split": "test1"}),
        ("mer2023", g, p, {"split": "test3"}),
        ("sentiment", sg, sp, {}),
    ]
    for metric, gold, prediction, extra in cases:
        spec = METRICS.get(metric)
        scored = spec.run(gold, prediction, spec.options.model_validate({"mode": mode, **extra}))
        full = scored.resample(np.arange(scored.n_items))
        assert full == pytest.approx(scored.values["score"], abs=1e-12), metric


def test_resamplers_on_conformance(conformance: Path) -> None:
    from emollm.evaluation.metrics import METRICS

    d = conformance / "mer2024_ov"
    for metric, opts in (
        ("ov", {"synonyms": d / "openset-synonym.zip"}),
        ("wheel", {"wheel": conformance / "emotion_wheel", "level": 2}),
    ):
        spec = METRICS.get(metric)
        scored = spec.run(d / "check-openset.csv", d / "predict-openset.csv", spec.options.model_validate(opts))
        assert scored.resample(np.arange(scored.n_items)) == pytest.approx(scored.values["score"], abs=1e-12)
