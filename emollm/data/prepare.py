"""``emollm prepare``: a data recipe (YAML) -> optional generate step -> importer -> media probe -> manifest.

A recipe names the importer and its options, the label space and where things go::

    name: mer2023
    importer: mer2023                # emollm data importers lists them
    label_space: mer6
    options: {source: csv}           # validated by the importer's Strict options model
    # root: /data/MER2023            # corpus folder (or --root); out: runs/data/mer2023 by default

Run it::

    result = prepare("data_recipes/mer2023.yaml", root="/data/MER2023", strict=False, probe=True)
    result.out_dir / "samples.jsonl", result.report.problems

The output folder gets ``samples.jsonl`` + ``manifest.json`` (``emollm.data.sample.write_manifest``),
``report.json`` + ``report.md`` (every problem, see ``emollm.data.report``) and ``recipe.yaml`` (the
resolved recipe). With ``strict=True`` any problem raises ``StrictImportError`` after writing the
report, and no manifest is written; a failed prepare (``strict`` with problems, or no sample at all)
also removes the ``samples.jsonl`` / ``manifest.json`` / ``recipe.yaml`` of an earlier run from ``out``,
so the folder never pairs an old manifest with a new report (``emollm data check`` flags such a pair). With a ``generate`` step (SynthMER) the corpus is first written
to ``root`` (default ``<out>/raw``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from emollm.config import ConfigError, Strict, dump_config, load_config, validate
from emollm.data.importers import IMPORTERS, ImportContext, ImporterError
from emollm.data.report import ImportReport, count_labels
from emollm.data.sample import Sample, write_manifest
from emollm.labels import label_space
from emollm.log import get_logger
from emollm.paths import resource_root

log = get_logger(__name__)


class GenerateStep(Strict):
    """Write a synthetic corpus before importing it (only SynthMER exists)."""

    synthmer: dict[str, Any] | None = None
    """Keyword arguments of ``emollm.data.synthmer.SynthMERConfig``."""


class DataRecipe(Strict):
    """One corpus import: importer + options + label space + where the corpus and the output live."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Recipe name: the default output folder is ``runs/data/<name>``; also the corpus name of every sample."""
    description: str = ""
    importer: str
    """Importer registry name (merr, mer_factory, mer2023, mer2024, emer, ovmerd, custom_csv)."""
    label_space: str = "mer6"
    """Label space of Sample.label (``emollm ls labels``); labels are normalised into it."""
    corpus: str | None = None
    """Sample.corpus; None uses ``name``."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Importer options, validated by the importer's own Strict model (unknown keys rejected)."""
    root: str | None = None
    """Corpus folder; ``--root`` overrides; None needs ``--root`` unless there is a generate step."""
    out: str | None = None
    """Output folder; ``--out`` overrides; None means ``runs/data/<name>``."""
    generate: GenerateStep | None = None
    probe: bool = True
    """Decode every media file once to catch unreadable ones (``--no-probe`` skips it)."""
    probe_workers: int = Field(8, ge=1, le=256)

    @field_validator("importer")
    @classmethod
    def _known_importer(cls, v: str) -> str:
        IMPORTERS.get(v)
        return v

    @field_validator("label_space")
    @classmethod
    def _known_space(cls, v: str) -> str:
        label_space(v)
        return v


class StrictImportError(RuntimeError):
    """``--strict`` and the import found problems; ``report`` holds them (already written to ``out_dir``)."""

    def __init__(self, report: ImportReport, out_dir: Path) -> None:
        self.report = report
        self.out_dir = out_dir
        first = "; ".join(f"{p.where()}: {p.kind}: {p.message}" for p in report.problems[:3])
        super().__init__(f"--strict: {len(report.problems)} problem(s), no manifest written ({first})")


@dataclass
class PrepareResult:
    recipe: DataRecipe
    out_dir: Path
    root: Path
    samples: list[Sample]
    report: ImportReport

    @property
    def manifest(self) -> Path:
        return self.out_dir / "samples.jsonl"


