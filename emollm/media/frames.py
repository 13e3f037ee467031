"""Frame selection: which decoded frames of a clip an encoder sees, as pure index arithmetic.

    select_indices(total=100, n=8, selection="segments")   # Emotion-LLaMA's VideoMAE sampling
    select_indices(100, 1, "peak", peak_index=42)
    peak_by_deviation(thumbs)                               # the most animated frame of grey thumbnails

The rules (uniform, first, middle, peak, segments) are described in ``emollm.media.video``, which
decodes the frames these functions choose.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from emollm.encoders.base import FrameSelection


SELECTIONS: tuple[str, ...] = ("uniform", "first", "middle", "peak", "segments")


def _window(anchor: int, n: int, total: int, centred: bool) -> list[int]:
    start = anchor - (n - 1) // 2 if centred else anchor
    start = max(0, min(start, total - n)) if total >= n else 0
    return [min(start + i, total - 1) for i in range(n)]


def segment_indices(total: int, n: int) -> list[int]:
    """Emotion-LLaMA's VideoMAE test-time sampling: ``ceil(n/2)`` segments x 2 consecutive frames."""
    segs, dur = max(1, math.ceil(n / 2)), 2
    if total > segs + dur - 1:
        tick = (total - dur + 1) / float(segs)
        offsets = [int(tick / 2.0 + tick * i) for i in range(segs)]
    else:
        offsets = np.linspace(0, max(total - dur, 0), segs).round().astype(int).tolist()
    out = []
    for p in offsets:
        out += [p, min(p + 1, total - 1)]
    return out[:n]


def select_indices(total: int, n: int, selection: FrameSelection, peak_index: int | None = None) -> list[int]:
    """The frame indices (length ``n``, possibly repeating for short clips) a selection rule keeps."""
    if total <= 0:
        raise ValueError("cannot select frames from an empty clip")
    if n <= 0:
        raise ValueError(f"n_frames must be positive, got {n}")
    if selection == "uniform":
        return np.linspace(0, total - 1, n).round().astype(int).tolist()
    if selection == "first":
        return _window(0, n, total, centred=False)
    if selection == "middle":
        return _window(total // 2, n, total, centred=True)
    if selection == "peak":
        if peak_index is None:
            raise ValueError("selection 'peak' needs a peak_index (see estimate_peak_index)")
        return _window(max(0, min(int(peak_index), total - 1)), n, total, centred=True)
    if selection == "segments":
        return segment_indices(total, n)
    raise ValueError(f"unknown frame selection {selection!r}; expected one of {', '.join(SELECTIONS)}")


def peak_by_deviation(thumbs: np.ndarray) -> int:
    """Index of the frame deviating most from the per-pixel median frame (``thumbs``: ``[N, h, w]``)."""
    x = thumbs.astype(np.float32)
    med = np.median(x, axis=0, keepdims=True)
    score = np.abs(x - med).reshape(len(x), -1).mean(1)
    return int(np.argmax(score))
