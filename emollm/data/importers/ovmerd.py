"""OV-MERD importer: open-vocabulary emotion lists (``name,openset``), optional descriptions and subtitles.

Layout under the corpus root (MER2024 MER-OV / OV-MERD / MER2025 track 2 files)::

    check-openset.csv            # name,openset     the list as ['a', 'b'], [a, b] or a, b
    final-EMER-reason.csv        # name,chinese,english  (or name,reason), optional -> fine
    subtitle_chieng.csv          # name,chinese,english, optional -> subtitle / meta.subtitle_zh
    video/<name>.mp4|avi         # optional

``openset`` -> Sample.openset (lower-case words, duplicates removed, order kept); no discrete label.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from emollm.data.importers.base import (
    CommonOptions,
    ImportContext,
    MediaIndex,
    clean,
    read_lookup,
    read_openset,
    register_importer,
    video_media,
)
from emollm.data.sample import Sample


class OVMERDOptions(CommonOptions):
    files: dict[str, str] = Field(default_factory=lambda: {"test": "check-openset.csv"}, min_length=1)
    """split -> name,openset CSV."""
    descriptions: str | None = None
    """Descriptions keyed by name (EMER-v2 ``name,chinese,english`` or MER2025 ``name,reason``) -> fine."""
    transcripts: str | None = None
    """Subtitles keyed by name (``english``/``sentence`` column; ``chinese`` -> meta.subtitle_zh)."""
    video_dirs: list[str] = Field(default_factory=list)
    """Video folders searched in order; empty to import without media."""


@register_importer("ovmerd", OVMERDOptions, "OV-MERD / MER-OV: name,openset lists (+ descriptions, subtitles)")
def load_ovmerd(opts: OVMERDOptions, ctx: ImportContext) -> list[Sample]:
    desc = read_lookup(ctx, opts.descriptions, ("english", "reason")) if opts.descriptions else {}
    subs = read_lookup(ctx, opts.transcripts, ("english", "sentence_en", "sentence")) if opts.transcripts else {}
    videos = MediaIndex(ctx, list(opts.video_dirs)) if opts.video_dirs else None
    samples: list[Sample] = []
    for split, rel in opts.files.items():
        for path, row, sid, words in read_openset(ctx, rel):
            if not ctx.claim(sid, path, row):
                continue
            meta: dict[str, Any] = {}
            d, s = desc.get(sid, {}), subs.get(sid, {})
            if clean(d.get("chinese")):
                meta["fine_zh"] = d["chinese"].strip()
            if clean(s.get("chinese")):
                meta["subtitle_zh"] = s["chinese"].strip()
            samples.append(
                Sample(
                    id=sid,
                    corpus=ctx.corpus,
                    split=split,
                    media=video_media(ctx, videos, sid, path, row),
                    subtitle=clean(s.get("value")),
                    openset=words,
                    fine=clean(d.get("value")),
                    meta=meta,
                )
            )
    return samples
