"""Resolve what a user names as a model — a preset, a checkpoint folder, or a run recipe — to a
ModelConfig without loading any weights.

    cfg = model_config_for("mini")
    cfg = model_config_for("runs/mini/final", ["lora.enabled=false"])
    spec = default_model_spec()        # no model named: the newest trained checkpoint under runs/

``default_model_spec`` is what ``emollm chat``, ``predict`` and ``serve`` use when no model is named;
with no checkpoint under ``runs/`` its error says how to get one (``make demo``).
"""

from __future__ import annotations

from pathlib import Path

from emollm.config import ModelConfig
from emollm.model.checkpoint import WEIGHTS, is_checkpoint, read_model_config
from emollm.model.presets import PRESETS, model_config

CHECKPOINT_GLOBS = ("*/final", "*/best", "*/*/final", "*/*/best")
"""Where training leaves loadable weights: ``runs/<run>/{final,best}`` and ``runs/<run>/<stage>/{final,best}``."""


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


class NoModelError(FileNotFoundError):
    """No model was named and no trained checkpoint was found."""


def trained_checkpoints(runs: str | Path = "runs") -> list[Path]:
    """Checkpoint folders (``final``/``best`` with weights and model.yaml) under ``runs``, newest first.

    Newest by the weights' modification time; on a tie a ``best`` folder and a shallower one come first.
    """
    root = Path(runs)
    if not root.is_dir():
        return []
    found = {p for g in CHECKPOINT_GLOBS for p in root.glob(g) if is_checkpoint(p)}

    def key(p: Path) -> tuple[float, int, int]:
        return (p.joinpath(WEIGHTS).stat().st_mtime, p.name == "best", -len(p.parts))

    return sorted(found, key=key, reverse=True)


def default_model_spec(runs: str | Path = "runs") -> str:
    """The newest trained checkpoint under ``runs`` (as a path string); NoModelError explains how to get one."""
    found = trained_checkpoints(runs)
    if found:
        return str(found[0])
    raise NoModelError(
        f"no model named and no trained checkpoint under {Path(runs)}/ (looked for */final and */best with "
        "model.yaml): train the small demo model with `make demo` (or `emollm demo`; minutes on a CPU), then run "
        "this again, or name a model with --checkpoint FOLDER or --preset NAME (a preset is untrained: random "
        "projectors, so its answers are noise)"
    )
