"""MME-Emotion (ICLR 2026) recognition, reasoning and chain-of-thought scores with its two-stage LLM judge.

    scores = parse_step_scores("<score>Step 1: 1/1, Step 2: 0/1, Step 3: 2/3</score>")   # [1.0, 0.0, 0.667]
    rec, rea = recognition_reasoning(scores)                                               # 0.667, 0.5
    r = score("mme_emotion", "gold/mme_emotion_ml_er.csv", "submissions/mme_emotion_ml_er.csv",
              task="ML-ER", judge="judge.yaml", clues="/data/MME-Emotion-Dataset")

The protocol (``FunAudioLLM/MME-Emotion`` ``extract_step`` / ``eval_cot``), per sample:

1. **Step extraction**: the judge rewrites the model's reply as ``<step>Step 1: ... Step K: ...</step>``,
   the last step holding the predicted emotion(s) (prompt ``prompts/judges/mme_emotion/<task>.extract.txt``).
2. **Step scoring**: the judge gets the Qwen2-Audio clue, the gold label string and the steps and returns
   ``<score>Step 1: a/b, ..., Step K: c/d</score>`` (``<task>.score.txt``): every non-final step 0/1 or 1/1
   (wrong only if it clearly contradicts the cues), the final step 1/0 on a label match, or C/K (gold labels
   matched out of K) for ML-ER and FG-ER.
3. **Metrics** (``cal_metrics.py``): Rec = the last step's score, Rea = the mean of the other steps (0 when
   there is only one), CoT = alpha * Rec + (1 - alpha) * Rea with alpha = 0.5, each averaged over samples.
   The score is read with the official regexes (``<score>(.*?)</score>`` on one line, then ``: a/b``
   pairs; b = 0 scores 0).

Modes: **published** skips samples whose judge reply cannot be read (the official rule) and reports how
many; **clean** scores them 0 and also reads a ``<score>`` block spanning lines.

Frames (``frames: true``, ``videos``): the scoring call carries the clip's frames at 1 fps, at most 10, as
JPEG ``image_url`` parts after the text, with the system message as a system message, as the official
scorer sends it (openai judge backends; the request and reply are cached like the others). Without
frames (``frames: false``, a local judge, or a clip that is not found: counted in ``n_without_frames``)
the judge reads text only and the system message is the first paragraph of the user message; the step
extraction is always text-only. The result records which was done (``judge.frames_attached``).

Without ``judge`` the metric is judge-free: Rec = the share of gold labels found among the predicted
words (1/0 for single-label tasks, C/K for ML-ER/FG-ER, as the judge is told to rate the last step),
Rea and CoT are not computed, and the result says ``judge: none``.

Files: gold ``name,openset`` (the gold labels; ``emollm eval`` writes it) and predictions
``name,openset[,text]`` (``text`` = the raw reply, which the judge reads; else the list cell is used).
The audio clues are read from ``clues`` (the MME-Emotion dataset folder, or one ``*_audio_clues.json``)
by ``video_id``; a gold name is ``<task>/<video_id>`` or the bare ``video_id``. Judge replies are cached
(``cache_dir``; default next to the prediction file), so a rescore sends nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from emollm.evaluation.metrics.registry import Scored, ScoreOptions, align_names, register_metric
from emollm.evaluation.readers import _read_rows, read_openset_csv
from emollm.log import get_logger

log = get_logger(__name__)

MMETask = Literal["ER-Lab", "ER-Wild", "Noise-ER", "FG-ER", "ML-ER", "SA", "FG-SA", "IR"]
MULTI_LABEL = ("ML-ER", "FG-ER")
PROMPTS_DIR = "prompts/judges/mme_emotion"

_SCORE_ONE_LINE = re.compile(r"<score>(.*?)</score>")
_SCORE_ANY = re.compile(r"<score>(.*?)</score>", re.DOTALL)
_FRACTION = re.compile(r":\s*(\d+)/(\d+)")
_STEP = re.compile(r"<step>(.*?)</step>", re.DOTALL)


def parse_step_scores(reply: str | None, multiline: bool = False) -> list[float] | None:
    """Step scores of a judge reply (official ``parse_score``), or None when there is no ``<score>`` block."""
    m = (_SCORE_ANY if multiline else _SCORE_ONE_LINE).search(str(reply or ""))
    if not m:
        return None
    return [int(a) / int(b) if int(b) else 0.0 for a, b in _FRACTION.findall(m.group(1))]


def recognition_reasoning(scores: Sequence[float]) -> tuple[float, float]:
    """(Rec, Rea): the last step's score and the mean of the others (0 with one step)."""
    if not scores:
        return 0.0, 0.0
    rest = list(scores[:-1])
    return float(scores[-1]), float(np.mean(rest)) if rest else 0.0


