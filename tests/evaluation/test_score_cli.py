"""``emollm score``: published numbers from the command line, JSON on stdout, one-line errors with exit code 2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from emollm.evaluation.commands import register
from emollm.evaluation.metrics.classification import expand_confusion


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    """A Typer app with the evaluation commands registered the way ``emollm.cli`` does it."""
    a = typer.Typer()

    @a.callback()
    def _root() -> None:
        """emollm (test app)."""

    register(a)
    return a


def _run(app: typer.Typer, *args: object) -> tuple[int, dict | None, str]:
    res = CliRunner().invoke(app, ["score", *map(str, args)])
    out = json.loads(res.stdout) if res.exit_code == 0 else None
    return res.exit_code, out, res.stderr


def _write(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_ov_from_the_command_line(app: typer.Typer, conformance: Path, tmp_path: Path) -> None:
    d = conformance / "mer2024_ov"
    out_file = tmp_path / "res.json"
    code, out, _ = _run(
        app, "--metric", "ov", "--gold", d / "check-openset.csv", "--pred", d / "predict-openset.csv",
        "--synonyms", d / "openset-synonym.zip", "--out", out_file,
    )  # fmt: skip
    assert code == 0 and out is not None
    assert out["accuracy_s"] == pytest.approx(0.581777108433735, abs=1e-12)
    assert out["recall_s"] == pytest.approx(0.4977911646586345, abs=1e-12)
    assert out["score"] == pytest.approx(0.5397841365461847, abs=1e-12)
    assert out["metric"] == "ov" and out["mode"] == "published"
    assert json.loads(out_file.read_text()) == out


def test_confusion_matrix_from_the_command_line(app: typer.Typer, conformance: Path, tmp_path: Path) -> None:
    data = json.loads((conformance / "mer2023" / "emotion_llama_confusion.json").read_text())
    gold, pred = expand_confusion(data["confusion_matrix"], data["label_order"])
    names = [f"samplenew_{i:08d}" for i in range(len(gold))]
    g = _write(tmp_path / "gold.csv", ["name", "discrete"], [[n, x] for n, x in zip(names, gold, strict=True)])
    p = _write(tmp_path / "pred.csv", ["name", "discrete"], [[n, x] for n, x in zip(names, pred, strict=True)])
    code, out, _ = _run(app, "--metric", "classification", "--gold", g, "--pred", p)
    assert code == 0 and out is not None
    exp = data["expected"]
    assert out["accuracy"] == pytest.approx(exp["accuracy"], abs=1e-12)
    assert out["weighted_precision"] == pytest.approx(exp["weighted_precision"], abs=1e-12)
    assert out["weighted_recall"] == pytest.approx(exp["weighted_recall"], abs=1e-12)
    assert out["weighted_f1"] == out["score"] == pytest.approx(exp["weighted_f1"], abs=1e-12)
    assert out["confusion_matrix"]["matrix"] == data["confusion_matrix"]
    # the same files as MER2023 test3 (WAF only), with a bootstrap interval
    code, out3, _ = _run(app, "--metric", "mer2023", "--split", "test3", "--gold", g, "--pred", p, "--bootstrap", "50")
    assert code == 0 and out3 is not None
    assert out3["score"] == pytest.approx(exp["weighted_f1"], abs=1e-12)
    assert out3["bootstrap"]["low"] <= out3["score"] <= out3["bootstrap"]["high"]


@pytest.fixture
def files(tmp_path: Path) -> Path:
    _write(tmp_path / "gold.csv", ["name", "discrete"], [["s1", "happy"], ["s2", "sad"], ["s3", "angry"]])
    _write(tmp_path / "pred.csv", ["name", "discrete"], [["s1", "happy"], ["s2", "sad"], ["s3", "sad"]])
    return tmp_path


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--metric", "clasification"], "unknown metric 'clasification' (did you mean 'classification'?)"),
        (["--metric", "classification", "--synonyms", "x.zip"], "unknown option --synonyms"),
        (["--metric", "classification", "--mode", "faithful"], "mode: Input should be 'published' or 'clean'"),
        (["--metric", "mer2023", "--split", "test4"], "split: Input should be 'test1', 'test2' or 'test3'"),
        (["--metric", "classification", "--label-space", "mer7"], "unknown label space 'mer7'"),
        (["--metric", "wheel"], "missing required option --wheel"),
    ],
)
def test_bad_options(app: typer.Typer, files: Path, args: list[str], match: str) -> None:
    code, _, err = _run(app, *args, "--gold", files / "gold.csv", "--pred", files / "pred.csv")
    assert code == 2
    assert err.startswith("error: ") and match in err and err.count("\n") == 1


def test_bad_files(app: typer.Typer, files: Path) -> None:
    gold, pred = files / "gold.csv", files / "pred.csv"
    code, _, err = _run(app, "--metric", "classification", "--gold", files / "nope.csv", "--pred", pred)
    assert code == 2 and "gold file" in err and "nope.csv" in err and "not found" in err
    # a malformed row
    _write(files / "bad_row.csv", ["name", "discrete"], [["s1", "happy"], ["s2", "sad", "oops"], ["s3", "sad"]])
    code, _, err = _run(app, "--metric", "classification", "--gold", gold, "--pred", files / "bad_row.csv")
    assert code == 2 and "bad_row.csv: row 3: 3 field(s)" in err
    # a gold name without a prediction
    _write(files / "short.csv", ["name", "discrete"], [["s1", "happy"], ["s3", "sad"]])
    code, _, err = _run(app, "--metric", "classification", "--gold", gold, "--pred", files / "short.csv")
    assert code == 2 and "no prediction for 1 gold name(s)" in err and "'s2'" in err
    # an unknown label: an error in published mode, an unparsed count in clean mode
    _write(files / "unk.csv", ["name", "discrete"], [["s1", "happy"], ["s2", "gloomy"], ["s3", "sad"], ["s4", "sad"]])
    code, _, err = _run(app, "--metric", "classification", "--gold", gold, "--pred", files / "unk.csv")
    assert code == 2 and "unk.csv: row 3, column discrete: predicted label 'gloomy'" in err
    code, out, _ = _run(
        app, "--metric", "classification", "--gold", gold, "--pred", files / "unk.csv", "--mode", "clean"
    )
    assert code == 0 and out is not None
    assert out["n_unparsed"] == 1 and out["n_extra_pred"] == 1 and out["accuracy"] == pytest.approx(1 / 3)


def test_emollm_app(files: Path) -> None:
    """The real ``emollm`` app (``emollm.cli``) registers ``score`` (needs it to run as a command group)."""
    from emollm import cli

    if len(cli.app.registered_commands) < 2 and cli.app.registered_callback is None:
        pytest.skip("emollm has a single command so far; Typer runs it without its name")
    args = ["score", "--metric", "classification", "--pred", str(files / "pred.csv"), "--gold"]
    ok = CliRunner().invoke(cli.app, [*args, str(files / "gold.csv")])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["accuracy"] == pytest.approx(2 / 3)
    bad = CliRunner().invoke(cli.app, [*args, str(files / "x.csv")])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: ") and "x.csv" in bad.stderr


def test_cli_prints_an_undefined_score_as_null_with_the_reason(
    app: typer.Typer, tmp_path: Path, conformance: Path
) -> None:
    wheel = conformance / "emotion_wheel"
    gold = _write(tmp_path / "gold.csv", ["name", "discrete"], [["a", "neutral"]])
    pred = _write(tmp_path / "pred.csv", ["name", "openset"], [["a", "['happy']"]])
    code, out, _ = _run(app, "--metric", "hitrate", "--gold", gold, "--pred", pred, "--wheel", wheel)
    assert code == 0 and out is not None
    assert out["score"] is None and "every gold label maps to nothing" in out["undefined"]
