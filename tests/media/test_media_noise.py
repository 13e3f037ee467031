"""MER-NOISE corruption: SNR, seeding, blur and corrupted video files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from emollm.media.audio import load_audio
from emollm.media.noise import (
    NoiseSpec,
    blur_frame,
    blur_frames,
    corrupt_audio,
    corrupt_video_file,
    mix_at_snr,
    synth_babble,
)
from emollm.media.video import read_frames, video_info
from emollm.media.video_write import write_video


def snr_db(clean: np.ndarray, mixed: np.ndarray) -> float:
    noise = mixed.astype(np.float64) - clean
    return float(20 * np.log10(np.sqrt(np.mean(clean**2)) / np.sqrt(np.mean(noise**2))))


def high_freq_energy(img: np.ndarray) -> float:
    g = img.astype(np.float64).mean(-1)
    return float(np.mean(np.diff(g, axis=0) ** 2) + np.mean(np.diff(g, axis=1) ** 2))


def test_draws_are_per_sample_reproducible_and_in_range() -> None:
    spec = NoiseSpec(seed=3)
    draws = [spec.draw(f"s{i}") for i in range(60)]
    assert {d.snr_db for d in draws} <= {5, 6, 7, 8, 9, 10} and {d.blur for d in draws} <= {1, 2, 4}
    assert len({d.snr_db for d in draws}) > 3 and len({d.blur for d in draws}) == 3
    assert spec.draw("s1") == NoiseSpec(seed=3).draw("s1")
    assert NoiseSpec(seed=4).draw("s1") != spec.draw("s1")
    fixed = NoiseSpec(seed=3, snr_db=7.5, blur=2).draw("s1")
    assert (fixed.snr_db, fixed.blur) == (7.5, 2)
    assert NoiseSpec(audio=False).draw("x").snr_db is None and NoiseSpec(video=False).draw("x").blur == 1


def test_describe_names_every_setting() -> None:
    a = NoiseSpec(seed=0).describe()
    assert a != NoiseSpec(seed=1).describe() != NoiseSpec(seed=0, snr_db=5).describe()
    assert NoiseSpec(seed=0, blur=4).describe() != a and "draw5-10" in a
    with pytest.raises(ValueError):
        NoiseSpec(blur=3)  # type: ignore[arg-type]


def test_mixed_snr_is_measured_within_tolerance(tone) -> None:
    clean = tone(200, 16000, 2.0, amp=0.1).astype(np.float64)
    for snr in (5, 8, 10):
        draw = NoiseSpec(seed=1, snr_db=snr).draw("clip")
        noisy = corrupt_audio(clean.astype(np.float32), draw)
        assert np.abs(noisy).max() < 1.0  # no rescaling happened, so the SNR is exact
        assert snr_db(clean, noisy) == pytest.approx(snr, abs=0.05)
    a = corrupt_audio(clean.astype(np.float32), NoiseSpec(seed=1).draw("clip"))
    b = corrupt_audio(clean.astype(np.float32), NoiseSpec(seed=1).draw("clip"))
    c = corrupt_audio(clean.astype(np.float32), NoiseSpec(seed=2).draw("clip"))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_loud_mixture_is_rescaled_not_clipped(tone) -> None:
    clean = tone(200, 16000, 1.0, amp=0.95)
    mixed = mix_at_snr(clean, synth_babble(len(clean), 16000, np.random.default_rng(0)), 5)
    assert np.abs(mixed).max() == pytest.approx(1.0, abs=1e-6)
    assert np.allclose(mix_at_snr(np.zeros(100, np.float32), np.ones(50), 5), 0)  # silence stays silent


def test_babble_is_speech_like_modulated() -> None:
    x = synth_babble(32000, 16000, np.random.default_rng(0), voices=2)
    assert x.dtype == np.float32 and np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)
    env = np.sqrt(np.mean(x.reshape(-1, 400).astype(np.float64) ** 2, axis=1))  # 25 ms frames
    assert env.std() / env.mean() > 0.3  # syllables and pauses, not stationary noise


def test_blur_rate_one_is_identity_and_four_removes_detail() -> None:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(2, 37, 51, 3), dtype=np.uint8)  # odd sizes on purpose
    assert blur_frames(frames, 1) is frames
    b2, b4 = blur_frames(frames, 2), blur_frames(frames, 4)
    assert b4.shape == frames.shape and b4.dtype == np.uint8
    assert high_freq_energy(b4[0]) < high_freq_energy(b2[0]) < 0.5 * high_freq_energy(frames[0])
    with pytest.raises(ValueError, match="blur rate"):
        blur_frame(frames[0], 3)


def test_corrupted_video_file(tmp_path: Path, tone) -> None:
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 256, size=(1, 64, 80, 3), dtype=np.uint8), 10, axis=0)
    src = write_video(tmp_path / "clean.mp4", frames, 10, audio=tone(300, 16000, 1.0, amp=0.2), sample_rate=16000)
    meta = corrupt_video_file(src, tmp_path / "noisy.mp4", NoiseSpec(seed=0, snr_db=5, blur=4))
    assert meta["audio_snr"] == 5 and meta["video_blur"] == 4 and "babble" in meta["audio_noises"]
    info = video_info(tmp_path / "noisy.mp4")
    assert (info.n_frames, info.width, info.height, info.fps, info.has_audio) == (10, 80, 64, 10.0, True)
    clean_f = read_frames(src, 1, "middle").frames[0]
    noisy_f = read_frames(tmp_path / "noisy.mp4", 1, "middle").frames[0]
    assert high_freq_energy(noisy_f) < 0.3 * high_freq_energy(clean_f)
    clean_a, noisy_a = load_audio(src), load_audio(tmp_path / "noisy.mp4")
    n = min(len(clean_a), len(noisy_a))
    assert 3 < snr_db(clean_a[:n].astype(np.float64), noisy_a[:n]) < 7  # AAC adds a little of its own
