"""Published scoring, character for character (issue 13 items 16-18), on real files and hand-checked values.

- 16: MER-UniBench sentiment is case-sensitive in published mode, case-folded in clean mode.
- 17: MER2024-OV reads an empty cell, or one pandas reads as missing, as an empty list; a gold name
  without a cached grouping is skipped; checked against pandas itself and an independent transcription
  of the official loop.
- 18: where the official code yields NaN, the result says ``undefined`` with a reason and the report
  prints it instead of 0.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from pathlib import Path

import numpy as np
import pytest

from emollm.answers import MISSING_CELLS, parse_emotion_list, read_openset, read_sentiment
from emollm.evaluation.readers import read_openset_csv
from emollm.evaluation.render import _metric_rows, summary_rows
from emollm.evaluation.score import score


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _npy(text: str) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.array(text))
    return buf.getvalue()


# ------------------------------------------------------------------------------------------ item 16


def test_sentiment_reader_published_is_case_sensitive_clean_folds() -> None:
    assert read_sentiment(" positive\n", "published") == "positive"
    assert read_sentiment("Positive", "published") is None
    assert read_sentiment("NEGATIVE", "published") is None
    assert read_sentiment("neutral.", "published") is None
    assert read_sentiment("Positive", "clean") == "positive"
    assert read_sentiment("NEGATIVE.", "clean") == "negative"
    assert read_sentiment("'neg'", "clean") == "negative"
    assert read_sentiment("meh", "clean") is None and read_sentiment(None, "clean") is None


def test_sentiment_score_published_vs_clean(tmp_path: Path) -> None:
    gold = _csv(tmp_path / "gold.csv", ["name", "valence"], [["a", "1.5"], ["b", "-2"]])
    pred = _csv(tmp_path / "pred.csv", ["name", "discrete"], [["a", "Positive"], ["b", "negative"]])
    pub = score("sentiment", gold, pred)
    # published: 'Positive' is unreadable -> 0 -> not positive. y_true T,F; y_pred F,F.
    # class F: P 1/2, R 1, F1 2/3 (support 1); class T: F1 0 (support 1) -> weighted 1/3
    assert pub["score"] == pytest.approx(1 / 3) and pub["n_unparsed"] == 1 and pub["accuracy"] == 0.5
    clean = score("sentiment", gold, pred, mode="clean")
    assert clean["score"] == 1.0 and clean["n_unparsed"] == 0


# ------------------------------------------------------------------------------------------ item 17


def test_missing_cells_are_what_pandas_reads_as_missing(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    cells = sorted(MISSING_CELLS) + [" NA", "na", "NONE", "['NA']", "[]", "happy"]
    p = _csv(tmp_path / "p.csv", ["name", "openset"], [[f"s{i}", c] for i, c in enumerate(cells)])
    df = pd.read_csv(p)
    by_pandas = {str(n) for n, v in zip(df["name"], df["openset"], strict=True) if pd.isna(v)}
    table = read_openset_csv(p, style="affectgpt")
    assert set(table.missing) == by_pandas == {f"s{i}" for i, c in enumerate(cells) if c in MISSING_CELLS}
    assert all(table.items[n] == [] for n in table.missing)


def _official_mer2024_ov(gold_csv: Path, pred_csv: Path, groupings: dict[str, str]) -> tuple[float, float]:
    """An independent transcription of MER2024 ``calculate_openset_overlap_rate_mer2024``: pandas reads the
    files, a missing cell is '', the loop runs over the cached groupings (mer_eval.md §2.2)."""
    import re

    pd = pytest.importorskip("pandas")

    def column(path: Path) -> dict[str, str]:
        df = pd.read_csv(path)
        return {n: ("" if pd.isna(v) else v) for n, v in zip(df["name"], df["openset"], strict=True)}

    def to_list(s: str) -> list[str]:
        if s == "":
            return []
        s = s.split("[")[1].split("]")[0]
        return [t for t in re.split("['\"]", s) if t.strip() not in ("", ",")]

    gold, pred = column(gold_csv), column(pred_csv)
    acc, rec = [], []
    for name, text in groupings.items():
        smap = {}
        for chunk in [c for c in re.split(r"[\[\]]", text) if c.strip() not in ("", ",")]:
            group = [t for t in re.split("['\"]", chunk) if t.strip() not in ("", ",")]
            for w in group:
                smap[w] = group[0]
        g = {smap.get(w.lower(), w.lower()) for w in to_list(gold[name])}
        p = {smap.get(w.lower(), w.lower()) for w in to_list(pred[name])}
        if not p:
            acc.append(0)
            rec.append(0)
        else:
            acc.append(len(g & p) / len(p))
            rec.append(len(g & p) / len(g))
    return float(np.mean(acc)), float(np.mean(rec))


def test_ov_empty_and_missing_prediction_cells_and_gold_without_grouping(tmp_path: Path) -> None:
    gold = _csv(
        tmp_path / "gold.csv",
        ["name", "openset"],
        [["s1", "['happy', 'sad']"], ["s2", "['sad']"], ["s3", "['angry']"], ["s4", "['calm']"], ["s5", "['x']"]],
    )
    pred = _csv(
        tmp_path / "pred.csv", ["name", "openset"], [["s1", "['joyful']"], ["s2", ""], ["s3", "NA"], ["s4", "None"]]
    )
    groups = {
        "s1": "[['happy', 'joyful'], ['sad']]",
        "s2": "[['sad']]",
        "s3": "[['angry']]",
        "s4": "[['calm']]",
    }  # s5 has no cached grouping (and no prediction): the official loop never reaches it
    zpath = tmp_path / "groups.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for n, t in groups.items():
            z.writestr(f"openset-synonym/{n}.npy", _npy(t))
    r = score("ov", gold, pred, synonyms=zpath)
    # s1: P={happy} G={happy, sad}: precision 1, recall 1/2; s2..s4: empty prediction -> 0, 0
    assert r["accuracy_s"] == pytest.approx(1 / 4) and r["recall_s"] == pytest.approx(1 / 8)
    assert r["score"] == pytest.approx(3 / 16)
    assert (r["n"], r["n_empty_pred"], r["n_missing_pred_cells"], r["n_skipped_no_grouping"]) == (4, 3, 3, 1)
    assert r["skipped_no_grouping"] == ["s5"]
    assert (r["accuracy_s"], r["recall_s"]) == pytest.approx(_official_mer2024_ov(gold, pred, groups), abs=1e-15)
    with pytest.raises(ValueError, match=r"no prediction for 1 gold name\(s\).*'s5'"):
        score("ov", gold, pred, synonyms=zpath, mode="clean")


def test_ov_published_list_rule_matches_the_official_split(tmp_path: Path) -> None:
    # text after the first '[' up to the next ']': a stray ']' before the list does not end it
    assert parse_emotion_list("x] ['happy'] ['sad']", "mer2024") == ["happy"]
    assert parse_emotion_list("", "mer2024") == [] and parse_emotion_list("[]", "mer2024") == []
    with pytest.raises(ValueError, match="not a bracketed list"):
        parse_emotion_list("happy", "mer2024")
    # the same answer read as published free text: AffectGPT string_to_list, lower().strip()
    assert read_openset(" ['Happy', ' Sad '] ", "published") == ["happy", "sad"]
    assert read_openset("", "published") == []


def test_ov_conformance_still_reproduces_the_official_vector(conformance: Path) -> None:
    ov = conformance / "mer2024_ov"
    r = score("ov", ov / "check-openset.csv", ov / "predict-openset.csv", synonyms=ov / "openset-synonym.zip")
    assert (r["accuracy_s"], r["recall_s"], r["score"]) == (0.581777108433735, 0.4977911646586345, 0.5397841365461847)
    assert r["n_skipped_no_grouping"] == 0


# ------------------------------------------------------------------------------------------ item 18


def test_hit_rate_undefined_when_every_gold_maps_to_nothing(tmp_path: Path, conformance: Path) -> None:
    wheel = conformance / "emotion_wheel"
    gold = _csv(tmp_path / "gold.csv", ["name", "discrete"], [["a", "neutral"], ["b", "neutral"]])
    pred = _csv(tmp_path / "pred.csv", ["name", "openset"], [["a", "['happy']"], ["b", "['sad']"]])
    r = score("hitrate", gold, pred, wheel=wheel)
    assert r["score"] is None and "every gold label maps to nothing" in r["undefined"]
    assert all(v["hit_rate"] is None and v["n_scored"] == 0 for v in r["per_wheel"].values())
    # 'surprise' maps on W1..W4 but not on W5: the official mean over wheels is NaN
    gold2 = _csv(tmp_path / "gold2.csv", ["name", "discrete"], [["a", "surprise"], ["b", "neutral"]])
    r2 = score("hitrate", gold2, pred, wheel=wheel)
    assert r2["score"] is None and "wheel5" in r2["undefined"] and "wheel1" not in r2["undefined"]
    assert r2["per_wheel"]["wheel1"] == {"hit_rate": 0.0, "n_scored": 1}
    assert score("hitrate", gold2, pred, wheel=wheel, bootstrap=10)["bootstrap"] == {
        "skipped": "the main score is undefined"
    }


def test_wheel_f_undefined_when_every_prediction_is_empty(tmp_path: Path, conformance: Path) -> None:
    wheel = conformance / "emotion_wheel"
    gold = _csv(tmp_path / "gold.csv", ["name", "openset"], [["a", "['happy']"], ["b", "['angry', 'sad']"]])
    pred = _csv(tmp_path / "pred.csv", ["name", "openset"], [["a", "[]"], ["b", ""]])
    r = score("wheel", gold, pred, wheel=wheel)  # affectgpt2025: F = 2PR/(P+R) = 0/0
    assert r["score"] is None and "P + R = 0" in r["undefined"] and r["n_empty_pred"] == 2
    assert r["EW_L1_mean"]["F"] is None and r["EW_L1_mean"]["P"] == 0.0
    assert score("wheel", gold, pred, wheel=wheel, wheel_version="mer2026")["score"] == 0.0  # MER2026: 0
    assert score("wheel", gold, pred, wheel=wheel, mode="clean")["score"] == 0.0
    # one hit is enough for a number: a: P=R=1 on every wheel that maps 'happy'
    pred1 = _csv(tmp_path / "pred1.csv", ["name", "openset"], [["a", "['happy']"], ["b", ""]])
    r1 = score("wheel", gold, pred1, wheel=wheel)
    assert r1["score"] is not None and "undefined" not in r1 and math.isfinite(r1["score"])


def test_report_prints_undefined_with_the_reason(tmp_path: Path, conformance: Path) -> None:
    gold = _csv(tmp_path / "gold.csv", ["name", "discrete"], [["a", "neutral"]])
    pred = _csv(tmp_path / "pred.csv", ["name", "openset"], [["a", "['happy']"]])
    r = score("hitrate", gold, pred, wheel=conformance / "emotion_wheel")
    (row,) = _metric_rows({"hitrate": r})
    assert row[2] == "undefined" and "every gold label maps to nothing" in row[3]
    results = {
        "tasks": {
            "t": {
                "benchmark": "b",
                "headline": {"name": "hitrate.score", "value": None, "mode": "published", "undefined": r["undefined"]},
                "data": {"n_samples": 1},
                "answers": {"n_unparsed": 0},
            }
        }
    }
    assert summary_rows(results)[0][3] == "undefined"


def test_hit_rate_published_skips_an_empty_gold_cell_clean_rejects_it(tmp_path: Path, conformance: Path) -> None:
    wheel = conformance / "emotion_wheel"
    gold = _csv(tmp_path / "gold.csv", ["name", "discrete"], [["a", ""], ["b", "angry"]])
    pred = _csv(tmp_path / "pred.csv", ["name", "openset"], [["a", "['happy']"], ["b", "['anger']"]])
    r = score("hitrate", gold, pred, wheel=wheel)  # a: string_to_list('') = [] -> skipped like neutral
    assert r["score"] == 1.0 and all(v == {"hit_rate": 1.0, "n_scored": 1} for v in r["per_wheel"].values())
    with pytest.raises(ValueError, match=r"gold.csv: row 2, column discrete: empty gold label"):
        score("hitrate", gold, pred, wheel=wheel, mode="clean")
