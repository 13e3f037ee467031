"""MERR (Emotion-LLaMA) importer: NCEV list files + coarse/fine JSON + transcripts + a video folder.

Layout under the corpus root (names are options; see data_recipes/merr_coarse.yaml)::

    MERR_coarse_grained.txt        # "name frame_count label [valence]" per line, space separated (one per split)
    MERR_coarse_grained.json       # {name: {caption, AU_list, visual_prior_list, audio_prior_list,
                                   #         peak_index, peak_AU_list, pseu_emotion}}
    MERR_fine_grained.json         # {name: {smp_reason_caption, text, ...same keys}}
    transcription_en_all.csv       # name,sentence  (English subtitles)
    video/<name>.mp4 | <name>.avi
    synthmer_meta.csv              # optional: name,<any columns> -> Sample.meta

Mapping: list field 0 -> id, field 1 -> meta.frame_count, field 2 -> label (in the recipe's label
space, ``merr9`` for real MERR), field 3 -> valence (``-10`` placeholder -> None); ``caption`` -> coarse;
``smp_reason_caption`` -> fine; transcript ``sentence`` -> subtitle, else the fine JSON's ``text``;
every other JSON key (AU_list, peak_index, pseu_emotion, ...) -> meta (the fine JSON wins where both
have a key). Files produced by MER-Factory's Emotion-LLaMA exporter have exactly this layout.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from emollm.data.importers.base import (
    VALENCE_RANGE,
    CommonOptions,
    ImportContext,
    MediaIndex,
    clean,
    read_json_object,
    read_lookup,
    register_importer,
    video_media,
)
from emollm.data.sample import Sample

DESCRIPTION_KEYS = {"caption": "coarse", "smp_reason_caption": "fine"}
"""JSON key -> Sample field. Every other key of an entry (except ``text``) goes to meta as is."""

SAMPLE_FIELDS = set(Sample.model_fields) | {"name"}
"""meta_csv columns that are not copied to meta (the id, and what the list/JSON files already give)."""

Required = Literal["coarse", "fine", "subtitle", "video"]


class MERROptions(CommonOptions):
    lists: dict[str, str] = Field(min_length=1)
    """split name -> NCEV list file, e.g. ``{train: train_NCEV.txt, test: test_NCEV.txt}``."""
    coarse_json: str | None = None
    """Coarse annotation JSON (``caption`` -> Sample.coarse)."""
    fine_json: str | None = None
    """Fine annotation JSON (``smp_reason_caption`` -> Sample.fine, ``text`` -> subtitle fallback)."""
    transcripts: str | None = None
    """Subtitle CSV keyed by ``name`` (``transcription_en_all.csv``)."""
    transcript_columns: list[str] = Field(default_factory=lambda: ["sentence", "sentence_en", "english"])
    """Subtitle column names accepted, first present wins (MER2023: sentence; MER2024: sentence_en)."""
    video_dir: str | None = None
    """Folder of ``<name>.<ext>`` videos; None imports annotations only."""
    video_exts: list[str] = Field(default_factory=lambda: [".mp4", ".avi"])
    """Video suffixes, in order of preference (Emotion-LLaMA opens .mp4, else .avi)."""
    meta_csv: str | None = None
    """CSV keyed by ``name``; every other non-empty column goes to Sample.meta (except Sample field names such as split)."""
    require: list[Required] = Field(default_factory=list)
    """Fields every listed sample must have; a sample without one is a missing_annotation problem
    (video: missing_media). Unlisted fields may be absent silently (the fine JSON covers few names)."""
    valence_placeholder: float | None = -10.0
    """Valence value meaning "none" (MER2023 test3 lists use -10)."""

    @field_validator("lists")
    @classmethod
    def _splits(cls, v: dict[str, str]) -> dict[str, str]:
        for split in v:
            if not split or not split.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"split name {split!r} must be letters, digits, '_' or '-'")
        return v

    @model_validator(mode="after")
    def _video_needs_dir(self) -> MERROptions:
        if "video" in self.require and not self.video_dir:
            raise ValueError("require lists 'video' but video_dir is not set")
        return self


def _entry(ctx: ImportContext, data: dict[str, Any] | None, sid: str, path: str) -> dict[str, Any] | None:
    """The JSON entry of ``sid`` in an annotation file (None when absent; a non-object is reported)."""
    e = data.get(sid) if data is not None else None
    if e is None or isinstance(e, dict):
        return e
    ctx.problem(
        path,
        None,
        sid,
        "bad_value",
        f"entry {sid!r} is a {type(e).__name__}, expected an object; ignored",
        sample_id=sid,
    )
    return None


@register_importer("merr", MERROptions, "MERR / Emotion-LLaMA: NCEV lists, coarse+fine JSON, transcripts, video/")
def load_merr(opts: MERROptions, ctx: ImportContext) -> list[Sample]:
    coarse = read_json_object(ctx, opts.coarse_json) if opts.coarse_json else None
    fine = read_json_object(ctx, opts.fine_json) if opts.fine_json else None
    subs = read_lookup(ctx, opts.transcripts, tuple(opts.transcript_columns)) if opts.transcripts else {}
    meta_rows = read_lookup(ctx, opts.meta_csv, ()) if opts.meta_csv else {}
    videos = MediaIndex(ctx, [opts.video_dir], tuple(opts.video_exts)) if opts.video_dir else None
    coarse_path = str(ctx.path(opts.coarse_json)) if opts.coarse_json else ""
    fine_path = str(ctx.path(opts.fine_json)) if opts.fine_json else ""

    samples: list[Sample] = []
    for split, rel in opts.lists.items():
        path = ctx.path(rel)
        if not path.is_file():
            ctx.problem(
                path,
                None,
                None,
                "missing_file",
                f"list file for split {split!r} not found: {path}",
                action="excluded",
                rows_affected=0,
            )
            continue
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (UnicodeDecodeError, OSError) as e:
            ctx.problem(
                path,
                None,
                None,
                "unreadable_file",
                f"cannot read as UTF-8 text: {e}",
                action="excluded",
                rows_affected=0,
            )
            continue
        for row, line in enumerate(lines, 1):
            t = line.split()
            if not t:
                continue
            if len(t) not in (3, 4):
                ctx.problem(
                    path,
                    row,
                    None,
                    "malformed_row",
                    f"{len(t)} fields; expected 'name frame_count label [valence]'",
                    action="excluded",
                )
                continue
            sid = t[0]
            if not ctx.claim(sid, path, row):
                continue
            meta: dict[str, Any] = {}
            fc = ctx.number(t[1], path, row, "frame_count", sid, integer=True)
            if fc is not None:
                meta["frame_count"] = fc
            label, extra = ctx.label(t[2], path, row, "label", sid)
            meta.update(extra)
            valence = (
                ctx.number(t[3], path, row, "valence", sid, opts.valence_placeholder, bounds=VALENCE_RANGE)
                if len(t) == 4
                else None
            )
            rec: dict[str, Any] = {}
            subtitle = None
            for src, src_path in ((coarse, coarse_path), (fine, fine_path)):
                e = _entry(ctx, src, sid, src_path)
                if e is None:
                    continue
                for k, v in e.items():
                    if k in DESCRIPTION_KEYS:
                        rec[DESCRIPTION_KEYS[k]] = clean(v)
                    elif k == "text":
                        subtitle = clean(v) or subtitle
                    else:
                        meta[k] = v
            sub_row = subs.get(sid)
            if sub_row is not None and clean(sub_row.get("value")):
                subtitle = clean(sub_row["value"])
            for k, v in (meta_rows.get(sid) or {}).items():
                if k not in SAMPLE_FIELDS and k != "value" and clean(v) is not None:
                    meta.setdefault(k, v.strip())
            media = video_media(ctx, videos, sid, path, row)
            have = {"coarse": rec.get("coarse"), "fine": rec.get("fine"), "subtitle": subtitle}
            for need in opts.require:
                if need != "video" and have[need] is None:
                    ctx.problem(
                        path,
                        row,
                        need,
                        "missing_annotation",
                        f"no {need} for {sid!r} (required by options.require)",
                        sample_id=sid,
                    )
            samples.append(
                Sample(
                    id=sid,
                    corpus=ctx.corpus,
                    split=split,
                    media=media,
                    subtitle=subtitle,
                    label=label,
                    valence=valence,
                    coarse=rec.get("coarse"),
                    fine=rec.get("fine"),
                    meta=meta,
                )
            )
    return samples
