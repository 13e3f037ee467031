"""Shared benchmark machinery, one module per concern and every name importable from here: ``device``
(devices, precision, peaks), ``measure`` (timing, peak memory), ``flops`` (FLOP counts / MFU) and
``report`` (per-path results and the report).

    dev = resolve_device("auto")                      # cuda if visible, else cpu
    with PeakMemory(dev) as mem, Stopwatch(dev) as sw:
        work()
    res = PathResult("fast", seconds=sw.seconds, samples=64, tokens=19_200, flops=1.2e15, peak_mem_mib=mem.mib)
    report = BenchReport("train", "tiny", dev, settings, fast=res, reference=ref, extra={...})
    report.print(console)                             # a table for people
    print(report.json_line())                         # ONE JSON line with every figure (last line of stdout)

Timing syncs the accelerator before reading the clock. Peak memory is
``torch.cuda.max_memory_allocated`` on a GPU (reset before each path) and the process RSS high-water
mark (``VmHWM`` in ``/proc/self/status``) on a CPU (reset through ``/proc/self/clear_refs`` where
Linux allows it, so the reference path does not inherit the fast path's peak; ``peak_mem_reset`` says whether it did).

FLOPs (``ModelDims``) follow the PaLM appendix-B convention, with LoRA's frozen base made explicit.
Per real (non-padding) token of a sequence of length ``L``::

    forward   = 2·N_dense + 2·N_proj_m(media tokens only) + 4·n_layers·d·L
    training  = 4·N_frozen + 6·N_lora + 6·N_proj_m(media tokens only) + 12·n_layers·d·L

``N_dense`` counts the LLM's matmul weights (every linear layer incl. the LM head and the LoRA
adapters, not the input embedding table); ``N_frozen = N_dense − N_lora``. Frozen weights cost a
forward (2) plus the backward for activation gradients (2) because the projectors sit under the
first layer, so gradients flow through every layer; only trainable weights add the weight-gradient
matmul (6 = 2 + 2 + 2). Gradient-checkpointing recomputation is not counted (MFU, not HFU).
MFU = FLOPs / seconds / the device's dense bf16 peak (``PEAK_TFLOPS``; fp16 peaks are the same on
these parts); 'unknown' for devices not in the table, ``null`` on a CPU.
"""

from __future__ import annotations

from emollm.bench.device import (
    PEAK_TFLOPS,
    autocast,
    cast_frozen,
    cpu_bf16_fast,
    cpu_name,
    device_name,
    dtype_name,
    fast_precision,
    machine,
    peak_tflops,
    peak_tflops_for,
    reference_dtype,
    resolve_device,
)
from emollm.bench.flops import ModelDims
from emollm.bench.measure import PeakMemory, Stopwatch, median, sync, timed
from emollm.bench.report import BenchReport, PathResult
from emollm.device import Precision

__all__ = [
    "BenchReport",
    "ModelDims",
    "PEAK_TFLOPS",
    "PathResult",
    "PeakMemory",
    "Precision",
    "Stopwatch",
    "autocast",
    "cast_frozen",
    "cpu_bf16_fast",
    "cpu_name",
    "device_name",
    "dtype_name",
    "fast_precision",
    "machine",
    "median",
    "peak_tflops",
    "peak_tflops_for",
    "reference_dtype",
    "resolve_device",
    "sync",
    "timed",
]