def find_recipe(recipe: str | os.PathLike[str]) -> Path:
    """A recipe path as given, else under the resource root, else ``data_recipes/<name>.yaml``."""
    p = Path(recipe).expanduser()
    cands = [p, resource_root() / p]
    if p.suffix not in (".yaml", ".yml") and len(p.parts) == 1:
        cands.append(resource_root() / "data_recipes" / f"{p.name}.yaml")
    for c in cands:
        if c.is_file():
            return c
    shipped = sorted(q.stem for q in (resource_root() / "data_recipes").glob("*.yaml"))
    raise FileNotFoundError(
        f"data recipe {str(recipe)!r} not found (looked in {', '.join(str(c) for c in cands)}); "
        f"shipped recipes: {', '.join(shipped) or 'none'}"
    )


def load_recipe(
    recipe: str | os.PathLike[str], overrides: list[str] | tuple[str, ...] = ()
) -> tuple[DataRecipe, Strict]:
    """Load and validate a recipe and its importer options; errors name the file and the dotted key."""
    path = find_recipe(recipe)
    rec = load_config(DataRecipe, path, overrides)
    spec = IMPORTERS.get(rec.importer)
    opts = validate(spec.options_model, rec.options, f"{path}: options of importer {rec.importer!r}")
    if rec.generate is not None and rec.generate.synthmer is not None:
        _synthmer_config(rec, path)  # fail before any work
    return rec, opts


def _synthmer_config(rec: DataRecipe, source: Path) -> Any:
    try:
        from emollm.data.synthmer import SynthMERConfig
    except ImportError as e:
        raise ConfigError(
            f"{source}: generate.synthmer needs emollm.data.synthmer, which cannot be imported: {e}"
        ) from None
    return validate(SynthMERConfig, dict(rec.generate.synthmer or {}), f"{source}: generate.synthmer")


def _generate(rec: DataRecipe, source: Path, root: Path, progress: bool) -> dict[str, Any]:
    """Run the generate step; the generator is idempotent (unchanged files are not rewritten)."""
    from emollm.data.synthmer import generate_synthmer

    cfg = _synthmer_config(rec, source)
    log.info("generating (or reusing) SynthMER in %s", root)
    return generate_synthmer(root, cfg, progress=progress)


def _probe(samples: list[Sample], ctx: ImportContext, out_dir: Path, workers: int, progress: bool) -> dict[str, Any]:
    """Probe every media file once (thread pool); unreadable ones are reported and dropped from the sample."""
    from emollm.media.probe import probe_many

    todo: list[tuple[Sample, str, Path]] = []
    for s in samples:
        for kind, ref in s.media.items():
            p = Path(ref)
            todo.append((s, kind, p if p.is_absolute() else out_dir / p))
    unique = sorted({str(p) for _, _, p in todo})
    infos = dict(zip(unique, probe_many(unique, workers=workers, progress=progress), strict=True))
    for s, kind, p in todo:
        info = infos[str(p)]
        if info.ok:
            s.meta.setdefault("media_info", {})[kind] = info.summary()
            continue
        file, row = ctx.origin.get(s.id, ("?", None))
        ctx.report.add(
            file,
            row,
            kind,
            "unreadable_media",
            f"{kind} {p} cannot be decoded: {info.error}; kept without {kind}",
            sample_id=s.id,
            media=str(p),
        )
        media = dict(s.media)
        media.pop(kind)
        s.media = media
    ok = [i for i in infos.values() if i.ok]
    summary: dict[str, Any] = {"n_probed": len(infos), "n_ok": len(ok), "n_unreadable": len(infos) - len(ok)}
    durs = [i.duration for i in ok if i.duration]
    if durs:
        summary.update(
            hours=round(sum(durs) / 3600, 4), duration_min_s=round(min(durs), 3), duration_max_s=round(max(durs), 3)
        )
    fps = [i.fps for i in ok if i.fps]
    if fps:
        summary.update(fps_min=round(min(fps), 3), fps_max=round(max(fps), 3))
    sizes = [(i.width, i.height) for i in ok if i.width and i.height]
    if sizes:
        summary["sizes"] = f"{min(sizes)} .. {max(sizes)}"
    summary["n_without_audio"] = sum(1 for i in ok if i.has_video and not i.has_audio)
    return summary


OUTPUTS = ("samples.jsonl", "manifest.json", "recipe.yaml")
"""What a successful prepare writes besides the report; a failed one removes them (see ``_drop_stale_outputs``)."""


