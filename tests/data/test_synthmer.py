"""SynthMER end to end on the tiny config: every file, its MERR format, decodable media, determinism,
idempotence, config validation and the command line."""

from __future__ import annotations

import csv
import hashlib
import json
import re
from pathlib import Path

import av
import numpy as np
import pytest

from emollm.config import ConfigError, load_config
from emollm.data.synthmer import GENERATOR_VERSION, SynthMERConfig, generate_synthmer
from emollm.data.synthmer.__main__ import main as synthmer_main
from emollm.labels import label_space

MER6 = label_space("mer6")
ANNOTATION_FILES = [
    "train_NCEV.txt",
    "val_NCEV.txt",
    "test_NCEV.txt",
    "MERR_coarse_grained.json",
    "MERR_fine_grained.json",
    "transcription_en_all.csv",
    "synthmer_meta.csv",
    "SYNTHMER.json",
]
PRIOR_KEYS = {"AU_list", "visual_prior_list", "audio_prior_list", "peak_index", "peak_AU_list", "pseu_emotion"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SynthMERConfig, dict]:
    root = tmp_path_factory.mktemp("synthmer_tiny")
    cfg = SynthMERConfig.tiny()
    return root, cfg, generate_synthmer(root, cfg, progress=False)


def read_ncev(path: Path) -> list[tuple[str, int, str, float]]:
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        t = line.strip().split(" ")
        assert len(t) == 4, f"{path.name}:{i}: expected 4 space-separated fields, got {line!r}"
        assert re.fullmatch(r"synth_\d{6}", t[0]), t[0]
        assert MER6.normalize(t[2]) == t[2], f"{path.name}:{i}: label {t[2]!r} is not canonical mer6"
        rows.append((t[0], int(t[1]), t[2], float(t[3])))
    return rows


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_all_files_and_splits(tiny: tuple[Path, SynthMERConfig, dict]) -> None:
    root, cfg, summary = tiny
    for f in ANNOTATION_FILES:
        assert (root / f).is_file(), f
    splits = {s: read_ncev(root / f"{s}_NCEV.txt") for s in ("train", "val", "test")}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [cfg.n_train, cfg.n_val, cfg.n_test]
    names = [r[0] for rows in splits.values() for r in rows]
    assert len(names) == len(set(names)) == 24, "splits must be disjoint"
    for s, rows in splits.items():
        assert summary["counts"][s]["total"] == len(rows)
        assert set(summary["counts"][s]["labels"].values()) == {len(rows) // 6}, "labels balanced per split"
        for name, frames, label, valence in rows:
            assert round(cfg.min_seconds * cfg.fps) <= frames <= round(cfg.max_seconds * cfg.fps)
            assert -5 <= valence <= 5
            if label in ("angry", "sad", "worried"):
                assert valence < 0, (name, label, valence)
            if label == "happy":
                assert valence > 0, (name, label, valence)

    info = json.loads((root / "SYNTHMER.json").read_text())
    assert info["generator_version"] == GENERATOR_VERSION
    assert SynthMERConfig.model_validate(info["config"]) == cfg
    assert {"face", "audio", "text", "face+audio+text", "chance"} <= set(info["ceilings"])

    trans = read_csv(root / "transcription_en_all.csv")
    assert list(trans[0]) == ["name", "sentence"]
    assert sorted(r["name"] for r in trans) == sorted(names)
    assert all(r["sentence"].strip() for r in trans)
    meta = read_csv(root / "synthmer_meta.csv")
    assert list(meta[0]) == ["name", "split", "speaker", "gender", "face_cue", "audio_cue", "text_cue"]
    by_split = {r[0]: s for s, rows in splits.items() for r in rows}
    for r in meta:
        assert by_split[r["name"]] == r["split"]
        assert r["gender"] in ("F", "M") and re.fullmatch(r"spk\d{2}", r["speaker"])
        assert {r["face_cue"], r["audio_cue"], r["text_cue"]} <= set(MER6.labels)


def test_merr_json_keys_and_types(tiny: tuple[Path, SynthMERConfig, dict]) -> None:
    root, _, _ = tiny
    ncev = {r[0]: r for s in ("train", "val", "test") for r in read_ncev(root / f"{s}_NCEV.txt")}
    meta = {r["name"]: r for r in read_csv(root / "synthmer_meta.csv")}
    subs = {r["name"]: r["sentence"] for r in read_csv(root / "transcription_en_all.csv")}
    coarse = json.loads((root / "MERR_coarse_grained.json").read_text())
    fine = json.loads((root / "MERR_fine_grained.json").read_text())
    assert set(coarse) == set(fine) == set(ncev), "every clip of every split is in both files"
    for name, (_, frames, label, _) in ncev.items():
        c, f = coarse[name], fine[name]
        assert set(c) == PRIOR_KEYS | {"caption"}
        assert set(f) == PRIOR_KEYS | {"smp_reason_caption", "text"}
        for rec in (c, f):
            assert all(isinstance(a, str) and re.fullmatch(r"AU\d{2}", a) for a in rec["AU_list"] + rec["peak_AU_list"])
            assert isinstance(rec["visual_prior_list"], list) and 1 <= len(rec["visual_prior_list"]) <= 3
            assert all(isinstance(v, str) and "(" not in v for v in rec["visual_prior_list"])
            assert isinstance(rec["audio_prior_list"], str) and "." not in rec["audio_prior_list"]
            assert isinstance(rec["peak_index"], str) and 0 <= int(rec["peak_index"]) < frames
            assert isinstance(rec["pseu_emotion"], str)
        # coarse: the template, built from the cues; pseu_emotion is the face's peak emotion
        assert c["caption"].startswith("This person in the video is ")
        assert "The person's expression and actions include " in c["caption"]
        assert c["caption"].endswith(f"Saying: {subs[name]}")
        assert c["pseu_emotion"] == meta[name]["face_cue"]
        assert set(c["AU_list"]) <= set(c["peak_AU_list"])
        # fine: the subtitle, and a reasoning that ends with the true label
        assert f["text"] == subs[name]
        assert f["pseu_emotion"] == label
        last = f["smp_reason_caption"].rsplit(". ", 1)[-1]
        assert last.startswith("Taken together, the person feels ") and MER6.find_in_text(last) == label


def test_aus_match_drawn_expression(tiny: tuple[Path, SynthMERConfig, dict]) -> None:
    root, _, _ = tiny
    meta = {r["name"]: r for r in read_csv(root / "synthmer_meta.csv")}
    coarse = json.loads((root / "MERR_coarse_grained.json").read_text())
    expected = {
        "neutral": set(),
        "happy": {"AU06", "AU12", "AU25"},
        "sad": {"AU01", "AU15", "AU41"},
        "angry": {"AU04", "AU07", "AU23"},
        "worried": {"AU01", "AU05", "AU20", "AU25"},
        "surprise": {"AU01", "AU02", "AU05", "AU25", "AU26"},
    }
    for name, rec in coarse.items():
        assert set(rec["AU_list"]) == expected[meta[name]["face_cue"]], (name, rec["AU_list"])


def test_videos_decode_with_frames_and_audio(tiny: tuple[Path, SynthMERConfig, dict]) -> None:
    root, cfg, summary = tiny
    assert summary["media_stats"]["encoded"] == 24
    for s in ("train", "val", "test"):
        for name, frames, _, _ in read_ncev(root / f"{s}_NCEV.txt"):
            path = root / "video" / f"{name}.mp4"
            with av.open(str(path)) as c:
                assert len(c.streams.video) == 1 and len(c.streams.audio) == 1, path
                decoded = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
            with av.open(str(path)) as c:
                a = c.streams.audio[0]
                assert (a.rate, a.channels) == (cfg.sample_rate, 1)
                samples = sum(f.samples for f in c.decode(audio=0))
            assert len(decoded) == frames, f"{name}: decoded {len(decoded)} frames, NCEV says {frames}"
            assert decoded[0].shape == (cfg.image_size, cfg.image_size, 3)
            want = frames / cfg.fps * cfg.sample_rate
            assert want <= samples <= want + 1024, f"{name}: {samples} audio samples for {want:.0f} written"


def test_same_seed_same_bytes_and_rerun_skips(tiny: tuple[Path, SynthMERConfig, dict], tmp_path: Path) -> None:
    root, cfg, _ = tiny
    again = generate_synthmer(tmp_path, cfg, progress=False, workers=2)  # also: parallel == serial
    for f in ANNOTATION_FILES:
        assert (tmp_path / f).read_bytes() == (root / f).read_bytes(), f
    for mp4 in sorted((root / "video").glob("*.mp4")):
        assert sha(tmp_path / "video" / mp4.name) == sha(mp4), f"{mp4.name}: mp4 encoding is not deterministic"
    assert again["media_stats"]["encoded"] == 24 and again["media_stats"]["workers"] == 2

    # rerun in place: nothing re-encoded or rewritten; a damaged clip is detected and re-encoded
    mtimes = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*") if p.is_file()}
    damaged = tmp_path / "video" / "synth_000005.mp4"
    good = damaged.read_bytes()
    rerun = generate_synthmer(tmp_path, cfg, progress=False)
    assert rerun["media_stats"] == {"encoded": 0, "reused": 24, "removed_stale": 0, "workers": 1}
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes
    damaged.write_bytes(good[: len(good) // 2])
    fixed = generate_synthmer(tmp_path, cfg, progress=False)
    assert fixed["media_stats"]["encoded"] == 1 and damaged.read_bytes() == good

    # a smaller generation in the same folder removes the clips it no longer lists
    small = generate_synthmer(tmp_path, SynthMERConfig.tiny(n_train=6), progress=False)
    assert small["media_stats"]["removed_stale"] == 6
    assert len(list((tmp_path / "video").glob("*.mp4"))) == 18


def test_different_seed_differs(tmp_path: Path) -> None:
    a = generate_synthmer(tmp_path / "a", SynthMERConfig.tiny(write_media=False), progress=False)
    b = generate_synthmer(tmp_path / "b", SynthMERConfig.tiny(seed=1, write_media=False), progress=False)
    assert a["ceilings"] == b["ceilings"]
    for f in ("train_NCEV.txt", "MERR_coarse_grained.json", "MERR_fine_grained.json", "synthmer_meta.csv"):
        assert (tmp_path / "a" / f).read_bytes() != (tmp_path / "b" / f).read_bytes(), f
    assert not (tmp_path / "a" / "video").exists()


def test_decoded_frames_deterministic_per_clip(tiny: tuple[Path, SynthMERConfig, dict], tmp_path: Path) -> None:
    """Growing the test split leaves the train and val clips byte-for-byte unchanged."""
    root, cfg, _ = tiny
    generate_synthmer(tmp_path, cfg.model_copy(update={"n_test": 12}), progress=False)
    for name in ("synth_000000", "synth_000011", "synth_000017"):
        with av.open(str(root / "video" / f"{name}.mp4")) as c1, av.open(str(tmp_path / "video" / f"{name}.mp4")) as c2:
            f1 = np.stack([f.to_ndarray() for f in c1.decode(video=0)])
            f2 = np.stack([f.to_ndarray() for f in c2.decode(video=0)])
        assert np.array_equal(f1, f2)


def test_config_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="min_seconds"):
        SynthMERConfig(min_seconds=3, max_seconds=2)
    with pytest.raises(ValueError, match="even"):
        SynthMERConfig(image_size=101)
    with pytest.raises(ValueError, match="unseen_test_speakers"):
        SynthMERConfig(n_speakers=2, unseen_test_speakers=2)
    p = tmp_path / "synthmer.yaml"
    p.write_text("n_train: 5\nface_reliabilty: 0.5\n")
    with pytest.raises(ConfigError, match="face_reliability"):
        load_config(SynthMERConfig, p)


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = synthmer_main([str(tmp_path), "--tiny", "--no-media", "--quiet", "--set", "n_test=12"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out)
    assert out["counts"]["test"]["total"] == 12
    assert len((tmp_path / "test_NCEV.txt").read_text().splitlines()) == 12
    assert synthmer_main([str(tmp_path), "--set", "n_tran=1"]) == 2
