"""Featurizer: samples -> per-modality encoder features, through the cache, batched.

    fz = Featurizer(system.encoders, FeatureCache("runs/features"), mode="auto")
    out = fz(samples, manifest.root)          # list[SampleFeatures], one per sample
    out[0].features["audio"]                  # Tensor[tokens, dim]
    out[0].missing                            # {"audio": "no audio track"} — modality absent, never zero-filled

Every job (extract, train, eval, predict, chat, serve) gets features here, so a clip is encoded the
same way wherever it is used. Modes: ``auto`` computes what the cache lacks and stores it;
``cache`` requires every feature to be cached already (training from ``emollm extract`` output,
fails fast naming the sample); ``live`` never touches the cache. ``precomputed`` encoders read their
files directly.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from emollm.data.sample import Sample
from emollm.encoders import Encoder
from emollm.encoders.precomputed import PrecomputedEncoder
from emollm.features.cache import FeatureCache
from emollm.media.bundle import MediaBundle
from emollm.media.noise import NoiseSpec

Mode = Literal["auto", "cache", "live"]


@dataclass
class SampleFeatures:
    sample_id: str
    features: dict[str, torch.Tensor] = field(default_factory=dict)
    """modality -> ``[tokens, dim]``."""
    missing: dict[str, str] = field(default_factory=dict)
    """modality -> why it is absent for this sample."""

    @property
    def modalities(self) -> list[str]:
        return list(self.features)


class FeatureError(RuntimeError):
    pass


class Featurizer:
    def __init__(
        self,
        encoders: dict[str, Encoder],
        cache: FeatureCache | None = None,
        mode: Mode = "auto",
        noise: NoiseSpec | None = None,
        batch_size: int = 16,
    ) -> None:
        if mode != "live" and cache is None:
            raise ValueError(f"feature mode {mode!r} needs a cache folder (or use mode 'live')")
        self.encoders = encoders
        self.cache = cache if mode != "live" else None
        self.mode = mode
        self.noise = noise
        self.batch_size = batch_size
        self.counts = {"computed": 0, "cached": 0}

    def with_noise(self, noise: NoiseSpec | None) -> Featurizer:
        return Featurizer(self.encoders, self.cache, self.mode if self.cache else "live", noise, self.batch_size)

    def __call__(
        self,
        samples: Sequence[Sample],
        root: str | os.PathLike[str] | None,
        modalities: Sequence[str] | None = None,
        progress: bool = False,
    ) -> list[SampleFeatures]:
        mods = list(modalities) if modalities is not None else list(self.encoders)
        unknown = [m for m in mods if m not in self.encoders]
        if unknown:
            raise KeyError(f"modalities {unknown} have no encoder; model modalities: {list(self.encoders)}")
        out = [SampleFeatures(s.id) for s in samples]
        pending: dict[str, list[tuple[int, np.ndarray, str | None, str]]] = {m: [] for m in mods}
        for i, s in enumerate(samples):
            try:
                bundle = MediaBundle.from_sample(s, root, noise=self.noise)
            except FileNotFoundError as e:
                raise FeatureError(f"sample {s.id!r}: {e}") from None
            for m in mods:
                enc = self.encoders[m]
                if isinstance(enc, PrecomputedEncoder):
                    out[i].features[m] = torch.from_numpy(enc.load(s.id))
                    continue
                kind = enc.input_kind
                sources = bundle.source_files(kind)
                if not sources:
                    out[i].missing[m] = "no audio track or audio file" if kind == "audio" else "no video or image"
                    continue
                key = None
                variant = bundle.variant(enc.media)
                if self.cache is not None:  # a hit needs no container to be opened
                    key = self.cache.key(enc.identity, variant, sources)
                    hit = self.cache.get(key)
                    if hit is not None:
                        out[i].features[m] = hit
                        self.counts["cached"] += 1
                        continue
                try:
                    available = bundle.available(kind)
                except Exception as e:  # unreadable container
                    raise FeatureError(f"sample {s.id!r}: cannot read media for {m!r}: {e}") from None
                if not available:
                    out[i].missing[m] = "no audio track or audio file" if kind == "audio" else "no video or image"
                    continue
                if self.cache is not None and self.mode == "cache":
                    raise FeatureError(
                        f"sample {s.id!r}: {m!r} features are not in the cache {self.cache.root} "
                        f"(run `emollm extract` first, or set features.mode=auto)"
                    )
                try:
                    data = bundle.get(enc.media)
                except Exception as e:
                    raise FeatureError(f"sample {s.id!r}: decoding {kind} for {m!r} failed: {e}") from None
                pending[m].append((i, data, key, variant))
        for m, items in pending.items():
            enc = self.encoders[m]
            for b in range(0, len(items), self.batch_size):
                chunk = items[b : b + self.batch_size]
                feats = enc.encode([x[1] for x in chunk])
                for (i, _, key, variant), f in zip(chunk, feats, strict=True):
                    out[i].features[m] = f
                    self.counts["computed"] += 1
                    if self.cache is not None and key is not None:
                        self.cache.put(key, f, identity=enc.identity, variant=variant)
        return out


def stack_features(items: Sequence[SampleFeatures], order: Sequence[str]) -> dict[str, torch.Tensor]:
    """Batch features for the model: ``{modality: [n_m, tokens, dim]}`` in sample order (samples
    lacking a modality are skipped for it, matching their missing placeholders)."""
    out: dict[str, torch.Tensor] = {}
    for m in order:
        rows = [it.features[m] for it in items if m in it.features]
        if rows:
            out[m] = torch.stack(rows)
    return out


def cache_dir_default() -> Path:
    return Path("runs") / "features"
