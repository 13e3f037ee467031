"""Shared benchmark machinery: devices, timing, peak memory, FLOP counts / MFU, and the report.

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

import json
import os
import platform
import resource
import statistics
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any

import torch

from emollm.device import Precision, choose_device, choose_precision, cpu_bf16_kind

if TYPE_CHECKING:
    from emollm.model.system import EmoSystem


PEAK_TFLOPS: tuple[tuple[str, float], ...] = (
    # (substring of torch.cuda.get_device_name, dense bf16 TFLOP/s); first match wins, so specific first
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("GH200", 989.4),
    ("H200", 989.4),
    ("H100", 989.4),
    ("H800", 989.4),
    ("B200", 2250.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("A10G", 70.0),
    ("L4", 121.0),
)
"""Dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets."""


# ---------------------------------------------------------------------------------------------- devices


def resolve_device(spec: str = "auto") -> torch.device:
    """``auto`` -> the current CUDA device when one is visible, else the CPU; or an explicit device."""
    return choose_device(spec)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def peak_tflops_for(name: str) -> float | None:
    """Dense bf16 peak in TFLOP/s of the GPU called ``name`` (``torch.cuda.get_device_name``), or None."""
    for key, tf in PEAK_TFLOPS:
        if key in name:
            return tf
    return None


def peak_tflops(device: torch.device) -> float | None:
    """Dense bf16 peak of ``device`` in TFLOP/s, or None (CPU or a GPU not in ``PEAK_TFLOPS``)."""
    if device.type != "cuda":
        return None
    return peak_tflops_for(torch.cuda.get_device_name(device))


def cpu_bf16_fast() -> bool:
    """Whether this CPU has native bf16 matmul (AVX512-BF16 or AMX), where bf16 autocast pays off."""
    return cpu_bf16_kind() is not None


def machine(device: torch.device) -> dict[str, Any]:
    """A description of where the figures were taken (goes into every JSON line)."""
    info: dict[str, Any] = {
        "device_name": device_name(device),
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load_avg_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:  # pragma: no cover - a hard dependency
        pass
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info["gpu_memory_gib"] = round(props.total_memory / 1024**3, 1)
        info["cuda"] = torch.version.cuda
    return info


def fast_precision(p: Precision, device: torch.device, hidden_size: int) -> str:
    """The fast path's autocast (``emollm.device.choose_precision``): bf16 on a GPU that has it (else
    fp16); on a CPU bf16 only with native bf16 matmul and a hidden size of at least ``CPU_BF16_MIN_HIDDEN``."""
    return choose_precision(p, device, hidden_size, gpu_fallback="fp16")


def autocast(device: torch.device, precision: str) -> AbstractContextManager[Any]:
    if precision == "fp32":
        return nullcontext()
    dt = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dt)


def reference_dtype(device: torch.device) -> torch.dtype:
    """What the reference computes in: fp16 weights on a GPU (Emotion-LLaMA loads LLaMA in fp16), fp32 on a CPU."""
    return torch.float16 if device.type == "cuda" else torch.float32


def cast_frozen(model: torch.nn.Module, dtype: torch.dtype) -> str:
    """Cast the frozen floating-point weights of ``model`` to ``dtype`` in place (trainable weights keep
    their fp32 master copy, as under AMP); returns the dtype's short name."""
    for p in model.parameters():
        if not p.requires_grad and p.is_floating_point() and p.dtype != dtype:
            p.data = p.data.to(dtype)
    return dtype_name(dtype)


def dtype_name(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, str(dtype))


# ---------------------------------------------------------------------------------------------- timing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """Wall-clock seconds of a block, synchronising the device on entry and exit; also the CPU seconds
    this process used (``cpu_seconds``: on a CPU shared with other jobs, the figure they disturb least)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self._t0 = 0.0
        self._c0 = 0.0

    def __enter__(self) -> Stopwatch:
        sync(self.device)
        self._t0 = time.perf_counter()
        self._c0 = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        sync(self.device)
        self.seconds = time.perf_counter() - self._t0
        self.cpu_seconds = time.process_time() - self._c0


