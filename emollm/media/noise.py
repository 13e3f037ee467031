"""MER-NOISE style corruption (MER2023 ``main-corrupt.py`` / MER2024 ``main-noise.py``), reproducible by seed.

    spec = NoiseSpec(seed=0)                       # SNR and blur drawn per sample
    draw = spec.draw("sample_00000167")            # NoiseDraw(snr_db=7, blur=2, noise_seed=...)
    noisy = corrupt_audio(wave, draw)              # float32[n] at 16 kHz
    blurred = blur_frames(frames, draw.blur)       # uint8[T, H, W, 3]
    meta = corrupt_video_file("in.mp4", "out.mp4", spec)   # writes a corrupted copy

What the original does and what this does:

- **Audio.** The SNR is drawn uniformly from {5, 6, 7, 8, 9, 10} dB. The noise is scaled so that
  ``noise_RMS = clean_RMS / 10^(SNR/20)`` and added; if the mixture leaves [-1, 1] (the int16 range)
  the whole signal is divided by its peak. The original cuts a random window from concatenated MUSAN
  *speech* files. MUSAN is not available here, so the noise is **synthetic babble**: ``voices``
  overlapping talkers, each a train of syllables (80-300 ms, Hann envelope, random pauses) of a
  harmonic source (fundamental 90-250 Hz per talker, random intonation glide per syllable, harmonics
  at 1/k amplitude up to 0.45 x the sample rate) plus a little pink-noise aspiration. It has speech's
  syllable-rate modulation and harmonic structure, but no words or formants: numbers measured with
  it are comparable to each other, not to published MER-NOISE numbers.
- **Video.** The blur rate is drawn from {1, 2, 4}; each frame gets ``log2(rate)`` rounds of
  ``cv2.pyrDown`` then as many ``cv2.pyrUp`` back to the original size (rate 1 = unchanged). The original
  re-encodes with DIVX; ``corrupt_video_file`` re-encodes with the default codec of ``video.py``, at the
  source's average frame rate, with the noisy 16 kHz mono audio as AAC.

Draws are per sample: ``NoiseSpec.draw(key)`` seeds a generator with ``(seed, crc32(key))``, so a sample
gets the same corruption in every run and on every machine, and different samples get different draws.
``NoiseSpec.describe()`` names every setting and goes into feature-cache keys.
"""

from __future__ import annotations

import math
import os
import zlib
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from emollm.config import Strict

SNR_CHOICES = (5, 6, 7, 8, 9, 10)
BLUR_CHOICES = (1, 2, 4)
NOISE_VERSION = "mer-noise-v1"


class NoiseSpec(Strict):
    """Corruption settings. ``None`` for ``snr_db`` / ``blur`` means "draw per sample" as MER-NOISE does."""

    seed: int = 0
    snr_db: float | None = None
    """Fixed SNR in dB, or None to draw from {5..10} per sample."""
    blur: Literal[1, 2, 4] | None = None
    """Fixed blur rate, or None to draw from {1, 2, 4} per sample."""
    audio: bool = True
    """Corrupt the audio."""
    video: bool = True
    """Corrupt the frames."""
    voices: int = Field(6, gt=0, le=32)
    """Talkers in the synthetic babble."""

    def describe(self) -> str:
        snr = "draw5-10" if self.snr_db is None else f"{self.snr_db:g}"
        blur = "draw124" if self.blur is None else str(self.blur)
        return (
            f"{NOISE_VERSION}(seed={self.seed},snr={snr},blur={blur},audio={int(self.audio)},"
            f"video={int(self.video)},babble{self.voices})"
        )

    def draw(self, key: str) -> NoiseDraw:
        """The corruption for one sample (``key``: its id or file stem); deterministic in (seed, key)."""
        rng = np.random.default_rng([self.seed, zlib.crc32(key.encode("utf-8"))])
        snr = float(rng.choice(SNR_CHOICES))
        blur = int(rng.choice(BLUR_CHOICES))
        noise_seed = int(rng.integers(0, 2**63 - 1))
        return NoiseDraw(
            snr_db=(self.snr_db if self.snr_db is not None else snr) if self.audio else None,
            blur=(self.blur if self.blur is not None else blur) if self.video else 1,
            noise_seed=noise_seed,
            voices=self.voices,
        )


@dataclass(frozen=True)
class NoiseDraw:
    """The resolved corruption of one sample."""

    snr_db: float | None
    """None: audio left clean."""
    blur: int
    noise_seed: int
    voices: int = 6

    def meta(self) -> dict[str, Any]:
        """MER-NOISE's per-video metadata (``audio_snr``, ``audio_noises``, ``video_blur``)."""
        return {
            "audio_snr": self.snr_db,
            "audio_noises": f"synthetic-babble(voices={self.voices},seed={self.noise_seed})" if self.snr_db else None,
            "video_blur": self.blur,
        }


# ---------------------------------------------------------------------------------------------- audio


