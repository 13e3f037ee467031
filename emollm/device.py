"""Where and in what precision a job computes: the one device chooser and the one precision chooser.

    dev = choose_device("auto")                     # the current CUDA device when one is visible, else the CPU
    dev = choose_device("cuda:1")                   # explicit, validated (clear error without CUDA)
    p = choose_precision("auto", dev, hidden_size=576)   # "bf16" | "fp16" | "fp32"
    dtype = choose_dtype("auto", dev)               # torch.bfloat16 where it is fast, else torch.float32

Training, eval, chat, predict, serve, the judge, bench and ``emollm doctor`` all decide here, so
"auto" means the same thing everywhere:

- a GPU computes in bf16 when it supports it;
- a CPU computes in bf16 only with native bf16 matmul (AMX or AVX512-BF16; emulated bf16 is slower
  than fp32) and, for autocast, matrices wide enough to amortise the casts (``CPU_BF16_MIN_HIDDEN``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # torch is imported by the functions that need it: importing this module stays light
    import torch

Precision = Literal["auto", "bf16", "fp16", "fp32"]
Resolved = Literal["bf16", "fp16", "fp32"]

CPU_BF16_MIN_HIDDEN = 512
"""On a CPU, bf16 autocast pays off only for matrices big enough to amortise the casts (measured:
SmolLM2-135M, hidden 576, trains 1.3x faster in bf16 with AMX; the 64-wide tiny model 2x slower)."""

DTYPE_NAMES = ("float32", "bfloat16", "float16")


def choose_device(
    spec: str | torch.device | None = "auto", index: int | None = None, what: str = "--device"
) -> torch.device:
    """``auto``/None -> CUDA when visible (device ``index``, default the current one), else the CPU; an
    explicit ``cpu``, ``cuda`` or ``cuda:N`` is validated. ``what`` names the option in errors."""
    import torch

    if spec is None or str(spec) == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return torch.device("cuda", torch.cuda.current_device() if index is None else index)
    try:
        dev = torch.device(spec)
    except RuntimeError:
        raise ValueError(f"{what} {spec!r}: expected auto, cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"{what} {spec!r}: expected auto, cpu, cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{what} {spec}: no CUDA device is visible on this machine (use {what} cpu)")
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device() if index is None else index)
    return dev


def cpu_bf16_kind() -> Literal["amx", "avx512_bf16"] | None:
    """The CPU's native bf16 matmul (AMX, AVX512-BF16) or None (emulated: slower than fp32).

    Asks torch's own probes first (what its kernels use), then the kernel's CPU flags."""
    import torch

    cpu = getattr(torch, "cpu", None)
    asked = False
    for probe, kind in (("_is_amx_tile_supported", "amx"), ("_is_avx512_bf16_supported", "avx512_bf16")):
        fn = getattr(cpu, probe, None)
        if fn is not None:
            try:
                found = bool(fn())
            except Exception:  # private probes: any failure means "ask the flags"
                continue
            asked = True
            if found:
                return kind  # type: ignore[return-value]
    if asked:
        return None
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    if "amx_bf16" in flags:
        return "amx"
    if "avx512_bf16" in flags:
        return "avx512_bf16"
    return None


def bf16_fast(device: torch.device | str | None = None) -> bool:
    """Whether bf16 is native on ``device`` (None: the device ``auto`` picks)."""
    import torch

    dev = choose_device(device) if device is None or str(device) == "auto" else torch.device(device)
    if dev.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return cpu_bf16_kind() is not None


def choose_precision(
    precision: Precision | str,
    device: torch.device | str,
    hidden_size: int | None = None,
    gpu_fallback: Resolved = "fp16",
) -> Resolved:
    """Resolve an autocast precision. Explicit values are returned as they are; ``auto`` is bf16 on a GPU
    that has it (else ``gpu_fallback``), and on a CPU bf16 only with native bf16 matmul and (when
    ``hidden_size`` is given) matrices at least ``CPU_BF16_MIN_HIDDEN`` wide, else fp32."""
    import torch

    if precision != "auto":
        if precision not in ("bf16", "fp16", "fp32"):
            raise ValueError(f"precision {precision!r}: expected auto, bf16, fp16 or fp32")
        return precision  # type: ignore[return-value]
    dev = torch.device(device)
    if dev.type == "cuda":
        return "bf16" if bf16_fast(dev) else gpu_fallback
    wide = hidden_size is None or hidden_size >= CPU_BF16_MIN_HIDDEN
    return "bf16" if cpu_bf16_kind() is not None and wide else "fp32"


def choose_dtype(name: str, device: torch.device | str | None = None) -> torch.dtype:
    """Weights dtype of a model config (``auto``: bfloat16 where bf16 is native, else float32)."""
    import torch

    if name == "auto":
        return torch.bfloat16 if bf16_fast(device) else torch.float32
    if name not in DTYPE_NAMES:
        raise ValueError(f"dtype {name!r}: expected auto, {', '.join(DTYPE_NAMES)}")
    return getattr(torch, name)
