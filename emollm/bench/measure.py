"""Measuring a benchmark path: wall time with the accelerator synced (``Stopwatch``, ``timed``) and peak
memory (``PeakMemory``: ``torch.cuda.max_memory_allocated`` on a GPU, the RSS high-water mark
``VmHWM`` on a CPU, reset through ``/proc/self/clear_refs`` where Linux allows it).

    with PeakMemory(dev) as mem, Stopwatch(dev) as sw:
        work()
    sw.seconds, mem.mib
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import torch


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
