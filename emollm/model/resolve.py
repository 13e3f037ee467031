"""Resolve what a user names as a model — a preset, a checkpoint folder, or a run recipe — to a
ModelConfig without loading any weights.

    cfg = model_config_for("mini")
    cfg = model_config_for("runs/mini/final", ["lora.enabled=false"])
"""

from __future__ import annotations

from pathlib import Path

from emollm.config import ModelConfig
from emollm.model.checkpoint import is_checkpoint, read_model_config
from emollm.model.presets import PRESETS, model_config


def model_config_for(spec: str, overrides: list[str] | tuple[str, ...] = ()) -> ModelConfig:
    p = Path(spec)
    if is_checkpoint(p):
        return read_model_config(p, overrides)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        from emollm.training.config import load_run_config

        return load_run_config(p, [f"model.{o}" for o in overrides]).model
    if spec in PRESETS:
        return model_config(spec, overrides=overrides)
    raise KeyError(
        f"model {spec!r} is neither a preset ({', '.join(PRESETS.names())}), a checkpoint folder nor a run recipe"
    )
