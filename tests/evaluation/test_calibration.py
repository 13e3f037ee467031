"""Calibration: ECE / Brier on hand-computed examples, temperature scaling, reliability diagram."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.special import softmax

from emollm.evaluation.calibration import (
    TemperatureScaler,
    brier_score,
    calibration_report,
    expected_calibration_error,
    negative_log_likelihood,
    plot_reliability,
    reliability_bins,
)

PROBS = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]])
LABELS = np.array([0, 1, 1, 0])


def test_ece_hand_computed() -> None:
    # 10 bins: every sample alone in its bin; |acc - conf| = 0.1, 0.8 (wrong), 0.3, 0.4
    assert expected_calibration_error(PROBS, LABELS, n_bins=10) == pytest.approx((0.1 + 0.8 + 0.3 + 0.4) / 4)
    # 2 bins: all in (0.5, 1]; accuracy 3/4 equals mean confidence 0.75
    assert expected_calibration_error(PROBS, LABELS, n_bins=2) == pytest.approx(0.0, abs=1e-12)
    bins = reliability_bins(PROBS, LABELS, n_bins=10)
    assert bins.counts.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 0]
    assert bins.accuracy[7] == 0.0 and bins.confidence[7] == pytest.approx(0.8)
    assert np.isnan(bins.accuracy[0]) and bins.mce == pytest.approx(0.8)


def test_perfect_calibration_gives_zero_ece() -> None:
    probs = np.tile([0.8, 0.2], (10, 1))
    labels = np.array([0] * 8 + [1] * 2)  # 80 % right at confidence 0.8
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-12)
    onehot = np.eye(3)[[0, 2, 1, 1]]
    assert expected_calibration_error(onehot, np.array([0, 2, 1, 1])) == 0.0
    assert brier_score(onehot, np.array([0, 2, 1, 1])) == 0.0


def test_brier_hand_computed() -> None:
    # (0.1² + 0.1²) + (0.8² + 0.8²) + (0.3² + 0.3²) + (0.4² + 0.4²) = 0.02 + 1.28 + 0.18 + 0.32
    assert brier_score(PROBS, LABELS) == pytest.approx(1.8 / 4)
    p3 = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    # (0.3² + 0.2² + 0.1²) + (0.1² + 0.8² + 0.9²) = 0.14 + 1.46
    assert brier_score(p3, np.array([0, 2])) == pytest.approx(0.8)
    assert negative_log_likelihood(p3, np.array([0, 2])) == pytest.approx(-(np.log(0.7) + np.log(0.1)) / 2)
    rep = calibration_report(PROBS, LABELS, n_bins=10)
    assert rep["accuracy"] == 0.75 and rep["brier"] == pytest.approx(0.45) and rep["ece"] == pytest.approx(0.4)


def test_bad_inputs_name_the_row() -> None:
    with pytest.raises(ValueError, match="row 1 is not a probability distribution"):
        brier_score(np.array([[0.5, 0.5], [0.9, 0.3]]), np.array([0, 1]))
    with pytest.raises(ValueError, match="label 2 at row 0 is outside 0..1"):
        expected_calibration_error(PROBS, np.array([2, 0, 0, 0]))
    with pytest.raises(ValueError, match="shape"):
        expected_calibration_error(PROBS, np.array([0, 1]))


def test_temperature_scaling_fixes_overconfidence() -> None:
    rng = np.random.default_rng(0)
    n, c = 4000, 6
    true_logits = rng.normal(0.0, 1.5, size=(n, c))
    labels = np.array([rng.choice(c, p=p) for p in softmax(true_logits, axis=1)])
    model_logits = 3.0 * true_logits  # the model is three times too sharp
    val, test = slice(0, n // 2), slice(n // 2, n)

    ts = TemperatureScaler().fit(model_logits[val], labels[val])
    assert ts.temperature == pytest.approx(3.0, rel=0.15)
    before = softmax(model_logits[test], axis=1)
    after = ts.transform(model_logits[test])
    assert negative_log_likelihood(after, labels[test]) < negative_log_likelihood(before, labels[test]) - 0.1
    assert expected_calibration_error(after, labels[test]) < expected_calibration_error(before, labels[test]) / 2
    assert (after.argmax(axis=1) == before.argmax(axis=1)).all()  # accuracy is untouched


def test_reliability_diagram_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    probs = softmax(rng.normal(size=(200, 4)) * 2, axis=1)
    labels = rng.integers(0, 4, 200)
    out = plot_reliability(reliability_bins(probs, labels, n_bins=10), tmp_path / "figs" / "reliability.png")
    assert out.stat().st_size > 1000
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 200
    assert [p.name for p in out.parent.iterdir()] == ["reliability.png"]  # no temporary files left behind
