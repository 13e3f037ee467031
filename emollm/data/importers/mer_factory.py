"""MER-Factory importer: a MER-Factory output folder (``<name>/<name>_merr_data.json``) -> Samples.

MER-Factory (github.com/Lum1104/MER-Factory) is the public re-implementation of the MERR annotation
pipeline. Its exporter turns each ``*_merr_data.json`` into one MERR line and one MERR JSON entry;
``merr_record`` re-derives exactly those (the rules of its ``export_to_emotion_llama``, written down in
shared/conformance/merr/FORMAT.md section 7), so importing the raw output folder gives the same
annotations as exporting with MER-Factory and importing the files with the ``merr`` importer.

    rec = merr_record(json.load(open("clip_merr_data.json")), grain="coarse")
    rec.txt_line   # "clip 0 angry"
    rec.entry      # {"AU_list": [], "visual_prior_list": [...], ..., "caption": "..."}

Layout under the corpus root::

    <output_dir>/<name>/<name>_merr_data.json   # MER-Factory "MER" pipeline output
    <output_dir>/<name>/<name>.csv              # OpenFace CSV (optional; its row count is frame_count)
    video/<name>.mp4                            # optional: else the JSON's source_path is used

Sample: id = stem of ``source_path``; label = ``pseu_emotion`` (``unknown`` is an unknown_label problem);
coarse (grain coarse) or fine (grain fine) = ``final_summary``; meta = the exporter's entry keys
(AU_list, visual_prior_list, audio_prior_list, peak_index, peak_AU_list, pseu_emotion), frame_count,
and the four per-modality descriptions (visual_expression, visual_objective, audio_analysis, video_content).
"""

from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from emollm.data.importers.base import CommonOptions, ImportContext, MediaIndex, clean, register_importer
from emollm.data.sample import Sample

MERR_EMOTIONS = ("neutral", "angry", "happy", "sad", "worried", "surprise", "fear", "contempt", "doubt")
_PEAK_TIME = re.compile(r"Peak at\s+(\d+\.?\d*)s:")


@dataclass(frozen=True)
class MerrRecord:
    name: str
    frame_count: int
    txt_line: str
    """The MERR list line MER-Factory writes: ``name frame_count emotion``."""
    entry: dict[str, Any]
    """The MERR JSON entry MER-Factory writes for ``name``."""


def _exporter_text(text: Any) -> str:
    """MER-Factory's text cleaning before export: strip, and newlines written as a literal backslash-n."""
    return str(text if text is not None else "").strip().replace("\n", "\\n")


def _emotion_of_peak(peak_text: Any) -> str:
    if not peak_text or not isinstance(peak_text, str):
        return "unknown"
    if ":" in peak_text:
        for part in peak_text.split(":", 1)[1].strip().split(","):
            word = part.strip().split("(")[0].strip()
            if word and len(word) < 20:
                return word.lower()
    low = peak_text.lower()
    return next((e for e in MERR_EMOTIONS if e in low), "unknown")


def merr_record(data: dict[str, Any], grain: Literal["coarse", "fine"] = "coarse", frame_count: int = 0) -> MerrRecord:
    """The MERR line and JSON entry MER-Factory's Emotion-LLaMA exporter derives from one ``_merr_data.json``."""
    peaks = data.get("chronological_emotion_peaks", [])
    info = data.get("overall_peak_frame_info") or {}
    desc = data.get("coarse_descriptions_at_peak") or {}
    visual = _exporter_text(desc.get("visual_expression", ""))
    audio = _exporter_text(desc.get("audio_analysis", ""))
    name = os.path.splitext(os.path.basename(str(data.get("source_path", "unknown"))))[0]

    peak_time = info.get("timestamp", 0)
    if isinstance(peaks, list) and peaks:
        chosen = next(
            (p for p in peaks if (m := _PEAK_TIME.search(str(p))) and abs(float(m.group(1)) - peak_time) < 0.1),
            peaks[0],
        )
    else:
        chosen = peaks
    emotion = _emotion_of_peak(chosen)

    visual_prior = []
    for part in visual.split(",")[:3]:
        part = re.sub(r"\(.*?\)", "", part.strip()).strip()
        if part:
            visual_prior.append(part)
    entry: dict[str, Any] = {
        "AU_list": re.findall(r"AU\d+", visual),
        "visual_prior_list": visual_prior,
        "audio_prior_list": audio.split(".")[0] if audio else "",
        "peak_index": str(info.get("frame_number", 0)),
        "peak_AU_list": [k.replace("_r", "") for k in (info.get("top_aus_intensities") or {})],
        "pseu_emotion": emotion,
        ("smp_reason_caption" if grain == "fine" else "caption"): _exporter_text(data.get("final_summary", "")),
    }
    if grain == "fine":
        entry["text"] = ""
    return MerrRecord(name=name, frame_count=frame_count, txt_line=f"{name} {frame_count} {emotion}", entry=entry)


