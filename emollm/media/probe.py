"""Media probing: is a video/audio/image file readable, and what are its duration, rate and size.

``probe(path)`` reads the stream headers (``video.video_info`` for videos, so the facts match the rest
of the media pipeline) and, by default, decodes every frame to the end, so a file whose header is valid
but whose data is broken or cut short is caught too. It never raises for a bad file: a missing, empty,
truncated or random-bytes file gives ``MediaInfo(ok=False, error=...)``. What is not ok:

- an MP4/MOV whose top-level boxes run past the end of the file (the last bytes are missing);
- a stream that fails to decode anywhere, or decodes fewer video frames than the container records;
- less than ``min_duration`` seconds (default ``MIN_DURATION_S`` = 0.05 s) of decodable media: a WAV of
  100 bytes has an intact header and 0.00175 s of audio, which is no clip.

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


MIN_DURATION_S = 0.05
"""Less decodable media than this (seconds) is not a clip: ``probe`` says not ok."""

_ISO_BMFF = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"uuid", b"moof", b"mfra", b"meta", b"pdin"}


def _bad(p: Path, error: str) -> MediaInfo:
    return MediaInfo(str(p), ok=False, error=error)


def mp4_truncation(path: str | os.PathLike[str]) -> str | None:
    """Why an ISO-BMFF file (MP4, MOV, M4A) is cut short, or None (not such a file, or complete).

    Walks the top-level boxes: each declares its size, so a file missing its last bytes has a last box
    that runs past the end of the file (FFmpeg still opens many of them and decodes what is there).
    """
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8 or head[4:8] != b"ftyp":
            return None
        off = 0
        while off < size:
            f.seek(off)
            h = f.read(8)
            if len(h) < 8:
                return f"truncated: {size - off} stray byte(s) after the last box at offset {off}"
            n, kind = int.from_bytes(h[:4], "big"), h[4:8]
            if n == 1:
                ext = f.read(8)
                if len(ext) < 8:
                    return f"truncated: box {kind.decode('latin-1')!r} at offset {off} has no size"
                n = int.from_bytes(ext, "big")
            elif n == 0:  # the last box runs to the end of the file
                return None
            if n < 8:
                return None if kind not in _ISO_BMFF else f"box {kind.decode('latin-1')!r} at {off} has size {n}"
            if off + n > size:
                return (
                    f"truncated: box {kind.decode('latin-1')!r} at offset {off} declares {n} bytes but the file "
                    f"ends after {size - off} (the last {off + n - size} bytes are missing)"
                )
            off += n
    return None


def probe(path: str | os.PathLike[str], decode: bool = True, min_duration: float = MIN_DURATION_S) -> MediaInfo:
    """Probe one media file; never raises for a missing or unreadable file (``ok=False``).

    ``decode=True`` decodes every video and audio frame to the end (one demux pass) to prove the data is
    readable and complete, not just the header; ``decode=False`` reads headers only. A file with less
    than ``min_duration`` seconds of media is not ok (see the module docstring).
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
        cut = mp4_truncation(p)
        if cut is not None:
            return _bad(p, cut)
        with open_media(p) as c:
            vs = c.streams.video[0] if c.streams.video else None
            aus = c.streams.audio[0] if c.streams.audio else None
            if vs is None and aus is None:
                return _bad(p, "no video or audio stream")
            n_video, audio_s = _decode_all(c, vs, aus) if decode else (None, None)
            if decode and not n_video and not audio_s:
                return _bad(p, "no frame could be decoded")
            if vs is None:  # audio only
                a_dur = float(aus.duration * aus.time_base) if aus.duration is not None else None
                dur = c.duration / 1e6 if c.duration is not None else a_dur
                got = audio_s if audio_s is not None else dur
                if got is not None and got < min_duration:
                    return _bad(p, f"only {got:.5f} s of audio (a clip needs at least {min_duration:g} s)")
                return MediaInfo(
                    str(p),
                    ok=True,
                    duration=dur,
                    has_audio=True,
                    audio_sr=int(aus.codec_context.sample_rate) or None,
                    audio_channels=int(aus.codec_context.channels) or None,
                    audio_codec=aus.codec_context.name,
                )
        vi = video_info(p, count=False)
    except (MediaError, av.FFmpegError, OSError, ValueError, EOFError) as e:
        return _bad(p, f"{type(e).__name__}: {e}")
    exact = vi.frame_count_source != "estimate"
    if n_video is not None and exact and vi.n_frames and n_video < vi.n_frames:
        return _bad(p, f"truncated: only {n_video} of the {vi.n_frames} video frames decode")
    if n_video is not None and vi.fps and n_video / vi.fps < min_duration:
        return _bad(p, f"only {n_video} video frame(s) ({n_video / vi.fps:.3f} s; a clip needs {min_duration:g} s)")
    return MediaInfo(
        str(p),
        ok=True,
        has_video=True,
        duration=vi.duration_s or None,
        fps=vi.fps or None,
        n_frames=vi.n_frames or None,
        n_frames_exact=exact,
        width=vi.width,
        height=vi.height,
        video_codec=vi.video_codec,
        has_audio=vi.has_audio,
        audio_sr=vi.audio_sample_rate,
        audio_channels=vi.audio_channels,
        audio_codec=vi.audio_codec,
    )


def _decode_all(c: Any, vs: Any, aus: Any) -> tuple[int | None, float | None]:
    """Decode every frame of the video and audio stream in one demux pass: (video frames, audio seconds).

    Raises ``av.FFmpegError`` where the data is broken (e.g. a packet cut short at the end of the file).
    """
    import av

    streams = [s for s in (vs, aus) if s is not None]
    n_video, n_samples = 0, 0
    for frame in c.decode(*streams):
        if isinstance(frame, av.AudioFrame):
            n_samples += frame.samples
        else:
            n_video += 1
    sr = int(aus.codec_context.sample_rate or 0) if aus is not None else 0
    return (n_video if vs is not None else None), (n_samples / sr if sr else None)


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
