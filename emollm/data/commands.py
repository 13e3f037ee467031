"""CLI commands of the data area: ``emollm prepare`` and ``emollm data check|importers``.

    emollm prepare data_recipes/synthmer.yaml                     # generate SynthMER, import, probe
    emollm prepare mer2023 --root /data/MER2023 options.source=npz
    emollm prepare mer2023 --root /data/MER2023 --strict --no-probe
    emollm data check runs/data/mer2023 [--probe]
    emollm data importers

Exit codes: 0 ok; 1 ``--strict`` with problems (printed) or ``data check`` with problems; 2 a bad recipe,
a missing file or folder, or nothing to import. Heavy imports happen inside the command functions.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer


def _fail(msg: str) -> typer.Exit:
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    return typer.Exit(2)


def register(app: typer.Typer) -> None:
    """Add ``prepare`` and the ``data`` command group to the main app."""

    @app.command("prepare")
    def prepare_cmd(
        recipe: str = typer.Argument(..., help="Data recipe YAML (or the name of one in data_recipes/)."),
        overrides: list[str] = typer.Argument(None, help="dotted.key=value overrides, e.g. options.source=npz"),
        root: Path | None = typer.Option(None, "--root", help="Corpus folder (default: the recipe's root)."),
        out: Path | None = typer.Option(None, "--out", help="Output folder (default: runs/data/<recipe name>)."),
        strict: bool = typer.Option(False, "--strict", help="Any problem is fatal (exit 1, no manifest)."),
        no_probe: bool = typer.Option(False, "--no-probe", help="Skip decoding every media file (faster)."),
        workers: int | None = typer.Option(None, "--workers", min=1, help="Media probe threads."),
    ) -> None:
        """Import a corpus as a data recipe says: manifest + report.json/report.md, summary on the terminal."""
        from rich.console import Console

        from emollm.config import ConfigError
        from emollm.data.importers import ImporterError
        from emollm.data.prepare import StrictImportError, prepare
        from emollm.data.report import print_report

        console = Console()
        try:
            res = prepare(
                recipe,
                root=root,
                out=out,
                strict=strict,
                probe=False if no_probe else None,
                overrides=overrides or [],
                workers=workers,
            )
        except StrictImportError as e:
            print_report(e.report, console, max_problems=50)
            typer.secho(
                f"--strict: {len(e.report.problems)} problem(s); no manifest written. Report: "
                f"{e.out_dir / 'report.md'}",
                fg=typer.colors.RED,
                err=True,
            )
            raise typer.Exit(1) from None
        except (ConfigError, ImporterError, FileNotFoundError) as e:
            if os.environ.get("EMOLLM_DEBUG"):
                raise
            raise _fail(str(e)) from None
        print_report(res.report, console)
        console.print(f"manifest: [bold]{res.manifest}[/bold] ({len(res.samples)} samples imported from {res.root})")
        console.print(
            f"report:   {res.out_dir / 'report.md'} ({len(res.report.problems)} problem(s), "
            f"{res.report.n_excluded} row(s) excluded)"
        )

    data_app = typer.Typer(help="Inspect corpora and prepared manifests.", no_args_is_help=True)

    @data_app.command("check")
    def check_cmd(
        manifest: Path = typer.Argument(..., help="Manifest folder (or its samples.jsonl)."),
        probe: bool = typer.Option(False, "--probe", help="Also decode every media file."),
        workers: int = typer.Option(8, "--workers", min=1),
    ) -> None:
        """Re-validate a manifest: duplicate ids, missing/unreadable media, label-space drift (exit 1 if any)."""
        from rich.console import Console

        from emollm.data.check import check_manifest
        from emollm.data.report import print_report

        try:
            report = check_manifest(manifest, probe=probe, workers=workers)
        except FileNotFoundError as e:
            raise _fail(str(e)) from None
        print_report(report, Console(), max_problems=50)
        typer.echo(f"{report.n_samples} samples checked, {len(report.problems)} problem(s)")
        if report.problems:
            raise typer.Exit(1)

    @data_app.command("importers")
    def importers_cmd() -> None:
        """List the corpus importers and their options."""
        from rich.console import Console
        from rich.table import Table

        from emollm.data.importers import IMPORTERS

        t = Table(title="importers (recipe key `importer:`)")
        t.add_column("name")
        t.add_column("layout")
        t.add_column("options", overflow="fold")
        for name in IMPORTERS:
            spec = IMPORTERS.get(name)
            t.add_row(name, spec.summary, ", ".join(spec.options_model.model_fields))
        Console().print(t)

    app.add_typer(data_app, name="data")
