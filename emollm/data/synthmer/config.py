"""``SynthMERConfig``: every knob of the SynthMER generator (sizes, media format, modality reliabilities).

    cfg = SynthMERConfig()                     # the demo default: 600 / 120 / 240 clips
    cfg = SynthMERConfig.tiny()                # 12 / 6 / 6 short clips for tests (about a second)
    cfg = SynthMERConfig(n_train=50, write_media=False)   # annotations only (fast statistics)

The config (and the generator version) is written into ``SYNTHMER.json``; together with the seed it
determines every output byte.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from emollm.config import Strict


class SynthMERConfig(Strict):
    n_train: int = Field(600, ge=0)
    n_val: int = Field(120, ge=0)
    n_test: int = Field(240, ge=0)
    seed: int = Field(0, ge=0)

    fps: int = Field(8, ge=1, le=60)
    """Video frame rate."""
    min_seconds: float = Field(1.5, gt=0, le=30)
    max_seconds: float = Field(2.5, gt=0, le=30)
    """Each clip's duration is drawn uniformly in [min_seconds, max_seconds] (whole frames)."""
    image_size: int = Field(128, ge=48, le=512)
    """Square frame side in pixels (even)."""
    sample_rate: int = Field(16000, ge=8000, le=48000)
    video_codec: Literal["mpeg4", "libx264"] = "mpeg4"
    """mpeg4 (MPEG-4 Part 2, fixed quantiser 3) encodes several times faster than libx264 (CRF 18)."""
    audio_bitrate: int = Field(64000, ge=16000, le=256000)
    pixel_noise: float = Field(2.0, ge=0, le=20)
    """Standard deviation of the sensor noise added to every frame (0..255 scale)."""

    n_speakers: int = Field(12, ge=1, le=99)
    """Synthetic speakers, alternating F/M."""
    unseen_test_speakers: int = Field(2, ge=0)
    """The last speakers of the roster appear in the test split only (test draws from all speakers)."""

    face_reliability: float = Field(0.65, ge=0, le=1)
    audio_reliability: float = Field(0.6, ge=0, le=1)
    text_reliability: float = Field(0.5, ge=0, le=1)
    """Probability that a modality expresses the true label; otherwise it expresses a confusable
    emotion (``cues.CONFUSIONS``). With the defaults each single-modality ceiling equals its reliability
    and the fused ceiling is 0.889."""

    peak_min: float = Field(0.7, ge=0.3, le=1)
    peak_max: float = Field(1.0, ge=0.3, le=1)
    """The facial expression's peak intensity is drawn in [peak_min, peak_max]. Below 0.7 the set of
    AUs above threshold may depend on the intensity, not only on the expressed emotion."""

    write_media: bool = True
    """False: write annotations only (no video/), for fast statistics over large generations."""

    @model_validator(mode="after")
    def _check(self) -> SynthMERConfig:
        if self.n_train + self.n_val + self.n_test == 0:
            raise ValueError("n_train + n_val + n_test must be at least 1")
        if self.min_seconds > self.max_seconds:
            raise ValueError(f"min_seconds ({self.min_seconds}) must not exceed max_seconds ({self.max_seconds})")
        if round(self.min_seconds * self.fps) < 3:
            raise ValueError(f"clips need at least 3 frames: min_seconds * fps = {self.min_seconds * self.fps:g}")
        if self.image_size % 2:
            raise ValueError(f"image_size must be even (yuv420 video), got {self.image_size}")
        if self.unseen_test_speakers >= self.n_speakers:
            raise ValueError(
                f"unseen_test_speakers ({self.unseen_test_speakers}) must be below n_speakers ({self.n_speakers})"
            )
        if self.peak_min > self.peak_max:
            raise ValueError(f"peak_min ({self.peak_min}) must not exceed peak_max ({self.peak_max})")
        return self

    @property
    def reliability(self) -> dict[str, float]:
        return {"face": self.face_reliability, "audio": self.audio_reliability, "text": self.text_reliability}

    @classmethod
    def tiny(cls, **overrides: Any) -> SynthMERConfig:
        """12 / 6 / 6 clips of 1-1.5 s: every file format in about a second (tests)."""
        base: dict[str, Any] = {"n_train": 12, "n_val": 6, "n_test": 6, "min_seconds": 1.0, "max_seconds": 1.5}
        return cls(**(base | overrides))
