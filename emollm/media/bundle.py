"""``MediaBundle``: the one loader every encoder input goes through, for one sample.

    bundle = MediaBundle({"video": "clip.mp4"}, peak_index=12, noise=NoiseSpec(seed=0))
    bundle = MediaBundle.from_sample(sample, manifest.root)      # peak_index from sample.meta
    if bundle.available("audio"):
        wave = bundle.get(MediaRequest("audio"))                  # float32[n], 16 kHz mono
    faces = bundle.get(MediaRequest("faces", n_frames=8))         # uint8[8, 224, 224, 3]
    bundle.source_files("faces")                                  # [Path("clip.mp4")] for cache keys
    bundle.variant(request)                                       # non-file settings for cache keys
    bundle.report                                                 # face-detection stats, notes, noise

What ``get`` returns (the encoder contract in ``emollm/encoders/base.py``):

- ``audio``: the audio file if the sample has one, else the video's sound track; mono ``float32[n]``
  in [-1, 1] at ``request.sample_rate``, cut to ``request.max_seconds``. A video without a track raises
  ``NoAudioError`` (check ``available("audio")`` first to treat the modality as absent).
- ``frames``: ``uint8[n_frames, H, W, 3]`` chosen by ``request.selection`` from the video (see
  ``video.py``; ``peak`` uses the bundle's ``peak_index`` or the deviation proxy). For a still image,
  the image repeated ``n_frames`` times (every selection rule picks the same picture).
- ``faces``: those frames through ``face.crop_faces`` (``face_size`` square, ``face_margin``); the
  detection count per request goes to ``report["faces"]``.

With a ``NoiseSpec`` the sample's draw (keyed by ``key``, default the media file stem) is applied:
babble on the waveform before truncation, pyramid blur on the selected frames before face detection
(the original blurs the whole video; blurring is per frame, so this is the same apart from the
original's lossy re-encode). Decoded media are memoised inside the bundle, so several encoders on one
sample decode once; returned arrays are shared with that memo and must not be modified in place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emollm.media.audio import NoAudioError, has_audio, load_audio
from emollm.media.face import FaceDetector, crop_faces
from emollm.media.image import load_image
from emollm.media.noise import NoiseSpec, blur_frames, corrupt_audio
from emollm.media.video import read_frames

if TYPE_CHECKING:
    from emollm.data.sample import Sample
    from emollm.encoders.base import MediaRequest

MEDIA_KINDS = ("video", "audio", "image")


class MediaBundle:
    """Decoded media of one sample, served per ``MediaRequest`` and memoised."""

    def __init__(
        self,
        media: Mapping[str, str | os.PathLike[str]],
        peak_index: int | None = None,
        noise: NoiseSpec | None = None,
        key: str | None = None,
        face_size: int = 224,
        face_margin: float = 0.1,
        detector: FaceDetector | None = None,
    ) -> None:
        bad = [k for k in media if k not in MEDIA_KINDS]
        if bad:
            raise ValueError(f"unknown media kind(s) {bad}; expected some of {MEDIA_KINDS}")
        self.paths: dict[str, Path] = {k: Path(v) for k, v in media.items() if v is not None}
        for kind, p in self.paths.items():
            if not p.is_file():
                raise FileNotFoundError(f"{kind} file not found: {p}")
        self.peak_index = None if peak_index is None else int(peak_index)
        self.noise = noise
        first = next((self.paths[k] for k in MEDIA_KINDS if k in self.paths), None)
        self.key = key or (first.stem if first is not None else "")
        self.draw = noise.draw(self.key) if noise is not None else None
        self.face_size = int(face_size)
        self.face_margin = float(face_margin)
        self.detector = detector
        self._memo: dict[tuple[Any, ...], Any] = {}
        self.report: dict[str, Any] = {"faces": {}, "notes": []}
        if noise is not None and self.draw is not None:
            self.report["noise"] = {"spec": noise.describe(), **self.draw.meta()}

    @classmethod
    def from_sample(
        cls, sample: Sample, root: str | os.PathLike[str] | None, noise: NoiseSpec | None = None, **kw: Any
    ) -> MediaBundle:
        """Bundle for a manifest row: media paths resolved against ``root``, ``meta["peak_index"]`` used."""
        from emollm.data.sample import resolve_media

        peak = sample.meta.get("peak_index")
        if peak is not None:
            try:
                peak = int(peak)
            except (TypeError, ValueError):
                raise ValueError(f"sample {sample.id!r}: meta.peak_index {peak!r} is not an integer") from None
        return cls(resolve_media(sample, root), peak_index=peak, noise=noise, key=sample.id, **kw)

    # ------------------------------------------------------------------------------------------ queries

    def available(self, kind: str) -> bool:
        """Whether ``get`` can serve ``kind`` (audio: an audio file, or a video with a sound track)."""
        if kind == "audio":
            if "audio" in self.paths:
                return True
            if "video" not in self.paths:
                return False
            if ("has_audio",) not in self._memo:
                self._memo[("has_audio",)] = has_audio(self.paths["video"])
            return bool(self._memo[("has_audio",)])
        if kind in ("frames", "faces"):
            return "video" in self.paths or "image" in self.paths
        if kind == "features":
            return False
        raise ValueError(f"unknown input kind {kind!r}; expected audio, frames, faces or features")

    def source_files(self, kind: str) -> list[Path]:
        """The files whose content determines input ``kind`` (for content-hash cache keys)."""
        if kind == "audio":
            src = self.paths.get("audio") or self.paths.get("video")
        elif kind in ("frames", "faces"):
            src = self.paths.get("video") or self.paths.get("image")
        elif kind == "features":
            return []
        else:
            raise ValueError(f"unknown input kind {kind!r}; expected audio, frames, faces or features")
        return [src] if src is not None else []

    def variant(self, request: MediaRequest) -> str:
        """Everything besides file content and the request that shapes ``get(request)``: the peak index
        (frames/faces with ``peak``), face crop settings and the noise spec. Goes into cache keys."""
        parts = [request.describe()]
        if request.kind in ("frames", "faces") and request.selection == "peak":
            parts.append(f"peak={self.peak_index if self.peak_index is not None else 'deviation'}")
        if request.kind == "faces":
            parts.append(f"face{self.face_size}m{self.face_margin:g}")
        if self.noise is not None and request.kind != "features":
            parts.append(self.noise.describe())
        return "|".join(parts)

    # ------------------------------------------------------------------------------------------ loading

    def get(self, request: MediaRequest) -> np.ndarray:
        """Decoded input for one encoder request (shapes in the module docstring)."""
        if request.kind == "audio":
            return self._audio(request.sample_rate, request.max_seconds)
        if request.kind == "frames":
            return self._frames(request.n_frames, request.selection)
        if request.kind == "faces":
            return self._faces(request.n_frames, request.selection)
        raise ValueError(f"input kind {request.kind!r} is not decoded from media (precomputed features)")

    def _audio(self, rate: int, max_seconds: float | None) -> np.ndarray:
        key = ("audio", rate)
        if key not in self._memo:
            src = self.paths.get("audio") or self.paths.get("video")
            if src is None:
                raise NoAudioError(f"sample {self.key!r} has neither an audio file nor a video")
            wave = load_audio(src, rate)
            if self.draw is not None:
                wave = corrupt_audio(wave, self.draw, rate)
            self._memo[key] = wave
        wave = self._memo[key]
        return wave[: int(round(max_seconds * rate))] if max_seconds else wave

    def _image(self) -> np.ndarray:
        """The still image (blurred when noise says so), ``uint8[1, H, W, 3]``."""
        if ("image",) not in self._memo:
            img = load_image(self.paths["image"])[None]
            if self.draw is not None and self.draw.blur != 1:
                img = blur_frames(img, self.draw.blur)
            self._memo[("image",)] = img
        return self._memo[("image",)]

    def _frames(self, n: int, selection: str) -> np.ndarray:
        key = ("frames", n, selection)
        if key not in self._memo:
            if "video" in self.paths:
                clip = read_frames(self.paths["video"], n, selection, self.peak_index)  # type: ignore[arg-type]
                frames = clip.frames
                for note in clip.notes:
                    self.report["notes"].append(f"{self.paths['video'].name}: {note}")
                if clip.peak_source is not None:
                    self.report["peak"] = {"source": clip.peak_source, "indices": clip.indices}
                if self.draw is not None and self.draw.blur != 1:
                    frames = blur_frames(frames, self.draw.blur)
            elif "image" in self.paths:
                frames = np.repeat(self._image(), n, axis=0)
            else:
                raise ValueError(f"sample {self.key!r} has no video or image for frames")
            self._memo[key] = frames
        return self._memo[key]

    def _faces(self, n: int, selection: str) -> np.ndarray:
        key = ("faces", n, selection)
        if key not in self._memo:
            if "video" not in self.paths and "image" in self.paths:  # detect once, repeat
                fc = crop_faces(self._image(), self.face_size, self.face_margin, self.detector)
                crops = np.repeat(fc.crops, n, axis=0)
            else:
                fc = crop_faces(self._frames(n, selection), self.face_size, self.face_margin, self.detector)
                crops = fc.crops
            self.report["faces"][f"{selection}x{n}"] = fc.summary()
            if fc.detected == 0:
                self.report["notes"].append(f"no face detected in {fc.n_frames} frame(s); centre crops used")
            self._memo[key] = crops
        return self._memo[key]

    def face_stats(self) -> dict[str, int]:
        """Totals over every faces request so far: frames, detected, neighbour, centre."""
        tot = {"frames": 0, "detected": 0, "neighbour": 0, "centre": 0}
        for s in self.report["faces"].values():
            for k in tot:
                tot[k] += s[k]
        return tot
