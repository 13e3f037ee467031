"""``generate_synthmer``: write a SynthMER corpus (mp4 clips + MERR-format annotations) under a folder.

Files written under ``root``, in this order: the clips, the annotation files, and SYNTHMER.json last
(so its presence marks a complete generation). Each file is written atomically; annotation files are
rewritten only when their bytes change, and a clip is re-encoded only when its recorded content hash
does not match::

    video/synth_000000.mp4 ...      clip: drawn face (mpeg4/h264) + synthetic voice (AAC, mono)
    train_NCEV.txt val_NCEV.txt test_NCEV.txt   "name frame_count label valence" per line
    MERR_coarse_grained.json  MERR_fine_grained.json   keyed by name, every clip in both
    transcription_en_all.csv        name,sentence
    synthmer_meta.csv               name,split,speaker,gender,face_cue,audio_cue,text_cue
    synthmer_media.csv              name,spec_hash,sha256,frames,audio_samples (the idempotence index)
    SYNTHMER.json                   config, generator version, counts, ceilings, confusion matrices

Run it::

    python -m emollm.data.synthmer OUT_DIR [--tiny] [--no-media] [--seed N]
    generate_synthmer(Path("data/synthmer"), SynthMERConfig())   # -> summary dict
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import av
from tqdm import tqdm

from emollm.data.synthmer.annotate import annotate
from emollm.data.synthmer.config import SynthMERConfig
from emollm.data.synthmer.container import check_codecs, write_clip
from emollm.data.synthmer.cues import CONFUSIONS, LABELS, MODALITIES, CueModel
from emollm.data.synthmer.face import intensity_curve, render_frames
from emollm.data.synthmer.plan import SPLITS, ClipPlan, make_plan
from emollm.data.synthmer.voice import synthesize
from emollm.io import atomic_write_bytes, sha256_file, sha256_text

GENERATOR_VERSION = "1.0.0"
"""Bump whenever the same config would produce different bytes."""

MEDIA_INDEX = "synthmer_media.csv"
_MEDIA_KNOBS = ("seed", "fps", "image_size", "sample_rate", "video_codec", "audio_bitrate", "pixel_noise")
_PARALLEL_MIN_CLIPS = 64


def _write_if_changed(path: Path, text: str) -> bool:
    data = text.encode("utf-8")
    if path.is_file() and path.read_bytes() == data:
        return False
    atomic_write_bytes(path, data)
    return True


def _csv_text(header: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _json_text(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


@functools.cache
def _media_code_identity() -> str:
    """The renderers' source and the PyAV/FFmpeg versions: a change to any of them re-encodes clips."""
    here = Path(__file__).parent
    src = "".join(sha256_file(here / f) for f in ("face.py", "voice.py", "container.py", "generate.py"))
    return sha256_text(src + av.__version__ + json.dumps(av.library_versions, sort_keys=True))


def clip_spec_hash(clip: ClipPlan, cfg: SynthMERConfig) -> str:
    """Hash of everything that determines a clip's media bytes (plan, media knobs, renderer code)."""
    spec = {
        "version": GENERATOR_VERSION,
        "code": _media_code_identity(),
        "media": {k: getattr(cfg, k) for k in _MEDIA_KNOBS},
        "clip": repr(clip),
    }
    return sha256_text(json.dumps(spec, sort_keys=True))


def render_clip(clip: ClipPlan, cfg: SynthMERConfig, path: Path) -> tuple[str, int, int]:
    """Render and encode one clip to ``path``; returns ``(sha256, frames, audio samples written)``."""
    rng = clip.media_rng(cfg.seed)
    sp = clip.speaker
    curve = intensity_curve(clip.n_frames, clip.peak_index, clip.peak_value)
    frames = render_frames(sp.look, clip.cues["face"], curve, cfg.image_size, rng, noise=cfg.pixel_noise)
    wav = synthesize(sp.voice, clip.cues["audio"], clip.n_frames / cfg.fps, cfg.sample_rate, rng)
    write_clip(path, frames, cfg.fps, wav, cfg.sample_rate, cfg.video_codec, cfg.audio_bitrate)
    return sha256_file(path), clip.n_frames, len(wav)


