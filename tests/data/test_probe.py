"""Media probing with PyAV on real files: tiny generated clips, a corrupt file, the 16 conformance clips."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import soundfile as sf
from corpus_fixtures import kit_root, write_corrupt, write_video
from PIL import Image

from emollm.media.probe import probe, probe_many


def test_probe_reads_a_real_clip(tmp_path):
    info = probe(write_video(tmp_path / "a.mp4", n_frames=12, size=48, fps=6))
    assert info.ok and info.error is None
    assert (info.width, info.height, info.fps, info.n_frames) == (48, 48, 6.0, 12)
    assert info.n_frames_exact
    assert info.duration == pytest.approx(2.0, abs=1 / 6)
    assert info.has_video and info.has_audio and info.audio_sr == 16000
    assert info.summary()["n_frames"] == 12


def test_probe_video_without_audio(tmp_path):
    info = probe(write_video(tmp_path / "silent.avi", audio=False))
    assert info.ok and info.has_video and not info.has_audio and info.audio_sr is None


def test_probe_never_raises_for_bad_files(tmp_path):
    bad = probe(write_corrupt(tmp_path / "bad.mp4"))
    assert not bad.ok and bad.error
    missing = probe(tmp_path / "nope.mp4")
    assert not missing.ok and "not found" in missing.error
    (tmp_path / "empty.mp4").write_bytes(b"")
    assert not probe(tmp_path / "empty.mp4").ok
    (tmp_path / "bad.png").write_bytes(b"\x89PNG not really")
    assert not probe(tmp_path / "bad.png").ok


def test_probe_audio_and_image(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(8000, dtype=np.float32), 16000)
    a = probe(tmp_path / "a.wav")
    assert a.ok and a.has_audio and not a.has_video and a.audio_sr == 16000
    assert a.duration == pytest.approx(0.5, abs=0.01)
    Image.new("RGB", (20, 10)).save(tmp_path / "i.png")
    im = probe(tmp_path / "i.png")
    assert im.ok and (im.width, im.height) == (20, 10)


def test_probe_many_keeps_order(tmp_path):
    good = write_video(tmp_path / "g.mp4")
    bad = write_corrupt(tmp_path / "b.mp4")
    infos = probe_many([good, bad, good], workers=2, progress=False)
    assert [i.ok for i in infos] == [True, False, True]


def test_conformance_videos_probe_ok():
    root = kit_root()
    if root is None or not (root / "media" / "manifest.csv").is_file():
        pytest.skip("conformance kit absent")
    rows = list(csv.DictReader(open(root / "media" / "manifest.csv", encoding="utf-8")))
    assert len(rows) == 16
    infos = probe_many([root / r["file"] for r in rows], workers=2, progress=False)
    for r, info in zip(rows, infos, strict=True):
        assert info.ok, (r["name"], info.error)
        fps = float(r["fps"])
        assert info.fps == pytest.approx(fps, abs=1e-3)
        assert (info.width, info.height) == (int(r["width"]), int(r["height"]))
        assert info.n_frames == int(r["n_video_frames"])
        # duration is the container's (ffprobe's duration_s); the video stream alone lasts n_frames / fps
        assert info.duration == pytest.approx(int(r["n_video_frames"]) / fps, abs=1.01 / fps)
        assert abs(info.duration - float(r["duration_s"])) < 0.1
        assert info.has_audio and info.audio_sr == int(r["audio_sr"])


def test_probe_rejects_a_100_byte_wav_with_an_intact_header(tmp_path):
    """Issue 13 item 13: 0.00175 s of audio behind a valid header is not a clip."""
    sf.write(tmp_path / "full.wav", np.zeros(16000, dtype=np.int16), 16000, subtype="PCM_16")
    (tmp_path / "short.wav").write_bytes((tmp_path / "full.wav").read_bytes()[:100])
    assert probe(tmp_path / "full.wav").ok
    info = probe(tmp_path / "short.wav")
    assert not info.ok and "0.00175 s of audio" in info.error and "at least 0.05 s" in info.error
    assert probe(tmp_path / "short.wav", min_duration=0.001).ok  # the threshold is a parameter


def test_probe_rejects_an_mp4_missing_its_last_bytes(tmp_path):
    """Issue 13 item 13: a truncated MP4 (moov at the end or mdat at the end) is not ok."""
    good = write_video(tmp_path / "a.mp4", n_frames=12, size=48, fps=6)
    data = good.read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[:-40])
    info = probe(tmp_path / "cut.mp4")
    assert not info.ok and "truncated" in info.error and "last 40 bytes are missing" in info.error


def test_probe_decodes_to_the_end(tmp_path):
    """Broken data near the end of a clip (after the first frames) is caught: every frame is decoded."""
    data = bytearray(write_video(tmp_path / "a.mp4", n_frames=12, size=48, fps=6).read_bytes())
    moov = data.find(b"moov") - 4
    assert moov > data.find(b"mdat") > 0  # the sample data sits before the index
    data[moov - 600 : moov - 8] = np.random.default_rng(0).integers(0, 256, 592, dtype=np.uint8).tobytes()
    (tmp_path / "tail.mp4").write_bytes(bytes(data))
    assert probe(tmp_path / "tail.mp4", decode=False).ok  # the headers alone look fine
    info = probe(tmp_path / "tail.mp4")
    assert not info.ok and info.error
