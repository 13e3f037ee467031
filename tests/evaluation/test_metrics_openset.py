"""MER2024 MER-OV: the official test vector, the list-parsing quirk, and grouping files built in tmp_path."""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path

import numpy as np
import pytest

from emollm.answers import parse_emotion_list as parse_openset
from emollm.answers import parse_grouping
from emollm.evaluation.metrics.openset import load_synonym_groupings, ov_gpt_scores, synonym_map
from emollm.evaluation.score import score

OFFICIAL = (0.581777108433735, 0.4977911646586345, 0.5397841365461847)


def _write(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["name", "openset"])
        w.writerows(rows)
    return path


def _npy_bytes(text: str) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, np.array(text))
    return buf.getvalue()


def test_official_mer2024_ov_vector(conformance: Path) -> None:
    d = conformance / "mer2024_ov"
    r = score("ov", d / "check-openset.csv", d / "predict-openset.csv", synonyms=d / "openset-synonym.zip")
    assert r["n"] == 332
    assert r["accuracy_s"] == pytest.approx(OFFICIAL[0], abs=1e-12)
    assert r["recall_s"] == pytest.approx(OFFICIAL[1], abs=1e-12)
    assert r["avg"] == r["score"] == pytest.approx(OFFICIAL[2], abs=1e-12)
    assert r["list_style"] == "mer2024" and r["n_unused_groupings"] == 0


def test_clean_mode_reads_apostrophes(conformance: Path) -> None:
    """The one prediction with an apostrophe ("don't believe") is split by the published rule only."""
    d = conformance / "mer2024_ov"
    r = score(
        "ov", d / "check-openset.csv", d / "predict-openset.csv", synonyms=d / "openset-synonym.zip", mode="clean"
    )
    assert r["list_style"] == "clean"
    assert r["score"] != pytest.approx(OFFICIAL[2], abs=1e-6)
    assert abs(r["score"] - OFFICIAL[2]) < 0.005


def test_list_styles() -> None:
    assert parse_openset("['Happy', 'sad']", "mer2024") == ["happy", "sad"]
    assert parse_openset("[happy, sad]", "mer2024") == ["happy, sad"]  # the published quirk: one token
    assert parse_openset("""["don't know", 'sad']""", "mer2024") == ["don", "t know", "sad"]
    assert parse_openset("[]", "mer2024") == []
    with pytest.raises(ValueError, match="not a bracketed list"):
        parse_openset("happy, sad", "mer2024")
    for text in ("['Happy', 'sad']", "[happy, sad]", "happy, sad", " [ 'happy' ,sad ] "):
        assert parse_openset(text, "clean") == ["happy", "sad"]
        assert [w.lower() for w in parse_openset(text, "affectgpt")] == ["happy", "sad"]
    assert parse_openset("", "clean") == [] and parse_openset("[]", "clean") == []
    assert parse_openset("""["don't know"]""", "clean") == ["don't know"]
    with pytest.raises(ValueError, match="unbalanced"):
        parse_openset("['happy', 'sad'", "clean")
    with pytest.raises(ValueError, match="nested"):
        parse_openset("[['happy'], ['sad']]", "clean")


def test_grouping_parse_and_map() -> None:
    groups = parse_grouping("[['joyful', 'happy'], ['sad'], ['Calm', 'relaxed']]")
    assert groups == [["joyful", "happy"], ["sad"], ["Calm", "relaxed"]]
    assert synonym_map(groups) == {
        "joyful": "joyful",
        "happy": "joyful",
        "sad": "sad",
        "Calm": "Calm",
        "relaxed": "Calm",
    }


def test_pure_scores_by_hand() -> None:
    gold = {"a": ["happy", "sad"], "b": ["angry"], "c": ["calm"]}
    pred = {"a": ["joyful"], "b": ["angry", "bored"], "c": []}
    groups = {"a": [["happy", "joyful"], ["sad"]], "b": [["angry"], ["bored"]], "c": [["calm"]]}
    m = ov_gpt_scores(gold, pred, groups)
    assert m["precision"] == [1.0, 0.5, 0.0] and m["recall"] == [0.5, 1.0, 0.0]
    assert (
        m["accuracy_s"] == pytest.approx(0.5) and m["recall_s"] == pytest.approx(0.5) and m["avg"] == pytest.approx(0.5)
    )


