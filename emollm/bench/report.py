"""What a benchmark reports: one ``PathResult`` per path (fast, reference) and the ``BenchReport`` that
prints a table for people and ONE JSON line with every figure.

    report = BenchReport("train", "tiny", dev, settings, fast=res, reference=ref, extra={...})
    report.print(console)
    print(report.json_line())
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import torch

from emollm.bench.device import device_name, machine, peak_tflops
from emollm.bench.measure import Stopwatch


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