def timed(
    fn: Callable[[], Any], device: torch.device, repeats: int = 1, warmup: int = 0
) -> tuple[list[Stopwatch], Any]:
    """Run ``fn`` ``warmup`` times untimed, then ``repeats`` times timed; returns (one Stopwatch per run, last result)."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(max(1, repeats)):
        with Stopwatch(device) as sw:
            out = fn()
        times.append(sw)
    return times, out


def median(xs: Sequence[float]) -> float:
    return float(statistics.median(xs)) if xs else float("nan")


# ---------------------------------------------------------------------------------------------- memory


def _reset_rss_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


class PeakMemory:
    """Peak memory of a block in MiB: CUDA max allocated on a GPU, the RSS high-water mark on a CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.mib = 0.0
        self.reset_ok = True

    @property
    def kind(self) -> str:
        return "cuda_max_memory_allocated" if self.device.type == "cuda" else "rss_high_water"

    def __enter__(self) -> PeakMemory:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self.reset_ok = _reset_rss_peak()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
            self.mib = torch.cuda.max_memory_allocated(self.device) / 2**20
        else:
            self.mib = _rss_high_water_mib()


def _rss_high_water_mib() -> float:
    """The process's RSS high-water mark in MiB.

    ``VmHWM`` in ``/proc/self/status`` is the counter that ``clear_refs`` resets. ``getrusage``'s
    ``ru_maxrss`` also takes the maximum with a per-process value (the signal struct's ``maxrss``)
    that ``clear_refs`` does not reset, so it is only the fallback.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# ---------------------------------------------------------------------------------------------- FLOPs


@dataclass(frozen=True)
class ModelDims:
    """What the FLOP formulas need from a system (see the module docstring)."""

    n_layers: int
    d_model: int
    n_dense: int
    """LLM matmul weights incl. LM head (tied or not) and LoRA adapters, excluding the input embedding lookup."""
    n_lora: int
    n_proj: dict[str, int] = field(default_factory=dict)
    """Projector weights per modality."""

    @property
    def n_frozen(self) -> int:
        return self.n_dense - self.n_lora

    @classmethod
    def of(cls, system: EmoSystem) -> ModelDims:
        model = system.model
        llm = model.llm
        cfg = getattr(llm, "config", None)
        emb = llm.get_input_embeddings().weight
        n_llm = sum(p.numel() for p in llm.parameters())
        n_lora = sum(p.numel() for n, p in llm.named_parameters() if "lora_" in n)
        n_proj = {m: sum(p.numel() for p in proj.parameters()) for m, proj in model.projectors.items()}
        out_emb = llm.get_output_embeddings()
        tied = out_emb is not None and out_emb.weight is emb  # a tied LM head is still a matmul
        return cls(
            n_layers=int(getattr(cfg, "num_hidden_layers", 0) or 0),
            d_model=int(emb.shape[1]),
            n_dense=n_llm - (0 if tied else emb.numel()),
            n_lora=n_lora,
            n_proj=n_proj,
        )

    def _proj(self, media_tokens: dict[str, int]) -> int:
        return sum(self.n_proj.get(m, 0) * t for m, t in media_tokens.items())

    def forward_flops(self, seq_lens: Sequence[int], media_tokens: dict[str, int] | None = None) -> float:
        """Forward FLOPs for sequences of these real lengths (each attending to itself)."""
        dense = sum(2 * self.n_dense * n + 4 * self.n_layers * self.d_model * n * n for n in seq_lens)
        return float(dense + 2 * self._proj(media_tokens or {}))

    def decode_flops(self, context_lens: Sequence[int]) -> float:
        """Forward FLOPs of single new tokens generated after contexts of these lengths."""
        return float(sum(2 * self.n_dense + 4 * self.n_layers * self.d_model * c for c in context_lens))

    def train_flops(self, seq_lens: Sequence[int], media_tokens: dict[str, int] | None = None) -> float:
        """Forward + backward FLOPs of one training pass over sequences of these real lengths."""
        per_tok = 4 * self.n_frozen + 6 * self.n_lora
        dense = sum(per_tok * n + 12 * self.n_layers * self.d_model * n * n for n in seq_lens)
        return float(dense + 6 * self._proj(media_tokens or {}))


# ---------------------------------------------------------------------------------------------- results


@dataclass
class PathResult:
    """One measured path (fast or reference)."""

    name: str
    seconds: float
    samples: int
    tokens: int = 0
    steps: int = 0
    flops: float = 0.0
    peak_mem_mib: float = 0.0
    cpu_seconds: float | None = None
    """CPU seconds of this process during ``seconds`` (host threads only)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def timed_by(cls, name: str, sw: Stopwatch, samples: int, **kw: Any) -> PathResult:
        return cls(name, sw.seconds, samples, cpu_seconds=sw.cpu_seconds, **kw)

    def figures(self, gpu: bool, peak: float | None) -> dict[str, Any]:
        """Derived figures; ``mfu`` is None off a GPU and 'unknown' for a GPU whose ``peak`` TFLOP/s is unknown."""
        s = max(self.seconds, 1e-12)
        tflops = self.flops / s / 1e12 if self.flops else None
        mfu: float | str | None
        if not gpu:
            mfu = None
        elif peak is None or tflops is None:
            mfu = "unknown"
        else:
            mfu = round(tflops / peak, 4)
        out: dict[str, Any] = {
            "path": self.name,
            "samples_per_s": round(self.samples / s, 4),
            "tokens_per_s": round(self.tokens / s, 2),
            "seconds": round(self.seconds, 4),
            "samples": self.samples,
            "tokens": self.tokens,
            "peak_mem_mib": round(self.peak_mem_mib, 1),
            "tflops": None if tflops is None else _sig(tflops),
            "mfu": mfu,
        }
        if self.cpu_seconds is not None:
            out["cpu_seconds"] = round(self.cpu_seconds, 4)
            out["samples_per_cpu_s"] = round(self.samples / max(self.cpu_seconds, 1e-12), 4)
            out["tokens_per_cpu_s"] = round(self.tokens / max(self.cpu_seconds, 1e-12), 2)
        if self.steps:
            out["steps"] = self.steps
            out["steps_per_s"] = round(self.steps / s, 4)
        out.update(self.extra)
        return out


