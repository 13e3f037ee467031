"""Command-line entry points of the evaluation area (registered on the ``emollm`` Typer app).

    emollm score --metric ov --gold check-openset.csv --pred predict-openset.csv --synonyms openset-synonym.zip
    emollm score --metric mer2023 --split test1 --gold test1-label.csv --pred pred.csv --bootstrap 1000
    emollm score --metric wheel --gold ov.csv --pred pred.csv --wheel emotion_wheel --wheel-version mer2026

``score`` prints the result as JSON on stdout (and writes it atomically with ``--out``); bad input
(missing or malformed files, unknown names or labels, wrong options) prints one ``error:`` line on
stderr and exits with code 2. One function per command; heavy imports happen inside it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import typer

METRIC_HELP = (
    "classification (accuracy, WAF, macro F1, UAR/WAR), mer2023 (WAF - 0.25*MSE; --split), mer2024 (WAF), "
    "ov (MER2024-OV; --synonyms), wheel (EW set F-score; --wheel), hitrate (MER-UniBench; --wheel), "
    "sentiment (binary weighted F1 on non-zero gold)"
)


def score_command(
    metric: str = typer.Option(..., "--metric", "-m", help=METRIC_HELP),
    gold: Path = typer.Option(..., "--gold", help="Gold CSV (name,discrete[,valence] / name,openset / name,valence)."),
    pred: Path = typer.Option(..., "--pred", help="Prediction CSV (name,discrete[,valence] / name,openset)."),
    synonyms: Path | None = typer.Option(None, "--synonyms", help="ov: cached GPT groupings (openset-synonym.zip)."),
    wheel: Path | None = typer.Option(None, "--wheel", help="wheel/hitrate: emotion-wheel resource folder."),
    wheel_version: str | None = typer.Option(None, "--wheel-version", help="affectgpt2025 (default) or mer2026."),
    level: int | None = typer.Option(None, "--level", help="wheel: main EW level, 1 (default) or 2."),
    split: str | None = typer.Option(None, "--split", help="mer2023: test1, test2 or test3."),
    label_space: str | None = typer.Option(None, "--label-space", help="classification: label space (default mer6)."),
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
    }
    options = {k: v for k, v in given.items() if v is not None}
    try:
        from emollm.evaluation.score import score

        result = score(metric, gold, pred, mode=mode, bootstrap=bootstrap, seed=seed, alpha=alpha, **options)
    except (ConfigError, ValueError, KeyError, FileNotFoundError) as e:
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


def register(app: typer.Typer) -> None:
    """Add the evaluation commands to the ``emollm`` app."""
    app.command("score")(score_command)
