"""``emollm bench eval``: closed-set evaluation throughput, batched label scoring vs the reference's generation.

    emollm bench eval --preset tiny --ref-max-new-tokens 16     # seconds
    emollm bench eval --preset mini --corpus runs/data/bench_synthmer
    emollm bench eval --preset emotion-llama-shapes --device cuda

Fast path: ``Predictor.classify`` — features (cache / memory), prompts, length-sorted batches of
``batch_size``, one ``EmoLLM.score_labels`` call per batch (the prompt runs once; its KV cache is
shared by every candidate label's continuation) — under bf16 autocast where it pays off
(``--precision``; fp32 keeps ``Predictor``'s own precision). Timed over all samples, ``repeats``
times (median).

Reference (Emotion-LLaMA ``eval_emotion.py``, spec §5.1–5.2; fp16 weights on a GPU, fp32 on a
CPU — the frozen weights are cast after the fast path has run): one sample at a time, greedy
``generate`` with ``max_new_tokens`` (default 500; it stops at the end-of-turn token), the label is
the last whitespace-separated word of the text, and a word that is not exactly a label is a parse
failure (the reference forces those to ``neutral``). Same model, same prompt, same samples.

Also reported: the reference's prefill and per-token times (so its cost at any answer length can be
read off), ``reference_short_answer`` = its samples/s had every answer stopped after
``ref_answer_tokens`` tokens, parse failures (strict, and ``lenient`` = after label normalisation)
and the agreement of the two paths' labels on the reference samples.
"""

from __future__ import annotations

import statistics
from typing import Any

import torch

from emollm.answers import read_label
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
    timed,
)
from emollm.bench.configs import EvalBenchConfig
from emollm.bench.workload import Workload, load_workload
from emollm.features.featurizer import stack_features
from emollm.inference.engine import Predictor


def _prompts(pred: Predictor, wl: Workload) -> tuple[list[Any], list[Any], list[int]]:
    feats = pred.features(wl.samples, wl.root, None)
    convs = pred.conversations(wl.samples, feats, "emotion")
    lens = [len(wl.system.processor.encode(c, generation=True)) for c in convs]
    return feats, convs, lens


def run_fast(
    wl: Workload, cfg: EvalBenchConfig, device: torch.device, dims: ModelDims
) -> tuple[PathResult, list[str], int]:
    """Time ``Predictor.classify`` over every sample; returns the result, the labels and the longest
    candidate's token count."""
    pred = Predictor(wl.system, wl.featurizer, batch_size=cfg.batch_size)
    feats, convs, lens = _prompts(pred, wl)
    cands = pred.candidates(convs[0], list(wl.system.labels.labels))
    lc = max(len(c) for c in cands)
    media = {m: sum(int(f.features[m].shape[0]) for f in feats if m in f.features) for m in wl.system.modalities}
    flops = dims.forward_flops(lens, media)
    flops += len(cands) * sum(dims.decode_flops([n + j for j in range(1, lc)]) for n in lens)
    precision = fast_precision(cfg.precision, device, wl.system.model.hidden_size)
    with autocast(device, precision):
        pred.classify(wl.samples[: cfg.batch_size], wl.root)  # warm-up
        with PeakMemory(device) as mem:
            times, res = timed(lambda: pred.classify(wl.samples, wl.root), device, repeats=cfg.repeats)
    result = PathResult(
        f"score_labels batch {cfg.batch_size} {precision}",
        statistics.median(t.seconds for t in times),
        len(wl.samples),
        tokens=sum(lens),
        flops=flops,
        peak_mem_mib=mem.mib,
        cpu_seconds=statistics.median(t.cpu_seconds for t in times),
        extra={
            "precision": precision,
            "seconds_all_repeats": [round(t.seconds, 4) for t in times],
            "candidates": len(cands),
        },
    )
    return result, [r.label for r in res], lc


class _Reference:
    """Emotion-LLaMA's evaluation step for one sample: prompt -> greedy generate -> decoded text."""

    def __init__(self, wl: Workload, device: torch.device) -> None:
        self.wl = wl
        self.device = device
        self.pred = Predictor(wl.system, wl.featurizer, batch_size=1)

    def __call__(self, sample: Any, max_new_tokens: int) -> tuple[str, int, int]:
        """(text, new tokens, prompt tokens)."""
        system, dev = self.wl.system, self.device
        proc = system.processor
        f = self.pred.features([sample], self.wl.root, None)
        conv = self.pred.conversations([sample], f, "emotion")[0]
        enc = proc.encode(conv, generation=True)
        batch = proc.collate([enc], padding_side="left")
        feats = {k: v.to(dev) for k, v in stack_features(f, system.modalities).items()}
        ids, att = batch["input_ids"].to(dev), batch["attention_mask"].to(dev)
        new = system.model.generate(ids, att, feats, max_new_tokens=max_new_tokens)
        return proc.decode(new[0]), int(new.shape[1]), len(enc)