def _render_job(job: tuple[ClipPlan, SynthMERConfig, str]) -> tuple[str, str, int, int]:
    clip, cfg, path = job
    sha, n, samples = render_clip(clip, cfg, Path(path))
    return clip.name, sha, n, samples


def _read_media_index(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    want = {"name", "spec_hash", "sha256", "frames", "audio_samples"}
    if rows and not want <= set(rows[0]):
        raise ValueError(f"{path}: expected columns {sorted(want)}, got {sorted(rows[0])}; delete it to regenerate")
    return {r["name"]: r for r in rows}


def _write_media_index(path: Path, index: dict[str, dict[str, str]], order: list[str]) -> None:
    cols = ["name", "spec_hash", "sha256", "frames", "audio_samples"]
    rows = [[index[n][c] for c in cols] for n in order if n in index]
    _write_if_changed(path, _csv_text(cols, rows))


def _write_media(
    root: Path, plan: list[ClipPlan], cfg: SynthMERConfig, progress: bool, workers: int | None
) -> dict[str, int]:
    check_codecs(cfg.video_codec)
    video = root / "video"
    video.mkdir(parents=True, exist_ok=True)
    index_path = root / MEDIA_INDEX
    old = _read_media_index(index_path)
    names = [c.name for c in plan]
    index: dict[str, dict[str, str]] = {}
    todo: list[tuple[ClipPlan, SynthMERConfig, str]] = []
    for clip in plan:
        spec = clip_spec_hash(clip, cfg)
        path = video / f"{clip.name}.mp4"
        rec = old.get(clip.name)
        if rec and rec["spec_hash"] == spec and path.is_file() and sha256_file(path) == rec["sha256"]:
            index[clip.name] = rec
        else:
            index[clip.name] = {"name": clip.name, "spec_hash": spec, "sha256": "", "frames": "", "audio_samples": ""}
            todo.append((clip, cfg, str(path)))
    removed = 0
    for name in set(old) - set(names):  # clips of an earlier, larger generation that we wrote
        stale = video / f"{name}.mp4"
        if stale.is_file():
            stale.unlink()
            removed += 1

    if workers is None:
        workers = min(4, os.cpu_count() or 1) if len(todo) >= _PARALLEL_MIN_CLIPS else 1
    bar = tqdm(total=len(todo), desc="SynthMER clips", unit="clip", disable=not progress)
    done = 0

    def record(name: str, sha: str, n: int, samples: int) -> None:
        nonlocal done
        index[name].update(sha256=sha, frames=str(n), audio_samples=str(samples))
        done += 1
        bar.update(1)
        if done % 100 == 0:  # resumable: an interrupted run keeps what it finished
            _write_media_index(index_path, {k: v for k, v in index.items() if v["sha256"]}, names)

    try:
        if workers > 1 and len(todo) > 1:
            with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as ex:
                for res in ex.map(_render_job, todo, chunksize=8):
                    record(*res)
        else:
            for job in todo:
                record(*_render_job(job))
    finally:
        bar.close()
        _write_media_index(index_path, {k: v for k, v in index.items() if v["sha256"]}, names)
    return {"encoded": len(todo), "reused": len(plan) - len(todo), "removed_stale": removed, "workers": workers}


def describe(cfg: SynthMERConfig, plan: list[ClipPlan], model: CueModel) -> dict[str, Any]:
    """The content of SYNTHMER.json (deterministic: no timings, no paths)."""
    counts: dict[str, Any] = {}
    empirical: dict[str, Any] = {}
    for split in SPLITS:
        clips = [c for c in plan if c.split == split]
        by_label = Counter(c.label for c in clips)
        counts[split] = {"total": len(clips), "labels": {y: by_label.get(y, 0) for y in LABELS}}
        if clips:
            empirical[split] = {
                f"{m}_cue_equals_label": round(sum(c.cues[m] == c.label for c in clips) / len(clips), 4)
                for m in MODALITIES
            }
    first_held_out = cfg.n_speakers - cfg.unseen_test_speakers  # roster positions >= this: test only
    speakers: dict[str, Any] = {}
    for c in plan:
        s = speakers.setdefault(c.speaker.id, {"gender": c.speaker.gender, "clips": Counter()})
        s["clips"][c.split] += 1
    return {
        "corpus": "synthmer",
        "generator_version": GENERATOR_VERSION,
        "label_space": "mer6",
        "labels": list(LABELS),
        "config": cfg.model_dump(mode="json"),
        "counts": counts,
        "ceilings": model.ceilings(),
        "ceiling_definition": (
            "Bayes-optimal accuracy of a classifier that reads the named modalities' expressed cues "
            "perfectly, under a uniform label prior; computed exactly from the generative probabilities"
        ),
        "reliability": cfg.reliability,
        "cue_given_label": {m: [[round(float(v), 6) for v in row] for row in model.matrix(m)] for m in MODALITIES},
        "confusions": CONFUSIONS,
        "empirical": empirical,
        "speakers": {
            k: {
                "gender": v["gender"],
                "held_out": int(k.removeprefix("spk")) > first_held_out,
                "clips": dict(sorted(v["clips"].items())),
            }
            for k, v in sorted(speakers.items())
        },
        "media": {
            "written": cfg.write_media,
            "video": f"{cfg.video_codec} yuv420p {cfg.image_size}x{cfg.image_size} @ {cfg.fps} fps",
            "audio": f"aac mono {cfg.sample_rate} Hz",
        },
    }


def generate_synthmer(
    root: str | os.PathLike[str], cfg: SynthMERConfig, progress: bool = True, workers: int | None = None
) -> dict[str, Any]:
    """Generate (or bring up to date) a SynthMER corpus under ``root``; returns a summary.

    The summary is SYNTHMER.json's content plus ``root``, ``media_stats`` (clips encoded / reused) and
    ``seconds``. ``workers``: processes for media encoding (None: up to 4 when there are many clips).
    """
    t0 = time.perf_counter()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    model = CueModel(cfg.reliability)
    plan = make_plan(cfg)
    info = describe(cfg, plan, model)
    info_text = _json_text(info)
    marker = root / "SYNTHMER.json"
    if marker.is_file() and marker.read_text(encoding="utf-8") != info_text:
        marker.unlink()  # a different generation is in progress until the new one is written

    media_stats: dict[str, int] = {}
    if cfg.write_media:
        media_stats = _write_media(root, plan, cfg, progress, workers)

    coarse: dict[str, Any] = {}
    fine: dict[str, Any] = {}
    for clip in plan:
        coarse[clip.name], fine[clip.name] = annotate(clip, model)
    for split in SPLITS:
        lines = [f"{c.name} {c.n_frames} {c.label} {c.valence:.2f}\n" for c in plan if c.split == split]
        _write_if_changed(root / f"{split}_NCEV.txt", "".join(lines))
    _write_if_changed(root / "MERR_coarse_grained.json", _json_text(coarse))
    _write_if_changed(root / "MERR_fine_grained.json", _json_text(fine))
    _write_if_changed(
        root / "transcription_en_all.csv", _csv_text(["name", "sentence"], [[c.name, c.subtitle] for c in plan])
    )
    meta_cols = ["name", "split", "speaker", "gender", "face_cue", "audio_cue", "text_cue"]
    meta = [[c.name, c.split, c.speaker.id, c.speaker.gender, *(c.cues[m] for m in MODALITIES)] for c in plan]
    _write_if_changed(root / "synthmer_meta.csv", _csv_text(meta_cols, meta))
    _write_if_changed(marker, info_text)  # last: its presence marks a complete generation
    return {**info, "root": str(root), "media_stats": media_stats, "seconds": round(time.perf_counter() - t0, 2)}
