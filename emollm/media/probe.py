"""Media probing: is a video/audio/image file readable, and what are its duration, rate and size.

``probe(path)`` reads the stream headers (``video.video_info`` for videos, so the facts match the rest
of the media pipeline) and, by default, decodes the first video frame (or audio frame of an audio-only
file), so a file whose header is valid but whose data is broken is caught too. It never raises for a
bad file: a missing, empty, truncated or random-bytes file gives ``MediaInfo(ok=False, error=...)``.

    info = probe("clip.mp4")
    if not info.ok:
        print(info.error)
    print(info.duration, info.fps, info.n_frames, info.width, info.height, info.has_audio, info.audio_sr)

``probe_many(paths, workers=8)`` probes in a thread pool (FFmpeg releases the GIL while demuxing and
decoding) with a tqdm progress bar, returning results in input order. Used by ``emollm prepare`` and
``emollm data check --probe``.

``duration`` is the container's (the longest stream, as ffprobe reports it); ``n_frames`` is the
container's frame count when it records one (MP4), otherwise ``round(duration * fps)`` with
``n_frames_exact`` False.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class MediaInfo:
    """What ``probe`` learned about one file. Every field but ``path``/``ok`` is None when unknown."""

    path: str
    ok: bool
    error: str | None = None
    has_video: bool = False
    duration: float | None = None
    """Seconds (container duration)."""
    fps: float | None = None
    n_frames: int | None = None
    n_frames_exact: bool = False
    width: int | None = None
    height: int | None = None
    video_codec: str | None = None
    has_audio: bool = False
    audio_sr: int | None = None
    audio_channels: int | None = None
    audio_codec: str | None = None

    def summary(self) -> dict[str, Any]:
        """The compact dict stored in a manifest's ``meta.media_info`` (no path, no Nones)."""
        keep = ("duration", "fps", "n_frames", "width", "height", "has_audio", "audio_sr")
        return {k: v for k, v in asdict(self).items() if k in keep and v is not None}


def _bad(p: Path, error: str) -> MediaInfo:
    return MediaInfo(str(p), ok=False, error=error)


def probe(path: str | os.PathLike[str], decode: bool = True) -> MediaInfo:
    """Probe one media file; never raises for a missing or unreadable file (``ok=False``).

    ``decode=True`` also decodes the first video frame (or first audio frame of an audio-only file)
    to prove the data is readable, not just the header.
    """
    import av

    from emollm.media.image import is_image_path, load_image
    from emollm.media.video import MediaError, open_media, video_info

    p = Path(path)
    if not p.is_file():
        return _bad(p, "file not found")
    if p.stat().st_size == 0:
        return _bad(p, "empty file (0 bytes)")
    try:
        if is_image_path(p):
            h, w = load_image(p).shape[:2]
            return MediaInfo(str(p), ok=True, width=int(w), height=int(h), n_frames=1, n_frames_exact=True)
        with open_media(p) as c:
            vs = c.streams.video[0] if c.streams.video else None
            aus = c.streams.audio[0] if c.streams.audio else None
            if vs is None and aus is None:
                return _bad(p, "no video or audio stream")
            if decode and next(iter(c.decode(vs if vs is not None else aus)), None) is None:
                return _bad(p, "no frame could be decoded")
            if vs is None:  # audio only
                a_dur = float(aus.duration * aus.time_base) if aus.duration is not None else None
                return MediaInfo(
                    str(p),
                    ok=True,
                    duration=c.duration / 1e6 if c.duration is not None else a_dur,
                    has_audio=True,
                    audio_sr=int(aus.codec_context.sample_rate) or None,
                    audio_channels=int(aus.codec_context.channels) or None,
                    audio_codec=aus.codec_context.name,
                )
        vi = video_info(p, count=False)
    except (MediaError, av.FFmpegError, OSError, ValueError, EOFError) as e:
        return _bad(p, f"{type(e).__name__}: {e}")
    return MediaInfo(
        str(p),
        ok=True,
        has_video=True,
        duration=vi.duration_s or None,
        fps=vi.fps or None,
        n_frames=vi.n_frames or None,
        n_frames_exact=vi.frame_count_source != "estimate",
        width=vi.width,
        height=vi.height,
        video_codec=vi.video_codec,
        has_audio=vi.has_audio,
        audio_sr=vi.audio_sample_rate,
        audio_channels=vi.audio_channels,
        audio_codec=vi.audio_codec,
    )


def probe_many(
    paths: Sequence[str | os.PathLike[str]], workers: int = 8, progress: bool = True, decode: bool = True
) -> list[MediaInfo]:
    """Probe many files in a thread pool; results in the order of ``paths``."""
    from tqdm.auto import tqdm

    if not paths:
        return []
    workers = max(1, min(workers, len(paths)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="probe") as pool:
        it = pool.map(lambda q: probe(q, decode=decode), paths)
        return list(tqdm(it, total=len(paths), desc="probing media", unit="file", disable=not progress))
