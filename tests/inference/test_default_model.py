"""No model named: chat and predict use the newest trained checkpoint under ``runs/`` (and say which), or
explain how to get one; an untrained preset says so.

    python -m pytest -q tests/inference/test_default_model.py
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emollm.cli import app
from emollm.model.resolve import NoModelError, default_model_spec, trained_checkpoints


def _place(ckpt: Path, dest: Path, mtime: float) -> Path:
    shutil.copytree(ckpt, dest)
    for f in dest.iterdir():
        os.utime(f, (mtime, mtime))
    return dest


@pytest.fixture()
def runs(tiny_ckpt: Path, tmp_path: Path) -> Path:
    r = tmp_path / "runs"
    _place(tiny_ckpt, r / "old" / "final", 1_000_000)
    _place(tiny_ckpt, r / "new" / "stage2_fine" / "final", 3_000_000)
    _place(tiny_ckpt, r / "new" / "final", 3_000_000)  # same time: the shallower folder wins
    _place(tiny_ckpt, r / "new" / "stage1_coarse" / "step_9", 9_000_000)  # a resumable step, not final/best
    half = _place(tiny_ckpt, r / "broken" / "best", 9_000_000)
    (half / "model.yaml").unlink()  # no model.yaml: not a checkpoint
    return r


def test_newest_trained_checkpoint_is_the_default(runs: Path) -> None:
    assert trained_checkpoints(runs) == [
        runs / "new" / "final",
        runs / "new" / "stage2_fine" / "final",
        runs / "old" / "final",
    ]
    assert default_model_spec(runs) == str(runs / "new" / "final")
    with pytest.raises(NoModelError, match=r"make demo"):
        default_model_spec(runs / "nothing")


def test_chat_and_predict_without_a_model(runs: Path, feature_cache: Path, test_samples, monkeypatch) -> None:
    man, samples = test_samples
    monkeypatch.chdir(runs.parent)
    common = ["--cache-dir", str(feature_cache), "--device", "cpu"]
    res = CliRunner().invoke(app, ["chat", *common, "--task", "label", "-p", ""])
    assert res.exit_code == 0, res.output
    assert "using the newest trained checkpoint under runs/: runs/new/final" in res.stderr
    assert "untrained" not in res.output
    out = runs.parent / "pred"
    args = ["predict", *common, "--manifest", str(man.root), "--split", "test", "--out", str(out), "--quiet"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "runs/new/final" in res.stderr and (out / "submission.csv").is_file()

    monkeypatch.chdir(runs.parent.parent)  # no runs/ here
    for cmd in (["chat", "-p", "hi"], ["predict", "--folder", ".", "--out", "x"]):
        res = CliRunner().invoke(app, [*cmd, "--device", "cpu"])
        assert isinstance(res.exception, NoModelError), res.output
        assert "make demo" in str(res.exception) and "name a model with --checkpoint" in str(res.exception)


def test_an_untrained_preset_says_so(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["chat", "--preset", "tiny-fast", "--device", "cpu", "--no-cache", "--max-new-tokens", "4", "-p", "hi"]
    )
    assert res.exit_code == 0, res.output
    assert "note: tiny-fast is untrained" in res.stderr and "make demo" in res.stderr
