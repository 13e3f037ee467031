"""Native multimodal model families: what emollm needs to know about each, in one place.

A family names its transformers class, its media placeholder tokens and the text its chat template
puts around them, where its towers and projector live (LoRA stays off the towers), how emollm's
media features (``emollm.encoders.native``) become the model's forward arguments, and how to build a
tiny random one offline (the real config classes at tiny size; a locally trained tokenizer with the
family's special tokens).

    fam = FAMILIES.get("qwen2-audio")
    model, tok = fam.tiny(NativeTinyConfig())
    kwargs = fam.model_inputs({"audio": Tensor[n, frames, 128]}, {"audio": "audio"}, {"audio": enc})

Families: ``qwen2-audio`` (Qwen2AudioForConditionalGeneration: audio + text), ``qwen2.5-omni``
(Qwen2_5OmniThinkerForConditionalGeneration, the thinker only: audio + video + text; the talker that
speaks is never loaded), ``qwen2-vl`` (Qwen2VLForConditionalGeneration: video + text).

Each family's ``full_size`` maps the full-size presets to the published configs of the released
checkpoints (Qwen2.5-Omni-7B/3B's thinker, Qwen2-Audio-7B-Instruct, Qwen2-VL-7B-Instruct), so a test
builds them on the ``meta`` device and checks parameter counts and LoRA targets without any weights:

    with torch.device("meta"):
        model = fam.hf_cls()(fam.full_size["qwen2.5-omni-7b"]())     # 8.93B parameters, no memory
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from emollm.config import NativeTinyConfig
from emollm.registry import Registry


@dataclass(frozen=True)
class MediaSlot:
    """How one media kind reaches the model: its placeholder token and the text around it."""

    token: str
    """The placeholder the model's forward counts and fills (``<|AUDIO|>``, ``<|video_pad|>``)."""
    before: str = ""
    """Text the family's chat template puts before the placeholder (``<|audio_bos|>``)."""
    after: str = ""
    config_key: str = ""
    """The model config attribute holding the placeholder's id (set on tiny models)."""


@dataclass
class NativeFamily:
    name: str
    hf_class: str
    """transformers class name (``from transformers import <hf_class>``)."""
    config_class: str
    slots: dict[str, MediaSlot]
    """Media kind (``audio``, ``video``) -> slot."""
    towers: tuple[str, ...]
    """Module name fragments of the frozen towers (LoRA never targets modules under them)."""
    projectors: dict[str, str]
    """Media kind -> dotted path of the model's own projector/merger for it (trainable on request)."""
    mrope: bool
    """True when the language model takes multimodal rotary positions it computes itself from the
    placeholders (Qwen2-VL, Qwen2.5-Omni): emollm passes no ``position_ids`` then."""
    tiny_config: Callable[[NativeTinyConfig, dict[str, int]], Any]
    """(sizes, special token ids) -> the family's config object at tiny size."""
    token_types: bool = False
    """The forward takes ``mm_token_type_ids`` (0 text, 1 image, 2 video) to place M-RoPE (Qwen2-VL)."""
    extra_tokens: tuple[str, ...] = ()
    """Special tokens a tiny tokenizer adds besides the slots' (image placeholders...)."""
    notes: str = ""
    full_size: dict[str, Callable[[], Any]] = field(default_factory=dict)
    """Published full-size configs by preset name, for meta-device parameter counts (no weights)."""

    def hf_cls(self) -> Any:
        import transformers

        return getattr(transformers, self.hf_class)

    def special_tokens(self) -> list[str]:
        out: list[str] = []
        for s in self.slots.values():
            out += [t for t in (s.before, s.token, s.after) if t and t not in out]
        return out + [t for t in self.extra_tokens if t not in out]

    def tiny(self, t: NativeTinyConfig) -> tuple[Any, Any]:
        """A random tiny model of this family and its tokenizer (built in well under a second)."""
        from emollm.model.tiny import tiny_tokenizer

        tok = tiny_tokenizer("bpe-chatml", t.vocab_size)
        tok.add_special_tokens({"additional_special_tokens": self.special_tokens()})
        ids = {s: int(tok.convert_tokens_to_ids(s)) for s in self.special_tokens()}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(t.seed)
            cfg = self.tiny_config(t, {**ids, "__vocab__": len(tok)})
            model = self.hf_cls()(cfg)
        return model, tok

    def model_inputs(
        self, features: dict[str, torch.Tensor], kinds: dict[str, str], encoders: dict[str, Any]
    ) -> dict[str, torch.Tensor]:
        """emollm features (modality -> ``[n, T, D]``, batch order) -> the model's forward arguments."""
        out: dict[str, torch.Tensor] = {}
        for m, f in features.items():
            if f.shape[0] == 0:
                continue
            kind = kinds[m]
            if kind == "audio":
                if "input_features" in out:
                    raise ValueError(f"{self.name}: one audio modality per model, got a second ({m!r})")
                out.update(_audio_inputs(f, pad_to_window=self.name == "qwen2-audio"))
            else:
                if "pixel_values_videos" in out:
                    raise ValueError(f"{self.name}: one video modality per model, got a second ({m!r})")
                t, h, w = encoders[m].grid
                out["pixel_values_videos"] = f.reshape(-1, f.shape[-1])
                out["video_grid_thw"] = torch.tensor([[t, h, w]] * f.shape[0], dtype=torch.long, device=f.device)
                if self.name == "qwen2.5-omni":
                    out["video_second_per_grid"] = torch.ones(f.shape[0], device=f.device)
        return out


