"""Emotion-wheel resources and EW metrics against emotion_wheel/expected.json and the mer2024_ov regression values."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from emollm.evaluation.metrics.wheel import (
    WHEELS,
    fscore,
    load_wheel,
    load_wheel_mapping_npz,
    metric_names,
    set_scores,
)
from emollm.evaluation.score import score

VERSIONS = [("affectgpt2025", "ew25"), ("mer2026", "ew26")]


@pytest.fixture(scope="module")
def wheel_expected(conformance: Path) -> dict:
    return json.loads((conformance / "emotion_wheel" / "expected.json").read_text())


@pytest.mark.parametrize(("version", "key"), VERSIONS)
def test_counts_and_roots(conformance: Path, wheel_expected: dict, version: str, key: str) -> None:
    exp = wheel_expected["expected_counts_and_mappings"][key]
    w = load_wheel(conformance / "emotion_wheel", version)
    assert len(w.format_mapping) == exp["n_format_mapping_keys"]  # 7,386 / 7,356
    assert len(w.raw_mapping) == exp["n_synonym_mapping_keys"] == 1255
    assert len(w.wheel_words) == exp["n_unique_wheel_words_all_levels"] == 253
    for name in WHEELS:
        e = exp["wheels"][name]
        assert w.roots[name] == e["level1_roots"]
        assert len(w.level2_words[name]) == e["n_level2"]
        assert len(w.wheel_maps[name]["level1"]) == e["n_keys_level1_map"]
        assert len(w.wheel_maps[name]["level2"]) == e["n_keys_level2_map"]


@pytest.mark.parametrize(("version", "key"), VERSIONS)
def test_word_tables(conformance: Path, wheel_expected: dict, version: str, key: str) -> None:
    exp = wheel_expected["expected_counts_and_mappings"][key]
    w = load_wheel(conformance / "emotion_wheel", version)
    assert {word: w.m1(word) or "" for word in exp["M1"]} == exp["M1"]
    assert {word: w.m2(word) or "" for word in exp["M2"]} == exp["M2"]
    for level in (1, 2):
        table = exp[f"M3_level{level}"]
        got = {word: [w.m3(word, name, f"level{level}") or "" for name in WHEELS] for word in table}
        assert got == table
    # the version trap and the always-dropped neutral
    fear = [w.map_word("fear", f"M3_W{k}_L1") for k in range(1, 6)]
    if version == "affectgpt2025":
        assert fear == ["scared", "happy", "joyful", "genius", "joyful"]
    else:
        assert fear == ["scared", "fearful", "scared", "fear", "scared"]
    assert all(w.map_word(" Neutral ", m) is None for m in metric_names())


def test_npz_equals_maps_rebuilt_from_files(conformance: Path) -> None:
    w = load_wheel(conformance / "emotion_wheel", "mer2026")
    npz = load_wheel_mapping_npz(conformance / "emotion_wheel" / "mer2026" / "wheel_mapping.npz")
    assert npz["format_mapping"] == w.format_mapping  # same lists, same order, duplicates included
    assert {k: sorted(v) for k, v in npz["raw_mapping"].items()} == w.raw_mapping  # lists built from sets upstream
    assert npz["wheel_map_whole"] == w.wheel_maps


@pytest.mark.parametrize("version", ["affectgpt2025", "mer2026"])
def test_ew_regression_values(conformance: Path, version: str) -> None:
    d = conformance / "mer2024_ov"
    reg = json.loads((d / "expected.json").read_text())["regression_values_emotion_wheel"][f"{version}_resources"]
    r = score(
        "wheel",
        d / "check-openset.csv",
        d / "predict-openset.csv",
        wheel=conformance / "emotion_wheel",
        wheel_version=version,
    )
    for name in metric_names():
        for k in ("F", "P", "R"):
            assert r[name][k] == pytest.approx(reg[name][k], abs=1e-12), (name, k)
        assert r[name]["n_scored"] == reg[name]["n_scored"]
    for name in ("EW_L1_mean", "EW_L2_mean"):
        for k in ("F", "P", "R"):
            assert r[name][k] == pytest.approx(reg[name][k], abs=1e-12)
    assert r["M_avg_12"] == pytest.approx(reg["M_avg_12"], abs=1e-12)
    assert r["score"] == r["EW_L1_mean"]["F"]
    level2 = score(
        "wheel",
        d / "check-openset.csv",
        d / "predict-openset.csv",
        wheel=conformance / "emotion_wheel" / version,
        wheel_version=version,
        level=2,
        mode="clean",
    )
    assert level2["score"] == pytest.approx(reg["EW_L2_mean"]["F"], abs=1e-12)  # well-formed lists: clean == published


def test_checksums_are_enforced(conformance: Path, tmp_path: Path) -> None:
    src = conformance / "emotion_wheel" / "affectgpt2025"
    dst = tmp_path / "affectgpt2025"
    shutil.copytree(src, dst)
    with pytest.raises(ValueError, match=r"format.csv: sha256 .* pinned mer2026"):
        load_wheel(dst, "mer2026")  # the affectgpt2025 format.csv is not the mer2026 one
    with open(dst / "format.csv", "a", encoding="utf-8") as f:
        f.write("zzz,zzz\n")
    with pytest.raises(ValueError, match=r"format.csv: sha256 .* does not match the pinned affectgpt2025"):
        load_wheel(tmp_path, "affectgpt2025")
    assert len(load_wheel(dst, "affectgpt2025", verify=False).format_mapping) == 7387
    shutil.copy(src / "format.csv", dst / "format.csv")
    assert len(load_wheel(dst, "affectgpt2025").format_mapping) == 7386
    (dst / "wheel3.xlsx").unlink()
    with pytest.raises(FileNotFoundError, match="wheel3.xlsx: missing"):
        load_wheel(dst, "affectgpt2025")
    with pytest.raises(ValueError, match="unknown emotion-wheel version 'v9'"):
        load_wheel(dst, "v9")
    with pytest.raises(FileNotFoundError, match="emotion-wheel resources not found"):
        load_wheel(tmp_path / "nowhere", "affectgpt2025")


def test_set_scores_by_hand() -> None:
    table = {"happy": "joy", "glad": "joy", "sad": "sad", "neutral": None, "angry": "anger"}
    s = set_scores([["happy", "sad"], ["neutral"], ["angry"]], [["glad"], ["happy"], []], table.get)
    # sample 2 has no mapped gold: skipped; sample 3 has no prediction: 0/0
    assert np.isnan(s.precision[1]) and s.summary()["n_scored"] == 2
    assert s.summary() == {"F": fscore(0.5, 0.25), "P": 0.5, "R": 0.25, "n_scored": 2}
    assert fscore(0.0, 0.0) == 0.0
    assert s.summary(np.array([1, 1]))["F"] == 0.0  # a resample with nothing to score
