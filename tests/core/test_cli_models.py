"""Command-line options generated from typed models (emollm/cli_models.py): a model field is an option
with its docstring as help, parsed values reach the command, and ``emollm eval`` covers EvalOptions.

Run: ``python -m pytest -q tests/core/test_cli_models.py``.
"""

from __future__ import annotations

from typing import Any, Literal

import typer
from pydantic import Field
from typer.testing import CliRunner

from emollm.cli_models import Flag, model_command
from emollm.config import Strict


class Opts(Strict):
    name: str
    """The run's name."""
    size: int = Field(4, gt=0)
    """How many."""
    mode: Literal["fast", "slow"] = "fast"
    """How to run."""
    cache: bool = True
    """Use the cache."""
    pair: tuple[int, int] = (0, 1)
    """i/n."""


def _app(seen: dict[str, Any]) -> typer.Typer:
    app = typer.Typer()

    def pair(v: str) -> tuple[int, int]:
        i, _, n = v.partition("/")
        if not n:
            raise ValueError(f"--pair {v!r}: expected i/n")
        return int(i), int(n)

    def fail(e: Exception) -> None:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2)

    @app.command()
    @model_command(
        Opts, {"name": Flag("--name", "-n"), "pair": Flag(type=str, default="0/1", parse=pair)}, on_error=fail
    )
    def run(values: dict[str, Any], verbose: bool = typer.Option(False, "--verbose")) -> None:
        seen["opts"] = Opts.model_validate(values)
        seen["verbose"] = verbose

    @app.command()
    def other() -> None:  # a second command keeps typer from collapsing the app into one command
        pass

    return app


def test_generated_options_parse_into_the_model() -> None:
    seen: dict[str, Any] = {}
    runner = CliRunner()
    r = runner.invoke(
        _app(seen), ["run", "-n", "x", "--size", "3", "--mode", "slow", "--no-cache", "--pair", "1/2", "--verbose"]
    )
    assert r.exit_code == 0, r.output
    assert seen["opts"] == Opts(name="x", size=3, mode="slow", cache=False, pair=(1, 2)) and seen["verbose"] is True
    r = runner.invoke(_app(seen), ["run", "--name", "y"])
    assert r.exit_code == 0, r.output
    assert seen["opts"] == Opts(name="y")  # defaults are the model's


def test_help_is_the_field_docstring_and_errors_are_the_commands() -> None:
    runner = CliRunner()
    r = runner.invoke(_app({}), ["run", "--help"], env={"COLUMNS": "200"})
    assert r.exit_code == 0
    for text in ("The run's name.", "How many.", "How to run. (fast | slow)", "--no-cache", "--verbose"):
        assert text in r.output
    r = runner.invoke(_app({}), ["run", "-n", "x", "--pair", "3"])
    assert r.exit_code == 2 and "error: --pair '3': expected i/n" in r.output


def test_every_eval_option_field_is_a_flag_of_emollm_eval() -> None:
    """A new EvalOptions field is a new ``emollm eval`` option without further code."""
    from emollm.cli import app
    from emollm.evaluation.options import EvalOptions

    eval_cmd = typer.main.get_command(app).commands["eval"]  # type: ignore[attr-defined]
    names = {p.name for p in eval_cmd.params}
    missing = sorted(set(EvalOptions.model_fields) - {"endpoint", "progress"} - names)
    assert not missing, f"EvalOptions fields without an `emollm eval` option: {missing}"
    helps = {p.name: getattr(p, "help", None) for p in eval_cmd.params}
    # the cache options are spelt like the other commands' (--cache-dir/--no-cache); the field names stay as
    # hidden aliases (--features, --feature-mode) so old command lines keep working
    assert helps["cache_dir"].startswith("Feature cache folder") and "--no-cache" in {
        o for p in eval_cmd.params for o in p.opts
    }


def test_every_bench_setting_is_a_flag_of_emollm_bench() -> None:
    """Each field of a bench's settings, its workload's and the synthetic text's is an option of
    ``emollm bench KIND`` (help from the field's docstring); bench defaults stay the preset's (None)."""
    from emollm.bench.commands import CONFIGS
    from emollm.bench.configs import ExtractBenchConfig, SynthTextConfig, WorkloadConfig
    from emollm.cli import app

    bench = typer.main.get_command(app).commands["bench"]  # type: ignore[attr-defined]
    for kind, cfg in {**CONFIGS, "extract": ExtractBenchConfig}.items():
        cmd = bench.commands[kind]
        names = {p.name for p in cmd.params}
        fields = set(cfg.model_fields) - {"workload"}
        if kind != "extract":
            fields |= (set(WorkloadConfig.model_fields) - {"text"}) | set(SynthTextConfig.model_fields)
        assert not sorted(fields - names), f"bench {kind}: settings without an option: {sorted(fields - names)}"
        defaults = {p.name: p.default for p in cmd.params}
        if kind != "extract":
            assert defaults["preset"] == "tiny" and defaults["samples"] is None and defaults["batch_size"] is None
    helps = {p.name: getattr(p, "help", None) for p in bench.commands["train"].params}
    assert helps["steps"] == "Timed optimiser steps of the fast path."
