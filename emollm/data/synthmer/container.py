"""Write one SynthMER clip (RGB frames + mono audio) as an mp4 with PyAV, deterministically.

Video: H.264 (``libx264``, single-threaded, no B-frames, CRF 18) or MPEG-4 Part 2 (``mpeg4``,
qscale 2), yuv420p, ``fps`` frames per second, frame pts 0..T-1. Audio: AAC-LC mono at the given
sample rate. Single-threaded encoders and fixed settings make the bytes a pure function of the input
(checked by the tests); the muxer writes no creation time.

    write_clip(path, frames, fps=8, audio=wav, sample_rate=16000)   # frames: uint8[T, H, W, 3]
    info = probe_clip(path)   # {"frames": T, "width": W, "height": H, "audio_rate": 16000, ...}
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
from av.codec.context import Flags

from emollm.io import atomic_path

VideoCodec = Literal["libx264", "mpeg4"]


def check_codecs(video_codec: str) -> None:
    """Raise a clear error if this PyAV build cannot encode ``video_codec`` or AAC."""
    for name in (video_codec, "aac"):
        try:
            av.codec.Codec(name, "w")
        except Exception as e:  # noqa: BLE001 - PyAV raises several types for a missing codec
            raise RuntimeError(
                f"this PyAV build (av {av.__version__}) has no {name!r} encoder ({e}); "
                "set synthmer video_codec to 'mpeg4' or install a PyAV wheel with it"
            ) from None


def write_clip(
    path: str | os.PathLike[str],
    frames: np.ndarray,
    fps: int,
    audio: np.ndarray,
    sample_rate: int,
    video_codec: VideoCodec = "libx264",
    audio_bitrate: int = 64000,
) -> None:
    """Encode ``frames`` (``uint8[T, H, W, 3]`` RGB) and ``audio`` (``float32[n]`` in [-1, 1]) to ``path``
    atomically."""
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8[T, H, W, 3], got {frames.dtype}{list(frames.shape)}")
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="mp4", options={"fflags": "+bitexact"}) as out:
            x264 = {"crf": "18", "bf": "0", "threads": "1", "preset": "veryfast"}
            vs = out.add_stream(video_codec, rate=fps, options=x264 if video_codec == "libx264" else {})
            vs.width, vs.height = int(frames.shape[2]), int(frames.shape[1])
            vs.pix_fmt = "yuv420p"
            vs.codec_context.time_base = Fraction(1, fps)
            vs.thread_count = 1
            vs.codec_context.flags |= Flags.bitexact
            if video_codec == "mpeg4":  # constant quantiser 3 (ffmpeg -qscale:v 3)
                vs.codec_context.flags |= Flags.qscale
                vs.codec_context.qmin = vs.codec_context.qmax = 3
            aus = out.add_stream("aac", rate=sample_rate, layout="mono", options={"aac_coder": "fast"})
            aus.codec_context.bit_rate = audio_bitrate
            aus.thread_count = 1
            aus.codec_context.flags |= Flags.bitexact
            for i, rgb in enumerate(frames):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
                vf.pts = i
                out.mux(vs.encode(vf))
            out.mux(vs.encode(None))
            af = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(audio, np.float32)[None, :], format="fltp", layout="mono"
            )
            af.sample_rate = sample_rate
            af.pts = 0
            out.mux(aus.encode(af))
            out.mux(aus.encode(None))


def probe_clip(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Decode a clip fully: frame count and size, audio rate, channels and decoded sample count."""
    p = Path(path)
    with av.open(str(p)) as c:
        if not c.streams.video:
            raise ValueError(f"{p}: no video stream")
        v = c.streams.video[0]
        n, size = 0, (0, 0)
        for f in c.decode(v):
            n += 1
            size = (f.width, f.height)
    info: dict[str, Any] = {"frames": n, "width": size[0], "height": size[1], "audio_rate": None, "audio_samples": 0}
    with av.open(str(p)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            info["audio_rate"] = a.rate
            info["audio_channels"] = a.channels
            info["audio_samples"] = sum(f.samples for f in c.decode(a))
    return info
