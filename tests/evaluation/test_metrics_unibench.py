"""MER-UniBench hit rate (real emotion wheels) and binary sentiment F1, checked against hand-computed values."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from emollm.evaluation.metrics.unibench import hit_rate, sentiment_f1
from emollm.evaluation.metrics.wheel import load_wheel
from emollm.evaluation.score import score

GOLD = ["angry", "neutral", "fear", "surprise", "sad"]
PRED = [["anger", "sad"], ["happy"], ["happy"], ["sad"], []]


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_hit_rate_by_hand_affectgpt2025(conformance: Path) -> None:
    wheel = load_wheel(conformance / "emotion_wheel", "affectgpt2025")
    m = hit_rate(GOLD, PRED, wheel)
    # neutral is skipped everywhere; surprise maps to nothing on W5; fear -> happy/joyful on W2/W3 (quirk)
    per = m["per_wheel"]
    assert [per[w]["n_scored"] for w in per] == [4, 4, 4, 4, 3]
    assert [per[w]["hit_rate"] for w in per] == [0.25, 0.5, 0.5, 0.25, pytest.approx(1 / 3)]
    assert m["hit_rate"] == pytest.approx((0.25 + 0.5 + 0.5 + 0.25 + 1 / 3) / 5)


def test_hit_rate_depends_on_resource_version(conformance: Path) -> None:
    wheel = load_wheel(conformance / "emotion_wheel", "mer2026")
    per = hit_rate(GOLD, PRED, wheel)["per_wheel"]
    assert [per[w]["hit_rate"] for w in per] == [0.25, 0.25, 0.25, 0.25, pytest.approx(1 / 3)]


def test_hitrate_from_files(conformance: Path, tmp_path: Path) -> None:
    names = [f"s{i}" for i in range(len(GOLD))]
    gold = _write(tmp_path / "gold.csv", ["name", "discrete"], [[n, g] for n, g in zip(names, GOLD, strict=True)])
    pred = _write(
        tmp_path / "pred.csv",
        ["name", "openset"],
        [[n, str(p)] for n, p in zip(names, PRED, strict=True)] + [["x", "[]"]],
    )
    r = score("hitrate", gold, pred, wheel=conformance / "emotion_wheel")
    assert r["score"] == pytest.approx((0.25 + 0.5 + 0.5 + 0.25 + 1 / 3) / 5)
    assert r["n"] == 5 and r["n_extra_pred"] == 1 and r["wheel_version"] == "affectgpt2025"
    with pytest.raises(ValueError, match="unknown key 'level'"):
        score("hitrate", gold, pred, wheel=conformance / "emotion_wheel", level=2)


GV = [1.2, -0.4, 0.0, -2.0, 0.6, 2.0]
SP = ["positive", "neutral", "positive", "negative", None, "negative"]


def test_sentiment_published_counts_neutral_and_unparsed_as_negative() -> None:
    m = sentiment_f1(GV, SP, "published")
    # kept: gold +,-,-,+,+ ; pred +,0,-,0,- -> binary pred T,F,F,F,F
    assert (m["n"], m["n_zero_gold"], m["n_neutral_pred"], m["n_unparsed"]) == (5, 1, 1, 1)
    assert m["weighted_f1"] == pytest.approx((3 * 0.5 + 2 * (2 / 3)) / 5)
    assert m["accuracy"] == pytest.approx(3 / 5)


def test_sentiment_clean_counts_them_wrong() -> None:
    m = sentiment_f1(GV, SP, "clean")
    assert m["weighted_f1"] == pytest.approx(0.5)
    assert m["accuracy"] == pytest.approx(2 / 5)
    with pytest.raises(ValueError, match="non-zero gold"):
        sentiment_f1([0.0, 0.0], ["positive", "negative"])
    with pytest.raises(ValueError, match="positive/negative/neutral"):
        sentiment_f1([1.0], ["happy"])


def test_sentiment_from_files(tmp_path: Path) -> None:
    names = [f"s{i}" for i in range(len(GV))]
    gold = _write(tmp_path / "gold.csv", ["name", "valence"], [[n, v] for n, v in zip(names, GV, strict=True)])
    cells = ["Positive", "neutral", "positive", " negative ", "meh", "negative"]
    pred = _write(tmp_path / "pred.csv", ["name", "discrete"], [[n, c] for n, c in zip(names, cells, strict=True)])
    r = score("sentiment", gold, pred)
    # published is case-sensitive: 'Positive' is unreadable (0), so every kept prediction is "not positive":
    # class F (2 gold): P 2/5, R 1, F1 4/7; class T (3 gold): F1 0 -> weighted 2/5 * 4/7 = 8/35
    assert r["score"] == pytest.approx(8 / 35) and r["n_unparsed"] == 2
    assert score("sentiment", gold, pred, mode="clean")["score"] == pytest.approx(0.5)
    bad = _write(tmp_path / "bad.csv", ["name", "valence"], [["s0", "1.0"], ["s1", "high"]])
    with pytest.raises(ValueError, match=r"bad.csv: row 3, column valence: 'high' is not a number"):
        score("sentiment", bad, pred)
