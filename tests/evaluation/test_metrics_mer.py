"""MER2023 / MER2024 scores: the constant-prediction vectors of the conformance kit and the name rules per split."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from emollm.evaluation.metrics.mer import mer2023_metrics, overall_metric
from emollm.evaluation.score import score


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _gold(conformance: Path, split: str) -> list[dict[str, str]]:
    with open(conformance / "mer2023" / f"{split}-label.csv", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_overall_metric_and_pure_function() -> None:
    assert overall_metric(0.8, 0.4) == pytest.approx(0.7)
    m = mer2023_metrics(["happy", "sad"], ["happy", "happy"], [1.0, -2.0], [1.0, 0.0])
    assert m["mse"] == 2.0 and m["combined"] == pytest.approx(m["waf"] - 0.5)
    with pytest.raises(ValueError, match="both gold and predicted valences"):
        mer2023_metrics(["happy"], ["happy"], [1.0], None)


@pytest.mark.parametrize(
    "key",
    [
        "test1_all_neutral_valence0",
        "test1_all_angry_valence0",
        "test1_oracle",
        "test2_all_neutral_valence0",
        "test2_all_angry_valence0",
        "test2_oracle",
        "test3_all_sad",
    ],
)
def test_constant_prediction_vectors(conformance: Path, tmp_path: Path, key: str) -> None:
    exp = json.loads((conformance / "mer2023" / "expected.json").read_text())["constant_prediction_test_vectors"][key]
    split = key.split("_")[0]
    rows = _gold(conformance, split)
    if key.endswith("oracle"):
        pred = [[r["name"], r["discrete"], r["valence"]] for r in rows]
    else:
        pred = [[r["name"], key.split("_")[2], "" if split == "test3" else "0"] for r in rows]
    pred_csv = _write(tmp_path / "pred.csv", ["name", "discrete", "valence"], pred)
    r = score("mer2023", conformance / "mer2023" / f"{split}-label.csv", pred_csv, split=split)
    assert r["waf"] == pytest.approx(exp["WAF"], abs=1e-12)
    if "accuracy" in exp:
        assert r["accuracy"] == pytest.approx(exp["accuracy"], abs=1e-12)
    if split == "test3":
        assert r["score"] == r["waf"] and "mse" not in r and r["n"] == 834
    else:
        assert r["mse"] == pytest.approx(exp["MSE"], abs=1e-12)
        assert r["score"] == r["combined"] == pytest.approx(exp["combined_WAF_minus_0.25MSE"], abs=1e-12)


@pytest.fixture
def small(tmp_path: Path) -> Path:
    _write(
        tmp_path / "gold.csv",
        ["name", "discrete", "valence"],
        [["s1", "happy", "2.0"], ["s2", "sad", "-1.5"], ["s3", "angry", "-3"]],
    )
    return tmp_path


def test_test1_needs_same_names_and_valences(small: Path) -> None:
    gold = small / "gold.csv"
    extra = _write(
        small / "extra.csv",
        ["name", "discrete", "valence"],
        [["s1", "happy", "1"], ["s2", "sad", "0"], ["s3", "sad", "0"], ["s9", "sad", "0"]],
    )
    with pytest.raises(ValueError, match=r"1 name\(s\) not in the gold file.*'s9'.*same names"):
        score("mer2023", gold, extra, split="test1")
    missing = _write(small / "missing.csv", ["name", "discrete", "valence"], [["s1", "happy", "1"], ["s2", "sad", "0"]])
    with pytest.raises(ValueError, match=r"no prediction for 1 gold name\(s\).*'s3'"):
        score("mer2023", gold, missing, split="test2")
    noval = _write(
        small / "noval.csv",
        ["name", "discrete", "valence"],
        [["s1", "happy", "1"], ["s2", "sad", ""], ["s3", "sad", "0"]],
    )
    with pytest.raises(ValueError, match=r"noval.csv: row 3, column valence: empty"):
        score("mer2023", gold, noval, split="test1")
    nocol = _write(small / "nocol.csv", ["name", "discrete"], [["s1", "happy"], ["s2", "sad"], ["s3", "sad"]])
    with pytest.raises(ValueError, match=r"nocol.csv: missing column valence"):
        score("mer2023", gold, nocol, split="test1")
    with pytest.raises(ValueError, match="split"):
        score("mer2023", gold, gold)


def test_test3_allows_extra_predictions(small: Path) -> None:
    pred = _write(
        small / "pool.csv",
        ["name", "discrete"],
        [["u1", "neutral"], ["s3", "angry"], ["s2", "sad"], ["s1", "sad"], ["u2", "happy"]],
    )
    r = score("mer2023", small / "gold.csv", pred, split="test3")
    assert r["n"] == 3 and r["n_extra_pred"] == 2
    assert r["accuracy"] == pytest.approx(2 / 3)
    r24 = score("mer2024", small / "gold.csv", pred)
    assert r24["score"] == r["score"] and r24["n_extra_pred"] == 2


def test_unknown_labels_published_error_clean_unparsed(small: Path) -> None:
    pred = _write(
        small / "pred.csv",
        ["name", "discrete", "valence"],
        [["s1", "Happiness", "2"], ["s2", "", "-1.5"], ["s3", "bored", "-3"]],
    )
    with pytest.raises(ValueError, match=r"pred.csv: row 2, column discrete: predicted label 'Happiness'"):
        score("mer2023", small / "gold.csv", pred, split="test1")
    r = score("mer2023", small / "gold.csv", pred, split="test1", mode="clean")
    assert r["mode"] == "clean"
    assert r["n_unparsed"] == 2 and r["accuracy"] == pytest.approx(1 / 3)  # 'Happiness' read as happy
    assert r["mse"] == 0.0 and r["score"] == pytest.approx(r["waf"])


def test_gold_label_must_be_known(small: Path, tmp_path: Path) -> None:
    gold = _write(tmp_path / "badgold.csv", ["name", "discrete", "valence"], [["s1", "joyous", "1"]])
    pred = _write(tmp_path / "p.csv", ["name", "discrete", "valence"], [["s1", "happy", "1"]])
    with pytest.raises(ValueError, match=r"badgold.csv: row 2, column discrete: gold label 'joyous'"):
        score("mer2023", gold, pred, split="test1")