def _drop_stale_outputs(out_dir: Path) -> None:
    """Remove an earlier run's manifest from ``out_dir`` before a failed run writes its report there.

    Otherwise the old ``samples.jsonl`` would sit beside a report saying ``n_samples: 0`` and training
    would silently use stale data. Only the files ``prepare`` itself writes are removed (never media
    or a generated ``raw/`` corpus).
    """
    removed = []
    for name in OUTPUTS:
        f = out_dir / name
        if f.is_file():
            f.unlink()
            removed.append(name)
    if removed:
        log.warning(
            "prepare failed: removed the earlier %s from %s (they no longer match)", ", ".join(removed), out_dir
        )


def prepare(
    recipe: str | os.PathLike[str],
    root: str | os.PathLike[str] | None = None,
    out: str | os.PathLike[str] | None = None,
    strict: bool = False,
    probe: bool | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    workers: int | None = None,
    progress: bool = True,
) -> PrepareResult:
    """Import a corpus as the recipe says and write the manifest and the report (see module docstring).

    Raises ``ConfigError`` for a bad recipe, ``FileNotFoundError`` for a missing root or recipe,
    ``ImporterError`` when nothing could be imported, ``StrictImportError`` under ``strict`` with problems.
    """
    source = find_recipe(recipe)
    rec, opts = load_recipe(source, overrides)
    out_dir = Path(out or rec.out or Path("runs") / "data" / rec.name).expanduser().resolve()
    root_s = root or rec.root or (out_dir / "raw" if rec.generate is not None else None)
    if root_s is None:
        raise FileNotFoundError(f"{source}: no corpus folder: pass --root DIR (or set root: in the recipe)")
    root_dir = Path(root_s).expanduser().resolve()
    if rec.generate is not None and rec.generate.synthmer is not None:
        _generate(rec, source, root_dir, progress)
    if not root_dir.is_dir():
        raise FileNotFoundError(f"{source}: corpus folder {root_dir} does not exist (pass --root DIR)")

    space = label_space(rec.label_space)
    corpus = rec.corpus or rec.name
    created = datetime.now(timezone.utc).isoformat(timespec="seconds")
    report = ImportReport(
        corpus=corpus, importer=rec.importer, label_space=space.name, root=str(root_dir), created=created
    )
    ctx = ImportContext(
        root_dir, out_dir, space, report, corpus=corpus, label_aliases=getattr(opts, "label_aliases", {})
    )
    spec = IMPORTERS.get(rec.importer)
    log.info("importing %s from %s with importer %r", corpus, root_dir, rec.importer)
    samples = spec.load(opts, ctx)

    do_probe = rec.probe if probe is None else probe
    if do_probe and samples:
        report.media = _probe(samples, ctx, out_dir, workers or rec.probe_workers, progress)
    elif not do_probe:
        report.media = {"skipped": True}
    report.n_samples = len(samples)
    report.counts = count_labels(samples)

    if not samples:
        _drop_stale_outputs(out_dir)
        report.write(out_dir)
        first = "; ".join(f"{p.where()}: {p.message}" for p in report.problems[:5])
        raise ImporterError(
            f"{source}: importer {rec.importer!r} found no samples under {root_dir}"
            + (f" ({len(report.problems)} problem(s): {first})" if first else "")
            + f"; see {out_dir / 'report.md'}"
        )
    if strict and report.problems:
        _drop_stale_outputs(out_dir)
        report.write(out_dir)
        raise StrictImportError(report, out_dir)

    info = {
        "corpus": corpus,
        "label_space": space.name,
        "importer": rec.importer,
        "recipe": rec.name,
        "recipe_file": str(source),
        "root": str(root_dir),
        "created": created,
        "n_problems": len(report.problems),
        "n_excluded": report.n_excluded,
        "report": "report.json",
    }
    write_manifest(out_dir, samples, info)
    dump_config(rec.model_copy(update={"root": str(root_dir), "out": str(out_dir)}), out_dir / "recipe.yaml")
    report.manifest_written = True
    report.write(out_dir)
    return PrepareResult(recipe=rec, out_dir=out_dir, root=root_dir, samples=samples, report=report)
