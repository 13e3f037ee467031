"""A released native model folder (Qwen2-Audio, Qwen2.5-Omni, Qwen2-VL) named directly as a model.

    native_family_of("weights/Qwen2-Audio-7B-Instruct")        # "qwen2-audio" (from config.json)
    cfg = native_folder_config("weights/Qwen2-Audio-7B-Instruct")  # a ModelConfig: the folder + default media

So ``emollm eval --backend native --checkpoint weights/Qwen2.5-Omni-7B``, ``emollm chat`` and ``serve``
run a downloaded model zero-shot without a preset or a training run: the family comes from the folder's
``config.json`` ``model_type``, the media settings are the family's defaults below (override them with
``--set``-style dotted overrides, e.g. ``modalities.audio.encoder.options.seconds=20``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from emollm.config import ModelConfig, apply_overrides, validate

MODEL_TYPES = {
    "qwen2_audio": "qwen2-audio",
    "qwen2_5_omni": "qwen2.5-omni",
    "qwen2_5_omni_thinker": "qwen2.5-omni",
    "qwen2_vl": "qwen2-vl",
}
"""``config.json`` ``model_type`` -> emollm native family."""

DEFAULT_MEDIA: dict[str, dict[str, dict[str, Any]]] = {
    "qwen2-audio": {"audio": {"name": "native_audio", "options": {"seconds": 10.0}}},
    "qwen2.5-omni": {
        "video": {"name": "native_video", "options": {"n_frames": 8, "size": 224}},
        "audio": {"name": "native_audio", "options": {"seconds": 10.0}},
    },
    "qwen2-vl": {"video": {"name": "native_video", "options": {"n_frames": 8, "size": 224}}},
}
"""Per family: modality -> encoder (8 frames at 224 px = 256 video tokens; 10 s of audio = 250 tokens)."""


def native_family_of(path: str | Path) -> str | None:
    """The native family of a transformers folder, or None (not a folder, or another model type)."""
    f = Path(path) / "config.json"
    if not f.is_file():
        return None
    try:
        mt = json.loads(f.read_text(encoding="utf-8")).get("model_type")
    except (OSError, json.JSONDecodeError):
        return None
    return MODEL_TYPES.get(str(mt))


def native_folder_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ModelConfig:
    """The ModelConfig that runs the native model in ``path`` as released (no trained weights)."""
    fam = native_family_of(path)
    if fam is None:
        raise ValueError(f"{path}: not a native model folder (config.json model_type one of {sorted(MODEL_TYPES)})")
    mods = {
        m: {"encoder": {"name": e["name"], "options": {"family": fam, **e["options"]}}}
        for m, e in DEFAULT_MEDIA[fam].items()
    }
    data = {
        "llm": {"source": "hf", "family": fam, "path": str(path), "dtype": "auto"},
        "lora": {"enabled": False},
        "modalities": mods,
        "label_space": "mer6",
        "max_length": 4096,
    }
    return validate(ModelConfig, apply_overrides(data, list(overrides)), f"native model folder {path}")
