"""``emollm bench extract``: feature throughput with and without the cache, on a prepared manifest.

    emollm bench extract --preset tiny-fast --corpus runs/data/bench_synthmer
    emollm bench extract --preset mini --corpus runs/data/bench_synthmer --change face.n_frames=8

Three passes of ``FeatureCache`` + ``Featurizer`` (mode ``auto``) over the same samples, into a fresh
cache folder (removed afterwards unless ``keep_cache``):

1. cold: every feature is decoded and encoded, then written (the reference: no cache, as
   Emotion-LLaMA runs EVA ViT-g on every step);
2. warm: every feature is a cache hit (the fast path);
3. changed: one encoder option changes (``--change modality.option=value``; by default a harmless
   option of the first modality whose encoder has one), so that modality's identity changes and it
   is recomputed while the others stay hits.

``ratio`` = warm samples/s over cold samples/s. Each pass reports hits, misses and writes.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml

from emollm.bench.common import BenchReport, PathResult, PeakMemory, Stopwatch
from emollm.bench.configs import ExtractBenchConfig

DEFAULT_CHANGES: dict[str, tuple[str, Any]] = {
    # encoder name -> (option, new value or a function of the current options)
    "hubert": ("layer", lambda o: -2 if o.get("layer", -1) == -1 else -1),
    "vit_mae": ("n_frames", lambda o: int(o.get("n_frames", 8)) + 1),
    "fer2013": ("n_frames", lambda o: int(o.get("n_frames", 4)) + 1),
    "egemaps": ("min_seconds", lambda o: 0.25 if o.get("min_seconds", 0.5) != 0.25 else 0.5),
    "videomae": ("selection", lambda o: "uniform" if o.get("selection") != "uniform" else "segments"),
    "eva_vit_g": ("selection", lambda o: "middle" if o.get("selection") != "middle" else "first"),
}


def _parse_change(spec: str, cfg: Any) -> tuple[str, str, Any]:
    key, sep, raw = spec.partition("=")
    mod, dot, opt = key.partition(".")
    if not sep or not dot or not opt:
        raise ValueError(f"--change {spec!r}: expected modality.option=value (e.g. audio.layer=-2)")
    if mod not in cfg.modalities:
        raise KeyError(f"--change {spec!r}: {mod!r} is not a modality of this model: {list(cfg.modalities)}")
    return mod, opt, yaml.safe_load(raw)


def _default_change(cfg: Any) -> tuple[str, str, Any]:
    for m, mc in cfg.modalities.items():
        rule = DEFAULT_CHANGES.get(mc.encoder.name)
        if rule is not None:
            opt, fn = rule
            return m, opt, fn(mc.encoder.options)
    raise ValueError(f"no default option change for encoders {[mc.encoder.name for mc in cfg.modalities.values()]}")


def _pass(
    name: str, fz: Any, samples: list[Any], root: Path, mods: list[str], batch: int, device: torch.device
) -> PathResult:
    from tqdm import tqdm

    cache = fz.cache
    before = dict(cache.stats)
    tokens = 0
    with PeakMemory(device) as mem, Stopwatch(device) as sw:
        for b in tqdm(range(0, len(samples), batch), desc=f"extract ({name})", unit="batch", leave=False):
            for sf in fz(samples[b : b + batch], root, mods):
                tokens += sum(int(t.shape[0]) for t in sf.features.values())
    stats = {k: cache.stats[k] - before.get(k, 0) for k in cache.stats}
    return PathResult.timed_by(
        name, sw, len(samples), tokens=tokens, peak_mem_mib=mem.mib, extra={"cache": stats, "mem_reset": mem.reset_ok}
    )


def run(cfg: ExtractBenchConfig, device: torch.device) -> BenchReport:
    from emollm.data.manifests import open_manifest
    from emollm.encoders import build_encoder
    from emollm.features.cache import FeatureCache
    from emollm.features.featurizer import Featurizer
    from emollm.model.resolve import model_config_for

    if cfg.preset == "emotion-llama-shapes":
        raise ValueError(
            "preset 'emotion-llama-shapes' has no media encoders (random precomputed features); "
            "bench extract needs a preset with encoders: tiny, tiny-fast or mini"
        )
    mcfg = model_config_for(cfg.preset)
    man = open_manifest(cfg.corpus)
    samples = (man.split(cfg.split) if cfg.split else man.samples)[: cfg.samples]
    mods = list(mcfg.modalities)
    mod, opt, value = _parse_change(cfg.change, mcfg) if cfg.change else _default_change(mcfg)
    encoders = {m: build_encoder(mc.encoder) for m, mc in mcfg.modalities.items()}
    changed_cfg = mcfg.modalities[mod].encoder.model_copy(
        update={"options": {**mcfg.modalities[mod].encoder.options, opt: value}}
    )
    changed_cfg = type(changed_cfg).model_validate(changed_cfg.model_dump())  # validate the new option
    changed = {**encoders, mod: build_encoder(changed_cfg)}
    if device.type == "cuda":
        for e in [*encoders.values(), changed[mod]]:
            e.to(device)
    parent = Path(cfg.cache_dir) if cfg.cache_dir else None
    if parent is not None:
        parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="bench-extract-", dir=parent))
    try:
        cache = FeatureCache(folder)
        passes = [("cold (computed)", encoders), ("warm (cache hits)", encoders)]
        passes.append((f"changed {mod}.{opt}={value}", changed))
        cold, warm, third = (
            _pass(name, Featurizer(encs, cache, "auto", batch_size=cfg.batch_size), samples, man.root, mods,
                  cfg.batch_size, device)
            for name, encs in passes
        )  # fmt: skip
    finally:
        if not cfg.keep_cache:
            shutil.rmtree(folder, ignore_errors=True)
    return BenchReport(
        "extract",
        cfg.preset,
        device,
        cfg.model_dump(mode="json"),
        warm,
        cold,
        extra={
            "data": str(man.root),
            "changed": {**third.figures(device.type == "cuda", None), "modality": mod, "option": opt, "value": value},
            "encoders": {m: e.name for m, e in encoders.items()},
            "cache_folder": str(folder) if cfg.keep_cache else None,
        },
        mem_kind=PeakMemory(device).kind,
        mem_reset=cold.extra.get("mem_reset", True),
    )
