"""Video metadata, frame selection and decoding on clips written with emollm's own PyAV writer."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from emollm.media.frames import segment_indices, select_indices
from emollm.media.video import MediaError, estimate_peak_index, read_frames, video_info
from emollm.media.video_write import default_video_codec, write_video


def index_frames(n: int, h: int = 48, w: int = 64) -> np.ndarray:
    """Frame i is uniformly grey at level 8 + 10 * i, so the decoded brightness reveals the index."""
    return np.stack([np.full((h, w, 3), 8 + 10 * i, np.uint8) for i in range(n)])


def decoded_index(frame: np.ndarray) -> int:
    return int(round((float(frame.mean()) - 8) / 10))


def test_default_codec_is_encodable() -> None:
    assert default_video_codec() in ("libx264", "mpeg4")


def test_write_then_read_metadata(tmp_path: Path, tone) -> None:
    p = write_video(tmp_path / "a.mp4", index_frames(20), 10, audio=tone(440, 44100, 2.0), sample_rate=44100)
    info = video_info(p)
    assert (info.width, info.height, info.fps, info.n_frames) == (64, 48, 10.0, 20)
    assert info.frame_count_source == "packets"
    assert info.has_audio and info.audio_sample_rate == 44100 and info.audio_codec == "aac"
    assert abs(info.duration_s - 2.0) <= 0.1


def test_decoded_frames_are_the_selected_ones(tmp_path: Path) -> None:
    p = write_video(tmp_path / "a.mp4", index_frames(20), 10)
    clip = read_frames(p, 4, "uniform")
    assert clip.frames.shape == (4, 48, 64, 3) and clip.frames.dtype == np.uint8
    assert clip.indices == [0, 6, 13, 19]
    assert [decoded_index(f) for f in clip.frames] == clip.indices
    assert clip.times == pytest.approx([i / 10 for i in clip.indices], abs=1e-6)
    seg = read_frames(p, 4, "segments")
    assert [decoded_index(f) for f in seg.frames] == seg.indices == segment_indices(20, 4)


def test_selection_rules() -> None:
    assert select_indices(10, 3, "first") == [0, 1, 2]
    assert select_indices(10, 3, "middle") == [4, 5, 6]
    assert select_indices(10, 3, "peak", peak_index=9) == [7, 8, 9]
    assert select_indices(10, 1, "peak", peak_index=42) == [9]  # clamped
    assert select_indices(3, 5, "uniform") == [0, 0, 1, 2, 2]
    assert select_indices(2, 4, "first") == [0, 1, 1, 1]
    # Emotion-LLaMA VideoMAE test sampling: 8 segments x 2, tick = (N - 1) / 8, offset int(tick/2 + tick*i)
    tick = (100 - 1) / 8
    exp = [q for i in range(8) for q in (int(tick / 2 + tick * i), int(tick / 2 + tick * i) + 1)]
    assert segment_indices(100, 16) == exp
    assert len(segment_indices(5, 16)) == 16 and max(segment_indices(5, 16)) <= 4  # short clip: no all-zero offsets
    assert segment_indices(5, 16)[-1] == 4
    with pytest.raises(ValueError, match="peak_index"):
        select_indices(10, 1, "peak")
    with pytest.raises(ValueError, match="unknown frame selection"):
        select_indices(10, 1, "random")  # type: ignore[arg-type]


def test_peak_estimated_from_deviation_and_given(tmp_path: Path) -> None:
    frames = np.full((15, 48, 64, 3), 100, np.uint8)
    frames[:, 20:28, 28:36] = 140
    frames[11, 8:40, 8:56] = 250  # the "most expressive" frame: far from the median frame
    p = write_video(tmp_path / "peak.mp4", frames, 10)
    assert estimate_peak_index(p) == 11
    clip = read_frames(p, 3, "peak")
    assert clip.indices == [10, 11, 12] and clip.peak_source == "deviation"
    given = read_frames(p, 1, "peak", peak_index=4)
    assert given.indices == [4] and given.peak_source == "given"
    clamped = read_frames(p, 1, "peak", peak_index=99)
    assert clamped.indices == [14] and clamped.notes


def test_variable_frame_rate_counts_frames_not_time(tmp_path: Path) -> None:
    import av

    p = tmp_path / "vfr.mkv"
    pts_ms = [0, 40, 80, 300, 340, 900, 940]  # irregular gaps
    with av.open(str(p), "w") as c:
        s = c.add_stream(default_video_codec(), rate=25)
        s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(pts_ms):
            f = av.VideoFrame.from_ndarray(index_frames(len(pts_ms))[i], format="rgb24")
            f.pts, f.time_base = t, Fraction(1, 1000)
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    assert video_info(p).n_frames == 7
    clip = read_frames(p, 7, "uniform")
    assert clip.indices == list(range(7))
    assert [decoded_index(f) for f in clip.frames] == list(range(7))
    assert clip.times == pytest.approx([t / 1000 for t in pts_ms], abs=2e-3)


def test_header_frame_count_not_trusted(tmp_path: Path) -> None:
    p = write_video(tmp_path / "a.mkv", index_frames(9), 10)  # Matroska records no frame count
    assert video_info(p, count=False).frame_count_source in ("estimate", "container")
    info = video_info(p)
    assert info.n_frames == 9 and info.frame_count_source == "packets"
    assert read_frames(p, 2, "uniform").indices == [0, 8]


def test_odd_size_is_padded_and_codec_choice(tmp_path: Path) -> None:
    p = write_video(tmp_path / "odd.mp4", np.full((3, 33, 45, 3), 90, np.uint8), 5, video_codec="mpeg4")
    info = video_info(p)
    assert (info.width, info.height, info.video_codec) == (46, 34, "mpeg4")


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        video_info(tmp_path / "nope.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 10)
    with pytest.raises(MediaError, match="bad.mp4"):
        read_frames(bad, 1)
    with pytest.raises(ValueError, match="frame 0 must be"):
        write_video(tmp_path / "x.mp4", np.zeros((2, 8, 8), np.float32)[..., None].repeat(3, -1), 5)
    assert not (tmp_path / "x.mp4").exists()  # atomic: nothing left behind


def test_failed_writer_leaves_no_temporary_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_video(tmp_path / "x.mp4", index_frames(2), 10, video_codec="no-such-codec")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="unsupported video suffix"):
        write_video(tmp_path / "x.gifv", index_frames(2), 10)
