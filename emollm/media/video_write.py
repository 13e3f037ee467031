"""Writing video files (MER-NOISE corrupted clips, SynthMER clips, test fixtures): a streaming, atomic
writer with an optional audio track.

    write_video("clip.mp4", frames, fps=25, audio=wave, sample_rate=16000)
    with VideoWriter("clip.mp4", 25, width, height, audio_rate=16000) as w:
        w.add_frame(frame)

The codec is the first of libx264, mpeg4 this FFmpeg build encodes (``default_video_codec``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emollm.io import atomic_path

if TYPE_CHECKING:
    pass
from emollm.media.video import MediaError

CONTAINER_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".avi": "avi", ".webm": "webm"}


def default_video_codec() -> str:
    """The first of libx264, mpeg4 that this FFmpeg build can encode."""
    import av

    for name in ("libx264", "mpeg4"):
        try:
            av.codec.Codec(name, "w")
            return name
        except (av.FFmpegError, ValueError):
            continue
    raise MediaError("this PyAV/FFmpeg build can encode neither libx264 nor mpeg4 video")


def _container_format(path: Path) -> str:
    fmt = CONTAINER_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"{path}: unsupported video suffix {path.suffix!r}; use one of {sorted(CONTAINER_FORMATS)}")
    return fmt


class VideoWriter:
    """Streaming, atomic video writer: ``with VideoWriter(p, fps, w, h, audio_rate=16000) as w: ...``.

    ``add_frame(uint8[H, W, 3])`` appends one RGB frame (size fixed at construction);
    ``add_audio(float32[n] or float32[n, C])`` appends samples in [-1, 1] at ``audio_rate``.
    The file appears at ``path`` only when the ``with`` block exits without an error.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        fps: float | Fraction,
        width: int,
        height: int,
        audio_rate: int | None = None,
        audio_channels: int = 1,
        video_codec: str | None = None,
        audio_codec: str = "aac",
        crf: int = 18,
    ) -> None:
        self.path = Path(path)
        self.fps = Fraction(fps).limit_denominator(1001) if not isinstance(fps, Fraction) else fps
        self.width, self.height = int(width), int(height)
        self.audio_rate = audio_rate
        self.audio_channels = audio_channels
        self.video_codec = video_codec or default_video_codec()
        self.audio_codec = audio_codec
        self.crf = crf
        self._ctx: Any = None
        self._c: Any = None
        self._n = 0
        self._audio_pts = 0

    def __enter__(self) -> VideoWriter:
        import av

        if self.audio_channels not in (1, 2):
            raise ValueError(f"{self.path}: audio_channels must be 1 or 2, got {self.audio_channels}")
        fmt = _container_format(self.path)
        self._ctx = atomic_path(self.path)
        tmp = self._ctx.__enter__()
        try:
            self._c = av.open(str(tmp), mode="w", format=fmt)
            vs = self._c.add_stream(self.video_codec, rate=self.fps)
            vs.width, vs.height = self.width + self.width % 2, self.height + self.height % 2
            vs.pix_fmt = "yuv420p"
            if self.video_codec == "libx264":
                vs.options = {"crf": str(self.crf), "preset": "veryfast"}
            else:
                vs.bit_rate = max(1_000_000, self.width * self.height * 8)
            self._vs = vs
            self._as = None
            if self.audio_rate:
                layout = "mono" if self.audio_channels == 1 else "stereo"
                self._as = self._c.add_stream(self.audio_codec, rate=int(self.audio_rate), layout=layout)
        except BaseException as e:  # leave no temporary file behind
            if self._c is not None:
                self._c.close()
            self._ctx.__exit__(type(e), e, e.__traceback__)
            raise
        return self

    def add_frame(self, frame: np.ndarray) -> None:
        import av

        f = np.asarray(frame)
        if f.dtype != np.uint8 or f.shape != (self.height, self.width, 3):
            raise ValueError(
                f"{self.path}: frame {self._n} must be uint8[{self.height}, {self.width}, 3], got {f.dtype}{list(f.shape)}"
            )
        if self.width % 2 or self.height % 2:
            f = np.pad(f, ((0, self.height % 2), (0, self.width % 2), (0, 0)), mode="edge")
        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
        vf.pts = self._n
        vf.time_base = 1 / self.fps
        for pkt in self._vs.encode(vf):
            self._c.mux(pkt)
        self._n += 1

    def add_audio(self, samples: np.ndarray) -> None:
        import av

        if self._as is None:
            raise ValueError(f"{self.path}: writer was opened without audio (audio_rate=None)")
        a = np.asarray(samples, dtype=np.float32)
        a = a[:, None] if a.ndim == 1 else a
        if a.ndim != 2 or a.shape[1] != self.audio_channels:
            raise ValueError(
                f"{self.path}: audio must be float32[n] or [n, {self.audio_channels}], got {list(a.shape)}"
            )
        if len(a) == 0:
            return
        af = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(np.clip(a, -1, 1).T),
            format="fltp",
            layout="mono" if self.audio_channels == 1 else "stereo",
        )
        af.sample_rate = int(self.audio_rate or 0)
        af.pts = self._audio_pts
        af.time_base = Fraction(1, af.sample_rate)
        self._audio_pts += len(a)
        for pkt in self._as.encode(af):
            self._c.mux(pkt)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        try:
            if exc_type is None:
                for pkt in self._vs.encode():
                    self._c.mux(pkt)
                if self._as is not None:
                    for pkt in self._as.encode():
                        self._c.mux(pkt)
            self._c.close()
        finally:
            self._ctx.__exit__(exc_type, exc, tb)


def write_video(
    path: str | os.PathLike[str],
    frames: np.ndarray | Iterable[np.ndarray],
    fps: float | Fraction,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    video_codec: str | None = None,
    crf: int = 18,
) -> Path:
    """Write RGB frames (``uint8[T, H, W, 3]`` or an iterable of ``[H, W, 3]``) and optional audio
    (``float32[n]`` mono or ``[n, 2]`` stereo in [-1, 1] at ``sample_rate``) to a video file, atomically."""
    it = iter(frames)
    try:
        first = np.asarray(next(it))
    except StopIteration:
        raise ValueError(f"{path}: no frames to write") from None
    if first.ndim != 3:
        raise ValueError(f"{path}: frames must be [H, W, 3] each, got {list(first.shape)}")
    channels = 1 if audio is None or np.asarray(audio).ndim == 1 else int(np.asarray(audio).shape[1])
    with VideoWriter(
        path,
        fps,
        first.shape[1],
        first.shape[0],
        audio_rate=sample_rate if audio is not None else None,
        audio_channels=channels,
        video_codec=video_codec,
        crf=crf,
    ) as w:
        w.add_frame(first)
        for f in it:
            w.add_frame(np.asarray(f))
        if audio is not None:
            w.add_audio(audio)
    return Path(path)