@dataclass
class BenchReport:
    bench: str
    preset: str
    device: torch.device
    settings: dict[str, Any]
    fast: PathResult
    reference: PathResult
    ratio_on: str = "samples_per_s"
    """Which figure ``ratio`` compares (fast over reference)."""
    extra: dict[str, Any] = field(default_factory=dict)
    mem_kind: str = ""
    mem_reset: bool = True

    def as_dict(self) -> dict[str, Any]:
        gpu, peak = self.device.type == "cuda", peak_tflops(self.device)
        fast = self.fast.figures(gpu, peak)
        ref = self.reference.figures(gpu, peak)
        r = ref.get(self.ratio_on) or 0.0
        ratio = round(fast[self.ratio_on] / r, 3) if r else None
        cpu_key = self.ratio_on.replace("_per_s", "_per_cpu_s")
        rc = ref.get(cpu_key) or 0.0
        ratio_cpu = round(fast[cpu_key] / rc, 3) if rc and cpu_key in fast else None
        return {
            "bench": self.bench,
            "preset": self.preset,
            "device": str(self.device),
            "device_name": device_name(self.device),
            "ratio": ratio,
            "ratio_on": self.ratio_on,
            "ratio_cpu_time": ratio_cpu,
            "fast": fast,
            "reference": ref,
            **self.extra,
            "peak_mem_kind": self.mem_kind,
            "peak_mem_reset": self.mem_reset,
            "peak_tflops": peak,
            "settings": self.settings,
            "machine": machine(self.device),
        }

    def json_line(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=False, default=str)

    def print(self, console: Any) -> None:
        """A rich table of the headline figures (the JSON line has everything)."""
        from rich.table import Table

        d = self.as_dict()
        t = Table(title=f"emollm bench {self.bench} — preset {self.preset} on {d['device_name']} ({self.device})")
        t.add_column("figure")
        t.add_column(f"fast ({self.fast.name})", justify="right")
        t.add_column(f"reference ({self.reference.name})", justify="right")
        keys = ["samples_per_s", "tokens_per_s", "steps_per_s", "seconds", "cpu_seconds", "samples", "peak_mem_mib"]
        keys += ["tflops", "mfu"]
        for k in keys:
            if k in d["fast"] or k in d["reference"]:
                t.add_row(k, _fmt(d["fast"].get(k)), _fmt(d["reference"].get(k)))
        console.print(t)
        console.print(f"ratio (fast / reference, {self.ratio_on}): [bold]{_fmt(d['ratio'])}x[/bold]")
        if d["ratio_cpu_time"] is not None and self.device.type == "cpu":
            console.print(f"ratio per CPU second of this process: {_fmt(d['ratio_cpu_time'])}x")
        for k, v in self.extra.items():
            if not isinstance(v, dict | list):
                console.print(f"{k}: {_fmt(v)}")


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits}g}")


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if v == "unknown":
        return "unknown"
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    return str(v)
