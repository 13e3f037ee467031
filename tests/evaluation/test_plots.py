"""Report figures are written atomically as real, readable PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from emollm.evaluation.plots import plot_confusion_matrix, plot_modality_ablation, plot_robustness_curves, save_figure


def _png(path: Path) -> tuple[int, int]:
    assert path.is_file() and path.stat().st_size > 1000
    with Image.open(path) as im:
        assert im.format == "PNG"
        im.load()
        arr = np.asarray(im.convert("L"))
        assert arr.std() > 0  # not a blank canvas
        return im.size


def test_confusion_matrix_heatmap(tmp_path: Path) -> None:
    labels = ["angry", "happy", "neutral", "sad", "surprise", "worried"]
    cm = np.array(
        [
            [170, 2, 5, 3, 0, 3],
            [1, 160, 5, 1, 1, 1],
            [4, 3, 150, 6, 0, 3],
            [2, 1, 10, 240, 0, 4],
            [0, 2, 1, 0, 10, 1],
            [3, 0, 2, 5, 0, 35],
        ]
    )
    w, h = _png(plot_confusion_matrix(cm, labels, tmp_path / "cm.png"))
    assert w > 300 and h > 300
    with_unparsed = np.hstack([cm, np.ones((6, 1), dtype=int)])
    _png(
        plot_confusion_matrix(
            with_unparsed, labels, tmp_path / "cm_norm.png", pred_labels=[*labels, "UNPARSED"], normalize="true"
        )
    )
    with pytest.raises(ValueError, match="does not match"):
        plot_confusion_matrix(cm, labels[:5], tmp_path / "bad.png")


def test_robustness_curves_numeric_and_categorical(tmp_path: Path) -> None:
    noise = {"emollm": {0.0: 0.72, 0.1: 0.68, 0.2: 0.61}, "baseline": {0.0: 0.65, 0.2: 0.50}}
    _png(plot_robustness_curves(noise, tmp_path / "noise.png", xlabel="noise level", ylabel="WAF"))
    fams = {"P": {"P0": 0.70, "P1": 0.66, "P2": 0.69}, "O": {"O0": 0.71, "O1": 0.63}}
    errs = {"P": {"P0": 0.02, "P1": 0.03}}
    _png(plot_robustness_curves(fams, tmp_path / "variants.png", errors=errs, xlabel="prompt variant", ylabel="WAF"))
    with pytest.raises(ValueError, match="no series"):
        plot_robustness_curves({}, tmp_path / "x.png")


def test_modality_ablation_bars(tmp_path: Path) -> None:
    scores = {"all": 0.72, "-audio": 0.65, "-face": 0.60, "-frame": 0.70, "text only": 0.51}
    out = plot_modality_ablation(
        scores, tmp_path / "sub" / "ablation.png", errors={"all": 0.01}, baseline="all", ylabel="WAF"
    )
    _png(out)
    assert sorted(p.name for p in out.parent.iterdir()) == ["ablation.png"]  # atomic: no temp files left
    with pytest.raises(ValueError, match="baseline"):
        plot_modality_ablation(scores, tmp_path / "a.png", baseline="none")


def test_save_figure_rejects_unknown_suffix(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    with pytest.raises(ValueError, match="unsupported suffix"):
        save_figure(Figure(), tmp_path / "fig.bmp")
    assert save_figure(Figure(), tmp_path / "fig.svg").read_text().lstrip().startswith("<?xml")
