"""Load Emotion-LLaMA's released ``.pth`` checkpoints into the ``emotion-llama`` layout.

The released files (``Emotion_LLaMA.pth``, ``stage2/checkpoint_best.pth``, ``MER2024-best.pth``) hold
only trainable tensors under ``model`` (or at the top level), named by position in the original
code. They map to emollm's modality names::

    llama_proj.*          -> projectors.frame.net.*       Linear(5632 -> 4096), 256 grouped EVA patches
    feats_llama_proj1.*   -> projectors.face.net.*        Linear(1024 -> 4096), MAE face
    feats_llama_proj2.*   -> projectors.face_clip.net.*   Linear(1024 -> 4096), VideoMAE
    feats_llama_proj3.*   -> projectors.audio.net.*       Linear(1024 -> 4096), HuBERT
    cls_tk_llama_proj.*   -> projectors.frame_cls.net.*   Linear(1408 -> 4096), EVA CLS
    llama_model.base_model.model.model.layers.N.self_attn.{q,v}_proj.lora_{A,B}[.default].weight
                          -> peft LoRA weights (both peft 0.2 and >= 0.3 key styles)

The unused ``Attention`` fusion head of the original (``attention.*``) is reported and skipped.

    load_released_checkpoint(system, "Emotion_LLaMA.pth")      # raises naming any mismatch
    load_released_checkpoint(system, path, trust_pickle=True)  # for files weights_only cannot read
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from emollm.log import get_logger
from emollm.model.checkpoint import load_trainable_state_dict
from emollm.model.lora import lora_state_dict

if TYPE_CHECKING:
    from emollm.model.system import EmoSystem

log = get_logger(__name__)

PROJECTOR_MAP = {
    "llama_proj": "frame",
    "feats_llama_proj1": "face",
    "feats_llama_proj2": "face_clip",
    "feats_llama_proj3": "audio",
    "cls_tk_llama_proj": "frame_cls",
}
_LORA = re.compile(r"^llama_model\.(base_model\.model\..*\.lora_[AB])(?:\.default)?\.weight$")
IGNORED_PREFIXES = ("attention.",)


def read_released(path: str | Path, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"released checkpoint {p} not found")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises several types for pickled objects
        if not trust_pickle:
            raise ValueError(
                f"{p}: cannot be read with weights_only=True ({type(e).__name__}: {str(e)[:200]}). If you trust the "
                "file, load it with trust_pickle=True (CLI: --trust-pickle)"
            ) from None
        obj = torch.load(p, map_location="cpu", weights_only=False)
    state = obj.get("model", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{p}: expected a state dict (optionally under 'model') of tensors")
    return state


def convert_released(state: dict[str, torch.Tensor], lora_names: set[str]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Released names -> emollm trainable names. Returns (converted, skipped keys)."""
    out: dict[str, torch.Tensor] = {}
    skipped: list[str] = []
    for k, v in state.items():
        head, _, rest = k.partition(".")
        if head in PROJECTOR_MAP:
            out[f"projectors.{PROJECTOR_MAP[head]}.net.{rest}"] = v
            continue
        m = _LORA.match(k)
        if m:
            name = m.group(1) + ".weight"
            if name not in lora_names:
                raise ValueError(f"released LoRA tensor {k!r} maps to {name!r}, which this model does not have")
            out[f"lora.{name}"] = v
            continue
        if k.startswith(IGNORED_PREFIXES):
            skipped.append(k)
            continue
        raise ValueError(f"released checkpoint tensor {k!r} has no emollm counterpart")
    return out, skipped


def load_released_checkpoint(system: EmoSystem, path: str | Path, trust_pickle: bool = False) -> list[str]:
    """Load a released Emotion-LLaMA checkpoint into ``system`` (built from the emotion-llama layout)."""
    need = set(PROJECTOR_MAP.values())
    have = set(system.model.projectors)
    if not need <= have:
        raise ValueError(
            f"released Emotion-LLaMA weights need modalities {sorted(need)}; this model has {sorted(have)}"
        )
    state, skipped = convert_released(read_released(path, trust_pickle), set(lora_state_dict(system.model.llm)))
    # projectors outside the released set (none in the published layout) keep their current weights
    for m, proj in system.model.projectors.items():
        for k, v in proj.state_dict().items():
            state.setdefault(f"projectors.{m}.{k}", v)
    load_trainable_state_dict(system, state, str(path))
    if skipped:
        log.info("skipped %d tensors of the original's unused fusion head (%s...)", len(skipped), skipped[0])
    return skipped
