"""Extract a corpus's encoder features into the cache (what ``emollm extract`` and the demo run).

    stats = extract_corpus(manifest, model_cfg, cache_dir="runs/features", modalities=["audio", "face"])
    stats.samples_per_s, stats.cache["hits"], stats.absent   # {"audio": 0, ...}

Batched, with a progress bar; resumable (cached entries are hits); ``shard=(i, n)`` takes every n-th
sample starting at i so n processes cover the corpus.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emollm.config import ModelConfig
from emollm.data.sample import Manifest
from emollm.encoders import Encoder, build_encoder
from emollm.features.cache import FeatureCache
from emollm.features.featurizer import Featurizer
from emollm.media.noise import NoiseSpec


@dataclass
class ExtractStats:
    n_samples: int
    seconds: float
    cache: dict[str, int]
    absent: dict[str, int] = field(default_factory=dict)
    encoders: dict[str, Encoder] = field(default_factory=dict)

    @property
    def samples_per_s(self) -> float:
        return self.n_samples / max(self.seconds, 1e-9)


def resolve_modalities(cfg: ModelConfig, names: list[str] | None) -> list[str]:
    """Modality names from modality or encoder names (``audio`` or ``egemaps``); all when empty."""
    if not names:
        return list(cfg.modalities)
    by_encoder = {mc.encoder.name: m for m, mc in cfg.modalities.items()}
    mods = [by_encoder.get(n, n) for n in names]
    bad = [m for m in mods if m not in cfg.modalities]
    if bad:
        raise KeyError(f"{bad} are not modalities or encoders of this model: {list(cfg.modalities)}")
    return mods


def extract_corpus(
    manifest: Manifest,
    cfg: ModelConfig,
    cache_dir: str | Path = "runs/features",
    modalities: list[str] | None = None,
    split: str | None = None,
    batch_size: int = 16,
    shard: tuple[int, int] = (0, 1),
    noise: NoiseSpec | None = None,
    progress: bool = True,
    encoders: dict[str, Encoder] | None = None,
) -> ExtractStats:
    mods = resolve_modalities(cfg, modalities)
    samples = manifest.split(split) if split else manifest.samples
    i, n = shard
    samples = samples[i::n]
    built = encoders or {m: build_encoder(cfg.modalities[m].encoder) for m in mods}
    cache = FeatureCache(cache_dir)
    fz = Featurizer({m: built[m] for m in mods}, cache, mode="auto", noise=noise, batch_size=batch_size)
    absent: dict[str, int] = {}
    chunk = max(batch_size, 16)
    it: Any = range(0, len(samples), chunk)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"extract {manifest.root.name}", unit="batch", total=(len(samples) + chunk - 1) // chunk)
    t0 = time.perf_counter()
    for b in it:
        for sf in fz(samples[b : b + chunk], manifest.root, mods):
            for m in sf.missing:
                absent[m] = absent.get(m, 0) + 1
    return ExtractStats(len(samples), time.perf_counter() - t0, dict(cache.stats), absent, built)
