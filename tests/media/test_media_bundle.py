"""MediaBundle: the per-sample loader behind every encoder input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emollm.data.sample import Sample
from emollm.encoders.base import MediaRequest
from emollm.media.audio import NoAudioError
from emollm.media.bundle import MediaBundle
from emollm.media.noise import NoiseSpec


def test_video_sample_serves_every_kind_and_memoises(face_clip) -> None:
    path, _ = face_clip(n=12)
    b = MediaBundle({"video": path})
    assert b.available("audio") and b.available("frames") and b.available("faces") and not b.available("features")
    wave = b.get(MediaRequest("audio"))
    assert wave.dtype == np.float32 and abs(len(wave) / 16000 - 1.2) < 0.1
    assert len(b.get(MediaRequest("audio", max_seconds=0.5))) == 8000
    frames = b.get(MediaRequest("frames", n_frames=3, selection="middle"))
    assert frames.shape == (3, 144, 192, 3)
    faces = b.get(MediaRequest("faces", n_frames=4))
    assert faces.shape == (4, 224, 224, 3)
    assert b.report["faces"]["uniformx4"]["detected"] >= 3 and b.face_stats()["frames"] == 4
    assert b.get(MediaRequest("faces", n_frames=4)) is faces  # decoded once
    assert b.source_files("audio") == [path] == b.source_files("faces")
    with pytest.raises(ValueError, match="precomputed"):
        b.get(MediaRequest("features"))


def test_separate_audio_file_wins_and_silent_video_has_no_audio(tmp_path: Path, face_clip, tone) -> None:
    video, _ = face_clip(n=6, audio=False)
    b = MediaBundle({"video": video})
    assert not b.available("audio")
    with pytest.raises(NoAudioError):
        b.get(MediaRequest("audio"))
    wav = tmp_path / "speech.wav"
    sf.write(wav, tone(660, 22050, 0.5), 22050)
    b2 = MediaBundle({"video": video, "audio": wav})
    assert b2.available("audio") and b2.source_files("audio") == [wav] and b2.source_files("frames") == [video]
    assert abs(len(b2.get(MediaRequest("audio"))) - 8000) <= 2


def test_image_sample_repeats_the_picture(tmp_path: Path, astronaut: np.ndarray) -> None:
    from PIL import Image

    p = tmp_path / "face.png"
    Image.fromarray(astronaut).save(p)
    b = MediaBundle({"image": p})
    assert not b.available("audio") and b.source_files("audio") == []
    frames = b.get(MediaRequest("frames", n_frames=3, selection="peak"))
    assert frames.shape == (3, 512, 512, 3) and np.array_equal(frames[0], frames[2])
    faces = b.get(MediaRequest("faces", n_frames=2))
    assert faces.shape == (2, 224, 224, 3) and b.report["faces"]["uniformx2"]["detected"] == 1


def test_noise_is_applied_reproducibly_and_named_in_the_variant(face_clip) -> None:
    path, _ = face_clip(n=6)
    clean = MediaBundle({"video": path})
    spec = NoiseSpec(seed=0, snr_db=5, blur=4)
    noisy = MediaBundle({"video": path}, noise=spec)
    req_a, req_f = MediaRequest("audio"), MediaRequest("frames", n_frames=2)
    assert not np.array_equal(clean.get(req_a), noisy.get(req_a))
    assert np.array_equal(noisy.get(req_a), MediaBundle({"video": path}, noise=spec).get(req_a))
    a, c = noisy.get(req_f).astype(float), clean.get(req_f).astype(float)
    assert a.shape == c.shape and np.abs(np.diff(a, axis=2)).mean() < np.abs(np.diff(c, axis=2)).mean()
    assert noisy.report["noise"]["video_blur"] == 4
    assert spec.describe() in noisy.variant(req_a) and spec.describe() not in clean.variant(req_a)
    assert clean.variant(MediaRequest("faces", 1, "peak")) != MediaBundle({"video": path}, peak_index=2).variant(
        MediaRequest("faces", 1, "peak")
    )


def test_from_sample_uses_peak_index_and_checks_it(tmp_path: Path, face_clip) -> None:
    path, _ = face_clip(n=10)
    s = Sample(id="s1", media={"video": path.name}, meta={"peak_index": "7"})
    b = MediaBundle.from_sample(s, tmp_path)
    assert b.peak_index == 7 and b.key == "s1"
    b.get(MediaRequest("frames", n_frames=1, selection="peak"))
    assert b.report["peak"] == {"source": "given", "indices": [7]}
    with pytest.raises(ValueError, match="peak_index"):
        MediaBundle.from_sample(Sample(id="s2", media={"video": path.name}, meta={"peak_index": "x"}), tmp_path)
    with pytest.raises(FileNotFoundError, match="gone.mp4"):
        MediaBundle({"video": tmp_path / "gone.mp4"})
    with pytest.raises(ValueError, match="unknown media kind"):
        MediaBundle({"sound": path})
