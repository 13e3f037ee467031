"""Checkpoints: trainable weights only (projectors + LoRA), the resolved config and a manifest.

A checkpoint folder holds::

    trainable.safetensors   projectors.<modality>.* (incl. standardiser buffers) and lora.* tensors
    model.yaml              the resolved ModelConfig (enough to rebuild the system)
    config.yaml             the resolved run config, when written by a training run
    prompt_contract.yaml    what every job asks the model (tasks, prompts, labels)
    manifest.json           emollm/torch/transformers/peft versions, git sha, step, data & feature hashes,
                            and ``files``: the sha256 and size of every other file in the folder

    save_checkpoint(system, "runs/x/step_000100", extra={"step": 100})
    system = load_checkpoint("runs/x/step_000100")
    export_merged(system, "exported/")   # standalone HF folder: merged LLM + projectors + tokenizer

Folders are written to a temporary sibling (normal modes: 0755/0644 under the umask), every file and
the folder are fsynced, and the folder is renamed into place, so a crash never leaves half a
checkpoint; replacing ``best``/``final`` swaps the two folders atomically (``renameat2`` with
``RENAME_EXCHANGE``; elsewhere old aside, new in, old deleted, and a folder left aside by a crash is put
back), so there is never neither. ``load_checkpoint`` and ``verify_checkpoint`` check every file against
the manifest's hashes and raise ``CheckpointError`` naming the file (missing, truncated, changed).
Base weights are never copied: ``model.yaml`` names where they come from.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
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
from emollm.io import atomic_write_json, sha256_file
from emollm.log import get_logger
from emollm.model.lora import load_lora_state_dict, lora_state_dict, merge_lora

log = get_logger(__name__)

if TYPE_CHECKING:  # the system is built lazily (below): reading a checkpoint's files stays light
    from emollm.model.system import EmoSystem

WEIGHTS = "trainable.safetensors"
MODEL_YAML = "model.yaml"
MANIFEST = "manifest.json"


class CheckpointError(ValueError):
    """A checkpoint folder is incomplete or corrupt; the message names the file and what is wrong."""


def is_checkpoint(path: str | Path) -> bool:
    p = Path(path)
    recover_dir(p)
    return (p / WEIGHTS).is_file() and (p / MODEL_YAML).is_file()


# ---------------------------------------------------------------------------------------------- durability


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def make_temp_dir(dst: Path) -> Path:
    """An empty sibling folder of ``dst`` to build it in, with normal permissions (mkdtemp gives 0700)."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def fsync_dir(path: Path) -> None:
    """Make a folder's entries (renames, new files) durable."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file and folder under ``root`` (before it is renamed into place)."""
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            with open(os.path.join(dirpath, f), "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(Path(dirpath))


def normal_modes(root: Path) -> None:
    """Give ``root`` and everything in it the usual modes (0777/0666 less the umask): mkdtemp makes 0700
    folders and safetensors writes 0600 files, which other users (a serving account, a shared group)
    could not read."""
    mask = _umask()
    os.chmod(root, 0o777 & ~mask)
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            os.chmod(os.path.join(dirpath, d), 0o777 & ~mask)
        for f in files:
            os.chmod(os.path.join(dirpath, f), 0o666 & ~mask)


def file_hashes(root: Path) -> dict[str, dict[str, Any]]:
    """``{relative posix path: {"sha256", "bytes"}}`` of every file under ``root`` except the manifest."""
    out: dict[str, dict[str, Any]] = {}
    for f in sorted(q for q in root.rglob("*") if q.is_file()):
        rel = f.relative_to(root).as_posix()
        if rel != MANIFEST:
            out[rel] = {"sha256": sha256_file(f), "bytes": f.stat().st_size}
    return out


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _aside(dst: Path) -> Path:
    return dst.with_name(f".{dst.name}.old")


def recover_dir(dst: Path) -> None:
    """Put back a folder an interrupted ``replace_dir`` left aside (``.<name>.old`` without ``<name>``)."""
    old = _aside(Path(dst))
    if not Path(dst).exists() and old.is_dir():
        try:
            old.rename(dst)
        except OSError as e:  # e.g. a read-only copy: leave it, the caller reports the missing folder
            log.warning("%s is missing and %s (left by an interrupted replacement) cannot be put back: %s", dst, old, e)
            return
        fsync_dir(Path(dst).parent)
        log.warning("%s was missing after an interrupted replacement; restored it from %s", dst, old.name)


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
    tmp = make_temp_dir(out)
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
        normal_modes(tmp)
        manifest["files"] = file_hashes(tmp)
        atomic_write_json(tmp / MANIFEST, manifest)
        fsync_tree(tmp)
        replace_dir(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def replace_dir(src: Path, dst: Path) -> None:
    """Move folder ``src`` to ``dst``; an existing ``dst`` is swapped out atomically, so at every moment
    ``dst`` is either the old or the new folder (fallback: old aside, new in, old deleted; a crash in
    between is undone by ``recover_dir``)."""
    src, dst = Path(src), Path(dst)
    recover_dir(dst)
    if dst.exists():
        if _exchange(src, dst):
            shutil.rmtree(src)  # now the old folder
        else:
            old = _aside(dst)
            if old.exists():
                shutil.rmtree(old)
            dst.rename(old)
            src.rename(dst)
            shutil.rmtree(old)
    else:
        src.rename(dst)
    fsync_dir(dst.parent)


def verify_checkpoint(path: str | Path) -> dict[str, Any]:
    """Check every file of a checkpoint against its manifest's sizes and sha256; returns the manifest.

    Raises ``CheckpointError`` naming the first missing, truncated or changed file. A checkpoint written
    before hashes existed (no ``files`` in its manifest) is only checked for its weights and model.yaml.
    """
    p = Path(path)
    for need in (WEIGHTS, MODEL_YAML):
        if not (p / need).is_file():
            raise CheckpointError(f"{p / need}: missing, so {p} is not a complete checkpoint")
    mf = p / MANIFEST
    if not mf.is_file():
        return {}
    try:
        manifest = json.loads(mf.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        raise CheckpointError(f"{mf}: cannot be read ({e}); the checkpoint {p} is damaged") from None
    for rel, want in (manifest.get("files") or {}).items():
        f = p / rel
        if not f.is_file():
            raise CheckpointError(f"{f}: missing (listed in {MANIFEST}); the checkpoint {p} is incomplete")
        size = f.stat().st_size
        if size != want.get("bytes", size):
            raise CheckpointError(
                f"{f}: {size} bytes where {MANIFEST} records {want['bytes']} (truncated or overwritten); "
                f"the checkpoint {p} is damaged"
            )
        if sha256_file(f) != want.get("sha256"):
            raise CheckpointError(
                f"{f}: content differs from the sha256 in {MANIFEST} (corrupted); the checkpoint {p} is damaged"
            )
    return manifest


def load_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """``trainable.safetensors`` of a checkpoint folder (or the file), verified first; ``CheckpointError`` if bad."""
    from safetensors import SafetensorError

    p = Path(path)
    folder, f = (p, p / WEIGHTS) if p.is_dir() else (p.parent, p)
    if (folder / MODEL_YAML).is_file():
        verify_checkpoint(folder)
    try:
        return load_file(str(f))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{f}: cannot be read as safetensors ({e}); the checkpoint is damaged") from None


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
    state = load_weights(p)  # verifies every file first: a damaged checkpoint fails before the model is built
    system = build_system(read_model_config(p, overrides), device, gradient_checkpointing, source=str(p))
    load_trainable_state_dict(system, state, str(p / WEIGHTS))
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
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise ValueError(
            f"--out {out} exists and is not an emollm export (no {MANIFEST}); it would be replaced: choose a new "
            "or empty folder"
        )
    tmp = make_temp_dir(out)  # written in full, then swapped in: a failed export leaves the old one intact
    try:
        merged = merge_lora(system.model.llm)
        merged.save_pretrained(tmp)
        system.tokenizer.save_pretrained(tmp)
        state = {
            f"projectors.{k}": v.detach().cpu().contiguous() for k, v in system.model.projectors.state_dict().items()
        }
        save_file(state, str(tmp / WEIGHTS))
        cfg = system.cfg.model_copy(deep=True)
        data = cfg.model_dump(mode="json")
        data["llm"].update({"source": "hf", "path": str(out.resolve()), "quantization": "none", "chat_template": None})
        data["lora"]["enabled"] = False
        (tmp / MODEL_YAML).write_text(yaml.safe_dump(data, sort_keys=False))
        if system.contract is not None:
            system.contract.save(tmp)
        manifest = {"format": "emollm-export-v1", "exported_from": system.source, **environment_manifest()}
        normal_modes(tmp)
        manifest["files"] = file_hashes(tmp)
        atomic_write_json(tmp / MANIFEST, manifest)
        fsync_tree(tmp)
        replace_dir(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out
