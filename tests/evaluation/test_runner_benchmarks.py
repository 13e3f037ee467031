"""Benchmark tasks on real public label files (conformance kit): MER2023 test1, MER-UniBench hit rate,
OV-MERD with the emotion wheel and the cached MER-OV groupings, and a sentiment task over a custom CSV.

The tiny-fast preset runs zero-shot (a preset reads the subtitle only); the clips are not in the kit, so
the corpora are imported without media. What is checked is the protocol plumbing, not the scores.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from emollm.evaluation.runner import EvalOptions, EvalOutcome, run_eval
from emollm.evaluation.tasks import MissingRootError

TASKS = ["mer2023_test1", "unibench_mer2023", "ovmerd", "unibench_mosi"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, conformance: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    work = tmp_path_factory.mktemp("bench")
    mer = work / "MER2023"
    mer.mkdir()
    for f in ("train-label.csv", "test1-label.csv", "test2-label.csv", "test3-label.csv",
              "transcription-engchi-polish.csv"):  # fmt: skip
        (mer / f).symlink_to(conformance / "mer2023" / f)
    ov = work / "ovmerd"
    ov.mkdir()
    (ov / "check-openset.csv").symlink_to(conformance / "mer2024_ov" / "check-openset.csv")
    mosi = work / "mosi"
    mosi.mkdir()
    with open(mosi / "samples.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "subtitle", "valence", "split"])
        w.writerows([["a", "What a lovely day", "2.2", "test"], ["b", "I hate this", "-1.4", "test"],
                     ["c", "Fine", "0", "test"], ["d", "Not bad at all", "0.6", "test"]])  # fmt: skip
    roots = {
        "mer2023": str(mer),
        "ovmerd": str(ov),
        "mosi": str(mosi),
        "emotion_wheel": str(conformance / "emotion_wheel"),
        "ov_synonyms": str(conformance / "mer2024_ov" / "openset-synonym.zip"),
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)  # imported manifests go to <work>/runs/data
        yield work, roots


def _opts(work: Path, roots: dict[str, str], **kw: Any) -> EvalOptions:
    return EvalOptions(
        checkpoint="tiny-fast", tasks=TASKS, roots=roots, limit=4, out=str(work / "out"),
        features=str(work / "features"), progress=False, **kw,
    )  # fmt: skip


@pytest.fixture(scope="module")
def bench_run(bench: tuple[Path, dict[str, str]]) -> EvalOutcome:
    work, roots = bench
    out = run_eval(_opts(work, roots))
    assert out.complete and out.results is not None
    return out


def test_mer2023_test1_combined_score_on_real_gold(bench_run: EvalOutcome, conformance: Path) -> None:
    assert bench_run.results is not None
    t = bench_run.results["tasks"]["mer2023_test1"]
    assert t["conditions"]["base"]["modalities"] == []  # a preset is zero-shot: subtitle only
    m = t["metrics"]["mer2023"]
    assert m["split"] == "test1" and m["track"] == "MER-MULTI"
    assert m["score"] == pytest.approx(m["waf"] - 0.25 * m["mse"])
    with open(conformance / "mer2023" / "test1-label.csv", newline="") as f:
        gold = list(csv.DictReader(f))[:4]
    with open(bench_run.out_dir / t["files"]["gold"], newline="") as f:
        written = list(csv.DictReader(f))
    assert [(r["name"], r["discrete"], float(r["valence"])) for r in written] == [
        (r["name"], r["discrete"], float(r["valence"])) for r in gold
    ]
    # predicted valence: class means of the MER2023 train labels
    with open(conformance / "mer2023" / "train-label.csv", newline="") as f:
        train = list(csv.DictReader(f))
    happy = np.mean([float(r["valence"]) for r in train if r["discrete"] == "happy"])
    assert t["valence"]["table"]["happy"] == pytest.approx(happy) and t["valence"]["n_prior"] == 0


def test_unibench_hit_rate_and_wheel_scores(bench_run: EvalOutcome) -> None:
    assert bench_run.results is not None
    tasks = bench_run.results["tasks"]
    hr = tasks["unibench_mer2023"]["metrics"]["hitrate"]
    assert 0 <= hr["score"] <= 1 and set(hr["per_wheel"]) == {f"wheel{i}" for i in range(1, 6)}
    ov = tasks["ovmerd"]
    w = ov["metrics"]["wheel"]
    assert w["wheel_version"] == "affectgpt2025"
    if w["score"] is None:  # no predicted word hits a gold word: the official F = 2PR/(P+R) is 0/0 = NaN
        assert "P + R = 0" in w["undefined"] and ov["headline"]["undefined"] == w["undefined"]
        report = (bench_run.out_dir / "report.md").read_text()
        assert "| wheel | published | undefined | F undefined (NaN in the official code)" in report
    else:
        assert 0 <= w["score"] <= 1
    assert "score" in ov["metrics"]["ov"]  # the cached GPT groupings were given
    assert ov["answers"]["n"] == 4 and 0 <= ov["answers"]["n_unparsed"] <= 4
    sent = tasks["unibench_mosi"]["metrics"]["sentiment"]
    assert sent["n"] == 3 and sent["n_zero_gold"] == 1 and sent["mode"] == "published"


def test_eval_reads_open_set_answers_as_predict_and_serve(bench_run: EvalOutcome) -> None:
    """The eval's words for each answer are the one reader's (as predict and serve read it), and the
    submission CSV gives them back under every list style emollm score uses."""
    import json

    from emollm.answers import read_openset
    from emollm.evaluation.readers import read_openset_csv
    from emollm.inference.chat import Reply
    from emollm.inference.openai_api import completion_ext as _completion_ext
    from emollm.labels import label_space

    assert bench_run.results is not None
    t = bench_run.results["tasks"]["ovmerd"]
    space = label_space(t["data"]["label_space"])
    rows = [json.loads(x) for x in (bench_run.out_dir / t["files"]["predictions"]).read_text().splitlines()]
    assert len(rows) == 4
    subs = {
        st: read_openset_csv(bench_run.out_dir / t["files"]["submission"], style=st) for st in ("affectgpt", "clean")
    }
    for r in rows:
        assert r["pred"] == read_openset(r["text"], "clean", space.mentions)  # what predict records
        assert _completion_ext(Reply(text=r["text"], task="openset"), False, space)["openset"] == r["pred"]
        for st, table in subs.items():
            assert [w.lower() for w in table.items[r["id"]]] == r["pred"], st


def test_optional_metric_is_skipped_and_required_resources_fail_early(
    bench_run: EvalOutcome, bench: tuple[Path, dict[str, str]]
) -> None:
    work, roots = bench
    fewer = {k: v for k, v in roots.items() if k != "ov_synonyms"}
    again = run_eval(_opts(work, fewer))  # every answer is recorded: nothing computed, no model loaded
    assert again.stats["computed"] == 0 and again.results is not None
    assert again.results["tasks"]["ovmerd"]["metrics"]["ov"] == {"skipped": "needs --root ov_synonyms"}
    no_wheel = {k: v for k, v in fewer.items() if k != "emotion_wheel"}
    with pytest.raises(MissingRootError, match="metric 'hitrate' needs the resource root\\(s\\) emotion_wheel"):
        run_eval(_opts(work, no_wheel))
