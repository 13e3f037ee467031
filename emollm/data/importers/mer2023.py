"""MER2023 importer: label CSVs or ``label-6way.npz``, the English/Chinese transcripts, per-split video folders.

Layout under the corpus root (the official release plus the gold files published after the challenge)::

    train-label.csv  test1-label.csv  test2-label.csv  test3-label.csv   # name,discrete,valence
    label-6way.npz                        # MERBench: {train,test1,test2,test3}_corpus: name -> {emo, val}
    transcription-engchi-polish.csv       # name,chinese,english
    train/<name>.avi|mp4   test1/...   test2/...   test3/...

Labels come from the CSVs (``source: csv``) or from the npz (``source: npz``); both give the same
name -> (label, valence) map. test3 has no valence: its CSV cell is empty and its npz value is the
placeholder -10; both become None. ``english`` -> subtitle, ``chinese`` -> meta.subtitle_zh.
Splits are named as in the release: train (3,373), test1 = MER-MULTI (411), test2 = MER-NOISE (412),
test3 = MER-SEMI (834).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from emollm.data.importers.base import (
    VALENCE_RANGE,
    CommonOptions,
    ImportContext,
    MediaIndex,
    clean,
    read_lookup,
    read_table,
    register_importer,
    video_media,
)
from emollm.data.sample import Sample


class MER2023Options(CommonOptions):
    splits: list[str] = Field(default_factory=lambda: ["train", "test1", "test2", "test3"], min_length=1)
    source: Literal["csv", "npz"] = "csv"
    """Where labels come from: the per-split CSVs or the MERBench npz."""
    label_csv: str = "{split}-label.csv"
    """Per-split label CSV (``{split}`` is replaced), columns name,discrete,valence."""
    npz: str = "label-6way.npz"
    """The MERBench label file, used with ``source: npz``."""
    transcripts: str | None = "transcription-engchi-polish.csv"
    """name,chinese,english; None to import without subtitles."""
    video_dirs: list[str] = Field(default_factory=lambda: ["{split}"])
    """Video folders searched in order (``{split}`` is replaced); empty to import without media."""
    valence_placeholder: float | None = -10.0


def _rows_from_csv(ctx: ImportContext, opts: MER2023Options, split: str) -> list[tuple[str, int | None, dict]]:
    table = read_table(ctx, opts.label_csv.format(split=split), id_cols=("name",), columns=("discrete", "valence"))
    if table is None:
        return []
    path = str(table.path)
    no_label = "discrete" in table.missing  # reported once as missing_column; rows kept unlabelled
    return [
        (path, row, {"name": r["name"], "emo": r.get("discrete"), "val": r.get("valence"), "no_label": no_label})
        for row, r in table.rows()
    ]


def _load_npz(ctx: ImportContext, opts: MER2023Options) -> dict[str, Any] | None:
    import zipfile

    import numpy as np

    path = ctx.path(opts.npz)
    if not path.is_file():
        ctx.problem(path, None, None, "missing_file", f"file not found: {path}", action="excluded", rows_affected=0)
        return None
    try:
        with np.load(path, allow_pickle=True) as z:
            return {k: z[k].item() if z[k].shape == () else z[k] for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        ctx.problem(path, None, None, "unreadable_file", f"cannot read npz: {e}", action="excluded", rows_affected=0)
        return None


def _rows_from_npz(ctx: ImportContext, opts: MER2023Options, data: dict[str, Any], split: str) -> list:
    path = str(ctx.path(opts.npz))
    key = f"{split}_corpus"
    corpus = data.get(key)
    if corpus is None:
        ctx.problem(
            path,
            None,
            key,
            "missing_column",
            f"no key {key!r} in npz (keys: {sorted(data)})",
            action="excluded",
            rows_affected=0,
        )
        return []
    if not isinstance(corpus, dict):
        ctx.problem(
            path,
            None,
            key,
            "unreadable_file",
            f"{key} is a {type(corpus).__name__}, expected a dict",
            action="excluded",
            rows_affected=0,
        )
        return []
    out = []
    for name, rec in corpus.items():
        if not isinstance(rec, dict):
            ctx.problem(
                path,
                None,
                f"{key}[{name!r}]",
                "malformed_row",
                f"entry is a {type(rec).__name__}, expected {{'emo': str, 'val': float}}",
                action="excluded",
            )
            continue
        out.append((path, None, {"name": str(name), "emo": rec.get("emo"), "val": rec.get("val")}))
    return out


@register_importer(
    "mer2023", MER2023Options, "MER2023: {split}-label.csv or label-6way.npz, transcripts, {split}/ videos"
)
def load_mer2023(opts: MER2023Options, ctx: ImportContext) -> list[Sample]:
    subs = read_lookup(ctx, opts.transcripts, ("english",)) if opts.transcripts else {}
    npz = _load_npz(ctx, opts) if opts.source == "npz" else None
    samples: list[Sample] = []
    for split in opts.splits:
        if opts.source == "csv":
            rows = _rows_from_csv(ctx, opts, split)
        else:
            rows = _rows_from_npz(ctx, opts, npz, split) if npz is not None else []
        videos = MediaIndex(ctx, [d.format(split=split) for d in opts.video_dirs]) if opts.video_dirs else None
        for path, row, r in rows:
            sid = r["name"]
            if not ctx.claim(sid, path, row):
                continue
            fld = "discrete" if row is not None else f"{split}_corpus[{sid!r}].emo"
            if r.get("no_label"):
                label, meta = None, {}
            else:
                label, meta = ctx.label(None if r["emo"] is None else str(r["emo"]), path, row, fld, sid)
            vfld = "valence" if row is not None else f"{split}_corpus[{sid!r}].val"
            valence = ctx.number(r["val"], path, row, vfld, sid, opts.valence_placeholder, bounds=VALENCE_RANGE)
            sub = subs.get(sid, {})
            if clean(sub.get("chinese")):
                meta["subtitle_zh"] = sub["chinese"].strip()
            media = video_media(ctx, videos, sid, path, row)
            samples.append(
                Sample(
                    id=sid,
                    corpus=ctx.corpus,
                    split=split,
                    media=media,
                    subtitle=clean(sub.get("value")),
                    label=label,
                    valence=valence,
                    meta=meta,
                )
            )
    return samples
