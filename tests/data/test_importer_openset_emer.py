"""MER2024, OV-MERD and EMER importers on fixtures in their real formats, plus the conformance files."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from corpus_fixtures import kit_root, run, write_csv, write_video

from emollm.answers import parse_emotion_list
from emollm.data.importers.base import read_table


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("['Happy', 'relieved']", ["happy", "relieved"]),
        ("[happy, relieved]", ["happy", "relieved"]),
        ("happy, relieved", ["happy", "relieved"]),
        ("[\"don't know\", 'calm']", ["don't know", "calm"]),
        ("happy，calm", ["happy", "calm"]),
        ("[]", []),
        ("", []),
        ("['a', 'a']", ["a"]),
    ],
)
def test_parse_openset(text, words):
    assert parse_emotion_list(text, "clean") == words


def test_mer2024_labels_openset_and_videos(tmp_path):
    write_csv(tmp_path / "label-disdim.csv", ["name", "discrete", "valence"], [["a", "happy", "1"], ["b", "sad", "-1"]])
    write_csv(tmp_path / "test1_name_convert_label.csv", ["name", "discrete"], [["t1", "worried"], ["t2", "disgust"]])
    write_csv(tmp_path / "ov.csv", ["name", "openset"], [["a", "['joyful', 'excited']"], ["z", "calm, bored"]])
    write_video(tmp_path / "video-labeled" / "a.mp4")
    by_id, report, _ = run(
        "mer2024",
        tmp_path,
        {
            "labels": {"train": "label-disdim.csv", "test1": "test1_name_convert_label.csv"},
            "openset": {"ov": "ov.csv"},
            "video_dirs": ["video-labeled"],
        },
    )
    assert by_id["a"].openset == ["joyful", "excited"] and by_id["a"].split == "train"
    assert by_id["a"].valence == 1.0 and by_id["a"].media == {"video": "video-labeled/a.mp4"}
    assert by_id["z"].split == "ov" and by_id["z"].label is None and by_id["z"].openset == ["calm", "bored"]
    assert by_id["t1"].label == "worried" and by_id["t1"].valence is None
    got = {(p.kind, p.file, p.row) for p in report.problems}
    assert ("unknown_label", "test1_name_convert_label.csv", 3) in got
    assert ("missing_media", "label-disdim.csv", 3) in got  # b
    assert ("missing_file", "video-unlabeled-with-test2noise", None) not in got  # not listed in video_dirs


def test_ovmerd_with_descriptions(tmp_path):
    write_csv(tmp_path / "check-openset.csv", ["name", "openset"], [["a", "[happy, calm]"], ["a", "[sad]"]])
    write_csv(tmp_path / "desc.csv", ["name", "chinese", "english"], [["a", "他很开心", "He is happy."]])
    by_id, report, _ = run("ovmerd", tmp_path, {"descriptions": "desc.csv"})
    assert by_id["a"].openset == ["happy", "calm"] and by_id["a"].fine == "He is happy."
    assert by_id["a"].meta["fine_zh"] == "他很开心" and by_id["a"].split == "test"
    assert [(p.kind, p.row) for p in report.problems] == [("duplicate_id", 3)]


def test_emer_v1_chinese_labels_and_v2(tmp_path):
    write_csv(
        tmp_path / "gt-chi.csv",
        ["names", "emotions", "subtitles", "reasons"],
        [["a", "担忧", "字幕", "理由"], ["b", "生气", "", "因为"], ["c", "无聊", "", ""]],
    )
    write_csv(tmp_path / "v2.csv", ["name", "chinese", "english"], [["d", "描述", "A description."]])
    by_id, report, _ = run("emer", tmp_path, {"files": {"test": "gt-chi.csv", "v2": "v2.csv"}})
    assert by_id["a"].label == "worried" and by_id["b"].label == "angry"
    assert by_id["a"].subtitle == "字幕" and by_id["b"].subtitle is None and by_id["a"].fine == "理由"
    assert by_id["d"].fine == "A description." and by_id["d"].meta["fine_zh"] == "描述" and by_id["d"].label is None
    assert [(p.kind, p.file, p.row) for p in report.problems] == [("unknown_label", "gt-chi.csv", 4)]


def _kit(*parts):
    root = kit_root()
    if root is None or not root.joinpath(*parts).is_file():
        pytest.skip("conformance kit absent")
    return root


def test_conformance_emer_counts(tmp_path):
    root = _kit("emer", "expected.json")
    exp = json.loads((root / "emer" / "expected.json").read_text())
    v1 = exp["dataset-v1"]
    eng, rep, _ = run(
        "emer",
        root / "emer",
        {"files": {"test": "dataset-v1/gt-eng.csv"}, "chinese": {"test": "dataset-v1/gt-chi.csv"}},
        out=tmp_path,
    )
    assert rep.problems == [] and len(eng) == v1["rows"]
    assert Counter(s.label for s in eng.values()) == v1["emotions_eng_counts"]
    assert sum(s.subtitle is None for s in eng.values()) == v1["empty_subtitles"]
    assert all(s.fine and s.meta.get("fine_zh") for s in eng.values())
    chi, rep, _ = run("emer", root / "emer", {"files": {"test": "dataset-v1/gt-chi.csv"}}, out=tmp_path)
    assert rep.problems == []
    assert {k: s.label for k, s in chi.items()} == {k: s.label for k, s in eng.items()}  # Chinese labels map
    v2, rep, _ = run("emer", root / "emer", {"files": {"test": "dataset-v2/final-EMER-reason.csv"}}, out=tmp_path)
    assert rep.problems == [] and len(v2) == exp["dataset-v2"]["rows"]
    assert all(s.fine and s.meta["fine_zh"] for s in v2.values())
    if exp["dataset-v2"]["all_names_in_mer2023_train"] and (root / "mer2023" / "train-label.csv").is_file():
        train = {line.split(",")[0] for line in (root / "mer2023" / "train-label.csv").read_text().splitlines()[1:]}
        assert set(v2) <= train and set(eng) <= train


def test_conformance_emer_files_columns_and_rows(tmp_path):
    root = _kit("emer", "expected.json")
    exp = json.loads((root / "emer" / "expected.json").read_text())
    ctx = run("custom_csv", tmp_path, {"csv": "none.csv"})[2]  # a context whose report we can inspect
    files = {
        "dataset-v1/gt-eng.csv": exp["dataset-v1"],
        "dataset-v1/gt-chi.csv": exp["dataset-v1"],
        "dataset-v2/final-EMER-reason.csv": exp["dataset-v2"],
    }
    files |= {f"baseline_results-v1/{k}": v for k, v in exp["baseline_results-v1"].items()}
    names_v1 = None
    for rel, e in files.items():
        n_before = len(ctx.report.problems)
        table = read_table(ctx, root / "emer" / rel, id_cols=("names", "name"))
        assert len(ctx.report.problems) == n_before, rel
        assert table.header == e["columns"] and len(table.records) == e["rows"], rel
        names = [r[table.id_col] for _, r in table.rows()]
        if rel == "dataset-v1/gt-eng.csv":
            names_v1 = names
        elif rel.startswith("baseline_results-v1/") or rel == "dataset-v1/gt-chi.csv":
            assert set(names) == set(names_v1), rel


def test_conformance_mer2024_openset_files(tmp_path):
    root = _kit("mer2024_ov", "check-openset.csv")
    for fname in ("check-openset.csv", "predict-openset.csv"):
        by_id, rep, _ = run("ovmerd", root / "mer2024_ov", {"files": {"test": fname}}, out=tmp_path)
        assert rep.problems == [] and len(by_id) == 332
    gold, _, _ = run("ovmerd", root / "mer2024_ov", {}, out=tmp_path)
    assert gold["sample_00000007"].openset == ["excited", "joyful", "happy"]
    assert all(isinstance(s.openset, list) for s in gold.values())
    if (root / "emer" / "dataset-v2" / "final-EMER-reason.csv").is_file():
        desc = str(root / "emer" / "dataset-v2" / "final-EMER-reason.csv")
        both, rep, _ = run("ovmerd", root / "mer2024_ov", {"descriptions": desc}, out=tmp_path)
        assert rep.problems == [] and all(s.fine for s in both.values())  # same 332 names
    # the same file as MER2024's open-set track attaches to nothing else and creates 332 samples
    ov, rep, _ = run(
        "mer2024",
        root / "mer2024_ov",
        {"labels": {}, "openset": {"ov": "check-openset.csv"}, "video_dirs": []},
        out=tmp_path,
    )
    assert rep.problems == [] and len(ov) == 332
