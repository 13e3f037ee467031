"""DFEW, MAFW, MER2025, EmoBench-M and MME-Emotion importers on fixtures in the released formats.

pytest tests/data/test_importer_benchmarks.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

from corpus_fixtures import run, write_video

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"


def test_dfew_folds_numbers_and_padding(tmp_path: Path) -> None:
    root = tmp_path / "dfew"
    shutil.copytree(FIX / "dfew", root)
    write_video(root / "Clip" / "original" / "00002.mp4")
    write_video(root / "Clip" / "original" / "7.mp4")  # a clip named without the padding is found too
    by_id, report, _ = run("dfew", root, {"folds": [1, 2]}, space="dfew7")
    # label k is the k-th dfew7 class: 1 happy, 2 sad, 4 angry, 3 neutral, 7 fear
    assert {k: (s.split, s.label) for k, s in by_id.items()} == {
        "00001": ("fold1", "happy"),
        "00002": ("fold1", "sad"),
        "00003": ("fold1", "sad"),
        "00004": ("fold1", "angry"),
        "00005": ("fold1", None),
        "00006": ("fold2", "neutral"),
        "00007": ("fold2", "fear"),
    }
    assert by_id["00002"].media == {"video": "Clip/original/00002.mp4"} and by_id["00006"].meta["fold"] == 2
    assert by_id["00007"].media == {"video": "Clip/original/7.mp4"}
    got = {(p.kind, p.row, p.sample_id) for p in report.problems}
    assert ("unknown_label", 6, "00005") in got  # class 9 is outside 1..7
    assert ("duplicate_id", 4, "00001") in got  # a clip in two test sets is reported, not imported twice


def test_mafw_lists_and_label_space() -> None:
    by_id, report, _ = run("mafw", FIX / "mafw", {"folds": [1, 2], "video_dirs": []}, space="mafw11")
    assert by_id["00025"].label == "anger" and by_id["00031"].label == "helplessness"
    assert by_id["00040"].label == "happiness"  # class number 4 in MAFW's order
    assert by_id["00041"].label is None and by_id["00050"].split == "fold2"
    kinds = {(p.kind, p.row) for p in report.problems}
    assert ("unknown_label", 4) in kinds and ("malformed_row", 2) in kinds


def test_mer2025_tracks_and_candidates() -> None:
    opts = {
        "labels": {"train": "track1_train_disdim.csv", "test": "track1_test.csv"},
        "openset": {"test": "track2_test.csv"},
        "candidates": "track_all_candidates.csv",
        "video_dirs": [],
    }
    by_id, report, _ = run("mer2025", FIX / "mer2025", opts)
    a = by_id["sample_00010001"]
    assert a.label == "happy" and a.openset == ["happy", "relieved"] and a.subtitle == "I am so happy."
    assert a.meta == {"subtitle_zh": "我很高兴", "candidate": True}
    assert by_id["sample_00010004"].label == "surprise"  # 'surprised' is a synonym in mer6
    assert by_id["sample_00010005"].openset == ["angry", "sad"] and by_id["sample_00010005"].label is None
    assert by_id["sample_00010006"].split == "candidates" and by_id["sample_00000002"].valence == -1.5
    assert "candidate" not in by_id["sample_00000001"].meta
    assert not [p for p in report.problems if p.kind != "missing_file"]


def test_emobench_m_llava_json() -> None:
    by_id, report, _ = run("emobench_m", FIX / "emobench_m", {"video_root": None}, space="sentiment3")
    s = by_id["MOSI/0"]
    assert s.label == "positive" and s.subtitle == "I really loved this movie."
    assert s.meta["candidates"] == ["neutral", "negative", "positive"] and s.meta["scenario"] == "MOSI"
    assert s.meta["instruction"].startswith("The person in video says:") and "<video>" not in s.meta["instruction"]
    assert by_id["MOSI/1"].label == "negative" and by_id["MOSI/1"].meta["answer"] == "negative"
    assert "MOSI/2" not in by_id
    assert [(p.kind, p.row) for p in report.problems] == [("malformed_row", 3)]


def test_mme_emotion_tasks_clues_and_gold_parts() -> None:
    by_id, report, _ = run("mme_emotion", FIX / "mme_emotion", {"tasks": ["ER-Lab", "ML-ER"]}, space="merr9")
    lab = by_id["ER-Lab/IEMOCAP/video/Ses05M_script01_1_F034.mp4"]
    assert lab.split == "ER-Lab" and lab.label == "angry" and lab.openset == ["anger"]
    assert lab.meta["audio_clue"].startswith("The speaker's tone is raised") and len(lab.meta["candidates"]) == 9
    ml = by_id["ML-ER/MAFW/video/03419.mp4"]
    assert ml.openset == ["anger", "disgust"] and ml.label is None and ml.meta["multi_label"] is True
    assert by_id["ER-Lab/IEMOCAP/video/Ses05F_impro03_M012.mp4"].label is None  # Frustration: not in merr9
    assert len(by_id) == 5 and not report.problems