def _openface_rows(path: Path) -> int:
    """Data rows of an OpenFace CSV (MER-Factory's frame_count); 0 when absent."""
    if not path.is_file():
        return 0
    with open(path, encoding="utf-8", newline="") as f:
        return max(sum(1 for _ in csv.reader(f)) - 1, 0)


class MerFactoryOptions(CommonOptions):
    output_dir: str = "."
    """MER-Factory output folder (relative to the corpus root)."""
    pattern: str = "*/*_merr_data.json"
    """Glob, relative to output_dir, of the files to import."""
    grain: Literal["coarse", "fine"] = "coarse"
    """coarse: final_summary -> Sample.coarse; fine: -> Sample.fine (as MER-Factory's two export formats)."""
    split: str = "train"
    video_dir: str | None = None
    """Folder of ``<name>.<ext>`` videos; None uses each JSON's ``source_path`` (relative to the root)."""


@register_importer("mer_factory", MerFactoryOptions, "MER-Factory output folder of <name>_merr_data.json files")
def load_mer_factory(opts: MerFactoryOptions, ctx: ImportContext) -> list[Sample]:
    base = ctx.path(opts.output_dir)
    if not base.is_dir():
        ctx.problem(
            base,
            None,
            None,
            "missing_file",
            f"MER-Factory output folder not found: {base}",
            action="excluded",
            rows_affected=0,
        )
        return []
    files = sorted(base.glob(opts.pattern))
    if not files:
        ctx.problem(
            base,
            None,
            None,
            "missing_file",
            f"no files match {opts.pattern!r} in {base}",
            action="excluded",
            rows_affected=0,
        )
    videos = MediaIndex(ctx, [opts.video_dir]) if opts.video_dir else None
    samples: list[Sample] = []
    for fp in files:
        try:
            data = json.loads(fp.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, OSError) as e:
            ctx.problem(
                fp, getattr(e, "lineno", None), None, "unreadable_file", f"cannot read JSON: {e}", action="excluded"
            )
            continue
        if not isinstance(data, dict) or not clean(data.get("source_path")):
            ctx.problem(
                fp,
                None,
                "source_path",
                "malformed_row",
                "expected a JSON object with a non-empty 'source_path'",
                action="excluded",
            )
            continue
        name = os.path.splitext(os.path.basename(str(data["source_path"])))[0]
        rec = merr_record(data, opts.grain, _openface_rows(fp.parent / f"{name}.csv"))
        sid = rec.name
        if not ctx.claim(sid, fp, None):
            continue
        label, extra = ctx.label(rec.entry["pseu_emotion"], fp, None, "pseu_emotion", sid)
        desc_key = "smp_reason_caption" if opts.grain == "fine" else "caption"
        meta: dict[str, Any] = {k: v for k, v in rec.entry.items() if k not in (desc_key, "text")}
        meta["frame_count"] = rec.frame_count
        meta.update(extra)
        for k, v in (data.get("coarse_descriptions_at_peak") or {}).items():
            if clean(v):
                meta[k] = str(v).strip()
        summary = clean(data.get("final_summary"))
        media: dict[str, str] = {}
        vp = videos.find(sid) if videos is not None else ctx.path(str(data["source_path"]))
        if vp is not None and vp.is_file():
            media["video"] = ctx.media_ref(vp)
        elif videos is None or videos.usable:
            ctx.problem(
                fp,
                None,
                "source_path",
                "missing_media",
                f"no video for {sid!r}; kept without video",
                sample_id=sid,
                media=str(vp) if vp is not None else None,
            )
        samples.append(
            Sample(
                id=sid,
                corpus=ctx.corpus,
                split=opts.split,
                media=media,
                label=label,
                coarse=summary if opts.grain == "coarse" else None,
                fine=summary if opts.grain == "fine" else None,
                meta=meta,
            )
        )
    return samples
