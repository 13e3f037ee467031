"""Find a prepared manifest from what a user types: a manifest folder, a samples.jsonl, or a data
recipe (whose output folder ``emollm prepare`` wrote).

    m = open_manifest("data_recipes/synthmer.yaml")    # -> Manifest at runs/data/synthmer
    m = open_manifest("runs/data/mer2023")
"""

from __future__ import annotations

import os
from pathlib import Path

from emollm.data.sample import Manifest


def recipe_out_dir(recipe: str | os.PathLike[str]) -> Path:
    from emollm.data.prepare import load_recipe

    rec, _ = load_recipe(recipe)
    return Path(rec.out) if rec.out else Path("runs") / "data" / rec.name


def manifest_dir(spec: str | os.PathLike[str]) -> Path:
    p = Path(spec)
    if p.is_dir() and (p / "samples.jsonl").is_file():
        return p
    if p.is_file() and p.name.endswith(".jsonl"):
        return p.parent
    if p.suffix in (".yaml", ".yml") or not p.exists():
        out = recipe_out_dir(spec)
        if not (out / "samples.jsonl").is_file():
            raise FileNotFoundError(f"no manifest for {str(spec)!r} at {out}: run `emollm prepare {spec}` first")
        return out
    raise FileNotFoundError(f"{spec!r} is neither a manifest folder (with samples.jsonl) nor a data recipe")


def open_manifest(spec: str | os.PathLike[str]) -> Manifest:
    return Manifest.load(manifest_dir(spec))
