"""EMER importer (explainable multimodal emotion reasoning): v1 gold with labels, v2 descriptions.

Layout under the corpus root (AffectGPT's ``EMER/`` folder)::

    dataset-v1/gt-eng.csv            # names,emotions,subtitles,reasons   (100 rows, English)
    dataset-v1/gt-chi.csv            # same columns in Chinese (labels like 生气, 担忧)
    dataset-v2/final-EMER-reason.csv # name,chinese,english               (332 rows, no label)
    video/<name>.mp4|avi             # optional (the clips are MER2023 train clips)

v1: ``names`` -> id, ``emotions`` -> label (English or Chinese; Chinese forms map through the label
space's synonyms, plus 担忧 -> worried which EMER uses), ``subtitles`` -> subtitle, ``reasons`` -> fine.
A Chinese companion file (``chinese: {split: gt-chi.csv}``) adds meta.subtitle_zh and meta.fine_zh.
v2: ``english`` -> fine, ``chinese`` -> meta.fine_zh. The format is detected from the header.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from emollm.data.importers.base import (
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

EMER_CHINESE_LABELS = {"担忧": "worried", "生气": "angry", "高兴": "happy", "悲伤": "sad", "惊讶": "surprise"}
"""EMER-v1 Chinese labels; added as aliases when the target is in the recipe's label space."""

V1 = ("names", "emotions", "subtitles", "reasons")
V2 = ("name", "chinese", "english")


class EMEROptions(CommonOptions):
    files: dict[str, str] = Field(default_factory=lambda: {"test": "dataset-v1/gt-eng.csv"}, min_length=1)
    """split -> EMER CSV (v1 or v2)."""
    format: Literal["auto", "v1", "v2"] = "auto"
    """auto: v1 when the header has ``emotions``, v2 when it has ``english``."""
    chinese: dict[str, str] = Field(default_factory=dict)
    """split -> the v1 Chinese file (gt-chi.csv) whose subtitles/reasons go to meta.subtitle_zh/fine_zh."""
    video_dirs: list[str] = Field(default_factory=list)
    """Video folders searched in order; empty to import without media."""


@register_importer("emer", EMEROptions, "EMER v1 (names,emotions,subtitles,reasons) / v2 (name,chinese,english)")
def load_emer(opts: EMEROptions, ctx: ImportContext) -> list[Sample]:
    for k, v in EMER_CHINESE_LABELS.items():
        if v in ctx.space.labels:
            ctx.label_aliases.setdefault(k, v)
    videos = MediaIndex(ctx, list(opts.video_dirs)) if opts.video_dirs else None
    samples: list[Sample] = []
    for split, rel in opts.files.items():
        table = read_table(ctx, rel, id_cols=("names", "name"))
        if table is None:
            continue
        fmt = opts.format
        if fmt == "auto":
            fmt = "v1" if table.has("emotions") else "v2" if table.has("english") else "v1"
        table.require(ctx, (V1 if fmt == "v1" else V2)[1:])
        zh = (
            read_lookup(ctx, opts.chinese[split], ("reasons",), id_cols=("names", "name"))
            if split in opts.chinese
            else {}
        )
        path = str(table.path)
        for row, r in table.rows():
            sid = r[table.id_col]
            if not ctx.claim(sid, path, row):
                continue
            meta: dict[str, Any] = {}
            label = None
            if fmt == "v1":
                if "emotions" not in table.missing:
                    label, meta = ctx.label(r["emotions"], path, row, "emotions", sid)
                subtitle, fine = clean(r.get("subtitles")), clean(r.get("reasons"))
                z = zh.get(sid, {})
                if clean(z.get("subtitles")):
                    meta["subtitle_zh"] = z["subtitles"].strip()
                if clean(z.get("reasons")):
                    meta["fine_zh"] = z["reasons"].strip()
            else:
                subtitle, fine = None, clean(r.get("english"))
                if clean(r.get("chinese")):
                    meta["fine_zh"] = r["chinese"].strip()
            samples.append(
                Sample(
                    id=sid,
                    corpus=ctx.corpus,
                    split=split,
                    media=video_media(ctx, videos, sid, path, row),
                    subtitle=subtitle,
                    label=label,
                    fine=fine,
                    meta=meta,
                )
            )
    return samples
