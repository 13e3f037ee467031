"""``egemaps``: openSMILE eGeMAPSv02 acoustic features (the ``opensmile`` package; no weights, no network).

Config::

    encoder: {name: egemaps, options: {level: functionals}}                  # [B, 1, 88]
    encoder: {name: egemaps, options: {level: segments, tokens: 4, std: true}}  # [B, 4, 50]

- ``functionals``: the 88 eGeMAPSv02 utterance statistics (F0 semitone mean/percentiles/slopes,
  loudness, jitter, shimmer, HNR, formants, spectral slopes, MFCC 1-4, voiced/unvoiced segment
  rates...) as one token.
- ``segments``: the 25 low-level descriptors (10 ms hop) split into ``tokens`` equal time segments;
  each token is the segment mean (and, with ``std: true``, the standard deviation: 50-d).

Input: mono float32 waveform at 16 kHz (``MediaRequest("audio")``). Robustness: audio shorter than
``min_seconds`` is zero-padded at the end to that length (openSMILE returns only NaN for clips under
about 0.1 s); openSMILE's remaining NaN/inf values (e.g. F0 statistics of silent or unvoiced audio)
are replaced by 0. Projectors should standardise these features (``projector.standardize: true``):
their dimensions differ in scale by orders of magnitude. The identity holds the opensmile version, the
feature set and level and every option.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import torch

from emollm.config import EgemapsOptions, EncoderConfig
from emollm.encoders.base import Encoder, MediaRequest, register_encoder

SAMPLE_RATE = 16000
FEATURE_SET = "eGeMAPSv02"


@lru_cache(maxsize=2)
def _smile(level: str) -> Any:
    import opensmile

    fl = opensmile.FeatureLevel.Functionals if level == "functionals" else opensmile.FeatureLevel.LowLevelDescriptors
    return opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02, feature_level=fl)


def feature_names(level: str = "functionals") -> list[str]:
    """openSMILE's names for the 88 functionals or the 25 low-level descriptors."""
    return list(_smile(level).feature_names)


def _process(level: str, wave: np.ndarray, min_samples: int) -> np.ndarray:
    x = np.asarray(wave, dtype=np.float32).reshape(-1)
    if len(x) < min_samples:
        x = np.pad(x, (0, min_samples - len(x)))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Segment too short")
        df = _smile(level).process_signal(x, SAMPLE_RATE)
    return np.nan_to_num(df.to_numpy(dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)


def functionals(wave: np.ndarray, min_seconds: float = 0.5) -> np.ndarray:
    """eGeMAPSv02 functionals of a 16 kHz mono waveform, ``float32[88]`` (NaN/inf -> 0)."""
    return _process("functionals", wave, int(min_seconds * SAMPLE_RATE))[0]


def low_level_descriptors(wave: np.ndarray, min_seconds: float = 0.5) -> np.ndarray:
    """eGeMAPSv02 LLDs of a 16 kHz mono waveform, ``float32[frames, 25]`` (10 ms hop; NaN/inf -> 0)."""
    return _process("lld", wave, int(min_seconds * SAMPLE_RATE))


def segment_stats(lld: np.ndarray, tokens: int, std: bool) -> np.ndarray:
    """Mean (and std) of ``[frames, D]`` over ``tokens`` equal segments -> ``[tokens, D]`` or ``[tokens, 2D]``.
    With fewer frames than tokens, frames are repeated (nearest) so each segment has one."""
    n, d = lld.shape
    if n == 0:
        return np.zeros((tokens, 2 * d if std else d), np.float32)
    if n < tokens:
        lld = lld[np.floor(np.arange(tokens) * n / tokens).astype(int)]
        n = tokens
    edges = np.linspace(0, n, tokens + 1).round().astype(int)
    rows = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        seg = lld[a : max(b, a + 1)]
        rows.append(np.concatenate([seg.mean(0), seg.std(0)]) if std else seg.mean(0))
    return np.stack(rows).astype(np.float32)


class EgemapsEncoder(Encoder):
    def __init__(self, cfg: EncoderConfig) -> None:
        import opensmile

        opt = EgemapsOptions.model_validate(cfg.options)
        if cfg.path:
            raise ValueError("egemaps: has no weights; leave encoder.path unset")
        self.opt = opt
        n_lld = len(feature_names("lld"))
        if opt.level == "functionals":
            dim, tokens = len(feature_names("functionals")), 1
        else:
            dim, tokens = n_lld * (2 if opt.std else 1), opt.tokens
        super().__init__(
            "egemaps",
            MediaRequest("audio", sample_rate=SAMPLE_RATE),
            dim,
            tokens,
            f"egemaps|opensmile-{opensmile.__version__}|{FEATURE_SET}|{opt.model_dump_json()}",
        )

    def forward_batch(self, batch: Sequence[np.ndarray]) -> torch.Tensor:
        outs = []
        for wave in batch:
            if self.opt.level == "functionals":
                outs.append(functionals(wave, self.opt.min_seconds)[None])
            else:
                lld = low_level_descriptors(wave, self.opt.min_seconds)
                outs.append(segment_stats(lld, self.opt.tokens, self.opt.std))
        return torch.from_numpy(np.stack(outs))


@register_encoder("egemaps", EgemapsOptions, input_kind="audio", description="openSMILE eGeMAPSv02 features")
def build_egemaps(cfg: EncoderConfig) -> Encoder:
    return EgemapsEncoder(cfg)
