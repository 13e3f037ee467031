"""SynthMER's synthetic voice: a harmonic source shaped into syllables whose prosody carries an emotion.

Each emotion sets a prosody (``PROSODY``): pitch level (a factor on the speaker's base F0) and range
(semitones of syllable-to-syllable movement), the utterance's pitch contour (declination, final
rise or fall), syllable rate, loudness, spectral tilt (pressed vs soft voice), jitter, tremor and
breathiness. A speaker (``Voice``) contributes label-independent nuisance: base F0 by gender,
vocal-tract length (formant scaling), speaking-rate and loudness offsets.

The source is a sum of harmonics of a smoothly varying F0, weighted by three vowel formants that
change per syllable, gated by raised-cosine syllable envelopes with consonant-like noise onsets,
plus aspiration noise and a faint room noise, through a soft limiter. Neutral speech sits near
-24 dBFS RMS while voiced. 16 kHz mono float32 in [-1, 1].

    voice = Voice.sample(np.random.default_rng(0), gender="F")
    wav = synthesize(voice, "surprise", seconds=2.0, sample_rate=16000, rng=np.random.default_rng(1))
    wav.shape  # (32000,) float32
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Prosody:
    pitch: float
    """F0 level relative to the speaker's base F0."""
    range_st: float
    """Standard deviation of syllable pitch targets, semitones."""
    contour_st: float
    """Pitch movement over the utterance, semitones (negative: declination/fall; positive: final rise)."""
    final_rise: bool
    """Put the contour movement on the last syllables (question-like rise) instead of spreading it."""
    rate: float
    """Syllables per second."""
    gain_db: float
    """Loudness relative to neutral speech."""
    tilt: float
    """Harmonic amplitude fall-off exponent (small: bright, pressed; large: soft)."""
    jitter: float
    """Relative F0 perturbation (cycle-to-cycle roughness)."""
    tremor_st: float
    """Amplitude of a 6 Hz pitch tremor, semitones."""
    breath: float
    """Aspiration noise level relative to the voiced signal."""


PROSODY: dict[str, Prosody] = {
    "neutral": Prosody(1.00, 1.0, -1.5, False, 4.0, 0.0, 1.3, 0.004, 0.0, 0.05),
    "angry": Prosody(1.22, 2.5, -4.0, True, 5.3, 7.0, 0.6, 0.02, 0.0, 0.03),
    "happy": Prosody(1.35, 3.0, -1.0, False, 4.8, 3.0, 0.9, 0.006, 0.0, 0.05),
    "sad": Prosody(0.86, 0.6, -2.5, False, 2.6, -7.0, 1.8, 0.01, 0.0, 0.3),
    "worried": Prosody(1.12, 1.5, 1.5, True, 4.5, -3.0, 1.3, 0.015, 0.7, 0.18),
    "surprise": Prosody(1.48, 4.5, 6.0, True, 3.4, 4.0, 0.9, 0.006, 0.0, 0.07),
}

# (F1, F2, F3) in Hz of an adult male voice; a speaker's vocal tract scales them
_VOWELS: tuple[tuple[float, float, float], ...] = (
    (730, 1090, 2440),  # a
    (530, 1840, 2480),  # e
    (270, 2290, 3010),  # i
    (570, 840, 2410),  # o
    (300, 870, 2240),  # u
    (660, 1720, 2410),  # ae
)
_BANDWIDTHS = (90.0, 110.0, 170.0)


@dataclass(frozen=True)
class Voice:
    """A speaker's voice (label-independent nuisance)."""

    gender: str
    f0: float
    """Base F0 in Hz (about 95-135 for "M", 180-240 for "F")."""
    tract: float
    """Formant scale (about 1.0 for "M", 1.15 for "F")."""
    rate: float
    """Speaking-rate factor."""
    gain_db: float

    @staticmethod
    def sample(rng: np.random.Generator, gender: str) -> Voice:
        if gender not in ("F", "M"):
            raise ValueError(f"gender must be 'F' or 'M', got {gender!r}")
        female = gender == "F"
        return Voice(
            gender=gender,
            f0=float(rng.uniform(180, 240) if female else rng.uniform(95, 135)),
            tract=float(rng.uniform(1.1, 1.2) if female else rng.uniform(0.95, 1.05)),
            rate=float(rng.uniform(0.9, 1.1)),
            gain_db=float(rng.uniform(-2, 2)),
        )


