"""Eval tasks and suites as YAML: every shipped file loads, data roots resolve, missing roots say what to do."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from emollm.config import ConfigError
from emollm.evaluation.tasks import (
    MissingRootError,
    expected_layout,
    load_suite,
    load_task,
    parse_roots,
    resolve_data,
    resolve_root_refs,
    suite_dir,
    task_files,
)


def test_every_shipped_task_and_suite_loads() -> None:
    files = task_files()
    expected = {
        "synthmer", "mer2023_test1", "mer2023_test2", "mer2023_test3", "mer2024_semi", "mer2024_noise",
        "mer2024_ov", "emer", "ovmerd", "unibench_mer2023", "unibench_mer2024", "unibench_meld",
        "unibench_iemocap", "unibench_mosi", "unibench_mosei", "unibench_sims", "unibench_simsv2",
        "unibench_ovmerdplus", "dfew",
    }  # fmt: skip
    assert expected <= set(files)
    for name in files:
        t = load_task(name)
        assert t.name == name and t.version
        assert expected_layout(t).strip(), name
        if t.data.recipe == "custom_csv":  # no importer yet: the task must say so and describe the CSV
            assert "custom_csv" in expected_layout(t) and "samples.csv" in expected_layout(t)
    suites = {p.stem for p in suite_dir().glob("*.yaml")}
    assert {"synthmer", "mer", "unibench"} <= suites
    for s in suites:
        assert load_suite(s).tasks


def test_protocol_metrics_of_the_mer_tasks() -> None:
    t1, t3 = load_task("mer2023_test1"), load_task("mer2023_test3")
    assert (t1.metrics[0].name, t1.metrics[0].options) == ("mer2023", {"split": "test1"})
    assert t1.valence is not None and t3.valence is None
    assert load_task("mer2024_semi").metrics[0].name == "mer2024"
    assert load_task("unibench_meld").metrics[0].name == "hitrate"
    assert load_task("unibench_mosi").metrics[0].name == "sentiment"
    assert load_task("dfew").headline == "classification.uar"


def test_missing_root_names_the_task_and_the_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no runs/data/mer2023 here
    task = load_task("mer2023_test1")
    with pytest.raises(MissingRootError) as e:
        resolve_data(task, {})
    msg = str(e.value)
    assert "mer2023_test1" in msg and "--root mer2023=DIR" in msg
    assert "test1-label.csv" in msg and "transcription-engchi-polish.csv" in msg  # copied from the recipe
    with pytest.raises(MissingRootError, match="does not exist"):
        resolve_data(task, {"mer2023": str(tmp_path / "nowhere")})
    with pytest.raises(MissingRootError, match="no MELD importer exists yet"):
        resolve_data(load_task("unibench_meld"), {})


def test_a_prepared_manifest_root_is_used_as_is(synthmer_small: Path) -> None:
    data = resolve_data(load_task("synthmer"), {"synthmer": str(synthmer_small)})
    assert len(data.samples) == 12 and {s.split for s in data.samples} == {"test"}
    assert data.space.name == "mer6" and str(synthmer_small) in data.source


def test_a_corpus_root_is_imported_once_with_the_task_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "mosi"
    corpus.mkdir()
    rows = [["m1", "I love it", "2.4", "test"], ["m2", "terrible", "-1.8", "test"], ["m3", "ok", "0", "train"]]
    with open(corpus / "samples.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "subtitle", "valence", "split"])
        w.writerows(rows)
    monkeypatch.chdir(tmp_path)
    task = load_task("unibench_mosi")
    data = resolve_data(task, {"mosi": str(corpus)}, progress=False)
    assert [s.id for s in data.samples] == ["m1", "m2"] and data.samples[0].valence == 2.4
    prepared = tmp_path / "runs" / "data" / "mosi" / "samples.jsonl"
    assert prepared.is_file()
    stamp = prepared.stat().st_mtime_ns
    again = resolve_data(task, {"mosi": str(corpus)}, progress=False)  # same recipe and root: reused
    assert prepared.stat().st_mtime_ns == stamp and "prepared from" in again.source
    # without --root the prepared manifest is found too
    assert [s.id for s in resolve_data(task, {}).samples] == ["m1", "m2"]


def test_split_without_samples_names_the_task(synthmer_small: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad_task.yaml"
    bad.write_text(
        "name: bad_task\nversion: '1'\nkind: classification\n"
        "data: {recipe: synthmer, split: test9}\nmetrics: [{name: classification}]\n"
    )
    with pytest.raises(ValueError, match="bad_task.*test9"):
        resolve_data(load_task(bad), {"synthmer": str(synthmer_small)})


def test_task_schema_errors(tmp_path: Path) -> None:
    data = "data: {recipe: synthmer, split: test}\n"

    def write(name: str, body: str) -> Path:
        p = tmp_path / f"{name}.yaml"
        p.write_text(f"name: {name}\nversion: '1'\n{body}")
        return p

    with pytest.raises(ConfigError, match="unknown metric 'classfication'"):
        load_task(write("t1", f"kind: classification\n{data}metrics: [{{name: classfication}}]\n"))
    with pytest.raises(ConfigError, match="needs answers.method: generate"):
        load_task(write("t2", f"kind: openset\n{data}metrics: [{{name: wheel}}]\n"))
    with pytest.raises(ConfigError, match="unknown key"):
        load_task(write("t3", f"kind: classification\n{data}metrics: [{{name: classification}}]\nrooot: x\n"))
    t4 = write("t4", f"kind: classification\n{data}metrics: [{{name: classification}}]\n")
    with pytest.raises(ConfigError, match="must equal the file name"):
        load_task(t4.rename(tmp_path / "other.yaml"))
    with pytest.raises(KeyError, match="did you mean 'synthmer'"):
        load_task("synthmr")


def test_suite_rejects_analyses_a_task_cannot_have(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text("name: s\ntasks:\n  - {task: ovmerd, ablation: {}}\n")
    with pytest.raises(ConfigError, match="ablation need a classification task"):
        load_suite(p)
    p.write_text("name: s\ntasks:\n  - {task: synthmer_generate, calibration: {}}\n")
    with pytest.raises(ConfigError, match="calibration needs answers.method score_labels"):
        load_suite(p)
    p.write_text("name: s\ntasks:\n  - {task: synthmer}\n  - {task: synthmer}\n")
    with pytest.raises(ConfigError, match="listed twice"):
        load_suite(p)


def test_roots_and_root_references() -> None:
    assert parse_roots(["a=/x", "wheel = /w "]) == {"a": "/x", "wheel": "/w"}
    for bad in (["a"], ["=x"], ["a="]):
        with pytest.raises(ValueError, match="NAME=DIR"):
            parse_roots(bad)
    with pytest.raises(ValueError, match="twice"):
        parse_roots(["a=/x", "a=/y"])
    value, missing = resolve_root_refs({"wheel": "{root:w}/sub", "n": 1, "l": ["{root:z}"]}, {"w": "/data/w"})
    assert value == {"wheel": "/data/w/sub", "n": 1, "l": ["{root:z}"]} and missing == ["z"]