@pytest.fixture
def ov_files(tmp_path: Path) -> Path:
    _write(tmp_path / "gold.csv", [("s1", "['happy', 'sad']"), ("s2", "['angry']")])
    _write(tmp_path / "pred.csv", [("s1", "['joyful']"), ("s2", "['mad', 'tired']"), ("s9", "['x']")])
    with zipfile.ZipFile(tmp_path / "groups.zip", "w") as z:
        z.writestr("openset-synonym/s1.npy", _npy_bytes("[['happy', 'joyful'], ['sad']]"))
        z.writestr("openset-synonym/s2.npy", _npy_bytes("[['angry', 'mad'], ['tired']]"))
        z.writestr("openset-synonym/s7.npy", _npy_bytes("[['x']]"))
    return tmp_path


def test_zip_and_folder_groupings_agree(ov_files: Path) -> None:
    r = score("ov", ov_files / "gold.csv", ov_files / "pred.csv", synonyms=ov_files / "groups.zip")
    # s1: P={happy} G={happy,sad}: p 1, r .5; s2: P={angry,tired} G={angry}: p .5, r 1
    assert (r["accuracy_s"], r["recall_s"], r["score"]) == (0.75, 0.75, 0.75)
    assert r["n_extra_pred"] == 1 and r["n_unused_groupings"] == 1
    folder = ov_files / "groups"
    folder.mkdir()
    for name, text in load_synonym_groupings(ov_files / "groups.zip").items():
        (folder / f"{name}.npy").write_bytes(_npy_bytes(text))
    assert score("ov", ov_files / "gold.csv", ov_files / "pred.csv", synonyms=folder)["score"] == 0.75


def test_ov_errors(ov_files: Path) -> None:
    gold, pred, groups = ov_files / "gold.csv", ov_files / "pred.csv", ov_files / "groups.zip"
    _write(ov_files / "gold3.csv", [("s1", "['happy']"), ("s3", "['sad']")])
    # published: s3 has no cached grouping, so the official loop never sees it (nor needs its prediction)
    r = score("ov", ov_files / "gold3.csv", pred, synonyms=groups)
    assert r["n"] == 1 and r["n_skipped_no_grouping"] == 1 and r["skipped_no_grouping"] == ["s3"]
    with pytest.raises(ValueError, match=r"no prediction for 1 gold name\(s\).*'s3'"):
        score("ov", ov_files / "gold3.csv", pred, synonyms=groups, mode="clean")
    _write(ov_files / "pred3.csv", [("s1", "['happy']"), ("s3", "['sad']")])
    with pytest.raises(ValueError, match=r"no cached grouping for 1 gold name\(s\): 's3'"):
        score("ov", ov_files / "gold3.csv", ov_files / "pred3.csv", synonyms=groups, mode="clean")
    _write(ov_files / "empty.csv", [("s1", "[]"), ("s2", "['angry']")])
    with pytest.raises(ValueError, match=r"empty.csv: row 2, column openset: empty gold list"):
        score("ov", ov_files / "empty.csv", pred, synonyms=groups)
    _write(ov_files / "unq.csv", [("s1", "happy, sad"), ("s2", "angry")])
    with pytest.raises(ValueError, match=r"unq.csv: row 2, column openset: .*not a bracketed list"):
        score("ov", gold, ov_files / "unq.csv", synonyms=groups)
    assert score("ov", gold, ov_files / "unq.csv", synonyms=groups, mode="clean")["n"] == 2
    (ov_files / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a zip file"):
        score("ov", gold, pred, synonyms=ov_files / "bad.zip")
    with pytest.raises(FileNotFoundError, match="synonym groupings not found"):
        score("ov", gold, pred, synonyms=ov_files / "nope.zip")
    with pytest.raises(ValueError, match="missing required key 'synonyms'"):
        score("ov", gold, pred)