def _syllables(dur: float, rate: float, rng: np.random.Generator) -> list[tuple[float, float]]:
    """(start, length) in seconds of each syllable in ``[0, dur)``, with short pauses between words."""
    t = float(rng.uniform(0.08, 0.2))
    end = dur - float(rng.uniform(0.08, 0.18))
    out = []
    while True:
        length = float(rng.uniform(0.75, 1.15)) * 0.8 / rate
        if t + length > end:
            break
        out.append((t, length))
        t += length + float(rng.uniform(0.05, 0.25)) / rate
        if rng.random() < 0.2:  # word/phrase break
            t += float(rng.uniform(0.05, 0.15))
    if not out:
        out.append((t, max(0.05, end - t)))
    return out


def synthesize(voice: Voice, emotion: str, seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """``float32[round(seconds * sample_rate)]`` speech-like audio of ``voice`` expressing ``emotion``."""
    if emotion not in PROSODY:
        raise KeyError(f"no prosody for {emotion!r}; known: {', '.join(PROSODY)}")
    pr = PROSODY[emotion]
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    syl = _syllables(seconds, pr.rate * voice.rate, rng)

    # pitch contour (semitones re. the emotion's level): per-syllable targets + global movement
    k = len(syl)
    targets = rng.normal(0, pr.range_st, k)
    pos = np.linspace(0, 1, k) if k > 1 else np.zeros(1)
    movement = pr.contour_st * (np.clip((pos - 0.6) / 0.4, 0, 1) if pr.final_rise else pos)
    centres = np.array([s + 0.5 * d for s, d in syl])
    st = np.interp(t, centres, targets + movement)
    st += np.sin(2 * np.pi * 6.0 * t + rng.uniform(0, 6.3)) * pr.tremor_st
    jit = np.convolve(rng.normal(0, 1, n), np.ones(40) / np.sqrt(40), mode="same") * pr.jitter
    f0 = voice.f0 * pr.pitch * 2.0 ** (st / 12.0) * (1.0 + jit)

    # envelope: raised-cosine syllables; formants per syllable (vowel), smoothed by interpolation
    env = np.zeros(n)
    onset_noise = np.zeros(n)
    formants = np.zeros((3, k))
    for i, (s, d) in enumerate(syl):
        a, b = int(s * sample_rate), min(n, int((s + d) * sample_rate))
        if b - a < 4:
            continue
        w = np.sin(np.linspace(0, np.pi, b - a)) ** 0.7
        env[a:b] = np.maximum(env[a:b], w)
        c = max(0, a - int(0.03 * sample_rate))  # consonant-like noise burst before the vowel
        if rng.random() < 0.7:
            onset_noise[c:a] = np.hanning(a - c) if a > c else 0
        formants[:, i] = np.asarray(_VOWELS[int(rng.integers(len(_VOWELS)))]) * voice.tract
    fts = [np.interp(t, centres, formants[j]) for j in range(3)]

    # additive synthesis: harmonic amplitudes at a 1 ms control rate, sin(h * phase) by recurrence
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    hop = max(1, sample_rate // 1000)
    ctrl = slice(0, n, hop)
    f0c = f0[ctrl]
    fmax = min(4500.0, 0.45 * sample_rate)
    n_harm = int(fmax / f0.min())
    harm = np.arange(1, n_harm + 1)[:, None] * f0c[None, :]  # [H, n_ctrl] Hz
    amp = np.arange(1, n_harm + 1, dtype=np.float64)[:, None] ** (-pr.tilt) * (harm < fmax)
    for fc, bw in zip(fts, _BANDWIDTHS, strict=True):
        amp = amp * np.sqrt(1.0 + 8.0 / (1.0 + ((harm - fc[ctrl][None, :]) / bw) ** 2))
    amp = np.repeat(amp.astype(np.float32), hop, axis=1)[:, :n]
    s1, s0 = np.sin(phase).astype(np.float32), np.zeros(n, np.float32)
    two_cos = (2.0 * np.cos(phase)).astype(np.float32)
    voiced = np.zeros(n, np.float32)
    for h in range(n_harm):
        voiced += amp[h] * s1
        s1, s0 = two_cos * s1 - s0, s1
    voiced /= np.sqrt(np.mean(voiced**2)) + 1e-9  # unit RMS, so gain_db sets the loudness
    noise = rng.normal(0, 1, n)
    breath = np.convolve(noise, [0.74, -0.67], mode="same")  # high-passed aspiration, unit RMS
    sig = env * (voiced + pr.breath * breath) + 0.25 * onset_noise * breath
    gain = 10 ** ((pr.gain_db + voice.gain_db - 24.0) / 20.0)  # neutral speech at about -24 dBFS RMS
    sig = gain * sig + rng.normal(0, 1, n) * 10 ** (-60 / 20)  # faint room noise
    return np.tanh(sig).astype(np.float32)  # soft limiter, linear at speech levels