def _audio_inputs(f: torch.Tensor, pad_to_window: bool) -> dict[str, torch.Tensor]:
    """``[n, frames, mels]`` -> ``input_features [n, mels, W]`` + ``feature_attention_mask [n, W]``.

    Qwen2-Audio's tower reads exactly the 30 s window (W = 3000): the frames beyond the clip's are
    filled with the item's lowest value (Whisper's clamp floor, what silence maps to) and masked out,
    so the language model sees audio tokens for the clip's frames only. Qwen2.5-Omni's tower reads
    any length (W = frames)."""
    from emollm.encoders.native import WINDOW_FRAMES

    n, frames, mels = f.shape
    x = f.transpose(1, 2)  # [n, mels, frames]
    mask = torch.ones(n, frames, dtype=torch.long, device=f.device)
    if pad_to_window and frames < WINDOW_FRAMES:
        floor = x.amin(dim=(1, 2), keepdim=True).expand(n, mels, WINDOW_FRAMES - frames)
        x = torch.cat([x, floor], dim=2)
        mask = torch.cat([mask, torch.zeros(n, WINDOW_FRAMES - frames, dtype=torch.long, device=f.device)], dim=1)
    return {"input_features": x.contiguous(), "feature_attention_mask": mask}


def _text(t: NativeTinyConfig, vocab: int, **extra: Any) -> dict[str, Any]:
    return {
        "model_type": "qwen2",
        "vocab_size": vocab,
        "hidden_size": t.hidden_size,
        "intermediate_size": t.intermediate_size,
        "num_hidden_layers": t.num_hidden_layers,
        "num_attention_heads": t.num_attention_heads,
        "num_key_value_heads": t.num_key_value_heads,
        "max_position_embeddings": 4096,
        "tie_word_embeddings": False,
        "bos_token_id": None,
        "eos_token_id": None,
        **extra,
    }


def _mrope(t: NativeTinyConfig) -> list[int]:
    """An M-RoPE split (time, height, width) of the head's rotary half-dimension."""
    half = t.hidden_size // t.num_attention_heads // 2
    a = half // 4
    b = (half - a) // 2
    return [a, b, half - a - b]


def _audio_tower(t: NativeTinyConfig, **extra: Any) -> dict[str, Any]:
    return {
        "d_model": t.tower_width,
        "encoder_layers": t.tower_layers,
        "encoder_attention_heads": 2,
        "encoder_ffn_dim": 2 * t.tower_width,
        "num_mel_bins": 128,
        "max_source_positions": 1500,
        **extra,
    }


