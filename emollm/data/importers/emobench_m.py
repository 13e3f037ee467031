"""EmoBench-M importer: the benchmark's LLaVA-style JSON files (one per scenario) and their clips.

Layout under the corpus root (the Google Drive release of Emo-gml/EmoBench-M)::

    benchmark_json/MOSI.json        [{"id", "video", "conversations": [{"from": "human", "value": "<video>\\n..."},
                                                                       {"from": "gpt", "value": "<label>"}]}, ...]
    dataset/MOSI/videos/...         the clips; ``video`` paths are relative to dataset/<scenario>/

One file per scenario (FGMSA, MC-EIU, MELD, MOSEI, MOSI, MUSTARD, RAVDSS_song, RAVDSS_speech, SIMS,
ch-simsv2s, funny, mer2023, smile). ``files`` maps split -> JSON file (the split is usually the scenario
name). Per sample: id ``<scenario>/<id>``; the human turn without ``<video>`` -> meta.instruction; the
candidate labels listed by the instruction ("... following labels as your final answer: a, b, c.", or
"Choose one emotion: ...") -> meta.candidates; "The person in (the) video says: X." -> subtitle; the gpt
turn -> meta.answer (lower-cased, as the scorer compares; meta.reference keeps it as written: SMILE's
reference reason, scored case-sensitively by BLEU) and, when it is a label of the recipe's label
space, Sample.label (otherwise the label stays empty and no problem is reported: open-label scenarios
are scored on meta.answer by the ``emobench`` metric).

    emollm prepare emobench_m --root /data/EmoBench-M
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import Field

from emollm.data.importers.base import CommonOptions, ImportContext, register_importer
from emollm.data.sample import Sample

_CANDIDATES = re.compile(
    r"(?:final answer|choose one(?: of the following)?(?: labels?)?(?: emotion)?|labels? (?:are|is))\s*:\s*([^.]+)",
    re.IGNORECASE,
)
_SAYS = re.compile(
    # the question words are matched case-sensitively: " is " inside the subtitle does not end it
    r"The person in (?:the )?video says:\s*(.*?)(?=\s+(?-i:Determine|Analy[sz]e|Identify|Based|Please|Is |Does |What )|$)",
    re.IGNORECASE | re.DOTALL,
)


class EmoBenchMOptions(CommonOptions):
    files: dict[str, str] = Field(default_factory=lambda: {"MOSI": "benchmark_json/MOSI.json"}, min_length=1)
    """split -> scenario JSON file."""
    video_root: str | None = "dataset/{split}"
    """Folder the ``video`` paths are relative to ({split} is replaced); None: import without media."""


def parse_candidates(instruction: str) -> list[str]:
    """Candidate labels an EmoBench-M instruction lists (first list only), lower-cased, 'and' removed."""
    m = _CANDIDATES.search(instruction)
    if not m:
        return []
    return _split_list(m.group(1))


_INTENTS = re.compile(r"choose one intent\s*:\s*([^.]+)", re.IGNORECASE)


def _split_list(text: str) -> list[str]:
    out = []
    for it in re.split(r",|\bor\b", text):
        w = re.sub(r"^\s*and\s+", "", it.strip()).strip(" '\"").lower()
        if w and w not in out:
            out.append(w)
    return out


def parse_intent_candidates(instruction: str) -> list[str]:
    """The intent labels an MC-EIU instruction lists ("Choose one intent: a, b, and c."), lower-cased."""
    m = _INTENTS.search(instruction)
    return _split_list(m.group(1)) if m else []


def parse_joint_answer(text: str) -> tuple[str, str] | None:
    """(emotion, intent) of an MC-EIU gold turn: a ``{'emotion label': .., 'intent label': ..}`` dict, or two
    labels joined by a comma, semicolon, ``_``, ``|`` or "and"; None when it is neither."""
    t = text.strip()
    m = re.search(r"\{[^{}]*\}", t)
    if m:
        import ast

        try:
            obj = ast.literal_eval(m.group(0))
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            obj = None
        if isinstance(obj, dict):
            emo = next((str(v) for k, v in obj.items() if "emotion" in str(k).lower()), None)
            intent = next((str(v) for k, v in obj.items() if "intent" in str(k).lower()), None)
            if emo and intent:
                return emo.strip().lower(), intent.strip().lower()
        return None
    parts = [p.strip(" '\".").lower() for p in re.split(r"[,;_|]|\band\b", t) if p.strip(" '\".")]
    return (parts[0], parts[1]) if len(parts) == 2 else None


def strip_subtitle(instruction: str, subtitle: str | None) -> str | None:
    """The instruction without its leading "The person in (the) video says: <subtitle>" sentence.

    Returns the instruction unchanged when it has no such sentence, and None when it has one that is not
    ``subtitle`` (the caller then keeps the sentence inside the instruction)."""
    m = re.match(r"\s*The person in (?:the )?video says:\s*", instruction, re.IGNORECASE)
    if not m:
        return instruction.strip()
    rest = instruction[m.end() :]
    if not subtitle or not rest.startswith(subtitle):
        return None
    return rest[len(subtitle) :].strip()


def parse_subtitle(instruction: str) -> str | None:
    m = _SAYS.search(instruction)
    return m.group(1).strip() or None if m else None


@register_importer("emobench_m", EmoBenchMOptions, "EmoBench-M: benchmark_json/<scenario>.json (LLaVA style) + clips")
def load_emobench_m(opts: EmoBenchMOptions, ctx: ImportContext) -> list[Sample]:
    samples: list[Sample] = []
    for split, rel in opts.files.items():
        path = ctx.path(rel)
        if not path.is_file():
            ctx.problem(path, None, None, "missing_file", f"file not found: {path}", action="excluded", rows_affected=0)
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            ctx.problem(path, None, None, "unreadable_file", f"invalid JSON: {e}", action="excluded", rows_affected=0)
            continue
        if not isinstance(data, list):
            ctx.problem(path, 1, None, "unreadable_file", "expected a JSON list of samples", action="excluded")
            continue
        scenario = Path(rel).stem
        vroot = ctx.path(opts.video_root.replace("{split}", split)) if opts.video_root else None
        for i, rec in enumerate(data, start=1):
            sample = _one(ctx, path, i, rec, split, scenario, vroot)
            if sample is not None:
                samples.append(sample)
    return samples


def _one(
    ctx: ImportContext, path: Path, i: int, rec: Any, split: str, scenario: str, vroot: Path | None
) -> Sample | None:
    where = f"entry {i}"
    conv = rec.get("conversations") if isinstance(rec, dict) else None
    if not isinstance(conv, list) or len(conv) < 2 or not all(isinstance(t, dict) for t in conv):
        ctx.problem(
            path, i, "conversations", "malformed_row", f"{where}: needs a human and a gpt turn", action="excluded"
        )
        return None
    human = next((t.get("value", "") for t in conv if t.get("from") == "human"), None)
    answer = next((t.get("value", "") for t in conv if t.get("from") == "gpt"), None)
    if not human or answer is None or not str(answer).strip():
        ctx.problem(path, i, "conversations", "malformed_row", f"{where}: empty human or gpt turn", action="excluded")
        return None
    sid = f"{scenario}/{str(rec.get('id', i - 1)).strip()}"
    if not ctx.claim(sid, path, i):
        return None
    instruction = str(human).replace("<video>", "").strip()
    gold = str(answer).strip().lower()
    meta: dict[str, Any] = {
        "scenario": scenario,
        "instruction": instruction,
        "candidates": parse_candidates(instruction),
        "answer": gold,
        "reference": str(answer).strip(),
    }
    intents = parse_intent_candidates(instruction)
    if intents:  # MC-EIU: emotion and intent
        meta["intent_candidates"] = intents
        pair = parse_joint_answer(str(answer))
        if pair is None:
            ctx.problem(
                path, i, "conversations", "malformed_row",
                f"{where}: MC-EIU answer {str(answer)[:80]!r} is not an emotion and an intent; kept without gold",
                sample_id=sid,
            )  # fmt: skip
        else:
            meta["emotion"], meta["intent"] = pair
    media: dict[str, str] = {}
    video = str(rec.get("video") or "").strip()
    if video and vroot is not None:
        vp = vroot / video
        if vp.is_file():
            media["video"] = ctx.media_ref(vp)
        else:
            ctx.problem(path, i, "video", "missing_media", f"no video {vp}; kept without video", sample_id=sid)
    label = ctx.space.normalize(gold)
    return Sample(
        id=sid,
        corpus=ctx.corpus,
        split=split,
        media=media,
        subtitle=parse_subtitle(instruction),
        label=label,
        meta=meta,
    )
