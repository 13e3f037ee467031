"""Video decoding with PyAV (FFmpeg): metadata and the selected frames of a clip (``frames.py`` chooses
them; ``video_write.py`` writes clips).

Reading::

    info = video_info("clip.mp4")              # VideoInfo: fps, n_frames, duration_s, width, height, has_audio...
    clip = read_frames("clip.mp4", n=8, selection="segments")
    clip.frames                                # np.uint8[T, H, W, 3] RGB
    clip.indices                               # decoded-frame indices that were kept (length T)

Selection rules (``n`` frames, ``N`` = number of frames in the clip):

- ``uniform``: ``n`` evenly spaced frames, ``round(linspace(0, N-1, n))``.
- ``first`` / ``middle`` / ``peak``: an anchor frame (0, ``N // 2``, the peak) and, for ``n > 1``, the
  ``n`` consecutive frames centred on it (``first``: starting at it), clamped to the clip.
- ``peak``: the given ``peak_index`` (e.g. MERR's AU-intensity ``peak_index``), clamped to the clip.
  Without one, an expression-intensity proxy: every frame is decoded as a small grey thumbnail
  (64 px on the long side), and the frame whose thumbnail deviates most (mean absolute difference)
  from the clip's per-pixel median thumbnail is the peak. For a talking-head clip the median is the
  resting face and the largest deviation is the most animated frame. This costs one extra decode pass.
- ``segments``: Emotion-LLaMA's VideoMAE sampling (``maeVideo/dataset_MER.py``, test mode):
  ``n // 2`` segments (``ceil`` for odd ``n``, then truncated to ``n``) x 2 consecutive frames; with
  ``tick = (N - 1) / segs`` the offsets are ``int(tick / 2 + tick * i)``. Clips too short for that
  (``N <= segs + 1``) use evenly spaced offsets instead of the original's all-zero offsets.

Frame indices count frames in presentation order as the decoder emits them, so variable-frame-rate
files are handled (timestamps are reported in ``Clip.times``, not assumed from fps). The frame count is
taken by demuxing packets (no decoding; exact for the usual one-frame-per-packet codecs) instead of
trusting the container header; if the decoder still yields fewer frames than counted, the selection is
recomputed on the true count. Frames are decoded once, front to back, and only the selected ones are
converted to RGB and kept.

Writing: ``write_video(path, frames, fps, audio=..., sample_rate=...)`` or the streaming
``VideoWriter``. The default codec is the first of ``libx264``, ``mpeg4`` the PyAV wheel can encode
(the PyPI wheel ships libx264 and FFmpeg's native aac), with yuv420p pixels (odd sizes are padded by one
replicated pixel row/column) and AAC audio. Files are written atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from emollm.encoders.base import FrameSelection
from emollm.media.frames import SELECTIONS, peak_by_deviation, segment_indices, select_indices

THUMB_SIDE = 64


class MediaError(ValueError):
    """A media file that exists but cannot be decoded as expected (the message names the file)."""


def open_media(path: str | os.PathLike[str]) -> Any:
    """Open a media file with PyAV for reading; missing -> ``FileNotFoundError``, unreadable -> ``MediaError``."""
    import av

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"media file not found: {p}")
    try:
        return av.open(str(p), mode="r")
    except (av.FFmpegError, OSError) as e:
        raise MediaError(f"{p}: cannot open as audio/video ({type(e).__name__}: {e})") from None


def _video_stream(container: Any, path: str | os.PathLike[str]) -> Any:
    if not container.streams.video:
        raise MediaError(f"{path}: has no video stream")
    return container.streams.video[0]


@dataclass(frozen=True)
class VideoInfo:
    """Stream facts of one video file."""

    path: str
    width: int
    height: int
    fps: float
    """Average frame rate (``avg_frame_rate``; guessed rate when the container has none)."""
    n_frames: int
    """Frames counted from demuxed packets (``count=True``) or the container header (``count=False``)."""
    duration_s: float
    """Container duration in seconds (the longest stream, as ffprobe's format duration)."""
    video_codec: str
    has_audio: bool
    audio_sample_rate: int | None = None
    audio_channels: int | None = None
    audio_codec: str | None = None
    frame_count_source: str = "packets"
    """``packets`` (demuxed and counted), ``container`` (header) or ``estimate`` (duration x fps)."""


def _count_packets(container: Any, stream: Any) -> int:
    n = 0
    for pkt in container.demux(stream):
        if pkt.size and not pkt.is_discard:
            n += 1
    return n


def video_info(path: str | os.PathLike[str], count: bool = True) -> VideoInfo:
    """Read a video's metadata. ``count=True`` counts frames by demuxing packets (fast, no decoding)."""
    import av

    with open_media(path) as c:
        vs = _video_stream(c, path)
        rate = vs.average_rate or vs.guessed_rate
        fps = float(rate) if rate else 0.0
        if c.duration is not None:
            dur = c.duration / 1e6
        elif vs.duration is not None and vs.time_base is not None:
            dur = float(vs.duration * vs.time_base)
        else:
            dur = 0.0
        aus = c.streams.audio[0] if c.streams.audio else None
        width, height = vs.codec_context.width, vs.codec_context.height
        codec = vs.codec_context.name
        a_sr = int(aus.codec_context.sample_rate) if aus is not None else None
        a_ch = int(aus.codec_context.channels) if aus is not None else None
        a_codec = aus.codec_context.name if aus is not None else None
        if count:
            try:
                n, src = _count_packets(c, vs), "packets"
            except av.FFmpegError as e:
                raise MediaError(f"{path}: demuxing failed ({type(e).__name__}: {e})") from None
        elif vs.frames:
            n, src = int(vs.frames), "container"
        else:
            n, src = round(dur * fps), "estimate"
    if not width or not height:
        raise MediaError(f"{path}: video stream has no frame size")
    return VideoInfo(
        str(path), int(width), int(height), fps, int(n), float(dur), codec, aus is not None, a_sr, a_ch, a_codec, src
    )


@dataclass
class Clip:
    """Decoded frames of one video."""

    frames: np.ndarray
    """``np.uint8[T, H, W, 3]`` RGB."""
    indices: list[int]
    """Index of each kept frame in presentation order (length T)."""
    times: list[float]
    """Presentation time of each kept frame in seconds (from the frame timestamps)."""
    n_total: int
    """Frames the decoder produced for the whole clip."""
    fps: float
    peak_source: str | None = None
    """For ``selection='peak'``: ``given`` (peak_index passed) or ``deviation`` (estimated)."""
    notes: list[str] = field(default_factory=list)


def _decode_selected(path: str | os.PathLike[str], wanted: Sequence[int]) -> tuple[dict[int, Any], int]:
    """Decode front to back; returns ({index: (rgb, time)}, frames decoded)."""
    import av

    need = set(wanted)
    last = max(need)
    kept: dict[int, Any] = {}
    i = -1
    with open_media(path) as c:
        vs = _video_stream(c, path)
        vs.thread_type = "AUTO"
        try:
            for i, frame in enumerate(c.decode(vs)):
                if i in need:
                    t = float(frame.pts * frame.time_base) if frame.pts is not None and frame.time_base else math.nan
                    kept[i] = (frame.to_ndarray(format="rgb24"), t)
                if i >= last:
                    break
        except av.FFmpegError as e:
            if not kept and i < 0:
                raise MediaError(f"{path}: decoding failed ({type(e).__name__}: {e})") from None
    return kept, i + 1


def _count_decoded(path: str | os.PathLike[str]) -> int:
    """Frames the decoder actually yields (stops at the first undecodable packet)."""
    import av

    n = 0
    with open_media(path) as c:
        vs = _video_stream(c, path)
        vs.thread_type = "AUTO"
        try:
            for _ in c.decode(vs):
                n += 1
        except av.FFmpegError:
            pass
    return n


def iter_frames(path: str | os.PathLike[str]) -> Iterator[np.ndarray]:
    """Every frame in presentation order as ``np.uint8[H, W, 3]`` RGB (streaming; nothing is kept)."""
    import av

    with open_media(path) as c:
        vs = _video_stream(c, path)
        vs.thread_type = "AUTO"
        try:
            for frame in c.decode(vs):
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as e:
            raise MediaError(f"{path}: decoding failed ({type(e).__name__}: {e})") from None


def frame_thumbnails(path: str | os.PathLike[str], side: int = THUMB_SIDE) -> np.ndarray:
    """Every frame as a small grey thumbnail, ``np.uint8[N, h, w]`` (long side ``side``)."""
    out = []
    with open_media(path) as c:
        vs = _video_stream(c, path)
        vs.thread_type = "AUTO"
        w, h = vs.codec_context.width, vs.codec_context.height
        scale = side / max(w, h)
        tw, th = max(2, round(w * scale)), max(2, round(h * scale))
        for frame in c.decode(vs):
            out.append(frame.reformat(width=tw, height=th, format="gray").to_ndarray())
    if not out:
        raise MediaError(f"{path}: no video frame could be decoded")
    return np.stack(out)


def estimate_peak_index(path: str | os.PathLike[str]) -> int:
    """Expression-intensity proxy for the peak frame (see the module docstring); one decode pass."""
    return peak_by_deviation(frame_thumbnails(path))


def read_frames(
    path: str | os.PathLike[str],
    n: int = 1,
    selection: FrameSelection = "uniform",
    peak_index: int | None = None,
) -> Clip:
    """Decode the ``n`` frames a selection rule picks. Returns a ``Clip`` (frames ``uint8[n, H, W, 3]``)."""
    info = video_info(path, count=True)
    total = info.n_frames
    if total <= 0:
        total = _count_decoded(path)
        if total <= 0:
            raise MediaError(f"{path}: no video frame could be decoded")
    notes: list[str] = []
    peak_source = None
    if selection == "peak":
        if peak_index is None:
            thumbs = frame_thumbnails(path)
            total = len(thumbs)
            peak_index, peak_source = peak_by_deviation(thumbs), "deviation"
        else:
            peak_source = "given"
            if not 0 <= int(peak_index) < total:
                notes.append(f"peak_index {peak_index} outside 0..{total - 1}; clamped")
    idx = select_indices(total, n, selection, peak_index)
    kept, decoded = _decode_selected(path, idx)
    missing = [i for i in idx if i not in kept]
    if missing:  # the packet count overstated the frames the decoder gives: select again on the true count
        true_total = decoded if decoded < total else _count_decoded(path)
        if true_total <= 0:
            raise MediaError(f"{path}: no video frame could be decoded")
        notes.append(f"{total} packets but {true_total} decodable frames; selection recomputed")
        idx = select_indices(true_total, n, selection, None if peak_index is None else min(peak_index, true_total - 1))
        kept, decoded = _decode_selected(path, idx)
        total = true_total
        if any(i not in kept for i in idx):
            raise MediaError(f"{path}: frames {sorted(set(idx) - set(kept))} could not be decoded")
    frames = np.stack([kept[i][0] for i in idx])
    return Clip(frames, list(idx), [kept[i][1] for i in idx], total, info.fps, peak_source, notes)


__all__ = [
    "Clip",
    "MediaError",
    "SELECTIONS",
    "THUMB_SIDE",
    "VideoInfo",
    "estimate_peak_index",
    "frame_thumbnails",
    "iter_frames",
    "open_media",
    "read_frames",
    "segment_indices",
    "select_indices",
    "video_info",
]
