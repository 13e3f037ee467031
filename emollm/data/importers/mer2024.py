"""MER2024 importer: ``label-disdim.csv`` (train), organiser gold for test1/test2, MER-OV open-set lists.

Layout under the corpus root::

    label-disdim.csv                     # name,discrete[,valence,...]  the 5,030 labelled training clips
    test1_name_convert_label.csv         # name,discrete  MER-SEMI gold (1,169)
    test2_name_convert_label.csv         # name,discrete  MER-NOISE gold (1,170)
    check-openset.csv                    # name,openset   MER-OV gold (332), optional
    transcription_all_new.csv            # name,(english|sentence_en|sentence)[,chinese], optional
    video-labeled/<name>.mp4|avi
    video-unlabeled-with-test2noise/<name>.mp4|avi

Open-set files (``openset: {split: file}``) hold the list written as ``['a', 'b']``, ``[a, b]`` or ``a, b``.
A name already imported from a label file gets the list attached (its split unchanged); a new name
becomes a sample of the open-set file's split.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field

from emollm.data.importers.base import (
    VALENCE_RANGE,
    CommonOptions,
    ImportContext,
    MediaIndex,
    clean,
    read_lookup,
    read_openset,
    read_table,
    register_importer,
    video_media,
)
from emollm.data.sample import Sample


class MER2024Options(CommonOptions):
    labels: dict[str, str] = Field(
        default_factory=lambda: {
            "train": "label-disdim.csv",
            "test1": "test1_name_convert_label.csv",
            "test2": "test2_name_convert_label.csv",
        }
    )
    """split -> label CSV with columns name,discrete (a valence column is used when present)."""
    openset: dict[str, str] = Field(default_factory=dict)
    """split -> name,openset CSV (MER-OV), e.g. ``{ov: check-openset.csv}``."""
    transcripts: str | None = None
    """Subtitle CSV keyed by name; None imports without subtitles."""
    transcript_columns: list[str] = Field(default_factory=lambda: ["english", "sentence_en", "sentence"])
    video_dirs: list[str] = Field(default_factory=lambda: ["video-labeled", "video-unlabeled-with-test2noise"])
    """Video folders searched in order; empty to import without media."""
    valence_placeholder: float | None = -10.0


@register_importer("mer2024", MER2024Options, "MER2024: label-disdim.csv, test{1,2} gold, MER-OV openset, videos")
def load_mer2024(opts: MER2024Options, ctx: ImportContext) -> list[Sample]:
    subs = read_lookup(ctx, opts.transcripts, tuple(opts.transcript_columns)) if opts.transcripts else {}
    videos = MediaIndex(ctx, list(opts.video_dirs)) if opts.video_dirs else None
    samples: dict[str, Sample] = {}

    def new_sample(
        sid: str,
        split: str,
        path: str,
        row: int,
        label: str | None = None,
        valence: float | None = None,
        openset: list[str] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> Sample:
        sub = subs.get(sid, {})
        meta = dict(meta or {})
        if clean(sub.get("chinese")):
            meta["subtitle_zh"] = sub["chinese"].strip()
        return Sample(
            id=sid,
            corpus=ctx.corpus,
            split=split,
            media=video_media(ctx, videos, sid, path, row),
            subtitle=clean(sub.get("value")),
            label=label,
            valence=valence,
            openset=openset,
            meta=meta,
        )

    add_label_tables(ctx, opts.labels, opts.valence_placeholder, samples, new_sample)
    add_openset_tables(ctx, opts.openset, samples, new_sample)
    return list(samples.values())


NewSample = Callable[..., Sample]
"""``new(sid, split, path, row, **fields) -> Sample``: an importer's sample builder (media, subtitles...)."""


def add_label_tables(
    ctx: ImportContext,
    tables: dict[str, str],
    valence_placeholder: float | None,
    samples: dict[str, Sample],
    new: NewSample,
) -> None:
    """MER-style ``name,discrete[,valence]`` tables, one per split, into ``samples`` (ids claimed once;
    a missing ``discrete`` column imports unlabelled rows; valence outside -5..5 is a problem)."""
    for split, rel in tables.items():
        table = read_table(ctx, rel, id_cols=("name",), columns=("discrete",))
        if table is None:
            continue
        path = str(table.path)
        for row, r in table.rows():
            sid = r["name"]
            if not ctx.claim(sid, path, row):
                continue
            label, meta = (
                (None, {}) if "discrete" in table.missing else ctx.label(r["discrete"], path, row, "discrete", sid)
            )
            valence = ctx.number(r.get("valence"), path, row, "valence", sid, valence_placeholder, bounds=VALENCE_RANGE)
            samples[sid] = new(sid, split, path, row, label=label, valence=valence, meta=meta)


def add_openset_tables(ctx: ImportContext, tables: dict[str, str], samples: dict[str, Sample], new: NewSample) -> None:
    """MER-OV ``name,openset`` tables: the words join a sample of the label tables, or make a new one;
    a second list for one id is a ``duplicate_id`` problem (excluded)."""
    for split, rel in tables.items():
        for path, row, sid, words in read_openset(ctx, rel):
            s = samples.get(sid)
            if s is None:
                if ctx.claim(sid, path, row):
                    samples[sid] = new(sid, split, path, row, openset=words)
            elif s.openset is not None:
                ctx.problem(
                    path,
                    row,
                    "openset",
                    "duplicate_id",
                    f"id {sid!r} already has an open-set list; this row is excluded",
                    sample_id=sid,
                    action="excluded",
                )
            else:
                s.openset = words
