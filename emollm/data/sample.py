"""``Sample``: one manifest row, the same schema for every corpus; and manifest read/write.

A manifest is a folder with ``samples.jsonl`` (one Sample per line) and ``manifest.json`` (corpus
name, label space, counts, the import report). Media paths inside a manifest are relative to the
manifest folder unless absolute, so a prepared corpus can be moved as a whole.

    write_manifest(out_dir, samples, info={"corpus": "mer2023", "label_space": "mer6"})
    m = Manifest.load(out_dir)
    m.split("test")             # list[Sample]
    m.media_path(sample, "video")  # absolute Path

100k rows load in well under a second (plain JSON lines + pydantic v2 validation).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator

from emollm.config import Strict
from emollm.io import atomic_path, atomic_write_json

MEDIA_KINDS = ("video", "audio", "image")


class Sample(Strict):
    id: str = Field(min_length=1)
    corpus: str = ""
    split: str = "train"
    media: dict[str, str] = Field(default_factory=dict)
    """kind (video | audio | image) -> path, relative to the manifest folder unless absolute."""
    subtitle: str | None = None
    label: str | None = None
    """Discrete label, canonical in the manifest's label space."""
    valence: float | None = None
    openset: list[str] | None = None
    """Open-vocabulary emotion words (MER2024-OV / OV-MERD)."""
    coarse: str | None = None
    """Coarse description (MERR ``caption``)."""
    fine: str | None = None
    """Fine-grained reasoning (MERR ``smp_reason_caption``, EMER reasons)."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """Free metadata: speaker, gender, frame_count, peak_index, AU lists, noise settings..."""

    @field_validator("media")
    @classmethod
    def _kinds(cls, v: dict[str, str]) -> dict[str, str]:
        bad = [k for k in v if k not in MEDIA_KINDS]
        if bad:
            raise ValueError(f"unknown media kind(s) {bad}; expected some of {MEDIA_KINDS}")
        return v


@dataclass
class Manifest:
    root: Path
    samples: list[Sample]
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        """Load a manifest folder (or a ``samples.jsonl`` file directly)."""
        p = Path(path)
        jsonl = p / "samples.jsonl" if p.is_dir() else p
        if not jsonl.is_file():
            raise FileNotFoundError(f"no manifest at {p}: expected {jsonl} (run `emollm prepare RECIPE` to create one)")
        root = jsonl.parent
        info_p = root / "manifest.json"
        info = json.loads(info_p.read_text()) if info_p.is_file() else {}
        samples = []
        with open(jsonl, encoding="utf-8") as f:
            for i, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    samples.append(Sample.model_validate_json(line))
                except ValidationError as e:
                    first = e.errors()[0]
                    loc = ".".join(str(x) for x in first["loc"])
                    raise ValueError(f"{jsonl}: row {i}: field {loc!r}: {first['msg']}") from None
        ids = Counter(s.id for s in samples)
        dup = [k for k, n in ids.items() if n > 1]
        if dup:
            raise ValueError(f"{jsonl}: duplicate sample ids {dup[:5]} ({len(dup)} in all)")
        return cls(root=root, samples=samples, info=info)

    def split(self, name: str) -> list[Sample]:
        out = [s for s in self.samples if s.split == name]
        if not out:
            have = sorted({s.split for s in self.samples})
            raise ValueError(f"manifest {self.root}: no samples in split {name!r}; splits present: {have}")
        return out

    def by_id(self) -> dict[str, Sample]:
        return {s.id: s for s in self.samples}

    def media_path(self, sample: Sample, kind: str) -> Path | None:
        rel = sample.media.get(kind)
        if rel is None:
            return None
        p = Path(rel)
        return p if p.is_absolute() else self.root / p

    @property
    def label_space(self) -> str | None:
        return self.info.get("label_space")


def resolve_media(sample: Sample, root: str | os.PathLike[str] | None) -> dict[str, Path]:
    """Absolute media paths of ``sample`` given its manifest root."""
    out = {}
    for kind, rel in sample.media.items():
        p = Path(rel)
        out[kind] = p if p.is_absolute() or root is None else Path(root) / p
    return out


def write_manifest(out_dir: str | os.PathLike[str], samples: Iterable[Sample], info: dict[str, Any]) -> Path:
    """Write ``samples.jsonl`` and ``manifest.json`` atomically; returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    samples = list(samples)
    with atomic_path(out / "samples.jsonl") as tmp, open(tmp, "w", encoding="utf-8") as f:
        for s in samples:
            f.write(s.model_dump_json(exclude_defaults=True) + "\n")
    counts: dict[str, dict[str, int]] = {}
    for s in samples:
        c = counts.setdefault(s.split, {})
        key = s.label if s.label is not None else "<none>"
        c[key] = c.get(key, 0) + 1
    info = {**info, "n_samples": len(samples), "counts": counts}
    atomic_write_json(out / "manifest.json", info)
    return out
