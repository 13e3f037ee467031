"""``emollm bench generate``: free-text generation throughput, left-padded batches vs one at a time.

    emollm bench generate --preset tiny --max-new-tokens 16       # seconds
    emollm bench generate --preset mini --corpus runs/data/bench_synthmer --task reason
    emollm bench generate --preset emotion-llama-shapes --device cuda --batch-size 32

Fast path: prompts sorted by length into batches of ``batch_size``, left-padded, one
``EmoLLM.generate`` call per batch (greedy, KV cache), as ``Predictor.generate_conversations`` does.
Reference: the same calls with batch 1 (Emotion-LLaMA's evaluation loop). Same model, prompts and
settings. With ``ignore_eos`` (default) every answer runs the full ``max_new_tokens`` (a pure
throughput figure; a random-weight model would otherwise stop at arbitrary points); without it,
answers stop at the end-of-turn token and only real tokens count.

Figures: generated tokens/s (``ratio`` compares these), samples/s, peak memory, MFU on a GPU, and
``agreement``: the fraction of reference samples whose greedy tokens are identical in both paths
(left padding must not change the answer; bf16 rounding can, at near-ties).
"""

from __future__ import annotations

from typing import Any

import torch

from emollm.bench.common import BenchReport, ModelDims, PathResult, PeakMemory, Stopwatch
from emollm.bench.configs import GenerateBenchConfig
from emollm.bench.workload import Workload, load_workload
from emollm.features.featurizer import stack_features
from emollm.inference.engine import Predictor


def _generate_all(
    wl: Workload, pred: Predictor, cfg: GenerateBenchConfig, samples: list[Any], batch_size: int, device: torch.device
) -> tuple[list[list[int]], list[int]]:
    """New token ids per sample (input order, cut after the first stop token) and prompt lengths."""
    system = wl.system
    proc = system.processor
    feats = pred.features(samples, wl.root, None)
    convs = pred.conversations(samples, feats, cfg.task)
    encs = [proc.encode(c, generation=True) for c in convs]
    order = sorted(range(len(encs)), key=lambda i: len(encs[i]))
    gen: dict[str, Any] = {"max_new_tokens": cfg.max_new_tokens}
    if cfg.ignore_eos:
        gen["min_new_tokens"] = cfg.max_new_tokens
    stops = set(system.model.stop_ids)
    out: list[list[int]] = [[] for _ in samples]
    for b in range(0, len(order), batch_size):
        idx = order[b : b + batch_size]
        batch = proc.collate([encs[i] for i in idx], padding_side="left")
        f = {k: v.to(device) for k, v in stack_features([feats[i] for i in idx], system.modalities).items()}
        new = system.model.generate(batch["input_ids"].to(device), batch["attention_mask"].to(device), f, **gen)
        for row, i in enumerate(idx):
            ids = new[row].tolist()
            if not cfg.ignore_eos:
                cut = next((j for j, t in enumerate(ids) if t in stops), None)
                ids = ids if cut is None else ids[: cut + 1]
            out[i] = ids
    return out, [len(e) for e in encs]


def _path(
    name: str,
    wl: Workload,
    pred: Predictor,
    cfg: GenerateBenchConfig,
    samples: list[Any],
    batch_size: int,
    device: torch.device,
    dims: ModelDims,
) -> tuple[PathResult, list[list[int]]]:
    _generate_all(wl, pred, cfg, samples[: min(len(samples), batch_size)], batch_size, device)  # warm-up
    with PeakMemory(device) as mem, Stopwatch(device) as sw:
        ids, lens = _generate_all(wl, pred, cfg, samples, batch_size, device)
    n_new = [len(x) for x in ids]
    flops = dims.forward_flops(lens) + sum(
        dims.decode_flops([n + j for j in range(1, k)]) for n, k in zip(lens, n_new, strict=True)
    )
    res = PathResult.timed_by(
        name,
        sw,
        len(samples),
        tokens=sum(n_new),
        flops=flops,
        peak_mem_mib=mem.mib,
        extra={"prompt_tokens": sum(lens), "mem_reset": mem.reset_ok},
    )
    return res, ids


def run(cfg: GenerateBenchConfig, device: torch.device) -> BenchReport:
    wl = load_workload(cfg.workload, device)
    dims = ModelDims.of(wl.system)
    pred = Predictor(wl.system, wl.featurizer)
    pred.contract.task(cfg.task)  # fails naming the contract's tasks
    wl.system.model.eval()
    with torch.no_grad():
        fast, fast_ids = _path(
            f"batch {cfg.batch_size} left-padded", wl, pred, cfg, wl.samples, cfg.batch_size, device, dims
        )
        ref_samples = wl.samples[: cfg.ref_samples]
        ref, ref_ids = _path("batch 1", wl, pred, cfg, ref_samples, 1, device, dims)
    same = [a == b for a, b in zip(fast_ids[: len(ref_ids)], ref_ids, strict=True)]
    return BenchReport(
        "generate",
        cfg.workload.preset,
        device,
        cfg.model_dump(mode="json"),
        fast,
        ref,
        ratio_on="tokens_per_s",
        extra={
            "data": wl.data,
            "agreement": round(sum(same) / len(same), 4),
            "example": wl.system.processor.decode(fast_ids[0])[:120],
        },
        mem_kind=PeakMemory(device).kind,
        mem_reset=bool(ref.extra.get("mem_reset", True)),
    )
