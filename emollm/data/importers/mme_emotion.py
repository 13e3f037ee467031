"""MME-Emotion importer: the 8 tasks' question files, their audio clues and the clips.

Layout under the corpus root (``FunAudioLLM/MME-Emotion`` ``MME-Emotion-Dataset/`` + HF ``Karl28/MME-Emotion``)::

    ER-Lab/question/ER_Lab.json                       [{"video_id": "IEMOCAP/video/x.mp4", "label", "label_set"}]
    ER-Lab/audio_clue/ER_Lab_qwen2_audio_clues.json   [{"video_id", "ground_truth", "audio_clue"}]
    ... the same for ER-Wild, Noise-ER, FG-ER, ML-ER, SA, FG-SA, IR
    <video_root>/IEMOCAP/video/x.mp4                  optional (video_id is relative to video_root)

Each task is one split named like the task (``ER-Lab``). Per sample: id ``<task>/<video_id>``; the gold
string -> meta.answer (as released: ``Anger``; ML-ER ``anger,disgust``; FG-ER ``a;b``) and its parts ->
Sample.openset (lower-cased); ``label_set`` -> meta.candidates; the Qwen2-Audio clue -> meta.audio_clue
(the judge sees it); Sample.label when the answer is one label of the recipe's label space. A ``video_id``
that already ends in ``.mp4`` is not given a second suffix (the official code's pitfall).

    emollm prepare mme_emotion --root /data/MME-Emotion-Dataset
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import Field

from emollm.data.importers.base import CommonOptions, ImportContext, register_importer
from emollm.data.sample import Sample

MME_TASKS: tuple[str, ...] = ("ER-Lab", "ER-Wild", "Noise-ER", "FG-ER", "ML-ER", "SA", "FG-SA", "IR")
"""The 8 MME-Emotion tasks (ICLR 2026)."""
MULTI_LABEL_TASKS: frozenset[str] = frozenset({"ML-ER", "FG-ER"})
"""Tasks whose gold holds several labels; their last reasoning step is scored C/K by the judge."""


class MMEEmotionOptions(CommonOptions):
    tasks: list[str] = Field(default_factory=lambda: list(MME_TASKS))
    """Tasks imported, each as a split named like the task."""
    video_root: str | None = "."
    """Folder the ``video_id`` paths are relative to; None: import without media."""


def gold_parts(answer: str) -> list[str]:
    """``'anger,disgust'`` / ``'a;b'`` -> ``['anger', 'disgust']`` (lower-cased, order kept, no duplicates)."""
    out: list[str] = []
    for w in re.split(r"[;,]", answer):
        w = w.strip().lower()
        if w and w not in out:
            out.append(w)
    return out


def _load_list(ctx: ImportContext, path: Path) -> list[Any] | None:
    if not path.is_file():
        ctx.problem(path, None, None, "missing_file", f"file not found: {path}", action="excluded", rows_affected=0)
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        ctx.problem(path, None, None, "unreadable_file", f"invalid JSON: {e}", action="excluded", rows_affected=0)
        return None
    if not isinstance(data, list):
        ctx.problem(path, 1, None, "unreadable_file", "expected a JSON list", action="excluded")
        return None
    return data


@register_importer("mme_emotion", MMEEmotionOptions, "MME-Emotion: <task>/question + audio_clue JSONs, 8 tasks")
def load_mme_emotion(opts: MMEEmotionOptions, ctx: ImportContext) -> list[Sample]:
    unknown = [t for t in opts.tasks if t not in MME_TASKS]
    if unknown:
        from emollm.data.importers.base import ImporterError

        raise ImporterError(f"unknown MME-Emotion task(s) {unknown}; known: {', '.join(MME_TASKS)}")
    vroot = ctx.path(opts.video_root) if opts.video_root is not None else None
    samples: list[Sample] = []
    for task in opts.tasks:
        stem = task.replace("-", "_")
        qpath = ctx.path(f"{task}/question/{stem}.json")
        questions = _load_list(ctx, qpath)
        if questions is None:
            continue
        cpath = ctx.path(f"{task}/audio_clue/{stem}_qwen2_audio_clues.json")
        clues_raw = _load_list(ctx, cpath) or []
        clues = {str(c.get("video_id")): str(c.get("audio_clue") or "") for c in clues_raw if isinstance(c, dict)}
        for i, q in enumerate(questions, start=1):
            vid = str(q.get("video_id") or "").strip() if isinstance(q, dict) else ""
            answer = str(q.get("label") or "").strip() if isinstance(q, dict) else ""
            if not vid or not answer:
                ctx.problem(
                    qpath, i, "video_id", "malformed_row", f"entry {i}: needs video_id and label", action="excluded"
                )
                continue
            sid = f"{task}/{vid}"
            if not ctx.claim(sid, qpath, i):
                continue
            clue = clues.get(vid)
            if clue is None and clues_raw:
                ctx.problem(cpath, None, "audio_clue", "missing_media", f"no audio clue for {vid}", sample_id=sid)
            media: dict[str, str] = {}
            if vroot is not None:
                vp = vroot / (vid if vid.lower().endswith(".mp4") else f"{vid}.mp4")
                if vp.is_file():
                    media["video"] = ctx.media_ref(vp)
            parts = gold_parts(answer)
            meta: dict[str, Any] = {
                "task": task,
                "answer": answer,
                "candidates": [str(x) for x in q.get("label_set") or []],
                "audio_clue": clue or "",
                "multi_label": task in MULTI_LABEL_TASKS,
            }
            label = ctx.space.normalize(answer) if len(parts) == 1 else None
            samples.append(
                Sample(id=sid, corpus=ctx.corpus, split=task, media=media, label=label, openset=parts, meta=meta)
            )
    return samples
