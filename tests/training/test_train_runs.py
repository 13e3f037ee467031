"""Runs into used folders, resume from damaged checkpoints, an output folder that stops taking files
(issue 13 items 14 and 15), on the tiny preset with a handful of steps.

    pytest tests/training/test_train_runs.py
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from emollm.training.config import load_run_config
from emollm.training.trainer import train

ROOT = Path(__file__).resolve().parents[2]
FEW = ["stages.0.log_every=1", "stages.1.log_every=1", "data.val_split=null", "stages.1.max_steps=1"]


def _cfg(tmp: Path, corpus: Path, *extra: str):
    return load_run_config(
        ROOT / "train/tiny.yaml",
        [
            f"data.corpus={corpus}",
            f"output_dir={tmp / 'run'}",
            f"data.features.cache_dir={tmp / 'features'}",
            *FEW,
            *extra,
        ],
    )


def _metrics(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]


def _loss_steps(run: Path, stage: str = "stage1_coarse") -> list[int]:
    return [r["step"] for r in _metrics(run) if f"{stage}/train/loss" in r]


def test_fresh_run_into_a_used_output_dir_starts_clean(tmp_path, synthmer_small, caplog) -> None:
    run = tmp_path / "run"
    train(_cfg(tmp_path, synthmer_small, "stages.0.max_steps=3", "stages.0.save_every=1"), progress_bar=False)
    assert _loss_steps(run) == [1, 2, 3] and (run / "stage1_coarse/step_000002").is_dir()
    first = (run / "metrics.jsonl").read_text()

    with caplog.at_level(logging.WARNING, logger="emollm.training.trainer"):
        train(_cfg(tmp_path, synthmer_small, "stages.0.max_steps=2"), progress_bar=False)
    assert _loss_steps(run) == [1, 2]  # a fresh metrics.jsonl, not appended to the old one
    assert (run / "metrics.previous.jsonl").read_text() == first
    assert not list(run.glob("*/step_*"))  # the old run's resumable checkpoints are gone
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "holds an earlier run" in said and "stage1_coarse/step_000002" in said
    assert json.loads((run / "run.json").read_text())["results"]["stage1_coarse"]["steps"] == 2


def test_resume_auto_skips_a_damaged_step_and_logs_each_step_once(tmp_path, synthmer_small, caplog) -> None:
    run = tmp_path / "run"
    extra = ("stages.0.max_steps=4", "stages.0.save_every=1", "stages.0.keep_last=10")
    ref = train(_cfg(tmp_path, synthmer_small, *extra), progress_bar=False)
    ref_final = load_file(str(ref.final / "trainable.safetensors"))
    assert _loss_steps(run) == [1, 2, 3, 4]
    # the newest resumable step (3; the last step of a stage is saved as final only) is damaged, as a
    # disk error or a copy cut short would leave it
    weights = run / "stage1_coarse/step_000003/trainable.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])

    with caplog.at_level(logging.WARNING, logger="emollm.training.trainer"):
        train(_cfg(tmp_path, synthmer_small, *extra), resume="auto", progress_bar=False)
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "skipping damaged checkpoint" in said and str(weights) in said
    assert "resuming from" in said and "step_000002" in said
    # steps 3 and 4 were run twice, logged once; nothing of the first run after step 2 is left
    keys = Counter((k, r["step"]) for r in _metrics(run) for k in r if k not in ("step", "time"))
    assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]
    assert _loss_steps(run) == [1, 2, 3, 4] and _loss_steps(run, "stage2_fine") == [5]
    got = load_file(str(run / "final/trainable.safetensors"))
    assert all(torch.equal(got[k], ref_final[k]) for k in ref_final)  # resumed from step 2: the same result


def test_read_only_output_folder_mid_run_is_a_clear_error_and_run_json_failed(tmp_path, synthmer_small) -> None:
    """The first resumable checkpoint cannot be written: one ``error:`` line, exit 1, run.json "failed"."""
    prefix: list[str] = []
    if os.geteuid() == 0:  # root ignores file modes: drop the capabilities that let it
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: a read-only folder cannot be simulated")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search,-fowner,-linux_immutable"]
    run = tmp_path / "run"
    stage_dir = run / "stage1_coarse"
    stage_dir.mkdir(parents=True)
    stage_dir.chmod(0o555)  # the run writes here after step 2
    try:
        out = subprocess.run(
            [
                *prefix,
                sys.executable,
                "-m",
                "emollm",
                "train",
                str(ROOT / "train/tiny.yaml"),
                f"data.corpus={synthmer_small}",
                f"output_dir={run}",
                f"data.features.cache_dir={tmp_path / 'features'}",
                "stages.0.max_steps=4",
                "stages.0.save_every=2",
                *FEW,
            ],
            cwd=ROOT,
            env={**os.environ, "OMP_NUM_THREADS": "1"},
            capture_output=True,
            text=True,
        )
    finally:
        stage_dir.chmod(0o755)
    assert out.returncode == 1, out.stderr[-3000:]
    assert "Traceback" not in out.stderr and "PermissionError" not in out.stderr, out.stderr[-3000:]
    err = re.findall(r"^error: .*", out.stderr, flags=re.M)
    assert len(err) == 1 and "cannot write the run's files" in err[0] and str(stage_dir) in err[0], out.stderr[-2000:]
    assert "Permission denied" in err[0] and "--resume auto" in err[0]
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "failed" and "Permission denied" in info["error"] and str(stage_dir) in info["error"]
    assert info["stopped_at"] == {"stage": 0, "step": 2}
