"""Single-process training on the tiny preset: outputs, resume equivalence, QLoRA, clear errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from emollm.config import ConfigError
from emollm.training.config import load_run_config
from emollm.training.trainer import preflight, train

ROOT = Path(__file__).resolve().parents[2]


def _cfg(tmp: Path, corpus: Path, *extra: str):
    return load_run_config(
        ROOT / "train/tiny.yaml",
        [f"data.corpus={corpus}", f"output_dir={tmp / 'run'}", f"data.features.cache_dir={tmp / 'features'}", *extra],
    )


def test_tiny_two_stage_run_writes_everything(tmp_path, synthmer_small) -> None:
    res = train(_cfg(tmp_path, synthmer_small), progress_bar=False)
    run = tmp_path / "run"
    for p in (
        "final/trainable.safetensors",
        "final/model.yaml",
        "final/config.yaml",
        "final/manifest.json",
        "best/model.yaml",
        "stage1_coarse/final/trainable.safetensors",
        "stage2_fine/final/trainable.safetensors",
        "config.yaml",
        "metrics.jsonl",
    ):
        assert (run / p).exists(), p
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "finished" and info["data"]["n_train"] == 24
    assert set(info["features"]) == {"audio", "face"} and info["git_sha"] is None or isinstance(info["git_sha"], str)
    assert info["results"]["stage1_coarse"]["steps"] == 4 and info["results"]["stage2_fine"]["steps"] == 2
    assert 0.0 <= info["results"]["stage2_fine"]["val"]["weighted_f1"] <= 1.0
    assert res.final == run / "final"
    # stage 2 starts from stage 1: the two finals differ (it trained) but share keys
    a = load_file(str(run / "stage1_coarse/final/trainable.safetensors"))
    b = load_file(str(run / "stage2_fine/final/trainable.safetensors"))
    assert a.keys() == b.keys() and any(not torch.equal(a[k], b[k]) for k in a)
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("stage1_coarse/train/loss" in x for x in lines)
    assert any("stage2_fine/val/weighted_f1" in x for x in lines)


def test_resume_after_kill_matches_uninterrupted_run(tmp_path, synthmer_small) -> None:
    common = [
        "stages.0.max_steps=6",
        "stages.0.save_every=1",
        "stages.0.keep_last=10",
        "stages.1.max_steps=2",
        "data.val_split=null",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # same threads in both runs: same float reduction order
    cmd = [
        sys.executable,
        "-m",
        "emollm",
        "train",
        str(ROOT / "train/tiny.yaml"),
        f"data.corpus={synthmer_small}",
        f"data.features.cache_dir={tmp_path / 'features'}",
        *common,
    ]
    ref_dir = tmp_path / "ref"
    out = subprocess.run([*cmd, f"output_dir={ref_dir / 'run'}"], env=env, cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    ref = load_file(str(ref_dir / "run/final/trainable.safetensors"))

    killed = tmp_path / "killed"
    args = [*cmd[5:], f"output_dir={killed / 'run'}"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "emollm", "train", str(ROOT / "train/tiny.yaml"), *args],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    target = killed / "run/stage1_coarse/step_000003"
    deadline = time.time() + 240
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert target.exists(), "the run never wrote step 3"
    assert not (killed / "run/final").exists(), "the run finished before it was killed"
    out = subprocess.run(
        [sys.executable, "-m", "emollm", "train", str(ROOT / "train/tiny.yaml"), *args, "--resume", "auto"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = load_file(str(killed / "run/final/trainable.safetensors"))
    assert got.keys() == ref.keys()
    for k in ref:
        assert torch.equal(got[k], ref[k]), k


def test_qlora_4bit_step_runs_on_cpu(tmp_path, synthmer_small) -> None:
    pytest.importorskip("bitsandbytes")
    cfg = _cfg(
        tmp_path,
        synthmer_small,
        "model.llm.quantization=4bit",
        "stages.0.max_steps=1",
        "stages.1.max_steps=1",
        "data.val_split=null",
    )
    res = train(cfg, progress_bar=False)
    import bitsandbytes as bnb

    from emollm.model.resolve import load_system

    s = load_system(res.final)
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in s.model.llm.modules())


def test_bad_recipes_fail_before_work(tmp_path, synthmer_small) -> None:
    with pytest.raises(ConfigError, match=r"unknown key .stages.0.lr_lorra. \(did you mean .lr_lora.\?\)"):
        _cfg(tmp_path, synthmer_small, "stages.0.lr_lorra=1")
    with pytest.raises(FileNotFoundError, match="nope.yaml.*not found"):
        preflight(_cfg(tmp_path, tmp_path / "nope.yaml"))


def test_unwritable_output_is_reported(tmp_path, synthmer_small) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="not writable"):
        preflight(_cfg(tmp_path, synthmer_small, f"output_dir={blocker / 'run'}"))
    with pytest.raises(ConfigError, match="val_split 'dev' has no samples"):
        preflight(_cfg(tmp_path, synthmer_small, "data.val_split=dev"))
    with pytest.raises(ConfigError, match="deepspeed_config is required"):
        _cfg(tmp_path, synthmer_small, "distributed.strategy=deepspeed")
