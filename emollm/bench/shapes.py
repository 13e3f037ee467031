"""``emotion-llama-shapes``: the Emotion-LLaMA system's shapes with random weights, built without weight files.

For measuring speed and memory at the published sizes on a machine that has no LLaMA-2 or EVA
weights. Everything that decides cost matches the ``emotion-llama`` preset:

- LLM: a LLaMA-2-7B config (hidden 4096, 32 layers, 32 heads, intermediate 11008, vocab 32000;
  6,738,415,616 parameters) with random weights, built directly on the target device in bf16
  (``torch.device`` context + ``from_config``: no fp32 copy on the host, no files);
- LoRA r=64, alpha 16, dropout 0.05 on q_proj/v_proj (33,554,432 adapter parameters);
- one linear projector per modality with the published widths and token counts:
  frame 256×5632, face 1×1024, face_clip 1×1024, audio 1×1024, frame_cls 1×1408 (260 media tokens;
  41,439,232 projector parameters);
- encoders are ``precomputed`` stand-ins that only carry ``dim``/``tokens_per_item``: the benchmark
  feeds random precomputed tensors of those widths (``random_feature_pool``);
- tokenizer: the tiny SentencePiece ``sp-llama2`` tokenizer with the LLaMA-2 ``[INST]`` template;
  its ids are a subset of the 32000-row vocabulary (the model keeps vocab 32000).

    system = build_shapes_system("cuda")                              # the full 7B shape, bf16
    system = build_shapes_system("cpu", ShapeConfig(num_hidden_layers=2, hidden_size=256,
                                                    intermediate_size=688, num_attention_heads=4))
    system = build_shapes_system("meta")                              # shapes only (parameter counts)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from pydantic import Field

from emollm.config import EncoderConfig, ModelConfig, Strict
from emollm.model.presets import model_config, preset_dict

if TYPE_CHECKING:
    from emollm.model.system import EmoSystem

MEDIA_LAYOUT: dict[str, tuple[int, int]] = {
    "frame": (256, 5632),
    "face": (1, 1024),
    "face_clip": (1, 1024),
    "audio": (1, 1024),
    "frame_cls": (1, 1408),
}
"""modality -> (tokens per item, feature width), in the published token order."""

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


class ShapeConfig(Strict):
    """The LLM's sizes (LLaMA-2-7B by default); shrink them for tests on a CPU."""

    hidden_size: int = Field(4096, gt=0)
    num_hidden_layers: int = Field(32, gt=0)
    num_attention_heads: int = Field(32, gt=0)
    num_key_value_heads: int | None = None
    """None: equal to num_attention_heads (LLaMA-2-7B has no grouped-query attention)."""
    intermediate_size: int = Field(11008, gt=0)
    vocab_size: int = Field(32000, gt=0)
    max_position_embeddings: int = Field(4096, gt=0)
    lora_r: int = Field(64, gt=0)
    lora_alpha: float = Field(16, gt=0)
    lora_dropout: float = Field(0.05, ge=0, lt=1)
    dtype: str = Field("bfloat16", pattern="^(bfloat16|float16|float32)$")
    """Dtype of the frozen LLM weights (trainable LoRA/projector weights stay float32)."""
    max_length: int = Field(1024, gt=8)
    seed: int = 0


def shapes_model_config(shape: ShapeConfig) -> ModelConfig:
    """The ModelConfig recorded on the system: the emotion-llama preset with precomputed stand-in encoders."""
    data: dict[str, Any] = preset_dict("emotion-llama")
    data |= {
        "llm": {
            "source": "tiny",
            "dtype": shape.dtype,
            "tiny": {
                "hidden_size": shape.hidden_size,
                "intermediate_size": shape.intermediate_size,
                "num_hidden_layers": shape.num_hidden_layers,
                "num_attention_heads": shape.num_attention_heads,
                "num_key_value_heads": shape.num_key_value_heads or shape.num_attention_heads,
                "tokenizer": "sp-llama2",
                "vocab_size": 512,
                "seed": shape.seed,
            },
        },
        "lora": {**data["lora"], "r": shape.lora_r, "alpha": shape.lora_alpha, "dropout": shape.lora_dropout},
        "modalities": {
            m: {"encoder": {"name": "precomputed", "options": {"dir": "<random>", "dim": d, "tokens": t}}}
            for m, (t, d) in MEDIA_LAYOUT.items()
        },
        "max_length": shape.max_length,
    }
    return model_config(None, data)


