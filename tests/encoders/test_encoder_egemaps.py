"""egemaps: openSMILE eGeMAPSv02 functionals and segment statistics on synthetic voiced tones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emollm.config import EncoderConfig
from emollm.encoders import build_encoder

SR = 16000


def voiced(f0: float, seconds: float = 1.5, amp: float = 0.3) -> np.ndarray:
    """A harmonic 'vowel' (5 harmonics) with a slow loudness wobble."""
    t = np.arange(int(SR * seconds)) / SR
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 6))
    return (amp * x / 2 * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


@pytest.fixture(scope="module")
def functionals_encoder():
    return build_encoder(EncoderConfig(name="egemaps"))


def test_functionals_are_88_dim(functionals_encoder) -> None:
    out = functionals_encoder.encode([voiced(150)])
    assert tuple(out.shape) == (1, 1, 88) and functionals_encoder.input_kind == "audio"
    assert torch.isfinite(out).all()
    assert "opensmile-" in functionals_encoder.identity and "eGeMAPSv02" in functionals_encoder.identity


def test_higher_pitch_raises_the_f0_features(functionals_encoder) -> None:
    from emollm.encoders.egemaps import feature_names

    names = feature_names("functionals")
    f0 = names.index("F0semitoneFrom27.5Hz_sma3nz_amean")
    low, high = functionals_encoder.encode([voiced(120), voiced(240)])[:, 0, f0].tolist()
    assert high - low == pytest.approx(12.0, abs=1.0)  # one octave = 12 semitones


def test_segments_shape_and_std() -> None:
    enc = build_encoder(EncoderConfig(name="egemaps", options={"level": "segments", "tokens": 4}))
    assert (enc.tokens_per_item, enc.dim) == (4, 25)
    out = enc.encode([voiced(150), voiced(200, seconds=0.8)])
    assert tuple(out.shape) == (2, 4, 25) and torch.isfinite(out).all()
    enc2 = build_encoder(EncoderConfig(name="egemaps", options={"level": "segments", "tokens": 3, "std": True}))
    out2 = enc2.encode([voiced(150)])
    assert tuple(out2.shape) == (1, 3, 50) and (out2[0, :, 25:] >= 0).all()
    assert enc.identity != enc2.identity


def test_short_and_silent_audio_give_finite_features(functionals_encoder) -> None:
    out = functionals_encoder.encode([np.zeros(0, np.float32), voiced(150, seconds=0.05), np.zeros(SR, np.float32)])
    assert tuple(out.shape) == (3, 1, 88) and torch.isfinite(out).all()
    seg = build_encoder(EncoderConfig(name="egemaps", options={"level": "segments", "tokens": 8}))
    assert torch.isfinite(seg.encode([np.zeros(100, np.float32)])).all()


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="segments"):
        EncoderConfig(name="egemaps", options={"tokens": 4})
    with pytest.raises(ValueError, match="path"):
        build_encoder(EncoderConfig(name="egemaps", path="/x"))
