"""The one device and precision chooser (emollm/device.py): what "auto" resolves to, clear errors,
and no second chooser elsewhere in the package.

Run: ``python -m pytest -q tests/core/test_device.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import emollm
from emollm.device import (
    CPU_BF16_MIN_HIDDEN,
    bf16_fast,
    choose_device,
    choose_dtype,
    choose_precision,
    cpu_bf16_kind,
)


def test_choose_device_auto_and_explicit() -> None:
    auto = choose_device("auto")
    assert auto.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert choose_device(None) == auto
    assert choose_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"--device 'tpu': expected auto, cpu, cuda or cuda:N"):
        choose_device("tpu")
    with pytest.raises(ValueError, match=r"--device 'mps': expected auto, cpu, cuda or cuda:N"):
        choose_device("mps")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no CUDA device is visible on this machine"):
        choose_device("cuda:0", what="--device")


def test_choose_precision_on_cpu() -> None:
    cpu = torch.device("cpu")
    for p in ("bf16", "fp16", "fp32"):
        assert choose_precision(p, cpu, 64) == p  # explicit values are kept
    native = cpu_bf16_kind() is not None
    assert bf16_fast("cpu") is native
    assert choose_precision("auto", cpu, 64) == "fp32"  # tiny matrices: the casts cost more than bf16 saves
    assert choose_precision("auto", cpu, CPU_BF16_MIN_HIDDEN) == ("bf16" if native else "fp32")
    assert choose_precision("auto", cpu) == ("bf16" if native else "fp32")  # no width given: native bf16 decides
    with pytest.raises(ValueError, match="precision 'half'"):
        choose_precision("half", cpu)


def test_choose_dtype() -> None:
    assert choose_dtype("float32") is torch.float32
    assert choose_dtype("bfloat16") is torch.bfloat16
    assert choose_dtype("auto", "cpu") is (torch.bfloat16 if cpu_bf16_kind() else torch.float32)
    with pytest.raises(ValueError, match="dtype 'fp8'"):
        choose_dtype("fp8")


def test_no_second_chooser_in_the_package() -> None:
    """bf16 support and CPU flags are probed in device.py only, so "auto" means one thing everywhere."""
    root = Path(emollm.__file__).parent
    probes = ("is_bf16_supported", "avx512_bf16", "amx_bf16", "_is_amx_tile_supported")
    offenders = [
        f"{p.relative_to(root)}: {probe}"
        for p in sorted(root.rglob("*.py"))
        if p.name != "device.py"
        for probe in probes
        if probe in p.read_text(encoding="utf-8")
    ]
    assert not offenders, f"device/precision probed outside emollm/device.py: {offenders}"
