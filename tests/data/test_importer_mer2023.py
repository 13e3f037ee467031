"""MER2023 importer: label CSVs and label-6way.npz give the same map; conformance counts; bad rows reported."""

from __future__ import annotations

import json

import numpy as np
import pytest
from corpus_fixtures import kit_root, run, write_corrupt, write_csv, write_video


def _fixture(root):
    write_csv(
        root / "train-label.csv",
        ["name", "discrete", "valence"],
        [["s1", "happy", "1.0"], ["s2", "Angry", "-2.25"], ["s3", "bored", "0"], ["s4", "sad", "oops"]],
    )
    write_csv(root / "test3-label.csv", ["name", "discrete", "valence"], [["n1", "worried", ""]])
    write_csv(
        root / "transcription-engchi-polish.csv",
        ["name", "chinese", "english"],
        [["s1", "你好", "Hello."], ["n1", "嗯", "Hm."]],
    )
    corpus = {"s1": {"emo": "happy", "val": 1.0}, "s2": {"emo": "angry", "val": -2.25}}
    np.savez(root / "label-6way.npz", train_corpus=corpus, test3_corpus={"n1": {"emo": "worried", "val": -10}})
    write_video(root / "train" / "s1.avi")
    write_corrupt(root / "train" / "s2.mp4")  # exists: import keeps it; the probe in prepare reports it
    (root / "test3").mkdir()
    return root


def test_mer2023_csv(tmp_path):
    root = _fixture(tmp_path)
    by_id, report, _ = run("mer2023", root, {"splits": ["train", "test3"]})
    assert (by_id["s1"].label, by_id["s1"].valence, by_id["s1"].subtitle) == ("happy", 1.0, "Hello.")
    assert by_id["s1"].meta["subtitle_zh"] == "你好" and by_id["s1"].media == {"video": "train/s1.avi"}
    assert by_id["s2"].label == "angry" and by_id["s2"].media == {"video": "train/s2.mp4"}
    assert by_id["n1"].split == "test3" and by_id["n1"].valence is None
    got = {(p.kind, p.file, p.row, p.field) for p in report.problems}
    assert ("unknown_label", "train-label.csv", 4, "discrete") in got
    assert ("bad_value", "train-label.csv", 5, "valence") in got
    assert ("missing_media", "train-label.csv", 4, "video") in got
    assert ("missing_media", "test3-label.csv", 2, "video") in got


def test_mer2023_npz_equals_csv_on_fixture(tmp_path):
    root = _fixture(tmp_path)
    npz, rep, _ = run("mer2023", root, {"splits": ["train", "test3"], "source": "npz", "video_dirs": []})
    assert rep.problems == []
    assert {k: (s.label, s.valence, s.split) for k, s in npz.items()} == {
        "s1": ("happy", 1.0, "train"),
        "s2": ("angry", -2.25, "train"),
        "n1": ("worried", None, "test3"),
    }


def test_mer2023_wrong_column(tmp_path):
    write_csv(tmp_path / "train-label.csv", ["name", "emotion", "valence"], [["s1", "happy", "1"]])
    by_id, report, _ = run("mer2023", tmp_path, {"splits": ["train"], "transcripts": None, "video_dirs": []})
    p = report.problems[0]
    assert (p.kind, p.file, p.row, p.field) == ("missing_column", "train-label.csv", 1, "discrete")
    assert len(report.problems) == 1  # not repeated per row
    assert by_id["s1"].label is None and by_id["s1"].valence == 1.0
    write_csv(tmp_path / "train-label.csv", ["id", "discrete"], [["s1", "happy"], ["s2", "sad"]])
    by_id, report, _ = run("mer2023", tmp_path, {"splits": ["train"], "transcripts": None, "video_dirs": []})
    assert by_id == {} and report.problems[0].kind == "missing_column" and report.n_excluded == 2


def test_mer2023_malformed_csv_rows(tmp_path):
    (tmp_path / "train-label.csv").write_text(
        'name,discrete,valence\ns1,happy,1\ns2,sad\n,neutral,0\n"s3","multi\nline",0\ns4,sadd,0\n', encoding="utf-8"
    )
    by_id, report, _ = run("mer2023", tmp_path, {"splits": ["train"], "transcripts": None, "video_dirs": []})
    got = {(p.kind, p.row) for p in report.problems}
    assert ("malformed_row", 3) in got and ("malformed_row", 4) in got  # too few fields, empty name
    assert ("unknown_label", 5) in got  # the quoted two-line label
    assert ("unknown_label", 7) in got  # s4: numbering follows file lines, not records
    assert set(by_id) == {"s1", "s3", "s4"}


def _kit():
    root = kit_root()
    if root is None or not (root / "mer2023" / "label-6way.npz").is_file():
        pytest.skip("conformance kit absent")
    return root / "mer2023"


def test_conformance_mer2023_csv_and_npz_agree_and_match_expected(tmp_path):
    kit = _kit()
    expected = json.loads((kit / "expected.json").read_text())
    csv_s, csv_rep, _ = run("mer2023", kit, {"video_dirs": []}, out=tmp_path)
    npz_s, npz_rep, _ = run("mer2023", kit, {"source": "npz", "video_dirs": []}, out=tmp_path)
    assert csv_rep.problems == [] and npz_rep.problems == []
    as_map = lambda d: {k: (s.split, s.label, s.valence) for k, s in d.items()}  # noqa: E731
    assert as_map(csv_s) == as_map(npz_s)
    assert len(csv_s) == 5030
    for split, exp in expected["splits"].items():
        rows = [s for s in csv_s.values() if s.split == split]
        assert len(rows) == exp["n"]
        counts = {}
        for s in rows:
            counts[s.label] = counts.get(s.label, 0) + 1
        assert counts == exp["class_counts"]
        vals = [s.valence for s in rows if s.valence is not None]
        assert bool(vals) == exp["valence_present"]
        if vals:
            assert (min(vals), max(vals)) == (exp["valence_min"], exp["valence_max"])
        assert rows[0].id == exp["first_name"] and rows[-1].id == exp["last_name"]
    assert csv_s["sample_00005854"].subtitle.startswith("Out of all the jerks")
    assert csv_s["sample_00005854"].meta["subtitle_zh"]