def run_reference(
    wl: Workload, cfg: EvalBenchConfig, device: torch.device, dims: ModelDims, fast_labels: list[str], lc: int
) -> tuple[PathResult, dict[str, Any]]:
    space = wl.system.labels
    samples = wl.samples[: cfg.ref_samples]
    ref = _Reference(wl, device)
    wl.system.model.eval()
    precision = cast_frozen(wl.system.model, reference_dtype(device))  # fp16 on a GPU, fp32 on a CPU
    ref(samples[0], min(cfg.ref_max_new_tokens, 8))  # warm-up
    texts, n_new, lens, per_sample = [], [], [], []
    with PeakMemory(device) as mem, Stopwatch(device) as sw:
        for s in samples:
            with Stopwatch(device) as one:
                text, k, n = ref(s, cfg.ref_max_new_tokens)
            texts.append(text)
            n_new.append(k)
            lens.append(n)
            per_sample.append(one.seconds)
    # decomposition: prefill (+1 token) per sample, then the mean cost of each further token
    prefill = statistics.median([timed(lambda s=s: ref(s, 1), device)[0][0].seconds for s in samples])
    mean_new = sum(n_new) / len(n_new)
    per_tok = max(0.0, (statistics.mean(per_sample) - prefill) / (mean_new - 1)) if mean_new > 1 else 0.0
    k_short = cfg.ref_answer_tokens or lc
    short_s = prefill + (k_short - 1) * per_tok
    # the one answer reader: published = the reference's last-word rule; lenient = that word normalised
    strict = [read_label(t, space, "published").label for t in texts]
    lenient = [read_label(t.split(" ")[-1], space, "clean").label for t in texts]
    fast = fast_labels[: len(samples)]
    flops = dims.forward_flops(lens) + sum(
        dims.decode_flops([n + j for j in range(1, k)]) for n, k in zip(lens, n_new, strict=True)
    )
    info = {
        "ref_parse_failures": sum(x is None for x in strict),
        "ref_parse_failures_lenient": sum(x is None for x in lenient),
        "agreement": round(sum(a == b for a, b in zip(strict, fast, strict=True)) / len(fast), 4),
        "agreement_lenient": round(sum(a == b for a, b in zip(lenient, fast, strict=True)) / len(fast), 4),
        "ref_new_tokens_mean": round(mean_new, 2),
        "ref_prefill_s": round(prefill, 5),
        "ref_per_token_s": round(per_tok, 6),
        "reference_short_answer": {
            "answer_tokens": k_short,
            "samples_per_s": round(1.0 / short_s, 4) if short_s > 0 else None,
        },
        "ref_examples": [t[-80:] for t in texts[:3]],
    }
    result = PathResult.timed_by(
        f"generate batch 1, max_new_tokens {cfg.ref_max_new_tokens}",
        sw,
        len(samples),
        tokens=sum(lens) + sum(n_new),
        flops=flops,
        peak_mem_mib=mem.mib,
        extra={"new_tokens": sum(n_new), "precision": precision, "mem_reset": mem.reset_ok},
    )
    return result, info


def run(cfg: EvalBenchConfig, device: torch.device) -> BenchReport:
    wl = load_workload(cfg.workload, device)
    dims = ModelDims.of(wl.system)
    with torch.no_grad():
        fast, labels, lc = run_fast(wl, cfg, device, dims)
        ref, info = run_reference(wl, cfg, device, dims, labels, lc)
    short = info["reference_short_answer"]["samples_per_s"]
    fast_sps = fast.samples / max(fast.seconds, 1e-12)
    info["reference_short_answer"]["ratio"] = round(fast_sps / short, 3) if short else None
    return BenchReport(
        "eval",
        cfg.workload.preset,
        device,
        cfg.model_dump(mode="json"),
        fast,
        ref,
        extra={"data": wl.data, **info},
        mem_kind=PeakMemory(device).kind,
        mem_reset=bool(ref.extra.get("mem_reset", True)),
    )
