"""Checkpoints: trainable weights only (projectors + LoRA), the resolved config and a manifest.

A checkpoint folder holds::

    trainable.safetensors   projectors.<modality>.* (incl. standardiser buffers) and lora.* tensors
    model.yaml              the resolved ModelConfig (enough to rebuild the system)
    config.yaml             the resolved run config, when written by a training run
    manifest.json           emollm/torch/transformers/peft versions, git sha, step, data & feature hashes

    save_checkpoint(system, "runs/x/step_000100", extra={"step": 100})
    system = load_checkpoint("runs/x/step_000100")
    export_merged(system, "exported/")   # standalone HF folder: merged LLM + projectors + tokenizer

Folders are written to a temporary sibling and renamed into place, so a crash never leaves half a
checkpoint. Base weights are never copied: ``model.yaml`` names where they come from.
"""

from __future__ import annotations

import json
import platform
import shutil
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import yaml
from safetensors.torch import load_file, save_file

from emollm.config import ModelConfig, apply_overrides, validate
from emollm.data.contract import PromptContract, load_contract
from emollm.io import atomic_write_json
from emollm.model.lora import load_lora_state_dict, lora_state_dict, merge_lora

if TYPE_CHECKING:  # the system is built lazily (below): reading a checkpoint's files stays light
    from emollm.model.system import EmoSystem

WEIGHTS = "trainable.safetensors"
MODEL_YAML = "model.yaml"


def is_checkpoint(path: str | Path) -> bool:
    p = Path(path)
    return (p / WEIGHTS).is_file() and (p / MODEL_YAML).is_file()


