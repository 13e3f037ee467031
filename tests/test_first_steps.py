"""What a new user meets first: ``emollm --help`` starts with ``demo`` and says where to start, ``doctor``
ends with a next step, ``predict --preset`` works, ``eval`` names its cache options and device like the
other commands, and a misspelt ``eval --root`` name is an error listing the known names (before any data
is imported or generated).

    python -m pytest -q tests/test_first_steps.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emollm.cli import START_HERE, app


def _run(*args: object) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    return res.exit_code, res.stdout, res.stderr


def test_help_lists_demo_first_and_says_where_to_start() -> None:
    code, out, _ = _run("--help")
    assert code == 0
    commands = out[out.index("Commands") :].splitlines()[1:]
    first = next(line.strip("│ ").split()[0] for line in commands if line.strip("│ ").strip())
    assert first == "demo"
    assert " ".join(START_HERE.split()[:6]) in " ".join(out.split())


def test_doctor_ends_with_a_next_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from emollm.model.checkpoint import save_checkpoint
    from emollm.model.presets import model_config
    from emollm.model.system import build_system

    monkeypatch.chdir(tmp_path)
    code, out, _ = _run("doctor")
    assert code == 0, out
    last = " ".join(out[out.rindex("┘") + 1 :].split())  # what follows the table
    assert last.startswith("next: `emollm demo` (or `make demo`)") and "emollm chat" in last
    assert "conformance kit  " not in out and "test media (conformance kit)" in out

    save_checkpoint(build_system(model_config("tiny-fast"), source="tiny-fast"), tmp_path / "runs" / "t" / "final")
    code, out, _ = _run("doctor")
    assert code == 0 and "next: `emollm chat` talks to your newest trained model (runs/t/final)" in out


def test_predict_with_a_preset(tmp_path: Path, synthmer_small: Path) -> None:
    from emollm.data.sample import Manifest

    man = Manifest.load(synthmer_small)
    samples = man.split("test")
    clips = tmp_path / "clips"
    clips.mkdir()
    for s in samples[:2]:
        shutil.copy(man.media_path(s, "video"), clips / f"{s.id}.mp4")
    out = tmp_path / "pred"
    code, stdout, err = _run(
        "predict", "--preset", "tiny-fast", "--folder", clips, "--out", out, "--no-cache", "--device", "cpu", "--quiet"
    )
    assert code == 0, stdout + err
    assert "note: tiny-fast is untrained" in err
    rows = (out / "submission.csv").read_text().splitlines()
    assert rows[0] == "name,discrete,valence" and len(rows) == 3
    assert json.loads((out / "run.json").read_text())["settings"]["checkpoint"] == "tiny-fast"
    code, _, err = _run("predict", "--preset", "tiny-fast", "-c", "tiny", "--folder", clips, "--out", out)
    assert code != 0


def test_eval_cache_options_device_and_unknown_root(
    tmp_path: Path, synthmer_small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = _run("eval", "-c", "tiny-fast", "--tasks", "synthmer", "--root", f"synthmr={synthmer_small}")
    assert code == 2
    assert "--root synthmr (did you mean synthmer?): no task of this run reads a root of that name" in err
    assert "the names these tasks read are: synthmer" in err
    assert not (tmp_path / "runs").exists()  # nothing imported or generated

    code, out, _ = _run("eval", "--help")
    assert "--cache-dir" in out and "--no-cache" in out and "--features" not in out and "--feature-mode" not in out
    common = ["-c", "tiny-fast", "--tasks", "synthmer", "--root", f"synthmer={synthmer_small}", "--limit", "2", "-q"]
    common += ["--modalities", "all"]  # --device left at its default: auto
    feats = tmp_path / "feats"
    code, out, err = _run("eval", *common, "--out", tmp_path / "a", "--cache-dir", feats, "--no-cache")
    assert code == 0, err
    assert not feats.exists()  # --no-cache: computed live, nothing cached
    import torch

    res = json.loads((tmp_path / "a" / "results.json").read_text())
    assert res["options"]["device"] == ("cuda" if torch.cuda.is_available() else None)  # None: the default, cpu
    code, out, err = _run("eval", *common, "--out", tmp_path / "b", "--cache-dir", feats)
    assert code == 0, err
    assert feats.is_dir()
    old = tmp_path / "old_feats"  # the old names still work
    code, out, err = _run("eval", *common, "--out", tmp_path / "c", "--features", old, "--feature-mode", "auto")
    assert code == 0, err
    assert old.is_dir()
    code, out, err = _run("eval", *common, "--no-cache", "--feature-mode", "cache")
    assert code == 2 and "contradicts --feature-mode cache" in err
