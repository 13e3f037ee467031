"""``emollm train``: run a training recipe (see ``emollm.training.trainer`` for the details).

emollm train train/mini.yaml
emollm train train/mini.yaml stages.0.epochs=1 precision=bf16
emollm train train/mini.yaml --nproc-per-node 2          # relaunches itself under torchrun
emollm train train/mini.yaml --resume auto

A run that stops for a reason the user must act on (a non-finite loss, an output folder that stops
taking files) prints one ``error:`` line, exits 1 and leaves ``run.json`` at ``"failed"`` with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        recipe: Path = typer.Argument(..., help="training recipe YAML (train/*.yaml)"),
        overrides: list[str] = typer.Argument(
            None, help="key=value overrides (stages.0.epochs=2 ...)", show_default=False
        ),
        resume: str = typer.Option("", help="'auto' (latest checkpoint of this run) or a step checkpoint folder"),
        nproc_per_node: int = typer.Option(
            1, "--nproc-per-node", min=1, help="launch this many processes with torchrun"
        ),
        validate_only: bool = typer.Option(False, "--check", help="validate the recipe and data, then stop"),
    ) -> None:
        """Train projectors + LoRA through the recipe's stages."""
        overrides = overrides or []
        if nproc_per_node > 1 and "LOCAL_RANK" not in os.environ:
            env = dict(os.environ)
            env.setdefault("OMP_NUM_THREADS", "1")
            cmd = [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--standalone",
                f"--nproc_per_node={nproc_per_node}",
                "-m",
                "emollm",
                "train",
                str(recipe),
                *overrides,
            ]
            if resume:
                cmd += ["--resume", resume]
            raise typer.Exit(subprocess.call(cmd, env=env))
        from emollm.training.config import load_run_config
        from emollm.training.trainer import TrainingError, preflight, train

        cfg = load_run_config(recipe, overrides)
        if validate_only:
            preflight(cfg)
            typer.echo(f"{recipe}: recipe and data are valid ({len(cfg.stages)} stage(s), output {cfg.out_dir})")
            return
        try:
            res = train(cfg, resume=resume or None)
        except TrainingError as e:  # the run stopped for a reason the user must act on: one clear line
            if os.environ.get("EMOLLM_DEBUG"):
                raise
            typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from None
        finally:
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()
        if int(os.environ.get("RANK", "0")) == 0:
            typer.echo(f"final checkpoint: {res.final}")
            if res.best is not None:
                typer.echo(f"best checkpoint:  {res.best}")
