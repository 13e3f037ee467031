"""Audio loading: files and video tracks -> 16 kHz mono float32, resampled by libswresample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emollm.media.audio import NoAudioError, has_audio, load_audio, resample
from emollm.media.video import MediaError
from emollm.media.video_write import write_video


def dominant_hz(x: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * sr / len(x))


def test_wav_44k_stereo_to_16k_mono(tmp_path: Path, tone) -> None:
    left = tone(440, 44100, 1.5, amp=0.5)
    p = tmp_path / "st.wav"
    sf.write(p, np.stack([left, left], 1), 44100)
    w = load_audio(p)
    assert w.dtype == np.float32 and w.ndim == 1
    assert abs(len(w) - 24000) <= 2
    assert dominant_hz(w[1000:-1000], 16000) == pytest.approx(440, abs=2)
    assert np.abs(w).max() <= 1.0
    assert float(np.sqrt(np.mean(w[1000:-1000] ** 2))) == pytest.approx(0.5 / np.sqrt(2), rel=0.02)


def test_downmix_is_a_mean_of_channels(tmp_path: Path, tone) -> None:
    a = tone(300, 16000, 1.0, amp=0.8)
    p = tmp_path / "anti.wav"
    sf.write(p, np.stack([a, -a], 1), 16000)  # opposite phases cancel in a mean
    assert np.abs(load_audio(p)).max() < 1e-4
    q = tmp_path / "full.flac"
    sf.write(q, np.stack([a / 0.8, a / 0.8], 1), 16000)  # full scale stays within [-1, 1]
    assert np.abs(load_audio(q)).max() <= 1.0


def test_video_track_and_max_seconds(tmp_path: Path, tone) -> None:
    frames = np.full((20, 32, 32, 3), 80, np.uint8)
    p = write_video(tmp_path / "v.mp4", frames, 10, audio=tone(440, 44100, 2.0), sample_rate=44100)
    assert has_audio(p)
    w = load_audio(p, 16000)
    assert abs(len(w) / 16000 - 2.0) < 0.05  # AAC pads up to one 1024-sample frame
    assert dominant_hz(w[2000:20000], 16000) == pytest.approx(440, abs=2)
    assert len(load_audio(p, 8000, max_seconds=0.5)) == 4000


def test_resample_keeps_content() -> None:
    x = (0.3 * np.sin(2 * np.pi * 1000 * np.arange(48000) / 48000)).astype(np.float32)
    y = resample(x, 48000, 16000)
    assert abs(len(y) - 16000) <= 2
    assert dominant_hz(y[500:-500], 16000) == pytest.approx(1000, abs=2)
    assert resample(x, 16000, 16000) is not None and len(resample(x, 16000, 16000)) == 48000


def test_video_without_audio_is_a_typed_error(tmp_path: Path) -> None:
    p = write_video(tmp_path / "silent.mp4", np.full((5, 32, 32, 3), 80, np.uint8), 10)
    assert not has_audio(p)
    with pytest.raises(NoAudioError, match="silent.mp4"):
        load_audio(p)
    assert issubclass(NoAudioError, MediaError)
    with pytest.raises(FileNotFoundError, match="missing.wav"):
        load_audio(tmp_path / "missing.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"\x00\x01" * 100)
    with pytest.raises(MediaError, match="junk.wav"):
        load_audio(junk)
