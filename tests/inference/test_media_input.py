"""media_input: kinds, data URLs, strict base64, media-root containment, probing limits, uploads."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from emollm.inference.media_input import (
    MediaInputError,
    MediaWorkspace,
    UploadStore,
    b64decode_strict,
    check_media,
    kind_for_path,
    make_sample,
    mime_suffix,
    parse_data_url,
    resolve_in_root,
)


def _wav(path: Path, seconds: float, rate: int = 16000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    sf.write(path, (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    return path


def test_kinds_and_mime_types() -> None:
    assert kind_for_path("a/b.MP4") == "video"
    assert kind_for_path("x.wav") == "audio"
    assert kind_for_path("x.jpeg") == "image"
    with pytest.raises(MediaInputError, match="unsupported media suffix") as e:
        kind_for_path("notes.txt")
    assert e.value.status == 415
    assert mime_suffix("video", "video/mp4") == ("video", ".mp4")
    assert mime_suffix(None, "image/png") == ("image", ".png")
    assert mime_suffix("audio", "video/mp4") == ("audio", ".mp4")  # a video's sound track as audio-only input
    with pytest.raises(MediaInputError, match="carries 'audio/wav'"):
        mime_suffix("video", "audio/wav")
    with pytest.raises(MediaInputError, match="unsupported media type 'application/pdf'") as e:
        mime_suffix("video", "application/pdf")
    assert e.value.code == "unsupported_media_type"


def test_data_urls_and_strict_base64() -> None:
    raw = bytes(range(256))
    b64 = base64.b64encode(raw).decode()
    assert parse_data_url(f"data:video/mp4;base64,{b64}") == ("video/mp4", raw)
    assert parse_data_url(f"data:audio/wav;codecs=1;base64,{b64}")[1] == raw
    assert b64decode_strict(base64.urlsafe_b64encode(raw).decode()) == raw
    assert b64decode_strict(b64[:40] + "\n" + b64[40:]) == raw
    for bad in ("data:video/mp4,abc", "data:;base64,AAAA", "video/mp4;base64,AAAA"):
        with pytest.raises(MediaInputError) as e:
            parse_data_url(bad)
        assert e.value.code == "invalid_data_url"
    for bad in ("@@@@", "AAA", ""):
        with pytest.raises(MediaInputError) as e:
            b64decode_strict(bad, "part")
        assert e.value.code == "invalid_base64" and e.value.status == 400


def test_resolve_in_root_refuses_escapes(tmp_path: Path) -> None:
    root = tmp_path / "media"
    (root / "sub").mkdir(parents=True)
    clip = _wav(root / "sub" / "a.wav", 0.1)
    secret = tmp_path / "secret.wav"
    secret.write_bytes(b"x")
    os.symlink(secret, root / "link.wav")
    os.symlink(root / "sub", root / "dirlink")
    assert resolve_in_root("sub/a.wav", root) == clip.resolve()
    assert resolve_in_root(str(clip), root) == clip.resolve()
    assert resolve_in_root(f"file://{clip}", root) == clip.resolve()
    assert resolve_in_root("dirlink/a.wav", root) == clip.resolve()  # a symlink that stays inside is fine
    for bad, code in (
        ("../secret.wav", "path_outside_media_root"),
        ("sub/../../secret.wav", "path_outside_media_root"),
        (str(secret), "path_outside_media_root"),
        ("link.wav", "path_outside_media_root"),  # symlink resolved before the check
        ("file://evil.host/x.wav", "invalid_path"),
        ("sub/missing.wav", "media_not_found"),
    ):
        with pytest.raises(MediaInputError) as e:
            resolve_in_root(bad, root)
        assert e.value.code == code, bad
    with pytest.raises(MediaInputError) as e:
        resolve_in_root("sub/a.wav", None)
    assert e.value.status == 403 and e.value.code == "paths_disabled"


def test_check_media_probes_kind_and_duration(tmp_path: Path) -> None:
    wav = _wav(tmp_path / "a.wav", 2.0)
    info = check_media(wav, "audio", max_seconds=5)
    assert info.has_audio and info.duration == pytest.approx(2.0, abs=0.05)
    with pytest.raises(MediaInputError, match="limit is 1 s") as e:
        check_media(wav, "audio", max_seconds=1)
    assert e.value.code == "media_too_long"
    with pytest.raises(MediaInputError, match="no video stream"):
        check_media(wav, "video")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 50)
    with pytest.raises(MediaInputError, match="cannot decode the video") as e:
        check_media(junk, "video", where="part[0]")
    assert str(junk) not in str(e.value)  # server paths never echoed back
    img = tmp_path / "face.png"
    Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(img)
    assert check_media(img, "image").width == 32


def test_workspace_and_sample(tmp_path: Path) -> None:
    with MediaWorkspace(tmp_path) as ws:
        a = ws.write("audio", b"abc", ".wav")
        b = ws.write("audio", b"abc", ".wav")
        assert a != b and a.parent == b.parent == ws.path
        s = make_sample({"audio": a}, subtitle="  hi there ", sample_id="x")
        assert s.media["audio"] == str(a.resolve()) and s.subtitle == "hi there"
    assert not ws.path.exists()
    with pytest.raises(FileNotFoundError):
        make_sample({"video": tmp_path / "nope.mp4"})


def test_upload_store_ids_kinds_and_eviction(tmp_path: Path) -> None:
    store = UploadStore(tmp_path / "up", max_files=2)
    f1 = store.add("../../evil name.wav", b"RIFF", "audio/wav")
    assert f1.kind == "audio" and f1.path.parent == tmp_path / "up" and f1.filename == "evil name.wav"
    assert f1.id.startswith("file-") and store.get(f1.id) is f1
    f2 = store.add("clip.mp4", b"x", "application/octet-stream")  # kind from the suffix
    assert f2.kind == "video"
    f3 = store.add("face.png", b"x", None)
    assert [f.id for f in store.list()] == [f2.id, f3.id] and not f1.path.exists()
    with pytest.raises(MediaInputError) as e:
        store.get(f1.id)
    assert e.value.status == 404
    with pytest.raises(MediaInputError) as e:
        store.add("notes.txt", b"x", "text/plain")
    assert e.value.status == 415
    store.delete(f2.id)
    assert not f2.path.exists()
