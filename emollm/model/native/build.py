"""Build a native backbone's ``EmoSystem``: the model, its tokenizer and chat template, its media inputs.

    model, processor, encoders = build_native(model_config("tiny-qwen2-audio"))
    model                   # NativeLM (the HF model + LoRA on its language model)
    processor               # emollm's Processor over the model's tokenizer and placeholder tokens

Called by ``emollm.model.system.build_system`` when ``llm.family`` is a native family, so every job
(train, eval, predict, chat, serve, bench, prompt) builds native and emollm backbones through the
same function and gets the same ``EmoSystem`` shape.

LoRA: the recipe's ``lora.targets`` (module names such as q_proj) on the language model only; a
module under one of the family's towers is never adapted (``lora_targets`` lists the matches).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from emollm.config import ModelConfig
from emollm.data.processor import Processor
from emollm.device import choose_dtype
from emollm.encoders import Encoder, build_encoder
from emollm.log import get_logger
from emollm.model.lora import apply_lora
from emollm.model.native.families import FAMILIES, NativeFamily
from emollm.model.native.lm import NativeLM

log = get_logger(__name__)


def lora_target_regex(family: NativeFamily, targets: list[str]) -> str:
    """A peft ``target_modules`` regex: modules named one of ``targets`` outside the family's towers."""
    towers = "|".join(family.towers)
    names = "|".join(targets)
    return rf"^(?!.*\b(?:{towers})\b).*\.(?:{names})$"


def lora_targets(model: torch.nn.Module, family: NativeFamily, targets: list[str]) -> list[str]:
    """Dotted names of the modules LoRA adapts (for docs, tests and ``emollm doctor``)."""
    import re

    rx = re.compile(lora_target_regex(family, targets))
    return [n for n, _ in model.named_modules() if rx.match(n)]


def _chat_template(folder: Path, tok: Any) -> None:
    """Qwen's multimodal checkpoints keep the template beside the processor, not in the tokenizer."""
    if getattr(tok, "chat_template", None):
        return
    for name in ("chat_template.jinja", "chat_template.json"):
        f = folder / name
        if f.is_file():
            text = f.read_text(encoding="utf-8")
            tok.chat_template = json.loads(text)["chat_template"] if name.endswith(".json") else text
            return


def load_native(cfg: ModelConfig, device: torch.device | str | None) -> tuple[Any, Any]:
    """``(model, tokenizer)`` of ``cfg.llm``'s family: tiny random or a local transformers folder."""
    from emollm.model.llm import load_chat_template, load_hf_folder
    from emollm.paths import home

    fam = FAMILIES.get(cfg.llm.family)
    # QLoRA: towers, projectors and head stay in full precision (transformers matches these as regexes
    # from the start of the module name, hence the ``.*``)
    skip = [rf".*\b{t}" for t in (*fam.towers, *fam.projectors.values())] + ["lm_head"]
    if cfg.llm.source == "tiny":
        model, tok = fam.tiny(cfg.llm.native_tiny)
        if cfg.llm.quantization != "none":  # bitsandbytes quantises on load: round-trip through a folder
            key = hashlib.sha256(f"{fam.name}|{cfg.llm.native_tiny.model_dump_json()}".encode()).hexdigest()[:12]
            folder = home() / "models" / f"tiny-{fam.name}-{key}"
            if not (folder / ".complete").is_file():
                folder.mkdir(parents=True, exist_ok=True)
                model.save_pretrained(folder)
                tok.save_pretrained(folder)
                (folder / ".complete").write_text("ok\n")
            model, tok = load_hf_folder(folder, cfg.llm, device, fam.hf_cls(), skip)
        else:
            model = model.to(choose_dtype(cfg.llm.dtype, device))
    else:
        folder = Path(cfg.llm.path or "").expanduser()
        model, tok = load_hf_folder(folder, cfg.llm, device, fam.hf_cls(), skip)
        _chat_template(folder, tok)
    if cfg.llm.chat_template is not None:
        tok.chat_template = load_chat_template(cfg.llm.chat_template)
    if not getattr(tok, "chat_template", None):
        raise ValueError(
            f"the {fam.name} model at {cfg.llm.path!r} has no chat template (tokenizer or chat_template.json); "
            "set model.llm.chat_template"
        )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.requires_grad_(False)
    model.eval()
    if device is not None and cfg.llm.quantization == "none":
        model.to(device)
    return model, tok


def build_native(
    cfg: ModelConfig, device: torch.device | str | None = None, gradient_checkpointing: bool = False
) -> tuple[NativeLM, Processor, dict[str, Encoder]]:
    """The model (+LoRA), the processor and the media encoders of a native ``cfg``."""
    fam = FAMILIES.get(cfg.llm.family)
    encoders: dict[str, Encoder] = {}
    for m, mc in cfg.modalities.items():
        ecfg = mc.encoder
        if ecfg.path is None and cfg.llm.source == "hf":  # the model folder's processor settings
            ecfg = ecfg.model_copy(update={"path": cfg.llm.path})
        encoders[m] = build_encoder(ecfg)
    kinds = {m: "audio" if e.input_kind == "audio" else "video" for m, e in encoders.items()}
    for m, k in kinds.items():
        if k not in fam.slots:
            raise ValueError(f"modalities.{m}: the {fam.name} family has no {k} input (it takes {sorted(fam.slots)})")
    if len(set(kinds.values())) != len(kinds):
        raise ValueError(f"{fam.name}: one modality per media kind, got {kinds}")
    model, tok = load_native(cfg, device)
    missing = [t for t in fam.special_tokens() if t not in tok.get_vocab()]
    if missing:
        raise ValueError(f"the {fam.name} tokenizer lacks the family's special tokens {missing}")
    projectors: dict[str, torch.nn.Module] = {}
    if cfg.llm.train_projector:
        projectors = {m: model.model.get_submodule(fam.projectors[k]) for m, k in kinds.items()}
    if gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    targets = lora_target_regex(fam, list(cfg.lora.targets))
    model = apply_lora(
        model,
        cfg.lora,
        quantized=cfg.llm.quantization != "none",
        gradient_checkpointing=gradient_checkpointing,
        target_regex=targets,
    )
    for p in projectors.values():
        p.requires_grad_(True)
    slots = {m: fam.slots[k] for m, k in kinds.items()}
    processor = Processor(
        tok,
        {m: int(e.llm_tokens) for m, e in encoders.items()},
        cfg.system_prompt,
        cfg.max_length,
        placeholders={m: s.token for m, s in slots.items()},
        wrappers={m: (s.before, s.after) for m, s in slots.items()},
    )
    special = {t: int(tok.convert_tokens_to_ids(t)) for t in fam.special_tokens()}
    lm = NativeLM(
        model,
        fam,
        kinds,
        encoders,
        processor.placeholder_ids,
        processor.stop_ids,
        processor.pad_id,
        projectors,
        special,
    )
    return lm, processor, encoders
