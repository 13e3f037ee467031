"""Audio loading: a file or a video's audio track -> mono ``np.float32[n]`` in [-1, 1] at a target rate.

    wave = load_audio("speech.wav")                    # 16 kHz mono
    wave = load_audio("clip.mp4", sample_rate=16000)   # the video's first audio track
    try:
        wave = load_audio("silent_clip.mp4")
    except NoAudioError:
        ...                                            # treat the audio modality as absent

Audio files are read with soundfile (WAV, FLAC, OGG, MP3...); containers soundfile cannot read (MP4,
M4A, AAC, MKV...) are decoded with PyAV. Channels are averaged to mono (a plain mean, so a full-scale
stereo signal stays within [-1, 1]); the rate is converted with FFmpeg's libswresample through PyAV's
``AudioResampler``. The result is clipped to [-1, 1] (the resampling filter can overshoot by a hair).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from emollm.media.video import MediaError, open_media

CHUNK = 1 << 16


class NoAudioError(MediaError):
    """The file has no audio stream (e.g. a video without a sound track)."""


def resample(wave: np.ndarray, orig_rate: int, target_rate: int) -> np.ndarray:
    """Resample a mono ``float32[n]`` waveform with libswresample (PyAV). Returns ``float32[m]``."""
    import av

    x = np.ascontiguousarray(np.asarray(wave, dtype=np.float32).reshape(-1))
    if orig_rate == target_rate or len(x) == 0:
        return x
    r = av.AudioResampler(format="fltp", layout="mono", rate=int(target_rate))
    out: list[np.ndarray] = []
    pts = 0
    for s in range(0, len(x), CHUNK):
        chunk = x[s : s + CHUNK]
        f = av.AudioFrame.from_ndarray(chunk[None, :], format="fltp", layout="mono")
        f.sample_rate = int(orig_rate)
        f.pts = pts
        pts += len(chunk)
        out += [o.to_ndarray()[0] for o in r.resample(f)]
    out += [o.to_ndarray()[0] for o in r.resample(None)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def _finish(x: np.ndarray, max_seconds: float | None, rate: int) -> np.ndarray:
    if max_seconds is not None:
        x = x[: int(round(max_seconds * rate))]
    return np.clip(x, -1.0, 1.0).astype(np.float32, copy=False)


def _from_container(path: Path, sample_rate: int) -> np.ndarray:
    import av

    with open_media(path) as c:
        if not c.streams.audio:
            raise NoAudioError(f"{path}: has no audio stream")
        stream: Any = c.streams.audio[0]
        r = av.AudioResampler(format="fltp", layout=None, rate=int(sample_rate))  # keep channels, mix below
        out: list[np.ndarray] = []
        try:
            for frame in c.decode(stream):
                out += [o.to_ndarray().mean(0) for o in r.resample(frame)]
            out += [o.to_ndarray().mean(0) for o in r.resample(None)]
        except av.FFmpegError as e:
            raise MediaError(f"{path}: audio decoding failed ({type(e).__name__}: {e})") from None
    return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


def load_audio(path: str | os.PathLike[str], sample_rate: int = 16000, max_seconds: float | None = None) -> np.ndarray:
    """Load ``path`` (audio file or video) as mono ``np.float32[n]`` in [-1, 1] at ``sample_rate``.

    ``max_seconds`` keeps only the beginning. Raises ``FileNotFoundError`` for a missing file,
    ``NoAudioError`` for a file without an audio stream and ``MediaError`` for an undecodable one.
    """
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"audio source not found: {p}")
    try:
        data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError):
        return _finish(_from_container(p, sample_rate), max_seconds, sample_rate)
    if data.shape[1] == 0:
        raise NoAudioError(f"{p}: audio file has no channels")
    mono = data.mean(axis=1)
    return _finish(resample(mono, int(rate), sample_rate), max_seconds, sample_rate)


def has_audio(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` holds an audio stream (audio files: readable by soundfile or PyAV)."""
    import soundfile as sf

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"media file not found: {p}")
    try:
        sf.info(str(p))
        return True
    except (sf.LibsndfileError, RuntimeError, TypeError):
        pass
    with open_media(p) as c:
        return bool(c.streams.audio)
