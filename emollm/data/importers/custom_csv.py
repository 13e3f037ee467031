"""Custom CSV importer: a user's own clips described by one CSV file.

Columns (header row required; only ``id`` is mandatory; docs/DATA.md documents each one)::

    id,video,audio,image,subtitle,label,valence,split,openset,coarse,fine,<anything else>

- ``video`` / ``audio`` / ``image``: media paths, relative to the CSV's folder unless absolute; empty = none.
- ``label``: a label of the recipe's label space (synonyms and options.label_aliases accepted); empty =
  unlabelled (not a problem); anything else is an unknown_label problem.
- ``valence``: a number or empty. ``split``: empty = options.default_split. ``openset``: ``[a, b]`` or ``a, b``
  (read by ``emollm.answers``; a cell that is not a flat list is a bad_value problem naming the row).
- every other column goes to Sample.meta (empty cells omitted); one that looks like a misspelt known column
  (``lable``: "did you mean 'label'?") is reported as an unknown_column problem (``--strict`` fails on it).
- a row holding a byte that is not UTF-8 is excluded and reported with its row number; the rest is imported.

    # data_recipes/custom_csv.yaml
    importer: custom_csv
    options: {csv: clips.csv}
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from emollm.data.importers.base import (
    VALENCE_RANGE,
    CommonOptions,
    ImportContext,
    clean,
    openset_words,
    read_table,
    register_importer,
)
from emollm.data.sample import MEDIA_KINDS, Sample

FIELDS = ("id", *MEDIA_KINDS, "subtitle", "label", "valence", "split", "openset", "coarse", "fine")


class CustomCSVOptions(CommonOptions):
    csv: str = "samples.csv"
    """The CSV file (relative to the corpus root); media paths in it are relative to its folder."""
    default_split: str = "train"
    """Split of rows whose ``split`` cell is empty or absent."""
    delimiter: str = ","


def _report_misspelt_columns(ctx: ImportContext, path: Path, extra: list[str], header: list[str], n: int) -> None:
    """An extra column that is a close match of a known, absent one (``lable``) is an unknown_column problem.

    Other extra columns (``speaker``) are the documented way to add meta and are not reported.
    """
    absent = [f for f in FIELDS if f not in header]
    for c in extra:
        m = difflib.get_close_matches(c.strip().lower(), absent, n=1, cutoff=0.75)
        if m:
            ctx.problem(
                path,
                1,
                c,
                "unknown_column",
                f"unknown column {c!r} (did you mean {m[0]!r}?): its cells go to meta[{c!r}] and no row gets a "
                f"{m[0]}; rename the column to {m[0]!r}. Known columns: {', '.join(FIELDS)}",
                rows_affected=n,
            )


@register_importer("custom_csv", CustomCSVOptions, "your own clips: id,video,audio,image,subtitle,label,... CSV")
def load_custom_csv(opts: CustomCSVOptions, ctx: ImportContext) -> list[Sample]:
    table = read_table(ctx, opts.csv, id_cols=("id",), delimiter=opts.delimiter)
    if table is None:
        return []
    base = table.path.parent
    path = str(table.path)
    if not any(table.has(k) for k in MEDIA_KINDS) and not table.has("subtitle"):
        table.require(ctx, ("video",))  # a CSV with neither media nor text is almost surely a wrong header
    extra = [c for c in table.header if c not in FIELDS]
    _report_misspelt_columns(ctx, table.path, extra, table.header, len(table.records))
    samples: list[Sample] = []
    for row, r in table.rows():
        sid = r["id"]
        if not ctx.claim(sid, path, row):
            continue
        media: dict[str, str] = {}
        for kind in MEDIA_KINDS:
            rel = clean(r.get(kind))
            if rel is None:
                continue
            p = Path(rel).expanduser()
            p = p if p.is_absolute() else base / p
            if p.is_file():
                media[kind] = ctx.media_ref(p)
            else:
                ctx.problem(
                    path,
                    row,
                    kind,
                    "missing_media",
                    f"{kind} file not found: {p}; kept without it",
                    sample_id=sid,
                    media=str(p),
                )
        meta: dict[str, Any] = {c: r[c].strip() for c in extra if clean(r[c]) is not None}
        label = None
        if clean(r.get("label")):
            label, more = ctx.label(r["label"], path, row, "label", sid)
            meta.update(more)
        samples.append(
            Sample(
                id=sid,
                corpus=ctx.corpus,
                split=clean(r.get("split")) or opts.default_split,
                media=media,
                subtitle=clean(r.get("subtitle")),
                label=label,
                valence=ctx.number(r.get("valence"), path, row, "valence", sid, bounds=VALENCE_RANGE),
                openset=openset_words(ctx, r["openset"], path, row, "openset", sid)
                if clean(r.get("openset"))
                else None,
                coarse=clean(r.get("coarse")),
                fine=clean(r.get("fine")),
                meta=meta,
            )
        )
    return samples
