"""``emollm bench train``: LoRA + projector training throughput, fast path vs the reference recipe.

    emollm bench train --preset tiny                         # seconds
    emollm bench train --preset mini --corpus runs/data/bench_synthmer
    emollm bench train --preset emotion-llama-shapes --device cuda --batch-size 16

Fast path (what ``emollm train`` does per micro-batch): ``EpochPlan`` length-bucketed micro-batches of
``batch_size`` samples, ``collate_training`` (features from the cache / memory, right padding),
forward under bf16 autocast where it pays off (``fast_precision``), ``answer_loss``, backward, gradient
clipping and a fused AdamW step every ``grad_accum`` micro-batches; optional gradient checkpointing.

Reference (Emotion-LLaMA, spec §3.2): batch 1 per GPU, one sample per optimiser step, fp16 weights
with ``torch.autocast(float16)`` + ``GradScaler`` on a GPU (fp32 weights, no autocast, on a CPU), no
bucketing, plain AdamW, no clipping — on the same model (its frozen weights cast to that dtype) and
the same samples, after the fast path in the same process.

Figures: optimiser steps/s, samples/s, tokens/s (real, non-padding tokens), peak memory and on a GPU
the MFU (FLOPs per ``emollm.bench.common``). ``ratio`` = fast samples/s over reference samples/s.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import torch

from emollm.bench.common import (
    BenchReport,
    ModelDims,
    PathResult,
    PeakMemory,
    Stopwatch,
    autocast,
    cast_frozen,
    fast_precision,
    reference_dtype,
)
from emollm.bench.configs import TrainBenchConfig
from emollm.bench.workload import Workload, load_workload
from emollm.data.contract import PromptContract
from emollm.data.instructions import load_mixture
from emollm.training.data import EpochPlan, answer_loss, collate_training, estimate_length


def _param_groups(model: Any, lr: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for n, p in model.named_parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 and "bias" not in n and "norm" not in n else no_decay).append(p)
    return [{"params": decay, "weight_decay": 0.05, "lr": lr}, {"params": no_decay, "weight_decay": 0.0, "lr": lr}]


def _media_tokens(batch: dict[str, Any]) -> dict[str, int]:
    return {m: int(f.shape[0] * f.shape[1]) for m, f in batch["features"].items()}


class _Stream:
    """Training micro-batches of ``batch_size`` from an EpochPlan, cycling through epochs (batch 1: the reference)."""

    def __init__(self, wl: Workload, cfg: TrainBenchConfig, batch_size: int, bucket: bool) -> None:
        self.wl = wl
        self.recipe = PromptContract.from_mixture(
            load_mixture(cfg.mixture), wl.system.labels, wl.system.cfg.system_prompt
        )
        tokens = sum(e.llm_tokens for e in wl.system.encoders.values())
        lengths = [estimate_length(s, tokens) for s in wl.samples]
        if len(wl.samples) < batch_size:
            raise ValueError(f"--samples {len(wl.samples)} is smaller than the batch size {batch_size}")
        self.seed = cfg.workload.seed
        self.plan = EpochPlan(len(wl.samples), batch_size, 1, self.seed, lengths, bucket=bucket)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for epoch in itertools.count():
            for idx in self.plan.rank_batches(epoch, 0):
                yield collate_training(
                    self.wl.system,
                    self.recipe,
                    self.wl.featurizer,
                    self.wl.samples,
                    self.wl.root,
                    idx,
                    epoch,
                    self.seed,
                )


def _step_loss(model: Any, batch: dict[str, Any], device: torch.device, precision: str) -> torch.Tensor:
    feats = {k: v.to(device, non_blocking=True) for k, v in batch["features"].items()}
    with autocast(device, precision):
        out = model(
            input_ids=batch["input_ids"].to(device, non_blocking=True),
            attention_mask=batch["attention_mask"].to(device, non_blocking=True),
            features=feats,
        )
    return answer_loss(out.logits, batch["labels"].to(device, non_blocking=True))


def _seq_lens(batch: dict[str, Any]) -> list[int]:
    return [int(x) for x in batch["attention_mask"].sum(1).tolist()]


def run_fast(wl: Workload, cfg: TrainBenchConfig, device: torch.device, dims: ModelDims) -> PathResult:
    model = wl.system.model
    model.train()
    precision = fast_precision(cfg.precision, device, model.hidden_size)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(_param_groups(model, cfg.lr), fused=device.type == "cuda")
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    stream = iter(_Stream(wl, cfg, cfg.batch_size, cfg.bucket))
    totals = {"samples": 0, "tokens": 0, "flops": 0.0, "data_s": 0.0}
    losses: list[torch.Tensor] = []

    def step(count: bool) -> None:
        for _ in range(cfg.grad_accum):
            with Stopwatch(torch.device("cpu")) as dsw:
                batch = next(stream)
            loss = _step_loss(model, batch, device, precision)
            scaler.scale(loss / cfg.grad_accum).backward()
            if count:
                lens = _seq_lens(batch)
                totals["samples"] += batch["n_samples"]
                totals["tokens"] += sum(lens)
                totals["flops"] += dims.train_flops(lens, _media_tokens(batch))
                totals["data_s"] += dsw.seconds
                losses.append(loss.detach())
        scaler.unscale_(opt)
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)

    for _ in range(cfg.warmup_steps):
        step(False)
    with PeakMemory(device) as mem, Stopwatch(device) as sw:
        for _ in range(cfg.steps):
            step(True)
    return PathResult.timed_by(
        "batched+bucketed " + precision,
        sw,
        totals["samples"],
        tokens=totals["tokens"],
        steps=cfg.steps,
        flops=totals["flops"],
        peak_mem_mib=mem.mib,
        extra={
            "precision": precision,
            "data_seconds": round(totals["data_s"], 4),
            "loss_mean": _finite_mean(losses),
            "mem_reset": mem.reset_ok,
        },
    )


def run_reference(wl: Workload, cfg: TrainBenchConfig, device: torch.device, dims: ModelDims) -> PathResult:
    model = wl.system.model
    model.train()
    precision = cast_frozen(model, reference_dtype(device))  # fp16 LLaMA on a GPU, fp32 on a CPU
    opt = torch.optim.AdamW(_param_groups(model, cfg.lr))
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    stream = iter(_Stream(wl, cfg, 1, bucket=False))
    totals = {"samples": 0, "tokens": 0, "flops": 0.0}
    losses: list[torch.Tensor] = []

    def step(count: bool) -> None:
        batch = next(stream)
        loss = _step_loss(model, batch, device, precision)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        if count:
            lens = _seq_lens(batch)
            totals["samples"] += 1
            totals["tokens"] += sum(lens)
            totals["flops"] += dims.train_flops(lens, _media_tokens(batch))
            losses.append(loss.detach())

    for _ in range(cfg.ref_warmup):
        step(False)
    with PeakMemory(device) as mem, Stopwatch(device) as sw:
        for _ in range(cfg.ref_samples):
            step(True)
    return PathResult.timed_by(
        "batch 1 " + precision,
        sw,
        totals["samples"],
        tokens=totals["tokens"],
        steps=cfg.ref_samples,
        flops=totals["flops"],
        peak_mem_mib=mem.mib,
        extra={"precision": precision, "loss_mean": _finite_mean(losses), "mem_reset": mem.reset_ok},
    )


def _finite_mean(xs: list[torch.Tensor]) -> float | None:
    """Mean of the finite losses (read after timing, so the timed loop never waits for the device)."""
    good = [v for v in (float(x) for x in xs) if math.isfinite(v)]
    return round(sum(good) / len(good), 4) if good else None


def run(cfg: TrainBenchConfig, device: torch.device) -> BenchReport:
    wl = load_workload(cfg.workload, device)
    dims = ModelDims.of(wl.system)
    fast = run_fast(wl, cfg, device, dims)
    ref = run_reference(wl, cfg, device, dims)
    counts = wl.system.model.count_parameters()
    return BenchReport(
        "train",
        cfg.workload.preset,
        device,
        cfg.model_dump(mode="json"),
        fast,
        ref,
        extra={
            "data": wl.data,
            "parameters": counts,
            "flops_formula": "4*N_frozen + 6*N_lora per token + 6*N_proj per media token + 12*layers*d*L per token",
        },
        mem_kind=PeakMemory(device).kind,
        mem_reset=bool(fast.extra.get("mem_reset", True)) and bool(ref.extra.get("mem_reset", True)),
    )
