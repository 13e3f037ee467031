"""Where a benchmark runs and in what precision: the device (``emollm.device.choose_device``), its name
and dense bf16 peak (``PEAK_TFLOPS``, for MFU), the machine description in every JSON line, and the
fast path's autocast versus the reference's fp16 / fp32 weights.

    dev = resolve_device("auto")
    precision = fast_precision("auto", dev, hidden_size=576)      # bf16 | fp16 | fp32
    with autocast(dev, precision): ...
"""

from __future__ import annotations

import os
import platform
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from emollm.device import Precision, choose_device, choose_precision, cpu_bf16_kind

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