def _llama_config(shape: ShapeConfig, vocab: int) -> Any:
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab,
        hidden_size=shape.hidden_size,
        intermediate_size=shape.intermediate_size,
        num_hidden_layers=shape.num_hidden_layers,
        num_attention_heads=shape.num_attention_heads,
        num_key_value_heads=shape.num_key_value_heads or shape.num_attention_heads,
        max_position_embeddings=shape.max_position_embeddings,
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        initializer_range=0.02,
        bos_token_id=1,
        eos_token_id=2,
    )


def build_shapes_system(device: torch.device | str = "cuda", shape: ShapeConfig | None = None) -> EmoSystem:
    """An ``EmoSystem`` with the ``emotion-llama`` shapes and random weights, materialised on ``device``.

    ``device="meta"`` builds shapes only (no memory; parameter counting)."""
    from transformers import AutoModelForCausalLM

    from emollm.data.processor import Processor
    from emollm.encoders import build_encoder
    from emollm.labels import label_space
    from emollm.model.emollm import EmoLLM
    from emollm.model.llm import add_placeholder_tokens
    from emollm.model.lora import apply_lora
    from emollm.model.projectors import build_projector
    from emollm.model.system import EmoSystem
    from emollm.model.tiny import tiny_tokenizer

    shape = shape or ShapeConfig()
    dev = torch.device(device)
    cfg = shapes_model_config(shape)
    tok = tiny_tokenizer("sp-llama2", 512)
    mods = list(MEDIA_LAYOUT)
    vocab = max(shape.vocab_size, len(tok) + len(mods))
    encoders = {
        m: build_encoder(EncoderConfig(name="precomputed", options={"dir": "<random>", "dim": d, "tokens": t}))
        for m, (t, d) in MEDIA_LAYOUT.items()
    }
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(shape.seed)
        with dev:
            llm = AutoModelForCausalLM.from_config(_llama_config(shape, vocab), dtype=DTYPES[shape.dtype])
        llm.requires_grad_(False)
        llm.eval()
        placeholder_ids = add_placeholder_tokens(llm, tok, mods)
        if dev.type != "meta":
            with torch.no_grad():  # placeholder rows as load_llm leaves them: zero (never read as text)
                for pid in placeholder_ids.values():
                    llm.get_input_embeddings().weight[pid].zero_()
                    llm.get_output_embeddings().weight[pid].zero_()
        llm = apply_lora(llm, cfg.lora)
        hidden = shape.hidden_size
        with dev:
            projectors = {m: build_projector("linear", encoders[m].dim, hidden) for m in mods}
    processor = Processor(tok, {m: e.tokens_per_item for m, e in encoders.items()}, None, shape.max_length)
    model = EmoLLM(llm, projectors, placeholder_ids, processor.stop_ids, processor.pad_id)
    return EmoSystem(cfg, model, processor, encoders, label_space(cfg.label_space), "emotion-llama-shapes")


def random_feature_pool(system: EmoSystem, n: int, seed: int = 0) -> list[dict[str, torch.Tensor]]:
    """``n`` random feature sets ``{modality: [tokens, dim]}`` (float32, CPU) of ``system``'s widths.

    Benchmarks cycle through a small pool so that 7B-shape runs do not hold gigabytes of inputs."""
    g = torch.Generator().manual_seed(seed)
    return [
        {m: torch.randn(e.tokens_per_item, e.dim, generator=g) for m, e in system.encoders.items()} for _ in range(n)
    ]
