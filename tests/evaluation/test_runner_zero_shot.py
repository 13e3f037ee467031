"""Every new zero-shot benchmark task runs end to end (import from the released-format fixture, tiny-fast
answers, scoring) and its report says what it measured.

    pytest tests/evaluation/test_runner_zero_shot.py
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from emollm.evaluation.runner import EvalOptions, EvalOutcome, run_eval

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"
TASKS = ["dfew_fold1", "mafw_fold1", "mer2025_semi", "mer2025_fg", "emobench_m_mosi", "mme_emotion_ml_er"]


@pytest.fixture(scope="module")
def zs_run(tmp_path_factory: pytest.TempPathFactory, conformance: Path) -> Iterator[EvalOutcome]:
    work = tmp_path_factory.mktemp("zero_shot")
    for name in ("dfew", "mafw", "mer2025", "emobench_m", "mme_emotion"):
        shutil.copytree(FIX / name, work / name)
    roots = {n: str(work / n) for n in ("dfew", "mafw", "mer2025", "emobench_m", "mme_emotion")}
    roots["emotion_wheel"] = str(conformance / "emotion_wheel")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)  # imported manifests go to <work>/runs/data
        opts = EvalOptions(
            checkpoint="tiny-fast", tasks=TASKS, roots=roots, limit=4, out=str(work / "out"),
            features=str(work / "features"), progress=False,
        )  # fmt: skip
        out = run_eval(opts)
        assert out.complete and out.results is not None
        yield out


def test_every_task_scored(zs_run: EvalOutcome) -> None:
    assert zs_run.results is not None
    t = zs_run.results["tasks"]
    # DFEW fold 1 of the fixture: 5 rows, one with class 9 (no gold) -> 4 scored
    assert t["dfew_fold1"]["data"]["n_samples"] == 4 and t["dfew_fold1"]["headline"]["name"] == "uar_war.uar"
    assert 0 <= t["dfew_fold1"]["metrics"]["uar_war"]["uar"] <= 1
    assert t["mafw_fold1"]["metrics"]["uar_war"]["label_space"] == "mafw11"
    assert t["mer2025_semi"]["metrics"]["mer2025_semi"]["track"] == "MER-SEMI"
    fg = t["mer2025_fg"]["metrics"]["mer2025_fg"]
    assert fg["score"] == pytest.approx((fg["L1"]["F"] + fg["L2"]["F"]) / 2)
    eb = t["emobench_m_mosi"]["metrics"]["emobench"]
    assert eb["n"] == 2 and set(eb) >= {"official", "clean"}
    mme = t["mme_emotion_ml_er"]
    assert mme["metrics"]["mme_emotion"] == {"skipped": "needs --root mme_judge"}
    assert mme["headline"]["name"] == "mme_emotion_rec.score" and mme["metrics"]["mme_emotion_rec"]["judge"] == "none"


def test_submission_keeps_the_raw_reply_for_judges(zs_run: EvalOutcome) -> None:
    sub = zs_run.out_dir / "submissions" / "mme_emotion_ml_er.csv"
    with open(sub, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["name", "openset", "text"] and len(rows) == 2
    lines = (zs_run.out_dir / "predictions" / "mme_emotion_ml_er.jsonl").read_text().splitlines()
    replies = {p["id"]: p["text"] for p in map(json.loads, lines)}
    assert {r["name"]: r["text"] for r in rows} == {
        k: (v or "").replace("\r\n", "\n").replace("\r", "\n") for k, v in replies.items()
    }


def test_csv_cells_with_carriage_returns_read_back() -> None:
    import io

    from emollm.evaluation.scoring import _csv_text

    text = _csv_text(["name", "openset", "text"], [["a", "['x']", "line one\rline two\r\nthree"]])
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows == [["name", "openset", "text"], ["a", "['x']", "line one\nline two\nthree"]]