def git_sha(cwd: Path | None = None) -> str | None:
    from emollm.paths import resource_root

    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd or resource_root(), capture_output=True, text=True, timeout=5
        )
        sha = out.stdout.strip()
        if out.returncode != 0 or not sha:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd or resource_root(),
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment_manifest() -> dict[str, Any]:
    vers = {}
    for pkg in ("emollm", "torch", "transformers", "peft", "accelerate", "deepspeed", "bitsandbytes"):
        try:
            vers[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            vers[pkg] = None
    return {"versions": vers, "git_sha": git_sha(), "python": platform.python_version()}


def trainable_state_dict(system: EmoSystem) -> dict[str, torch.Tensor]:
    state = {f"projectors.{k}": v.detach().cpu().contiguous() for k, v in system.model.projectors.state_dict().items()}
    state.update({f"lora.{k}": v for k, v in lora_state_dict(system.model.llm).items()})
    return state


def load_trainable_state_dict(system: EmoSystem, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    proj = {k.removeprefix("projectors."): v for k, v in state.items() if k.startswith("projectors.")}
    lora = {k.removeprefix("lora."): v for k, v in state.items() if k.startswith("lora.")}
    other = [k for k in state if not k.startswith(("projectors.", "lora."))]
    if other:
        raise ValueError(f"{source}: unexpected tensors {other[:5]}")
    expected = system.model.projectors.state_dict()
    for k, v in expected.items():
        if k not in proj:
            raise ValueError(f"{source}: projector tensor {k!r} missing")
        if tuple(proj[k].shape) != tuple(v.shape):
            raise ValueError(
                f"{source}: projector tensor {k!r} has shape {tuple(proj[k].shape)}, model expects {tuple(v.shape)}"
            )
    extra = sorted(set(proj) - set(expected))
    if extra:
        raise ValueError(f"{source}: projector tensors for modalities the model does not have: {extra[:5]}")
    system.model.projectors.load_state_dict(proj, strict=True)
    load_lora_state_dict(system.model.llm, lora)


def save_checkpoint(
    system: EmoSystem,
    out_dir: str | Path,
    run_config: Any | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the checkpoint folder atomically (temp sibling + rename). Returns the folder."""
    return write_checkpoint(
        out_dir, trainable_state_dict(system), system.cfg, run_config, extra, system.source, contract=system.contract
    )


def write_checkpoint(
    out_dir: str | Path,
    state: dict[str, torch.Tensor],
    model_cfg: ModelConfig,
    run_config: Any | None = None,
    extra: dict[str, Any] | None = None,
    source: str = "config",
    files: dict[str, Path] | None = None,
    contract: PromptContract | None = None,
) -> Path:
    """Write ``state`` (projectors.* / lora.* tensors) + configs + manifest to ``out_dir`` atomically.
    ``files`` maps extra file names to existing files/folders moved into the checkpoint (resume state);
    ``contract`` is saved as ``prompt_contract.yaml`` (what every job asks the model)."""
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        save_file(state, str(tmp / WEIGHTS))
        (tmp / MODEL_YAML).write_text(yaml.safe_dump(model_cfg.model_dump(mode="json"), sort_keys=False))
        if contract is not None:
            contract.save(tmp)
        if run_config is not None:
            (tmp / "config.yaml").write_text(yaml.safe_dump(run_config.model_dump(mode="json"), sort_keys=False))
        for name, src in (files or {}).items():
            shutil.move(str(src), str(tmp / name))
        manifest = {"format": "emollm-checkpoint-v1", "source": source, **environment_manifest(), **(extra or {})}
        atomic_write_json(tmp / "manifest.json", manifest)
        replace_dir(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def replace_dir(src: Path, dst: Path) -> None:
    """Move folder ``src`` to ``dst``, replacing an existing ``dst`` with as small a window as possible."""
    if dst.exists():
        old = dst.with_name(f".{dst.name}.old")
        if old.exists():
            shutil.rmtree(old)
        dst.rename(old)
        src.rename(dst)
        shutil.rmtree(old)
    else:
        src.rename(dst)


def read_model_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ModelConfig:
    p = Path(path) / MODEL_YAML
    data = yaml.safe_load(p.read_text()) or {}
    return validate(ModelConfig, apply_overrides(data, overrides), str(p))


def load_checkpoint(
    path: str | Path,
    device: torch.device | str | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    gradient_checkpointing: bool = False,
) -> EmoSystem:
    from emollm.model.system import build_system

    p = Path(path)
    if not is_checkpoint(p):
        raise FileNotFoundError(f"{p} is not an emollm checkpoint: expected {p / WEIGHTS} and {p / MODEL_YAML}")
    system = build_system(read_model_config(p, overrides), device, gradient_checkpointing, source=str(p))
    load_trainable_state_dict(system, load_file(str(p / WEIGHTS)), str(p / WEIGHTS))
    system.trained = True
    system.contract = load_contract(p, system.labels, system.cfg.system_prompt)
    system.processor.system_prompt = system.contract.system_prompt
    if device is not None:
        system.model.projectors.to(device)
    return system


def read_manifest(path: str | Path) -> dict[str, Any]:
    f = Path(path) / "manifest.json"
    return json.loads(f.read_text()) if f.is_file() else {}


def export_merged(system: EmoSystem, out_dir: str | Path) -> Path:
    """A standalone folder: the LLM with LoRA merged (loadable by ``AutoModelForCausalLM``), the
    tokenizer (with placeholder tokens), the projectors, and a ``model.yaml`` pointing at the folder
    itself, so ``load_system(out_dir)`` works without the original base weights."""
    if system.cfg.llm.quantization != "none":
        raise ValueError("export needs a full-precision base: reload the checkpoint with model.llm.quantization=none")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    merged = merge_lora(system.model.llm)
    merged.save_pretrained(out)
    system.tokenizer.save_pretrained(out)
    state = {f"projectors.{k}": v.detach().cpu().contiguous() for k, v in system.model.projectors.state_dict().items()}
    save_file(state, str(out / WEIGHTS))
    cfg = system.cfg.model_copy(deep=True)
    data = cfg.model_dump(mode="json")
    data["llm"].update({"source": "hf", "path": str(out.resolve()), "quantization": "none", "chat_template": None})
    data["lora"]["enabled"] = False
    (out / MODEL_YAML).write_text(yaml.safe_dump(data, sort_keys=False))
    atomic_write_json(
        out / "manifest.json", {"format": "emollm-export-v1", "exported_from": system.source, **environment_manifest()}
    )
    return out