def judge_free_recognition(gold: Sequence[str], pred: Sequence[str], multi: bool) -> float:
    """C/K (multi-label) or 1/0: gold labels found among the predicted words (lower-cased)."""
    g = [w.lower() for w in gold]
    p = {w.lower() for w in pred}
    if not g:
        return 0.0
    hits = sum(1 for w in g if w in p)
    return hits / len(g) if multi else float(hits > 0)


class MMEEmotionOptions(ScoreOptions):
    task: MMETask
    """Which of the 8 tasks (picks the judge prompts and the C/K rule of ML-ER / FG-ER)."""
    judge: Path | None = None
    """A ``JudgeConfig`` YAML (emollm.evaluation.judge: backend local or openai, model...); None: judge-free."""
    clues: Path | None = None
    """The MME-Emotion dataset folder (``<task>/audio_clue/*.json``) or one audio-clue JSON; needed with a judge."""
    cache_dir: Path | None = None
    """Judge reply cache; default ``<prediction folder>/judge_cache``."""
    alpha: float = Field(0.5, ge=0, le=1)
    """CoT = alpha * Rec + (1 - alpha) * Rea (the official default 0.5)."""
    frames: bool = False
    """Attach the clip's frames to the scoring call as the official scorer does (1 fps, at most ``max_frames``,
    JPEG ``image_url`` parts, system message sent as a system message); needs an openai judge and ``videos``."""
    videos: Path | None = None
    """Folder the ``video_id`` paths are relative to (frames); a clip not found is judged without frames."""
    max_frames: int = Field(10, ge=1, le=64)