def _qwen2_audio_tiny(t: NativeTinyConfig, ids: dict[str, int]) -> Any:
    from transformers import Qwen2AudioConfig

    return Qwen2AudioConfig(
        audio_config=_audio_tower(t),
        text_config=_text(t, ids["__vocab__"]),
        audio_token_index=ids["<|AUDIO|>"],
    )


def _omni_tiny(t: NativeTinyConfig, ids: dict[str, int]) -> Any:
    from transformers import Qwen2_5OmniThinkerConfig

    return Qwen2_5OmniThinkerConfig(
        audio_config=_audio_tower(t, n_window=100, output_dim=t.hidden_size),
        vision_config={
            "depth": t.tower_layers,
            "hidden_size": t.tower_width,
            "intermediate_size": 2 * t.tower_width,
            "num_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "out_hidden_size": t.hidden_size,
            "fullatt_block_indexes": [t.tower_layers - 1],
        },
        text_config=_text(
            t, ids["__vocab__"], rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": _mrope(t)}
        ),
        audio_token_index=ids["<|AUDIO|>"],
        video_token_index=ids["<|VIDEO|>"],
        image_token_index=ids["<|IMAGE|>"],
        audio_start_token_id=ids["<|audio_bos|>"],
        audio_end_token_id=ids["<|audio_eos|>"],
        vision_start_token_id=ids["<|vision_bos|>"],
        vision_end_token_id=ids["<|vision_eos|>"],
    )


def _qwen2_vl_tiny(t: NativeTinyConfig, ids: dict[str, int]) -> Any:
    from transformers import Qwen2VLConfig

    return Qwen2VLConfig(
        vision_config={
            "depth": t.tower_layers,
            "embed_dim": t.tower_width,
            "hidden_size": t.hidden_size,
            "mlp_ratio": 2,
            "num_heads": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        text_config=_text(
            t, ids["__vocab__"], rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": _mrope(t)}
        ),
        video_token_id=ids["<|video_pad|>"],
        image_token_id=ids["<|image_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
    )


# -- published full-size configs (config.json of each released checkpoint, hard-coded: no download) -------
#
# Sources: the ``config.json`` of Qwen/Qwen2-Audio-7B-Instruct, Qwen/Qwen2-VL-7B-Instruct,
# Qwen/Qwen2.5-Omni-7B and Qwen/Qwen2.5-Omni-3B (its ``thinker_config``) on the Hugging Face Hub. The
# transformers config defaults are NOT these models: ``Qwen2AudioConfig()`` has a 22016-wide MLP and
# vocabulary 151936 (12.7B), ``Qwen2VLConfig()`` is the 72B text model, and
# ``Qwen2_5OmniThinkerConfig()`` has a 3584-wide vision tower (11.3B, not the 8.93B thinker). Only the sizes
# that change the parameter count or the media layout are listed; the rest keep the class defaults.


def _qwen2_audio_7b() -> Any:
    from transformers import Qwen2AudioConfig

    return Qwen2AudioConfig(
        audio_config={
            "d_model": 1280,
            "encoder_layers": 32,
            "encoder_attention_heads": 20,
            "encoder_ffn_dim": 5120,
            "num_mel_bins": 128,
            "max_source_positions": 1500,
        },
        text_config={
            "model_type": "qwen2",
            "vocab_size": 156032,
            "hidden_size": 4096,
            "intermediate_size": 11008,
            "num_hidden_layers": 32,
            "num_attention_heads": 32,
            "num_key_value_heads": 32,
            "max_position_embeddings": 8192,
            "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
            "tie_word_embeddings": False,
        },
        audio_token_index=151646,
    )


def _qwen2_vl_7b() -> Any:
    from transformers import Qwen2VLConfig

    return Qwen2VLConfig(
        vision_config={
            "depth": 32,
            "embed_dim": 1280,
            "hidden_size": 3584,
            "mlp_ratio": 4,
            "num_heads": 16,
            "in_channels": 3,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "hidden_act": "quick_gelu",
        },
        text_config={
            "vocab_size": 152064,
            "hidden_size": 3584,
            "intermediate_size": 18944,
            "num_hidden_layers": 28,
            "num_attention_heads": 28,
            "num_key_value_heads": 4,
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
        },
        tie_word_embeddings=False,
        image_token_id=151655,
        video_token_id=151656,
        vision_start_token_id=151652,
        vision_end_token_id=151653,
    )


def _omni_thinker(hidden: int, intermediate: int, layers: int, heads: int, kv_heads: int, vocab: int) -> Any:
    """The ``thinker_config`` of a released Qwen2.5-Omni: its towers differ only in output width."""
    from transformers import Qwen2_5OmniThinkerConfig

    return Qwen2_5OmniThinkerConfig(
        audio_config={
            "d_model": 1280,
            "encoder_layers": 32,
            "encoder_attention_heads": 20,
            "encoder_ffn_dim": 5120,
            "num_mel_bins": 128,
            "max_source_positions": 1500,
            "n_window": 100,
            "output_dim": hidden,
        },
        vision_config={
            "depth": 32,
            "hidden_size": 1280,
            "intermediate_size": 3420,
            "num_heads": 16,
            "in_channels": 3,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [7, 15, 23, 31],
            "out_hidden_size": hidden,
        },
        text_config={
            "vocab_size": vocab,
            "hidden_size": hidden,
            "intermediate_size": intermediate,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": kv_heads,
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]},
            "tie_word_embeddings": False,
        },
        tie_word_embeddings=False,
    )