def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS pink (1/f power) noise, ``float32[n]``, shaped in the frequency domain."""
    if n == 0:
        return np.zeros(0, np.float32)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec), dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return (x / (np.sqrt(np.mean(x**2)) + 1e-12)).astype(np.float32)


def _voice(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    f0 = np.zeros(n)
    env = np.zeros(n)
    base = rng.uniform(90.0, 250.0)
    t = int(rng.integers(0, int(0.3 * sr) + 1))  # talkers start at different moments
    while t < n:
        d = int(rng.uniform(0.08, 0.3) * sr)
        seg = slice(t, min(t + d, n))
        m = seg.stop - seg.start
        a, b = base * 2 ** rng.normal(0, 0.15, size=2)  # intonation glide within the syllable
        f0[seg] = np.linspace(a, b, d)[:m]
        env[seg] = np.sqrt(np.hanning(d)[:m]) * rng.uniform(0.5, 1.0)
        t += d + (int(rng.uniform(0.02, 0.25) * sr) if rng.random() < 0.6 else 0)
    f0[f0 == 0] = base
    phase = 2 * np.pi * np.cumsum(f0) / sr
    k_max = min(24, max(1, int(0.45 * sr / f0.max())))
    two_cos = 2 * np.cos(phase)
    prev, cur = np.zeros(n), np.sin(phase)  # sin(k x) by the recurrence s_k = 2 cos(x) s_(k-1) - s_(k-2)
    src = cur.copy()
    for k in range(2, k_max + 1):
        prev, cur = cur, two_cos * cur - prev
        src += cur / k
    return (src + 0.15 * pink_noise(n, rng)) * env


def synth_babble(n: int, sample_rate: int, rng: np.random.Generator, voices: int = 6) -> np.ndarray:
    """Synthetic speech-like babble, unit RMS, ``float32[n]`` (see the module docstring)."""
    if n == 0:
        return np.zeros(0, np.float32)
    x = sum(_voice(n, sample_rate, rng) * 10 ** (rng.uniform(-6, 0) / 20) for _ in range(voices))
    rms = float(np.sqrt(np.mean(np.square(x))))
    if rms == 0:  # pragma: no cover - a voice always sounds somewhere unless n is tiny
        return pink_noise(n, rng)
    return (x / rms).astype(np.float32)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(np.asarray(x, dtype=np.float64))))) if len(x) else 0.0


def mix_at_snr(
    clean: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Add ``noise`` scaled to ``noise_RMS = clean_RMS / 10^(snr/20)``; a random window of it if it is longer
    (tiled if shorter). The mixture is divided by its peak if that exceeds 1. Returns ``float32[n]``.
    Silent input (RMS 0) stays silent, as in the original's formula."""
    x = np.asarray(clean, dtype=np.float64).reshape(-1)
    n = len(x)
    if n == 0:
        return x.astype(np.float32)
    nz = np.asarray(noise, dtype=np.float64).reshape(-1)
    if len(nz) == 0:
        raise ValueError("noise is empty")
    if len(nz) < n:
        nz = np.tile(nz, math.ceil(n / len(nz)))
    start = int((rng or np.random.default_rng(0)).integers(0, len(nz) - n + 1))
    nz = nz[start : start + n]
    n_rms = rms(nz)
    scaled = nz * (rms(x) / 10 ** (snr_db / 20) / n_rms) if n_rms > 0 else nz * 0
    mix = x + scaled
    peak = float(np.abs(mix).max())
    if peak > 1.0:
        mix = mix / peak
    return mix.astype(np.float32)


def corrupt_audio(wave: np.ndarray, draw: NoiseDraw, sample_rate: int = 16000) -> np.ndarray:
    """Apply a sample's audio corruption (babble at ``draw.snr_db``); unchanged when ``snr_db`` is None."""
    if draw.snr_db is None:
        return np.asarray(wave, dtype=np.float32)
    rng = np.random.default_rng(draw.noise_seed)
    noise = synth_babble(len(wave), sample_rate, rng, draw.voices)
    return mix_at_snr(wave, noise, draw.snr_db, rng)


# ---------------------------------------------------------------------------------------------- video


def blur_frame(frame: np.ndarray, rate: int) -> np.ndarray:
    """``log2(rate)`` rounds of ``cv2.pyrDown`` then ``cv2.pyrUp`` back to the same size."""
    import cv2

    if rate not in BLUR_CHOICES:
        raise ValueError(f"blur rate must be one of {BLUR_CHOICES}, got {rate}")
    rounds = int(math.log2(rate))
    sizes = []
    x = np.asarray(frame)
    for _ in range(rounds):
        sizes.append((x.shape[1], x.shape[0]))
        x = cv2.pyrDown(x)
    for size in reversed(sizes):
        x = cv2.pyrUp(x, dstsize=size)
    return x


def blur_frames(frames: np.ndarray, rate: int) -> np.ndarray:
    """Blur every frame of ``uint8[T, H, W, 3]`` (rate 1 returns the input unchanged)."""
    arr = np.asarray(frames)
    if rate == 1:
        return arr
    return np.stack([blur_frame(f, rate) for f in arr])


def corrupt_video_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    spec: NoiseSpec,
    key: str | None = None,
    sample_rate: int = 16000,
) -> dict[str, Any]:
    """Write a MER-NOISE corrupted copy of ``src`` to ``dst`` (atomic) and return its noise metadata.

    Frames are blurred one by one while streaming (constant frame rate = the source's average rate);
    the audio track (if any) is loaded at ``sample_rate`` mono, mixed with babble and muxed as AAC.
    ``key`` defaults to the file stem."""
    from emollm.media.audio import NoAudioError, load_audio
    from emollm.media.video import iter_frames, video_info
    from emollm.media.video_write import VideoWriter

    draw = spec.draw(key or Path(src).stem)
    info = video_info(src, count=False)
    try:
        wave: np.ndarray | None = corrupt_audio(load_audio(src, sample_rate), draw, sample_rate)
    except NoAudioError:
        wave = None
    fps = Fraction(info.fps).limit_denominator(1001) if info.fps > 0 else Fraction(25)
    with VideoWriter(dst, fps, info.width, info.height, audio_rate=sample_rate if wave is not None else None) as w:
        for frame in iter_frames(src):
            w.add_frame(blur_frame(frame, draw.blur) if draw.blur != 1 else frame)
        if wave is not None:
            w.add_audio(wave)
    return {**draw.meta(), "noise": spec.describe(), "source": str(src)}
