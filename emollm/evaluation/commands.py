"""Command-line entry points of the evaluation area (registered on the ``emollm`` Typer app).

    emollm score --metric ov --gold check-openset.csv --pred predict-openset.csv --synonyms openset-synonym.zip
    emollm score --metric mer2023 --split test1 --gold test1-label.csv --pred pred.csv --bootstrap 1000
    emollm score --metric wheel --gold ov.csv --pred pred.csv --wheel emotion_wheel --wheel-version mer2026
    emollm eval --checkpoint runs/mini/final --suite eval/suites/synthmer.yaml
    emollm eval -c mini --tasks mer2023_test1 --root mer2023=/data/MER2023 --limit 50
    emollm score --metric hitrate --gold gold.csv --wheel emotion_wheel --pred e30=p30.csv --pred e35=p35.csv
    emollm leaderboard runs/eval/a runs/eval/b --out runs/leaderboard

``score`` prints the result as JSON on stdout (and writes it atomically with ``--out``); bad input
(missing or malformed files, unknown names or labels, wrong options) prints one ``error:`` line on
stderr and exits with code 2. One function per command; heavy imports happen inside it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, NoReturn

import typer

from emollm.cli_models import Flag, model_command
from emollm.evaluation.options import EvalOptions
from emollm.inference.remote import (
    ApiKeyEnvOpt,
    BaseUrlOpt,
    ConcurrencyOpt,
    EndpointFileOpt,
    LogprobsOpt,
    ModelOpt,
    ProfileOpt,
)

METRIC_HELP = (
    "classification (accuracy, WAF, macro F1, UAR/WAR), mer2023 (WAF - 0.25*MSE; --split), mer2024 (WAF), "
    "ov (MER2024-OV; --synonyms), wheel (EW set F-score; --wheel), hitrate (MER-UniBench; --wheel), "
    "sentiment (binary weighted F1 on non-zero gold), uar_war (DFEW/MAFW), mer2025_semi, mer2025_fg (--wheel), "
    "emobench (EmoBench-M), mme_emotion (--task, --judge, --clues), mme_emotion_rec (--task)"
)


def score_command(
    metric: str | None = typer.Option(None, "--metric", "-m", help=METRIC_HELP + " (not needed for run folders)"),
    gold: Path | None = typer.Option(
        None, "--gold", help="Gold CSV (name,discrete[,valence] / name,openset / name,valence)."
    ),
    pred: list[str] = typer.Option(
        ...,
        "--pred",
        help="Prediction CSV (name,discrete[,valence] / name,openset), or an eval run folder; repeat for several "
        "runs (seeds, checkpoints, models), optionally as NAME=PATH.",
    ),
    extractor: Path | None = typer.Option(
        None, "--extractor", help="ExtractorConfig YAML: predictions are free text read by that LLM (AffectGPT)."
    ),
    markdown: Path | None = typer.Option(None, "--markdown", help="Several runs: also write the table as Markdown."),
    synonyms: Path | None = typer.Option(None, "--synonyms", help="ov: cached GPT groupings (openset-synonym.zip)."),
    wheel: Path | None = typer.Option(None, "--wheel", help="wheel/hitrate: emotion-wheel resource folder."),
    wheel_version: str | None = typer.Option(None, "--wheel-version", help="affectgpt2025 (default) or mer2026."),
    level: int | None = typer.Option(None, "--level", help="wheel: main EW level, 1 (default) or 2."),
    split: str | None = typer.Option(None, "--split", help="mer2023: test1, test2 or test3."),
    label_space: str | None = typer.Option(
        None, "--label-space", help="classification / uar_war: label space (mer6, dfew7, mafw11...)."
    ),
    candidates: Path | None = typer.Option(
        None, "--candidates", help="mer2025_semi/fg: track_all_candidates.csv (the submission covers exactly these)."
    ),
    task: str | None = typer.Option(None, "--task", help="mme_emotion(_rec): ER-Lab, ER-Wild, ..., ML-ER, IR."),
    judge: Path | None = typer.Option(None, "--judge", help="mme_emotion: JudgeConfig YAML of the LLM judge."),
    clues: Path | None = typer.Option(None, "--clues", help="mme_emotion: the dataset folder with the audio clues."),
    mode: str = typer.Option("published", "--mode", help="published (keep the official quirks) or clean."),
    bootstrap: int = typer.Option(0, "--bootstrap", help="Bootstrap resamples for a confidence interval (0: off)."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed."),
    alpha: float = typer.Option(0.05, "--alpha", help="Bootstrap: 1 - confidence level."),
    out: Path | None = typer.Option(None, "--out", help="Also write the JSON result to this file."),
) -> None:
    """Score a prediction file against gold with a published protocol; prints JSON."""
    from emollm.config import ConfigError

    given: dict[str, Any] = {
        "synonyms": synonyms,
        "wheel": wheel,
        "wheel_version": wheel_version,
        "level": level,
        "split": split,
        "label_space": label_space,
        "candidates": candidates,
        "task": task,
        "judge": judge,
        "clues": clues,
    }
    options = {k: v for k, v in given.items() if v is not None}
    try:
        result = _score_preds(metric, gold, pred, extractor, out, markdown, mode, bootstrap, seed, alpha, options)
    except (ConfigError, ValueError, KeyError, FileNotFoundError, RuntimeError) as e:
        msg = str(e.args[0] if isinstance(e, KeyError) and e.args else e)
        if isinstance(e, ConfigError):  # option keys -> the flags a user typed
            msg = re.sub(r"key '(\w+)'", lambda m: "option --" + m.group(1).replace("_", "-"), msg)
        typer.secho(f"error: {' '.join(msg.split())}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    text = json.dumps(result, indent=2, ensure_ascii=False)
    if out is not None:
        from emollm.io import atomic_write_text

        atomic_write_text(out, text + "\n")
    typer.echo(text)


def _score_preds(
    metric: str | None,
    gold: Path | None,
    preds: list[str],
    extractor: Path | None,
    out: Path | None,
    markdown: Path | None,
    mode: str,
    bootstrap: int,
    seed: int,
    alpha: float,
    options: dict[str, Any],
) -> dict[str, Any]:
    """One file (the plain result), several files (per run + mean ± std + max) or several run folders."""
    from emollm.evaluation import multirun
    from emollm.evaluation.score import score

    named = multirun.parse_named(preds)
    dirs = [p for _, p in named if p.is_dir()]
    if dirs and len(dirs) != len(named):
        raise ValueError("--pred: give either prediction files or eval run folders, not both")
    if dirs:
        if extractor is not None:
            raise ValueError("--extractor reads prediction files; for run folders rerun emollm eval --extractor")
        result = multirun.score_run_dirs(named, bootstrap=bootstrap, seed=seed, alpha=alpha)
    else:
        if metric is None or gold is None:
            raise ValueError("--metric and --gold are required to score prediction files")
        described: dict[str, Any] | None = None
        if extractor is not None:
            import tempfile

            from emollm.evaluation.extract import Extractor, extract_prediction_file, load_extractor_config

            work = (out.parent if out else Path(tempfile.mkdtemp(prefix="emollm-extract-"))) / "extracted"
            cfg = load_extractor_config(extractor, work / "cache")
            with Extractor(cfg) as ex:
                named = [(n, extract_prediction_file(metric, p, ex, work / n)) for n, p in named]
                described = ex.describe()
        kw = {"mode": mode, "bootstrap": bootstrap, "seed": seed, "alpha": alpha, **options}
        if len(named) == 1:
            result = score(metric, gold, named[0][1], **kw)
        else:
            result = multirun.score_files(metric, gold, named, **kw)
        if described is not None:
            result["extractor"] = described
    if markdown is not None:
        from emollm.io import atomic_write_text

        if "runs" not in result:
            raise ValueError("--markdown needs several runs (repeat --pred)")
        atomic_write_text(markdown, multirun.render_markdown(result))
    return result


def _split_commas(v: str | None) -> list[str]:
    return [t.strip() for t in (v or "").split(",") if t.strip()]


def _roots(v: list[str]) -> dict[str, str]:
    from emollm.evaluation.tasks import parse_roots

    return parse_roots(v)


def _shard(v: str) -> tuple[int, int]:
    from emollm.shard import parse_shard

    return parse_shard(v)


# ``emollm eval`` options are the fields of ``EvalOptions`` (help = the field's docstring); only what the
# command line spells differently is declared here. A new EvalOptions field is a new option.
EVAL_FLAGS = {
    "checkpoint": Flag(
        "--checkpoint", "-c", default=None, type=str | None,
        help="Checkpoint folder, a preset name (tiny-fast, mini, qwen2.5-omni-7b...; `emollm ls presets`) or a released native model folder, for zero-shot runs.",
    ),
    "tasks": Flag("--tasks", "-t", type=str | None, parse=_split_commas,
                  help="Comma-separated task names (eval/tasks) or YAMLs."),
    "suite": Flag("--suite", "-s"),
    "out": Flag("--out", "-o", type=Path | None, parse=lambda v: str(v) if v else None),
    "roots": Flag("--root", "-r", type=list[str], default=[], parse=_roots,
                  help="NAME=DIR: a data root (corpus folder or prepared manifest) or a resource folder."),
    "limit": Flag(min=1),
    "shard": Flag(type=str, default="0/1", parse=_shard,
                  help="i/n: run blocks i, i+n, ... of --batch-size samples (same batch size in every shard)."),
    "merge": Flag("--merge"),
    "batch_size": Flag("--batch-size", "-b", min=1, help="Samples per model batch."),
    "device": Flag(type=str, default="auto", parse=lambda v: _device(v),
                   help="auto (cuda if available) | cpu | cuda | cuda:N."),
    "judge": Flag(type=Path | None, parse=lambda v: str(v) if v else None),
    "extractor": Flag(type=Path | None, parse=lambda v: str(v) if v else None,
                      help="ExtractorConfig YAML: an LLM reads open-set/sentiment answers (AffectGPT)."),
}  # fmt: skip


def _eval_error(e: Exception) -> NoReturn:
    msg = str(e.args[0] if isinstance(e, KeyError) and e.args else e)
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2) from None


@model_command(EvalOptions, EVAL_FLAGS, skip={"endpoint", "progress", "features", "feature_mode"}, on_error=_eval_error)
def eval_command(
    values: dict[str, Any],
    cache_dir: Path | None = typer.Option(
        None, "--cache-dir", help="Feature cache folder, shared with training. [default: runs/features]"
    ),
    no_cache: bool = typer.Option(False, "--no-cache", help="Compute features live, cache nothing."),
    features: str | None = typer.Option(None, "--features", hidden=True, help="Old name of --cache-dir."),
    feature_mode: str | None = typer.Option(
        None, "--feature-mode", hidden=True, help="auto | cache (only cached features) | live (= --no-cache)."
    ),
    list_tasks: bool = typer.Option(False, "--list", help="List the shipped tasks and suites, then exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    base_url: BaseUrlOpt = None,
    model: ModelOpt = None,
    api_key_env: ApiKeyEnvOpt = None,
    endpoint: EndpointFileOpt = None,
    profile: ProfileOpt = None,
    concurrency: ConcurrencyOpt = None,
    logprobs: LogprobsOpt = None,
) -> None:
    """Evaluate a checkpoint or preset on tasks or a suite: results.json, report.md, plots, submission CSVs."""
    from emollm.config import ConfigError

    try:
        if list_tasks:
            _list_tasks()
            return
        ep = None
        if values["backend"] == "openai":
            from emollm.inference.remote import endpoint_from_options

            ep = endpoint_from_options(endpoint, base_url, model, api_key_env, profile, concurrency, logprobs)
        elif values["checkpoint"] is None:
            raise ValueError("--checkpoint is required (a checkpoint folder or a preset name)")
        from emollm.evaluation.report import print_summary
        from emollm.evaluation.runner import run_eval

        opts = EvalOptions.model_validate(
            {
                **values,
                "checkpoint": values["checkpoint"] or "",
                "endpoint": ep,
                "features": _cache_folder(cache_dir, features),
                "feature_mode": _feature_mode(no_cache, feature_mode),
                "progress": not quiet,
            }
        )
        outcome = run_eval(opts)
    except (ConfigError, ValueError, KeyError, FileNotFoundError) as e:
        _eval_error(e)
    if not outcome.complete:
        s = outcome.stats
        typer.echo(
            f"shard {opts.shard[0]}/{opts.shard[1]} done: {s['computed']} answers computed, {s['reused']} reused; {outcome.missing} answers "
            f"of other shards are still missing. When every shard has finished, run the same command with --merge."
        )
        return
    assert outcome.results is not None
    print_summary(outcome.results)
    typer.echo(f"results: {outcome.out_dir / 'results.json'}  report: {outcome.out_dir / 'report.md'}")


def _device(device: str) -> str | None:
    """``auto`` -> cuda when available, else the default (cpu); anything else as given."""
    if device != "auto":
        return device
    from emollm.device import choose_device

    return "cuda" if choose_device("auto").type == "cuda" else None  # None: the runner's default (cpu)


def _cache_folder(cache_dir: Path | None, features: str | None) -> str:
    if cache_dir is not None and features is not None and Path(features) != cache_dir:
        raise ValueError("give the feature cache once: --cache-dir (--features is its old name)")
    return str(cache_dir) if cache_dir is not None else features or "runs/features"


def _feature_mode(no_cache: bool, feature_mode: str | None) -> str:
    if no_cache and feature_mode not in (None, "live"):
        raise ValueError(f"--no-cache computes features live; it contradicts --feature-mode {feature_mode}")
    return "live" if no_cache else feature_mode or "auto"


def _list_tasks() -> None:
    from emollm.evaluation.tasks import load_task, suite_dir, task_files

    rows = [("task", "benchmark", "kind", "split", "root", "metrics")]
    for name in task_files():
        t = load_task(name)
        root = t.data.root or t.data.recipe or t.data.manifest or ""
        metrics = ", ".join(m.name for m in t.metrics) or "judge-free + judge"
        rows.append((name, t.benchmark, t.kind, t.data.split, str(root), metrics))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    typer.echo("suites: " + ", ".join(p.stem for p in sorted(suite_dir().glob("*.yaml"))))


def leaderboard_command(
    runs: list[str] = typer.Argument(..., help="Eval run folders (emollm eval --out), optionally NAME=DIR."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for leaderboard.{md,html,json,png} and prompts/."),
    title: str = typer.Option("Leaderboard", "--title", help="Heading of the tables and the plot."),
    plot: bool = typer.Option(True, "--plot/--no-plot", help="Write leaderboard.png (matplotlib)."),
) -> None:
    """Several models' runs on one suite side by side: Markdown and HTML tables, a plot, prompts and protocol."""
    from emollm.evaluation.leaderboard import _parse_runs, build_leaderboard, write_leaderboard

    try:
        lb = build_leaderboard(_parse_runs(runs), title=title)
        files = write_leaderboard(lb, out, plot=plot)
    except (ValueError, FileNotFoundError) as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{len(lb.models)} models x {len(lb.tasks)} tasks: {files['md']}  {files['html']}")


def register(app: typer.Typer) -> None:
    """Add the evaluation commands to the ``emollm`` app."""
    app.command("score")(score_command)
    app.command("eval")(eval_command)
    app.command("leaderboard")(leaderboard_command)