def _read_clues(path: Path, task: str) -> dict[str, str]:
    f = path
    if path.is_dir():
        stem = task.replace("-", "_")
        f = path / task / "audio_clue" / f"{stem}_qwen2_audio_clues.json"
    if not f.is_file():
        raise FileNotFoundError(f"MME-Emotion audio clues not found: {f}")
    data = json.loads(f.read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{f}: expected a JSON list of {{video_id, audio_clue}}")
    return {str(d.get("video_id")): str(d.get("audio_clue") or "") for d in data if isinstance(d, dict)}


def _prompt(name: str) -> Any:
    from emollm.evaluation.judge.judge import JudgePrompt
    from emollm.paths import resolve_resource

    root = resolve_resource(PROMPTS_DIR, kind="judge prompt folder")
    fields = {"extract": ("answer",), "score": ("audio_clue", "labels", "steps")}[name.rsplit(".", 1)[-1]]
    text = (root / f"{name}.txt").read_text(encoding="utf-8")
    return JudgePrompt(name, text, fields, str(root / f"{name}.txt"))


def clip_frames(path: Path, max_frames: int = 10, interval_s: float = 1.0) -> list[bytes]:
    """JPEG frames every ``interval_s`` seconds from the first, at most ``max_frames`` (``extract_key_frames``)."""
    from emollm.inference.remote import _jpeg
    from emollm.media.video import iter_frames, video_info

    step = max(1, int(video_info(path, count=False).fps * interval_s))
    out: list[bytes] = []
    for i, frame in enumerate(iter_frames(path)):
        if i % step == 0:
            out.append(_jpeg(frame, 1 << 14))
            if len(out) == max_frames:
                break
    return out


def _ask_with_frames(judge: Any, cfg: Any, sample_id: str, system: str, text: str, frames: list[bytes]) -> str:
    """The official scoring request: system message, then the text and the frames as image_url parts; cached."""
    import base64
    import os

    import openai

    from emollm.evaluation.judge.backends import ENV_API_KEY, ENV_BASE_URL, JudgeError
    from emollm.io import sha256_text

    key = sha256_text(system + "\0" + text + "\0" + ",".join(sha256_text(f.hex()) for f in frames))
    if judge.cache is not None:
        hit = judge.cache.get(sample_id, "mme.score+frames", key)
        if hit is not None:
            judge.cache_hits += 1
            return str(hit)
    base = os.environ.get(ENV_BASE_URL, "").strip().rstrip("/")
    if not base:
        raise JudgeError(f"the mme_emotion judge with frames needs {ENV_BASE_URL} (an OpenAI-compatible server)")
    base = base if base.endswith("/v1") else base + "/v1"
    client = openai.OpenAI(
        base_url=base,
        api_key=os.environ.get(ENV_API_KEY, "").strip() or "EMPTY",
        timeout=cfg.timeout_s,
        max_retries=cfg.max_retries,
    )
    parts: list[dict[str, Any]] = [{"type": "text", "text": text}]
    parts += [
        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64," + base64.b64encode(f).decode()}}
        for f in frames
    ]
    try:
        r = client.chat.completions.create(
            model=cfg.model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": parts}],  # type: ignore[list-item]
            temperature=0.0,
            n=1,
            max_tokens=cfg.max_new_tokens,
        )
    except openai.APIStatusError as e:
        raise JudgeError(f"judge server {base} answered HTTP {e.status_code}: {e.message}") from None
    except openai.APIConnectionError as e:
        raise JudgeError(f"judge server {base} unreachable: {e}") from None
    finally:
        client.close()
    reply = r.choices[0].message.content or ""
    judge.calls += 1
    if judge.cache is not None:
        judge.cache.put(sample_id, "mme.score+frames", key, reply)
    return reply


def _system() -> str:
    from emollm.paths import resolve_resource

    return (resolve_resource(PROMPTS_DIR, kind="judge prompt folder") / "system.txt").read_text(encoding="utf-8")


@register_metric(
    "mme_emotion", "MME-Emotion Rec / Rea / CoT (main score: CoT with a judge, else Rec)", MMEEmotionOptions
)
def score_mme_emotion(gold_path: Path, pred_path: Path, opts: MMEEmotionOptions) -> Scored:
    gold = read_openset_csv(gold_path, style="affectgpt")
    pred = read_openset_csv(pred_path, style="affectgpt")
    names, extra = align_names(gold, pred)
    rows = _read_rows(pred_path, ("name", "openset"))
    texts = {rec["name"].strip(): rec.get("text", "") for _, rec in rows.rows}
    multi = opts.task in MULTI_LABEL
    values: dict[str, Any] = {"task": opts.task, "n": len(names), "n_extra_pred": len(extra), "alpha": opts.alpha}
    if opts.judge is None:
        rec = np.asarray([judge_free_recognition(gold.items[n], pred.items[n], multi) for n in names])
        values.update(
            score=float(rec.mean()),
            recognition=float(rec.mean()),
            reasoning=None,
            cot=None,
            judge="none",
            main="recognition (judge-free word match)",
        )
        return Scored(values, len(names), lambda idx: float(rec[idx].mean()))
    from emollm.config import load_config
    from emollm.evaluation.judge.backends import JudgeConfig
    from emollm.evaluation.judge.judge import Judge

    if opts.clues is None:
        raise ValueError("mme_emotion with a judge needs clues (the MME-Emotion dataset folder or a clue JSON)")
    clues = _read_clues(opts.clues, opts.task)
    cfg = load_config(JudgeConfig, opts.judge)
    if cfg.cache_dir is None:
        cfg = cfg.model_copy(update={"cache_dir": str(opts.cache_dir or pred_path.parent / "judge_cache")})
    extract, scorer, system = _prompt(f"{opts.task}.extract"), _prompt(f"{opts.task}.score"), _system()
    use_frames, frames_note = opts.frames, ""
    if opts.frames and opts.videos is None:
        raise ValueError("mme_emotion frames: true needs videos (the folder the video_id paths are relative to)")
    if opts.frames and cfg.backend != "openai":
        use_frames, frames_note = False, "the local judge backend takes text only: judged without frames"
        log.warning("mme_emotion %s: %s", opts.task, frames_note)
    per: list[dict[str, Any]] = []
    n_frames: list[int] = []
    with Judge(cfg) as judge:
        for n in names:
            vid = n.split("/", 1)[1] if n.startswith(opts.task + "/") else n
            if vid not in clues:
                raise ValueError(f"{gold.where(n)}: no audio clue for video_id {vid!r} in {opts.clues}")
            answer = texts.get(n) or pred.raw[n]
            steps_reply = judge.ask(n, "mme.extract", system + "\n\n" + extract.render(answer=answer))
            m = _STEP.search(steps_reply)
            steps = f"<step>{m.group(1)}</step>" if m else steps_reply
            labels = gold.raw[n].strip()
            if labels.startswith("["):  # the gold string as released: comma-joined labels
                labels = ",".join(gold.items[n])
            text = scorer.render(audio_clue=clues[vid], labels=labels, steps=steps)
            clip = (opts.videos / vid) if use_frames and opts.videos is not None else None
            if clip is not None and clip.is_file():
                frames = clip_frames(clip, opts.max_frames)
                n_frames.append(len(frames))
                reply = _ask_with_frames(judge, cfg, n, system, text, frames)
            else:
                n_frames.append(0)
                reply = judge.ask(n, "mme.score", system + "\n\n" + text)
            s = parse_step_scores(reply, multiline=opts.mode == "clean")
            per.append({"name": n, "scores": s, "n_steps": len(s) if s else 0})
        calls, hits, judge_id = judge.calls, judge.cache_hits, judge.judge_id
    ok = np.asarray([p["scores"] is not None and len(p["scores"]) > 0 for p in per])
    rr = np.asarray([recognition_reasoning(p["scores"] or []) for p in per]).reshape(-1, 2)
    use = ok if opts.mode == "published" else np.ones(len(per), bool)

    def summary(idx: np.ndarray) -> tuple[float, float, float]:
        sel = idx[use[idx]]
        if not len(sel):
            return 0.0, 0.0, 0.0
        rec, rea = float(rr[sel, 0].mean()), float(rr[sel, 1].mean())
        return rec, rea, opts.alpha * rec + (1 - opts.alpha) * rea

    rec, rea, cot = summary(np.arange(len(per)))
    n_bad = int((~ok).sum())
    if n_bad:
        log.warning(
            "mme_emotion %s: %d of %d judge replies unreadable (%s)",
            opts.task,
            n_bad,
            len(per),
            "skipped" if opts.mode == "published" else "scored 0",
        )
    values.update(
        score=cot,
        main="cot",
        recognition=rec,
        reasoning=rea,
        cot=cot,
        n_scored=int(use.sum()),
        n_unparsed=n_bad,
        unparsed_rule="skipped (official)" if opts.mode == "published" else "scored 0",
        avg_steps=float(np.mean([p["n_steps"] for p, u in zip(per, ok, strict=True) if u])) if ok.any() else 0.0,
        judge={
            "id": judge_id,
            "calls": calls,
            "cache_hits": hits,
            "frames_attached": use_frames,
            "frames_note": frames_note,
            "n_without_frames": sum(1 for k in n_frames if k == 0),
            "frames_per_sample": float(np.mean(n_frames)) if n_frames else 0.0,
            "system_message": "a system message when scoring with frames, else prepended to the user message",
            "prompt_hashes": {p.name: p.hash for p in (extract, scorer)},
        },
    )
    return Scored(values, len(per), lambda idx: summary(idx)[2])


class MMERecognitionOptions(ScoreOptions):
    task: MMETask
    """Which of the 8 tasks (ML-ER / FG-ER score C/K)."""


@register_metric(
    "mme_emotion_rec",
    "MME-Emotion judge-free recognition: gold labels among the predicted words",
    MMERecognitionOptions,
)
def score_mme_recognition(gold_path: Path, pred_path: Path, opts: MMERecognitionOptions) -> Scored:
    full = MMEEmotionOptions(task=opts.task, mode=opts.mode)
    return score_mme_emotion(gold_path, pred_path, full)
