"""Helpers for the importer tests: tiny real media written with PyAV and corpus files in the real formats.

write_video(tmp_path / "a.mp4", n_frames=8)      # H.264 + AAC, decodable
write_corrupt(tmp_path / "bad.mp4")              # random bytes with a video suffix
root = make_merr_corpus(tmp_path / "merr")       # NCEV lists, coarse/fine JSON, transcripts, video/
"""

from __future__ import annotations

import csv
import json
import os
from fractions import Fraction
from pathlib import Path

import numpy as np


def write_video(
    path: Path, n_frames: int = 8, size: int = 32, fps: int = 8, audio: bool = True, sr: int = 16000
) -> Path:
    """A real, decodable H.264 (+ AAC) clip of ``n_frames`` frames."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width = vs.height = size
        vs.pix_fmt = "yuv420p"
        a_s = c.add_stream("aac", rate=sr) if audio else None
        for i in range(n_frames):
            img = np.full((size, size, 3), (i * 30) % 255, dtype=np.uint8)
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in vs.encode():
            c.mux(pkt)
        if a_s is not None:
            n = int(sr * n_frames / fps)
            t = np.arange(n) / sr
            wave = (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)[None, :]
            step = 1024
            for k in range(0, n, step):
                fr = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(wave[:, k : k + step]), format="fltp", layout="mono"
                )
                fr.sample_rate = sr
                fr.pts = k
                fr.time_base = Fraction(1, sr)
                for pkt in a_s.encode(fr):
                    c.mux(pkt)
            for pkt in a_s.encode():
                c.mux(pkt)
    return path


def write_corrupt(path: Path, n: int = 4096, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes())
    return path


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


MERR_ROWS = [
    # name, frame_count, label, valence, split
    ("clip_a", 40, "happy", "1.5", "train"),
    ("clip_b", 32, "sad", "-10", "train"),
    ("clip_c", 25, "surprise", None, "test"),
]


def make_merr_corpus(root: Path, videos: bool = True) -> Path:
    """A complete small MERR-layout corpus (the layout SynthMER writes), all three clips valid."""
    root.mkdir(parents=True, exist_ok=True)
    lists: dict[str, list[str]] = {}
    for name, fc, lab, val, split in MERR_ROWS:
        lists.setdefault(split, []).append(" ".join(x for x in (name, str(fc), lab, val) if x is not None))
    for split, lines in lists.items():
        (root / f"{split}_NCEV.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    coarse = {
        name: {
            "AU_list": ["AU06", "AU12"],
            "visual_prior_list": ["Cheek raiser", "Lip corner puller"],
            "audio_prior_list": "The voice is bright",
            "peak_index": "7",
            "peak_AU_list": ["AU06", "AU12"],
            "pseu_emotion": lab,
            "caption": f"Coarse description of {name}.",
        }
        for name, _, lab, _, _ in MERR_ROWS
    }
    coarse["not_listed"] = {"caption": "a pool entry no list mentions"}
    (root / "MERR_coarse_grained.json").write_text(json.dumps(coarse, indent=1), encoding="utf-8")
    fine = {
        "clip_a": {
            "smp_reason_caption": "She smiles, so she is happy.",
            "text": "fallback text",
            "pseu_emotion": "happy",
        },
        "clip_b": {"smp_reason_caption": "He frowns.", "text": "Only the fine text.", "pseu_emotion": "sad"},
    }
    (root / "MERR_fine_grained.json").write_text(json.dumps(fine, indent=1), encoding="utf-8")
    write_csv(
        root / "transcription_en_all.csv", ["name", "sentence"], [["clip_a", "What a day!"], ["clip_c", "Oh my!"]]
    )
    write_csv(
        root / "synthmer_meta.csv",
        ["name", "split", "speaker", "gender"],
        [["clip_a", "train", "spk1", "f"], ["clip_b", "train", "spk2", "m"], ["clip_c", "test", "spk1", "f"]],
    )
    if videos:
        for name, *_ in MERR_ROWS:
            write_video(root / "video" / f"{name}.mp4")
    return root


MERR_OPTIONS = {
    "lists": {"train": "train_NCEV.txt", "test": "test_NCEV.txt"},
    "coarse_json": "MERR_coarse_grained.json",
    "fine_json": "MERR_fine_grained.json",
    "transcripts": "transcription_en_all.csv",
    "video_dir": "video",
    "meta_csv": "synthmer_meta.csv",
}


def write_recipe(path: Path, importer: str, options: dict, label_space: str = "mer6", **extra: object) -> Path:
    import yaml

    data = {"name": path.stem, "importer": importer, "label_space": label_space, "options": options, **extra}
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def run(importer: str, root: Path, options: dict, space: str = "mer6", out: Path | None = None):
    """Run one importer directly; returns ({id: Sample}, ImportReport, ImportContext)."""
    from emollm.config import validate
    from emollm.data.importers import IMPORTERS, ImportContext
    from emollm.data.report import ImportReport
    from emollm.labels import label_space

    spec = IMPORTERS.get(importer)
    opts = validate(spec.options_model, options, "test")
    report = ImportReport()
    ctx = ImportContext(root, out or root, label_space(space), report, corpus="t", label_aliases=opts.label_aliases)
    samples = spec.load(opts, ctx)
    return {s.id: s for s in samples}, report, ctx


def kit_root() -> Path | None:
    from emollm.paths import conformance_root

    root = conformance_root()
    return root if root is not None and root.is_dir() else None


def env_offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
