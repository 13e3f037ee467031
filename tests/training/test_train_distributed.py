"""Real multi-process training on CPU with gloo: DDP equals single-process, DeepSpeed ZeRO-2/3 train and save;
the same on native backbones (issue 14), and QLoRA on a native model keeps its towers in full precision."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _run(args: list[str], nproc: int = 1, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if nproc > 1:
        cmd = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={nproc}",
            "-m",
            "emollm",
            "train",
            *args,
        ]
    else:
        cmd = [sys.executable, "-m", "emollm", "train", *args]
    out = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-5000:])
    return out


def _args(tmp: Path, corpus: Path, name: str, *extra: str) -> list[str]:
    return [
        str(ROOT / "train/tiny.yaml"),
        f"data.corpus={corpus}",
        f"output_dir={tmp / name}",
        f"data.features.cache_dir={tmp / 'features'}",
        "stages.0.max_steps=3",
        "stages.1.max_steps=2",
        *extra,
    ]


def test_ddp_two_ranks_match_single_process_with_same_global_batch(tmp_path, synthmer_small) -> None:
    _run(_args(tmp_path, synthmer_small, "single", "stages.0.micro_batch_size=4", "stages.1.micro_batch_size=4"))
    _run(_args(tmp_path, synthmer_small, "ddp", "stages.0.micro_batch_size=2", "stages.1.micro_batch_size=2"), nproc=2)
    info = json.loads((tmp_path / "ddp/run.json").read_text())
    assert info["world_size"] == 2 and info["strategy"] == "ddp"
    assert info["results"]["stage1_coarse"]["ranks_in_sync"] is True
    assert info["results"]["stage2_fine"]["ranks_in_sync"] is True
    a = load_file(str(tmp_path / "single/final/trainable.safetensors"))
    b = load_file(str(tmp_path / "ddp/final/trainable.safetensors"))
    assert a.keys() == b.keys()
    init = None
    for k in a:
        assert torch.allclose(a[k], b[k], atol=2e-5, rtol=1e-4), (k, (a[k] - b[k]).abs().max())
    del init
    # the DDP run validated on both ranks' shards and merged them
    assert info["results"]["stage2_fine"]["val"]["n"] == 12


@pytest.mark.parametrize("zero", ["zero2", "zero3"])
def test_deepspeed_zero_trains_and_saves_a_loadable_checkpoint(tmp_path, synthmer_small, zero: str) -> None:
    pytest.importorskip("deepspeed")
    args = _args(
        tmp_path,
        synthmer_small,
        zero,
        "distributed.strategy=deepspeed",
        f"distributed.deepspeed_config={ROOT / 'train/deepspeed' / (zero + '.json')}",
        "stages=[{name: stage1_coarse, mixture: data_recipes/mixtures/stage1_coarse.yaml, max_steps: 3, micro_batch_size: 2, save_every: 2}]",
    )
    _run(args, nproc=2)
    info = json.loads((tmp_path / zero / "run.json").read_text())
    assert info["strategy"] == "deepspeed" and info["world_size"] == 2
    assert (tmp_path / zero / "stage1_coarse/step_000002/deepspeed").is_dir()
    from emollm.model.resolve import load_system

    s = load_system(tmp_path / zero / "final")  # single process
    w = s.model.projectors["audio"].net.weight
    fresh = load_system("tiny-fast").model.projectors["audio"].net.weight
    assert not torch.equal(w, fresh)  # trained weights, not the initial ones


# ------------------------------------------------------------------------------- native backbones


def test_native_ddp_two_ranks_match_single_process(tmp_path, synthmer_small) -> None:
    preset = "preset=tiny-qwen2.5-omni"
    one = ["stages.0.micro_batch_size=4", "stages.1.micro_batch_size=4", preset]
    two = ["stages.0.micro_batch_size=2", "stages.1.micro_batch_size=2", preset]
    _run(_args(tmp_path, synthmer_small, "single", *one))
    _run(_args(tmp_path, synthmer_small, "ddp", *two), nproc=2)
    info = json.loads((tmp_path / "ddp/run.json").read_text())
    assert info["world_size"] == 2 and info["strategy"] == "ddp"
    assert info["results"]["stage2_fine"]["ranks_in_sync"] is True
    a = load_file(str(tmp_path / "single/final/trainable.safetensors"))
    b = load_file(str(tmp_path / "ddp/final/trainable.safetensors"))
    assert a.keys() == b.keys() and a
    for k in a:
        assert torch.allclose(a[k], b[k], atol=2e-5, rtol=1e-4), (k, (a[k] - b[k]).abs().max())


def test_native_deepspeed_zero2_trains_and_saves(tmp_path, synthmer_small) -> None:
    pytest.importorskip("deepspeed")
    args = _args(
        tmp_path,
        synthmer_small,
        "zero2",
        "preset=tiny-qwen2-vl",
        "model.llm.train_projector=true",
        "distributed.strategy=deepspeed",
        f"distributed.deepspeed_config={ROOT / 'train/deepspeed/zero2.json'}",
        "stages=[{name: stage1_coarse, mixture: data_recipes/mixtures/stage1_coarse.yaml, max_steps: 3, "
        "micro_batch_size: 2, save_every: 2}]",
    )
    _run(args, nproc=2)
    info = json.loads((tmp_path / "zero2/run.json").read_text())
    assert info["strategy"] == "deepspeed" and info["world_size"] == 2
    from emollm.model.resolve import load_system

    s = load_system(tmp_path / "zero2/final")
    merger = s.model.projectors["video"]
    fresh = load_system("tiny-qwen2-vl", overrides=["llm.train_projector=true"]).model.projectors["video"]
    assert any(not torch.equal(p, q) for p, q in zip(merger.parameters(), fresh.parameters(), strict=True))


def test_native_qlora_keeps_the_towers_in_full_precision(tmp_path, synthmer_small) -> None:
    pytest.importorskip("bitsandbytes")
    import bitsandbytes as bnb

    from emollm.model.resolve import load_system
    from emollm.training.config import load_run_config
    from emollm.training.trainer import train

    cfg = load_run_config(
        ROOT / "train/tiny.yaml",
        [
            "preset=tiny-qwen2-audio",
            f"data.corpus={synthmer_small}",
            f"output_dir={tmp_path / 'run'}",
            f"data.features.cache_dir={tmp_path / 'features'}",
            "model.llm.quantization=4bit",
            "stages.0.max_steps=1",
            "stages.1.max_steps=1",
            "data.val_split=null",
        ],
    )
    res = train(cfg, progress_bar=False)
    s = load_system(res.final)
    quant = [n for n, m in s.model.llm.named_modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert quant and all("language_model" in n for n in quant)
    assert not any("audio_tower" in n or "multi_modal_projector" in n for n in quant)
    assert s.model.count_parameters()["lora"] > 0


@pytest.mark.parametrize("preset", ["tiny-fast", "tiny-qwen2-audio"])
def test_fsdp_two_ranks_match_single_process(tmp_path, synthmer_small, preset: str) -> None:
    """FSDP2 shards the language model's decoder layers (a native model's towers have ``layers`` too)."""
    stage = "stages=[{name: stage1_coarse, mixture: data_recipes/mixtures/stage1_coarse.yaml, max_steps: 3, "
    _run(_args(tmp_path, synthmer_small, "single", f"preset={preset}", stage + "micro_batch_size: 4}]"))
    _run(
        _args(
            tmp_path,
            synthmer_small,
            "fsdp",
            f"preset={preset}",
            "distributed.strategy=fsdp",
            stage + "micro_batch_size: 2}]",
        ),
        nproc=2,
    )
    info = json.loads((tmp_path / "fsdp/run.json").read_text())
    assert info["strategy"] == "fsdp" and info["world_size"] == 2
    a = load_file(str(tmp_path / "single/final/trainable.safetensors"))
    b = load_file(str(tmp_path / "fsdp/final/trainable.safetensors"))
    assert a.keys() == b.keys() and a
    for k in a:
        assert torch.allclose(a[k], b[k], atol=2e-5, rtol=1e-4), (k, (a[k] - b[k]).abs().max())
