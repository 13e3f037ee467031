"""The one answer to "is this a preset or a checkpoint?": what a user names as a model (``--checkpoint``,
``--model``, ``--preset``, a run recipe) resolved once, then loaded as a config or as a system.

    spec = resolve_model("runs/mini/final")          # ModelSpec(kind="checkpoint", path=...)
    cfg = model_config_for("mini", ["lora.r=16"])     # a ModelConfig, no weights loaded
    system = load_system("runs/mini/final", "cpu")   # an EmoSystem with the checkpoint's weights and contract

Layering: ``system`` (build from a config) <- ``checkpoint`` (files, load/save a system) <- this module.
Every job (eval, predict, chat, serve, bench, export, prompt) goes through these functions, so an unknown
name gets the same error everywhere.
    spec = default_model_spec()                      # no model named: the newest trained checkpoint under runs/

``default_model_spec`` is what ``emollm chat``, ``predict`` and ``serve`` use when no model is named;
with no checkpoint under ``runs/`` its error says how to get one (``make demo``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from emollm.config import ModelConfig
from emollm.model.checkpoint import WEIGHTS, is_checkpoint, load_checkpoint, read_model_config
from emollm.model.native.folder import MODEL_TYPES, native_family_of, native_folder_config
from emollm.model.presets import PRESETS, model_config
from emollm.registry import close_match

if TYPE_CHECKING:
    import torch

    from emollm.model.system import EmoSystem

ModelKind = Literal["checkpoint", "preset", "recipe", "native"]

CHECKPOINT_GLOBS = ("*/final", "*/best", "*/*/final", "*/*/best")
"""Where training leaves loadable weights: ``runs/<run>/{final,best}`` and ``runs/<run>/<stage>/{final,best}``."""


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model name: a checkpoint (or exported) folder, a preset, a training recipe, or a released
    native model folder (Qwen2-Audio, Qwen2.5-Omni, Qwen2-VL: ``emollm.model.native.folder``)."""

    spec: str
    kind: ModelKind
    path: Path | None = None
    """The folder (checkpoint) or file (recipe); None for a preset."""


def resolve_model(spec: str | Path, what: str = "model", recipes: bool = False) -> ModelSpec:
    """Decide what ``spec`` names. ``what`` names the option in errors (``--checkpoint``);
    ``recipes``: a ``.yaml`` run recipe is accepted too (its ``model`` section)."""
    s = str(spec)
    p = Path(spec)
    if is_checkpoint(p):
        return ModelSpec(s, "checkpoint", p)
    if recipes and p.suffix in (".yaml", ".yml") and p.is_file():
        return ModelSpec(s, "recipe", p)
    if s in PRESETS:
        return ModelSpec(s, "preset")
    if p.is_dir() and native_family_of(p) is not None:
        return ModelSpec(s, "native", p)
    if p.is_dir():
        raise FileNotFoundError(
            f"{what} {s}: {p} is not an emollm checkpoint (no trainable.safetensors + model.yaml) nor a native "
            f"model folder (config.json model_type one of {sorted(MODEL_TYPES)})"
        )
    kinds = "a checkpoint folder, a preset nor a run recipe" if recipes else "a checkpoint folder nor a preset"
    raise KeyError(
        f"{what} {s!r} is neither {kinds}{close_match(s, PRESETS.names())}; presets: {', '.join(PRESETS.names())}"
    )


def model_config_for(
    spec: str | Path | ModelSpec, overrides: list[str] | tuple[str, ...] = (), what: str = "model"
) -> ModelConfig:
    """The ModelConfig of a preset, checkpoint folder or run recipe, without loading any weights."""
    m = spec if isinstance(spec, ModelSpec) else resolve_model(spec, what, recipes=True)
    if m.kind == "checkpoint":
        assert m.path is not None
        return read_model_config(m.path, overrides)
    if m.kind == "recipe":
        from emollm.training.config import load_run_config

        assert m.path is not None
        return load_run_config(m.path, [f"model.{o}" for o in overrides]).model
    if m.kind == "native":
        assert m.path is not None
        return native_folder_config(m.path, overrides)
    return model_config(m.spec, overrides=overrides)


def load_system(
    spec: str | Path | ModelSpec,
    device: torch.device | str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    gradient_checkpointing: bool = False,
    what: str = "model",
) -> EmoSystem:
    """A checkpoint folder (or exported folder) with its weights and contract, or a preset built from
    its config (random projectors, the default contract)."""
    from emollm.model.system import build_system  # lazy: resolving a name stays light

    m = spec if isinstance(spec, ModelSpec) else resolve_model(spec, what)
    if m.kind == "checkpoint":
        assert m.path is not None
        return load_checkpoint(
            m.path, device=device, overrides=overrides, gradient_checkpointing=gradient_checkpointing
        )
    if m.kind == "recipe":
        raise ValueError(f"{what} {m.spec}: a run recipe has no weights; train it first or name its checkpoint")
    if m.kind == "native":  # a released model as it is: its own weights, the default contract
        assert m.path is not None
        cfg = native_folder_config(m.path, overrides)
        system = build_system(cfg, device, gradient_checkpointing, source=str(m.path))
        system.trained = True  # a released model's answers mean something (a preset's projectors are random)
        return system
    return build_system(model_config(m.spec, overrides=overrides), device, gradient_checkpointing, source=m.spec)


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
