"""What a benchmark runs on: a system (preset, checkpoint or the 7B shapes), samples and their features.

    wl = load_workload(WorkloadConfig(preset="tiny", samples=64), device)
    wl.system, wl.samples, wl.root, wl.featurizer     # featurizer(samples, root, mods) -> SampleFeatures

Data is either a prepared manifest (``corpus=DIR`` or a data recipe; features go through the real
``FeatureCache`` + ``Featurizer``, filled once before timing so timed passes read the cache, as
training does) or ``synthetic``: SynthMER-style subtitles and coarse/fine descriptions drawn from
the SynthMER sentence pools, with random precomputed features of the system's widths held in memory
(``MemoryFeaturizer``). Presets ``tiny``/``tiny-fast``/``emotion-llama-shapes`` default to
synthetic data; ``mini`` defaults to the SynthMER manifest of ``data_recipes/synthmer.yaml``.

``emotion-llama-shapes`` is for GPUs (7B parameters); on a CPU it is refused unless ``allow_slow``
(or the ``shape`` overrides shrink it, as the tests do).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from emollm.bench.configs import SynthTextConfig, WorkloadConfig
from emollm.data.sample import Sample
from emollm.features.featurizer import Featurizer, SampleFeatures

if TYPE_CHECKING:
    from emollm.model.system import EmoSystem

BENCH_PRESETS = ("tiny", "tiny-fast", "mini", "emotion-llama-shapes")
SHAPES = "emotion-llama-shapes"


@dataclass
class Workload:
    system: EmoSystem
    samples: list[Sample]
    root: Path | None
    featurizer: Featurizer
    preset: str
    data: str
    """``synthetic`` or the manifest folder."""


class MemoryFeaturizer(Featurizer):
    """A ``Featurizer`` whose features are already in memory (``sample id -> {modality: [tokens, dim]}``).

    Stands in for a warm feature cache in synthetic workloads: no decoding, no disk reads."""

    def __init__(self, encoders: dict[str, Any], table: dict[str, dict[str, torch.Tensor]]) -> None:
        super().__init__(encoders, None, mode="live")
        self.table = table

    def __call__(
        self,
        samples: Sequence[Sample],
        root: str | os.PathLike[str] | None,
        modalities: Sequence[str] | None = None,
        progress: bool = False,
    ) -> list[SampleFeatures]:
        mods = list(modalities) if modalities is not None else list(self.encoders)
        out = []
        for s in samples:
            feats = self.table.get(s.id)
            if feats is None:
                raise KeyError(f"sample {s.id!r} has no in-memory features")
            out.append(SampleFeatures(s.id, {m: feats[m] for m in mods if m in feats}))
            self.counts["cached"] += 1
        return out


# ---------------------------------------------------------------------------------------------- system


def load_bench_system(cfg: WorkloadConfig, device: torch.device) -> EmoSystem:
    from emollm.bench.shapes import ShapeConfig, build_shapes_system

    if cfg.preset == SHAPES:
        if cfg.overrides:
            raise ValueError(f"--override does not apply to {SHAPES!r}; use --shape")
        shape = ShapeConfig.model_validate(cfg.shape)
        full_size = shape.hidden_size >= 2048 and shape.num_hidden_layers >= 8
        if device.type != "cuda" and full_size and not cfg.allow_slow:
            raise ValueError(
                f"preset {SHAPES!r} has LLaMA-2-7B shapes ({shape.num_hidden_layers} layers x {shape.hidden_size}); "
                f"it is meant for a GPU and would take hours on {device}. Run it on a GPU (--device cuda), shrink it "
                "(--shape num_hidden_layers=2 --shape hidden_size=256 ...), or pass --allow-slow"
            )
        system = build_shapes_system(device, shape)
        if cfg.gradient_checkpointing:
            _enable_gc(system)
        return system
    if cfg.shape:
        raise ValueError(f"--shape applies to preset {SHAPES!r} only, not {cfg.preset!r}")
    from emollm.model.resolve import load_system, resolve_model

    try:
        spec = resolve_model(cfg.preset, "bench preset")
    except KeyError:
        raise KeyError(
            f"unknown bench preset {cfg.preset!r}; expected one of {', '.join(BENCH_PRESETS)} or a checkpoint folder"
        ) from None
    return load_system(spec, device=device, overrides=cfg.overrides, gradient_checkpointing=cfg.gradient_checkpointing)


def _enable_gc(system: EmoSystem) -> None:
    llm = system.model.llm
    llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    llm.config.use_cache = False
    if hasattr(llm, "enable_input_require_grads"):
        llm.enable_input_require_grads()


# ---------------------------------------------------------------------------------------------- data


def synthetic_samples(n: int, labels: Sequence[str], text: SynthTextConfig, seed: int = 0) -> list[Sample]:
    """``n`` samples with SynthMER-pool subtitles and descriptions (no media files)."""
    from emollm.data.synthmer.text import POOLS, sample_sentence

    rng = np.random.default_rng(seed)
    every = [s for kinds in POOLS.values() for ss in kinds.values() for s in ss]

    def words(k: int) -> str:
        out: list[str] = []
        while len(out) < k:
            out += every[int(rng.integers(len(every)))].split()
        return " ".join(out[:k]).rstrip(".,!?") + "."

    samples = []
    for i in range(n):
        lab = labels[i % len(labels)]
        cue = lab if lab in POOLS else "neutral"
        sub = " ".join(sample_sentence(cue, rng)[0] for _ in range(text.subtitle_sentences)) or None
        samples.append(
            Sample(
                id=f"bench_{i:06d}",
                corpus="bench-synthetic",
                split="train",
                subtitle=sub,
                label=lab,
                coarse=words(text.answer_words),
                fine=words(text.answer_words),
            )
        )
    return samples


def load_workload(cfg: WorkloadConfig, device: torch.device) -> Workload:
    corpus = cfg.corpus or ("data_recipes/synthmer.yaml" if cfg.preset == "mini" else "synthetic")
    man = None if corpus == "synthetic" else _open_manifest(cfg, corpus)  # fail fast, before a model loads
    system = load_bench_system(cfg, device)
    wl = _synthetic_workload(cfg, system) if man is None else _manifest_workload(cfg, man, system, device)
    _fit_standardizers(wl)
    return wl


def _synthetic_workload(cfg: WorkloadConfig, system: EmoSystem) -> Workload:
    from emollm.bench.shapes import random_feature_pool

    samples = synthetic_samples(cfg.samples, list(system.labels.labels), cfg.text, cfg.seed)
    pool = random_feature_pool(system, min(16, cfg.samples), cfg.seed)
    table = {s.id: pool[i % len(pool)] for i, s in enumerate(samples)}
    return Workload(system, samples, None, MemoryFeaturizer(system.encoders, table), cfg.preset, "synthetic")


def _open_manifest(cfg: WorkloadConfig, corpus: str) -> Any:
    from emollm.data.manifests import open_manifest

    if cfg.preset == SHAPES:
        raise ValueError(f"preset {SHAPES!r} has no encoders to run on media; use --corpus synthetic")
    try:
        return open_manifest(corpus)
    except FileNotFoundError as e:
        raise FileNotFoundError(
            f"{e} — benchmarks on real media need a prepared manifest, e.g. `emollm prepare synthmer --out "
            f"runs/data/bench_synthmer generate.synthmer.n_train=60 generate.synthmer.n_test=60` then --corpus "
            "runs/data/bench_synthmer (or --corpus synthetic for random features)"
        ) from None


def _manifest_workload(cfg: WorkloadConfig, man: Any, system: EmoSystem, device: torch.device) -> Workload:
    from tqdm import tqdm

    from emollm.features.cache import FeatureCache

    labels = set(system.labels.labels)
    pool = man.split(cfg.split) if cfg.split else man.samples
    samples = [s for s in pool if s.label in labels][: cfg.samples]
    if not samples:
        raise ValueError(f"manifest {man.root}: no samples with a label of {system.labels.name!r} in {cfg.split!r}")
    if device.type == "cuda":
        for e in system.encoders.values():
            e.to(device)
    fz = Featurizer(system.encoders, FeatureCache(cfg.cache_dir), mode="auto")
    for b in tqdm(range(0, len(samples), 16), desc="features (cache fill)", unit="batch", leave=False):
        fz(samples[b : b + 16], man.root, system.modalities)
    return Workload(system, samples, man.root, fz, cfg.preset, str(man.root))


def _fit_standardizers(wl: Workload) -> None:
    """Fit unfitted input standardisers (mini's eGeMAPS/FER projectors) on the workload's features, as
    training would, so random-init projectors see sane inputs."""
    projs = {
        m: p for m, p in wl.system.model.projectors.items() if getattr(p, "standardize", False) and not bool(p.fitted)
    }
    if not projs:
        return
    feats = wl.featurizer(wl.samples[:256], wl.root, list(projs))
    for m, p in projs.items():
        rows = [f.features[m] for f in feats if m in f.features]
        if len(rows) >= 2:
            p.fit_standardizer(torch.stack(rows).to(p.mean.device))
