"""MER2025 importer: Track 1 (MER-SEMI, 6 labels) and Track 2 (MER-FG, open-vocabulary lists) files.

Layout under the corpus root (HF ``MERChallenge/MER2025`` plus the test gold you hold)::

    track1_train_disdim.csv             name,discrete[,valence]     Track 1 training labels (7,369)
    track2_train_ovmerd.csv             name,openset                Track 2 training lists (OV-MERD)
    track2_train_mercaptionplus.csv     name,openset                Track 2 training lists (MER-Caption+)
    track3_train_ovmerd.csv             name,reason                 descriptions -> fine (optional)
    track_all_candidates.csv            name                        the 20,000 names a submission covers
    subtitle_chieng.csv                 name,chinese,english        english -> subtitle, chinese -> meta
    video/<name>.mp4                    optional

``labels`` (split -> name,discrete CSV) gives Track 1 gold, ``openset`` (split -> name,openset CSV) Track 2
gold; a name in both gets both. Track 1 labels must be one of the 6 MER labels (neutral, angry, happy, sad,
worried, surprise). ``candidates``: every candidate name not imported from a gold file is added as split
``candidates`` (no gold), so a run over it writes a full submission; every sample that is a candidate has
``meta.candidate = true``.

    emollm prepare mer2025 --root /data/MER2025
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
    read_table,
    register_importer,
    video_media,
)
from emollm.data.importers.mer2024 import add_label_tables, add_openset_tables
from emollm.data.sample import Sample


class MER2025Options(CommonOptions):
    labels: dict[str, str] = Field(default_factory=lambda: {"train": "track1_train_disdim.csv"})
    """split -> Track 1 CSV with name,discrete (valence used when present)."""
    openset: dict[str, str] = Field(default_factory=lambda: {"train_ovmerd": "track2_train_ovmerd.csv"})
    """split -> Track 2 CSV with name,openset (the list as ['a', 'b'], [a, b] or a, b)."""
    reasons: str | None = None
    """Track 3 name,reason CSV -> Sample.fine (optional)."""
    candidates: str | None = None
    """track_all_candidates.csv (name): names without gold become split ``candidates``; None: skip."""
    transcripts: str | None = "subtitle_chieng.csv"
    """Subtitles keyed by name (english -> subtitle, chinese -> meta.subtitle_zh); None: none."""
    video_dirs: list[str] = Field(default_factory=lambda: ["video"])
    """Video folders searched in order; empty to import without media."""
    valence_placeholder: float | None = -10.0


@register_importer("mer2025", MER2025Options, "MER2025: track1 name,discrete / track2 name,openset, candidates")
def load_mer2025(opts: MER2025Options, ctx: ImportContext) -> list[Sample]:
    subs = read_lookup(ctx, opts.transcripts, ("english", "sentence")) if opts.transcripts else {}
    reasons = read_lookup(ctx, opts.reasons, ("reason", "english")) if opts.reasons else {}
    videos = MediaIndex(ctx, list(opts.video_dirs)) if opts.video_dirs else None
    cand: dict[str, int] = {}
    cand_path = ""
    if opts.candidates:
        table = read_table(ctx, opts.candidates, id_cols=("name",))
        if table is not None:
            cand_path = str(table.path)
            for row, r in table.rows():
                cand.setdefault(r["name"], row)
    samples: dict[str, Sample] = {}

    def new(sid: str, split: str, path: str, row: int, **fields: Any) -> Sample:
        sub = subs.get(sid, {})
        meta: dict[str, Any] = dict(fields.pop("meta", {}) or {})
        if clean(sub.get("chinese")):
            meta["subtitle_zh"] = sub["chinese"].strip()
        if sid in cand:
            meta["candidate"] = True
        return Sample(
            id=sid,
            corpus=ctx.corpus,
            split=split,
            media=video_media(ctx, videos, sid, path, row),
            subtitle=clean(sub.get("value")),
            fine=clean(reasons.get(sid, {}).get("value")),
            meta=meta,
            **fields,
        )

    add_label_tables(ctx, opts.labels, opts.valence_placeholder, samples, new)
    add_openset_tables(ctx, opts.openset, samples, new)
    for sid, row in cand.items():
        if sid not in samples and ctx.claim(sid, cand_path, row):
            samples[sid] = new(sid, "candidates", cand_path, row)
    return list(samples.values())
