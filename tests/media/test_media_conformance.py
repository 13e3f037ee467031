"""Conformance: decode the real Emotion-LLaMA demo clips and check them against media/manifest.csv.

Skipped when the shared conformance kit is absent (``EMOLLM_CONFORMANCE`` or ../shared/conformance).
"""

from __future__ import annotations

import csv

import numpy as np
import pytest

from emollm.media.audio import load_audio
from emollm.media.video import read_frames, video_info
from emollm.paths import conformance_root


def _rows() -> list[dict[str, str]]:
    root = conformance_root()
    if root is None or not (root / "media" / "manifest.csv").is_file():
        return []
    with open(root / "media" / "manifest.csv", encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


ROWS = _rows()


@pytest.mark.skipif(not ROWS, reason="conformance kit (media/manifest.csv) not present")
@pytest.mark.parametrize("row", ROWS, ids=[r["name"] for r in ROWS])
def test_conformance_clip(row: dict[str, str]) -> None:
    root = conformance_root()
    assert root is not None
    path = root / row["file"]
    info = video_info(path)
    fps = float(row["fps"])
    assert info.fps == pytest.approx(fps, abs=1e-3)
    assert (info.width, info.height) == (int(row["width"]), int(row["height"]))
    assert info.n_frames == int(row["n_video_frames"])
    assert abs(info.duration_s - float(row["duration_s"])) <= 1 / fps
    assert info.has_audio == bool(int(row["has_audio"]))
    assert info.audio_sample_rate == int(row["audio_sr"]) and info.audio_channels == int(row["audio_channels"])
    clip = read_frames(path, 2, "first")
    assert clip.frames.shape == (2, info.height, info.width, 3) and clip.frames.std() > 1  # real picture
    wave = load_audio(path, 16000)
    assert wave.dtype == np.float32 and np.abs(wave).max() <= 1.0 and np.abs(wave).max() > 0.01
    assert abs(len(wave) / 16000 - info.duration_s) < 0.1


@pytest.mark.skipif(not ROWS, reason="conformance kit (media/manifest.csv) not present")
def test_conformance_full_decode_matches_packet_count() -> None:
    """Decode every frame of the two shortest clips: the decoder yields exactly the counted frames."""
    root = conformance_root()
    assert root is not None
    for row in sorted(ROWS, key=lambda r: float(r["duration_s"]))[:2]:
        n = int(row["n_video_frames"])
        clip = read_frames(root / row["file"], 3, "uniform")
        assert clip.indices[0] == 0 and clip.indices[-1] == n - 1
        assert clip.n_total == n and not clip.notes
