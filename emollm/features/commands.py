"""``emollm extract``: run the frozen encoders over a corpus into the feature cache.

    emollm extract data_recipes/synthmer.yaml --model mini
    emollm extract runs/data/mer2023 --model emotion-llama --encoders audio,face --shard 0/4
    emollm extract data_recipes/synthmer.yaml --model mini --noise-seed 0   # MER-NOISE variant

Batched, with a progress bar; resumable (what is cached is skipped); shardable across processes
(``--shard i/n`` takes every n-th sample starting at i, so n processes cover the corpus); prints
hits and misses per modality. Re-running is all hits; changing an encoder option recomputes.
"""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("extract")
    def extract(
        corpus: str = typer.Argument(..., help="data recipe YAML or prepared manifest folder"),
        model: str = typer.Option("mini", "--model", "-m", help="preset name or checkpoint folder"),
        encoders: str = typer.Option("", help="comma-separated modalities (default: all of the model's)"),
        split: str = typer.Option("", help="only this split (default: all)"),
        cache_dir: Path = typer.Option(Path("runs/features"), help="feature cache folder"),
        batch_size: int = typer.Option(16, min=1),
        shard: str = typer.Option("", help="i/n: process every n-th sample starting at i"),
        noise_seed: int = typer.Option(-1, help="apply MER-NOISE corruption drawn with this seed (-1: clean)"),
        override: list[str] = typer.Argument(None, help="model config overrides key=value", show_default=False),
    ) -> None:
        """Extract encoder features for a corpus into the cache."""
        from rich.console import Console
        from rich.table import Table

        from emollm.data.manifests import open_manifest
        from emollm.features.extract import extract_corpus
        from emollm.media.noise import NoiseSpec
        from emollm.model.resolve import model_config_for
        from emollm.shard import parse_shard

        console = Console(stderr=True)
        man = open_manifest(corpus)
        cfg = model_config_for(model, override or [])
        stats = extract_corpus(
            man,
            cfg,
            cache_dir,
            [m.strip() for m in encoders.split(",") if m.strip()],
            split or None,
            batch_size,
            parse_shard(shard),
            NoiseSpec(seed=noise_seed) if noise_seed >= 0 else None,
        )
        st = stats.cache
        table = Table(title=f"features for {stats.n_samples} samples ({man.root}) -> {cache_dir}")
        for col in ("modality", "encoder", "dim x tokens", "absent"):
            table.add_column(col)
        for m, e in stats.encoders.items():
            table.add_row(m, e.name, f"{e.dim} x {e.tokens_per_item}", str(stats.absent.get(m, 0)))
        console.print(table)
        console.print(
            f"cache hits {st['hits']}, misses {st['misses']}, written {st['writes']}, corrupt {st['corrupt']}; "
            f"{stats.samples_per_s:.1f} samples/s in {stats.seconds:.1f}s"
        )
