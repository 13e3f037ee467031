"""The ``emollm`` command line: one entry point for every job.

    emollm prepare data_recipes/synthmer.yaml        # corpus -> manifest (+ import report)
    emollm extract data_recipes/synthmer.yaml --model mini
    emollm train train/mini.yaml [key=value ...]
    emollm eval --checkpoint runs/mini/final --suite eval/suites/synthmer.yaml
    emollm score --metric mer2023 --gold gold.csv --pred pred.csv
    emollm predict / chat / serve / demo / doctor / export / bench / ls

Each area registers its commands from its own ``commands.py`` (``register(app)``); heavy imports
happen inside the command functions so ``emollm --help`` stays fast.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

START_HERE = (
    "Start here: `emollm demo` trains and evaluates the small demo model on synthetic clips (minutes on a CPU); "
    "then `emollm chat` talks to it. `emollm doctor` checks the installation."
)

app = typer.Typer(
    name="emollm",
    help=f"Multimodal emotion recognition and reasoning with LLMs.\n\n{START_HERE}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root() -> None:
    """Multimodal emotion recognition and reasoning with LLMs (emollm COMMAND --help for details)."""


COMMAND_MODULES = (
    "emollm.demo",  # listed first in `emollm --help`: where a new user starts
    "emollm.model.commands",
    "emollm.data.commands",
    "emollm.data.prompt_view",
    "emollm.features.commands",
    "emollm.training.commands",
    "emollm.evaluation.commands",
    "emollm.inference.commands",
    "emollm.bench.commands",
)


def _register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as e:
            if e.name == name:  # area not built yet
                continue
            raise
        mod.register(app)


_register_all()


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from emollm.config import ConfigError

    try:
        app()
    except (ConfigError, FileNotFoundError, ValueError, KeyError) as e:  # user errors: one clear line, rc 2
        if os.environ.get("EMOLLM_DEBUG"):
            raise
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