def _omni_7b() -> Any:
    return _omni_thinker(3584, 18944, 28, 28, 4, 152064)


def _omni_3b() -> Any:
    return _omni_thinker(2048, 11008, 36, 16, 2, 151936)


FAMILIES: Registry[NativeFamily] = Registry("native family")

FAMILIES.add(
    "qwen2-audio",
    NativeFamily(
        name="qwen2-audio",
        hf_class="Qwen2AudioForConditionalGeneration",
        config_class="Qwen2AudioConfig",
        slots={"audio": MediaSlot("<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>", "audio_token_index")},
        towers=("audio_tower",),
        projectors={"audio": "multi_modal_projector"},
        mrope=False,
        tiny_config=_qwen2_audio_tiny,
        notes="audio + text; the tower reads a 30 s log-mel window",
        full_size={"qwen2-audio-7b-instruct": _qwen2_audio_7b},
    ),
)
FAMILIES.add(
    "qwen2.5-omni",
    NativeFamily(
        name="qwen2.5-omni",
        hf_class="Qwen2_5OmniThinkerForConditionalGeneration",
        config_class="Qwen2_5OmniThinkerConfig",
        slots={
            "audio": MediaSlot("<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>", "audio_token_index"),
            "video": MediaSlot("<|VIDEO|>", "<|vision_bos|>", "<|vision_eos|>", "video_token_index"),
        },
        towers=("audio_tower", "visual"),
        projectors={"audio": "audio_tower.proj", "video": "visual.merger"},
        mrope=True,
        tiny_config=_omni_tiny,
        extra_tokens=("<|IMAGE|>",),
        notes="audio + video + text (the thinker; no speech output)",
        full_size={"qwen2.5-omni-7b": _omni_7b, "qwen2.5-omni-3b": _omni_3b},
    ),
)
FAMILIES.add(
    "qwen2-vl",
    NativeFamily(
        name="qwen2-vl",
        hf_class="Qwen2VLForConditionalGeneration",
        config_class="Qwen2VLConfig",
        slots={"video": MediaSlot("<|video_pad|>", "<|vision_start|>", "<|vision_end|>", "video_token_id")},
        towers=("visual",),
        projectors={"video": "visual.merger"},
        mrope=True,
        tiny_config=_qwen2_vl_tiny,
        token_types=True,
        extra_tokens=("<|image_pad|>",),
        notes="video + text (frames through emollm's patcher: no torchvision)",
        full_size={"qwen2-vl-7b-instruct": _qwen2_vl_7b},
    ),
)
