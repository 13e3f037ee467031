"""``emollm eval`` on the command line: user errors are one ``error:`` line with exit code 2 (before any model
is loaded), shards report what is left, and a finished run prints the summary table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from emollm.evaluation.commands import register


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    a = typer.Typer()

    @a.callback()
    def _root() -> None:
        """emollm (test app)."""

    register(a)
    return a


def _eval(app: typer.Typer, *args: object) -> tuple[int, str, str]:
    res = CliRunner().invoke(app, ["eval", *map(str, args)])
    return res.exit_code, res.stdout, res.stderr


def test_list_shows_tasks_and_suites(app: typer.Typer) -> None:
    code, out, _ = _eval(app, "--list")
    assert code == 0
    for name in ("mer2023_test1", "unibench_mosi", "synthmer", "dfew"):
        assert name in out
    assert "suites:" in out and "unibench" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--checkpoint is required"),
        (("-c", "tiny-fast"), "give --tasks a,b or --suite FILE"),
        (("-c", "tiny-fast", "--tasks", "synthmer", "--suite", "synthmer"), "exactly one"),
        (("-c", "tiny-fast", "--tasks", "synthmr"), "did you mean 'synthmer'"),
        (("-c", "no-such-model", "--tasks", "synthmer"), "neither a checkpoint folder nor a preset"),
        (("-c", "tiny-fast", "--tasks", "synthmer", "--shard", "2/2"), "0 <= i < n"),
        (("-c", "tiny-fast", "--tasks", "synthmer", "--root", "synthmer"), "expected NAME=DIR"),
        (("-c", "tiny-fast", "--tasks", "synthmer", "--reading", "fuzzy"), "reading"),
        (("-c", "tiny-fast", "--suite", "no_such_suite"), "eval suite 'no_such_suite' not found"),
    ],
)
def test_user_errors_exit_2(app: typer.Typer, args: tuple[str, ...], message: str) -> None:
    code, _, err = _eval(app, *args)
    assert code == 2 and err.startswith("error: ") and message in err


def test_missing_root_error_names_task_and_layout(
    app: typer.Typer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = _eval(app, "-c", "tiny-fast", "--tasks", "mer2023_test1")
    assert code == 2
    assert "task 'mer2023_test1'" in err and "--root mer2023=DIR" in err and "train-label.csv" in err
    code, _, err = _eval(app, "-c", "tiny-fast", "--tasks", "unibench_iemocap")
    assert code == 2 and "custom_csv importer; no IEMOCAP importer exists yet" in err and "Session 5" in err


def test_shards_from_the_command_line(app: typer.Typer, tmp_path: Path, synthmer_small: Path) -> None:
    common = [
        "-c", "tiny-fast", "--tasks", "synthmer", "--root", f"synthmer={synthmer_small}", "--limit", "2",
        "--batch-size", "1", "--out", tmp_path / "ev", "--features", tmp_path / "feat", "-q",
    ]  # fmt: skip
    code, out, err = _eval(app, *common, "--shard", "0/2")
    assert code == 0, err
    assert "shard 0/2 done: 1 answers computed" in out and "--merge" in out
    assert not (tmp_path / "ev" / "results.json").exists()
    code, out, err = _eval(app, *common, "--merge")
    assert code == 2 and "record(s) are missing" in err
    code, out, err = _eval(app, *common, "--shard", "1/2")
    assert code == 0, err
    assert "emollm eval: tiny-fast" in out and "synthmer" in out and "results.json" in out
    res = json.loads((tmp_path / "ev" / "results.json").read_text())
    assert res["run"] == {**res["run"], "computed": 1, "reused": 1, "total": 2}
    assert res["options"]["shard"] == [1, 2]
