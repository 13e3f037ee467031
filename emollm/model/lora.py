"""LoRA through peft: attach adapters, read and write adapter weights, merge.

    llm = apply_lora(llm, LoRAConfig(r=64, alpha=16, dropout=0.05, targets=["q_proj", "v_proj"]))
    state = lora_state_dict(llm)          # adapter tensors only, peft's canonical key names
    load_lora_state_dict(llm, state)      # strict: every adapter tensor must be present
    plain = merge_lora(llm)               # a plain transformers model with the adapters folded in

With a 4-bit/8-bit base the model is first prepared with ``prepare_model_for_kbit_training``
(QLoRA); note that this upcasts non-quantised weights to fp32.
"""

from __future__ import annotations

from typing import Any

import torch

from emollm.config import LoRAConfig


def apply_lora(
    llm: Any,
    cfg: LoRAConfig,
    quantized: bool = False,
    gradient_checkpointing: bool = False,
    target_regex: str | None = None,
) -> Any:
    """Attach adapters on ``cfg.targets``; ``target_regex`` (a full-match regex over dotted module names)
    narrows them, e.g. to a native model's language model, away from its towers."""
    import re

    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if not cfg.enabled:
        return llm
    names = {n.rsplit(".", 1)[-1] for n, _ in llm.named_modules()}
    missing = [t for t in cfg.targets if t not in names]
    if target_regex is not None and not any(re.match(target_regex, n) for n, _ in llm.named_modules()):
        missing = list(cfg.targets)
    if missing:
        linear = sorted({n.rsplit(".", 1)[-1] for n, m in llm.named_modules() if isinstance(m, torch.nn.Linear)})
        raise ValueError(f"LoRA targets {missing} are not modules of this LLM; linear layers present: {linear}")
    if quantized:
        llm = prepare_model_for_kbit_training(llm, use_gradient_checkpointing=gradient_checkpointing)
    peft_cfg = LoraConfig(
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=target_regex if target_regex is not None else list(cfg.targets),
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(llm, peft_cfg)


def is_peft(llm: Any) -> bool:
    from peft import PeftModel

    return isinstance(llm, PeftModel)


def lora_state_dict(llm: Any) -> dict[str, torch.Tensor]:
    if not is_peft(llm):
        return {}
    from peft import get_peft_model_state_dict

    # save_embedding_layers=False: placeholder rows added by resizing are zeroed and never trained,
    # so the (possibly tied, 49k-row) embedding matrix is not part of a checkpoint
    state = get_peft_model_state_dict(llm, save_embedding_layers=False)
    return {k: v.detach().cpu().contiguous() for k, v in state.items()}


def load_lora_state_dict(llm: Any, state: dict[str, torch.Tensor]) -> None:
    if not state:
        if is_peft(llm):
            raise ValueError("checkpoint has no LoRA weights but the model has LoRA enabled")
        return
    if not is_peft(llm):
        raise ValueError("checkpoint has LoRA weights but model.lora.enabled is false")
    from peft import set_peft_model_state_dict

    expected = set(lora_state_dict(llm))
    got = set(state)
    if expected != got:
        miss, extra = sorted(expected - got), sorted(got - expected)
        raise ValueError(
            f"LoRA weights do not match the model: missing {miss[:3]} ({len(miss)}), unexpected {extra[:3]} ({len(extra)})"
        )
    res = set_peft_model_state_dict(llm, state)
    unexpected = getattr(res, "unexpected_keys", [])
    if unexpected:
        raise ValueError(f"LoRA weights not used by the model: {unexpected[:5]}")


def merge_lora(llm: Any) -> Any:
    return llm.merge_and_unload() if is_peft(llm) else llm
