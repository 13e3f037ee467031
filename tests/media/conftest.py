"""Fixtures for the media tests: real clips written with emollm's own PyAV writer into tmp_path.

- ``astronaut``: scikit-image's astronaut photo (a real smiling face) read from the installed wheel
  (located through its package spec, never imported); the test is skipped when the wheel is absent.
- ``face_clip``: a factory writing a short H.264/AAC clip in which the astronaut's face moves left to
  right over a grey background, with a tone on the sound track.
- ``tone``: a sine wave helper.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from emollm.media.face import package_data_file
from emollm.media.image import load_image
from emollm.media.video_write import write_video


def tone_wave(freq: float, sr: int, seconds: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def tone() -> Callable[..., np.ndarray]:
    return tone_wave


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    p = package_data_file("skimage", "data", "astronaut.png")
    if p is None:
        pytest.skip("scikit-image wheel (astronaut.png) not installed")
    return load_image(p)


@pytest.fixture(scope="session")
def face_patch(astronaut: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.resize(astronaut[20:220, 125:325], (96, 96), interpolation=cv2.INTER_AREA)


def moving_face_frames(patch: np.ndarray, n: int = 12, h: int = 144, w: int = 192) -> tuple[np.ndarray, np.ndarray]:
    """Frames with the face patch at x positions moving right; returns (frames, patch centre x per frame)."""
    frames = np.full((n, h, w, 3), 110, np.uint8)
    xs = np.linspace(8, w - patch.shape[1] - 8, n).round().astype(int)
    for i, x in enumerate(xs):
        frames[i, 24 : 24 + patch.shape[0], x : x + patch.shape[1]] = patch
    return frames, xs + patch.shape[1] / 2


@pytest.fixture
def face_clip(tmp_path: Path, face_patch: np.ndarray) -> Callable[..., tuple[Path, np.ndarray]]:
    """``face_clip(n=12, fps=10, audio=True, name="clip.mp4") -> (path, centre_x)``."""

    def make(n: int = 12, fps: int = 10, audio: bool = True, name: str = "clip.mp4") -> tuple[Path, np.ndarray]:
        frames, cx = moving_face_frames(face_patch, n)
        wave = tone_wave(220, 44100, n / fps) if audio else None
        p = write_video(tmp_path / name, frames, fps, audio=wave, sample_rate=44100)
        return p, cx

    return make
