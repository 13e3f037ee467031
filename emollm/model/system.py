"""``EmoSystem``: everything a job needs, built one way from a config, a preset or a checkpoint.

    sys = build_system(model_config("tiny"))          # fresh: random projectors, new LoRA
    sys = load_system("runs/mini/final")              # a checkpoint folder (trainable weights + config)
    sys = load_system("mini")                         # a preset name
    sys.model, sys.processor, sys.encoders, sys.labels

Training, evaluation, prediction, chat and the server all start here, so they share the tokenizer,
the placeholder layout, the processor and the encoders.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from emollm.config import ModelConfig
from emollm.data.contract import PromptContract, default_contract
from emollm.data.processor import Processor
from emollm.encoders import Encoder, build_encoder
from emollm.labels import LabelSpace, label_space
from emollm.log import get_logger
from emollm.model.emollm import EmoLLM
from emollm.model.llm import add_placeholder_tokens, load_llm
from emollm.model.lora import apply_lora
from emollm.model.projectors import build_projector

log = get_logger(__name__)


@dataclass
class EmoSystem:
    cfg: ModelConfig
    model: EmoLLM
    """EmoLLM, or NativeLM for a native family: the same forward/generate/score_labels interface."""
    processor: Processor
    encoders: dict[str, Encoder]
    labels: LabelSpace
    source: str = "config"
    """Preset name or checkpoint folder the system came from (reports name it)."""
    trained: bool = False
    """True when the projectors/LoRA were loaded from a checkpoint; a preset's are random (jobs say so)."""
    contract: PromptContract | None = None
    """What the model is asked (``prompt_contract.yaml`` of a checkpoint; the default for a preset)."""

    def __post_init__(self) -> None:
        if self.contract is None:
            self.contract = default_contract(self.labels, self.cfg.system_prompt)

    @property
    def tokenizer(self) -> Any:
        return self.processor.tok

    @property
    def modalities(self) -> list[str]:
        return list(self.cfg.modalities)


def build_system(
    cfg: ModelConfig,
    device: torch.device | str | None = None,
    gradient_checkpointing: bool = False,
    source: str = "config",
    projector_seed: int = 0,
) -> EmoSystem:
    """Build encoders, LLM (+placeholders, +LoRA), projectors and the processor from ``cfg``; a native
    ``llm.family`` builds that model with its own media inputs instead (``emollm.model.native``)."""
    if cfg.llm.native:
        from emollm.model.native.build import build_native

        lm, proc, encs = build_native(cfg, device, gradient_checkpointing)
        return EmoSystem(cfg, lm, proc, encs, label_space(cfg.label_space), source)  # type: ignore[arg-type]
    encoders = {m: build_encoder(mc.encoder) for m, mc in cfg.modalities.items()}
    llm, tok = load_llm(cfg.llm, device)
    placeholder_ids = add_placeholder_tokens(llm, tok, list(cfg.modalities))
    if gradient_checkpointing:
        llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        llm.config.use_cache = False
    llm = apply_lora(
        llm, cfg.lora, quantized=cfg.llm.quantization != "none", gradient_checkpointing=gradient_checkpointing
    )
    hidden = llm.get_input_embeddings().weight.shape[1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(projector_seed)
        projectors = {
            m: build_projector(mc.projector.name, encoders[m].dim, hidden, mc.projector.standardize)
            for m, mc in cfg.modalities.items()
        }
    processor = Processor(tok, {m: e.tokens_per_item for m, e in encoders.items()}, cfg.system_prompt, cfg.max_length)
    model = EmoLLM(llm, projectors, placeholder_ids, processor.stop_ids, processor.pad_id)
    if device is not None:
        model.projectors.to(device)
    return EmoSystem(cfg, model, processor, encoders, label_space(cfg.label_space), source)
