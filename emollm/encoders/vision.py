"""Frozen vision encoders built on transformers: ViT-MAE (face), VideoMAE (face clip), EVA ViT-g (frame).

- ``vit_mae``: ``ViTMAEModel`` with ``mask_ratio=0`` (MAE masks 75% of patches even in eval
  otherwise). Each face crop -> one vector (mean of patch tokens or CLS), averaged over frames
  ("UTT" in Emotion-LLaMA) -> ``[B, 1, D]``; ``pooling: none`` keeps one token per frame.
- ``videomae``: ``VideoMAEModel`` over ``num_frames`` face crops -> mean of tokens -> ``[B, 1, D]``.
- ``eva_vit_g``: ``Blip2VisionModel`` (EVA ViT-g/14, 39 blocks, post-LayerNorm = BLIP-2's
  ``ln_vision``) over one frame at 448 px: ``view: patches4`` groups 4 consecutive patches in raster
  order (``[B,1024,1408] -> [B,256,5632]``, MiniGPT-v2/Emotion-LLaMA), ``view: cls`` gives the CLS
  token ``[B,1,1408]``, ``view: patches`` all patch tokens. Two modalities (frame + frame_cls) share
  one loaded backbone and one forward pass.

Weights: a local HF folder (``path``), or for ``eva_vit_g`` also a full BLIP-2 folder whose
``vision_model.*`` weights are taken; ``tiny: true`` builds a small random model. Never downloads.
Images are resized with PIL (bicubic) and normalised with the folder's preprocessor_config.json
mean/std when present.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from emollm.config import EncoderConfig, EvaViTgOptions, VideoMAEOptions, ViTMAEOptions
from emollm.encoders.base import Encoder, MediaRequest, register_encoder, weights_identity

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_MODELS: dict[tuple[str, str], Any] = {}


def _shared(key: tuple[str, str], factory: Callable[[], Any]) -> Any:
    """Load each backbone once per process, whichever modalities use it."""
    if key not in _MODELS:
        _MODELS[key] = factory()
    return _MODELS[key]


def _norm_stats(path: str | None, mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[tuple, tuple]:
    if path:
        pc = Path(path) / "preprocessor_config.json"
        if pc.is_file():
            d = json.loads(pc.read_text())
            return tuple(d.get("image_mean", mean)), tuple(d.get("image_std", std))
    return mean, std


def preprocess(frames: np.ndarray, size: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``uint8[T, H, W, 3]`` -> ``float32[T, 3, size, size]`` (bicubic resize, no crop, normalised)."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected RGB frames [T, H, W, 3], got shape {frames.shape}")
    out = np.stack(
        [np.asarray(Image.fromarray(f).resize((size, size), Image.BICUBIC), dtype=np.float32) / 255.0 for f in frames]
    )
    out = (out - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def _need_folder(name: str, path: str) -> Path:
    p = Path(path)
    if not (p / "config.json").is_file():
        raise FileNotFoundError(f"{name}: no config.json in weight folder {p}")
    return p


# ---------------------------------------------------------------------------------------------- ViT-MAE


class ViTMAEEncoder(Encoder):
    def __init__(self, cfg: EncoderConfig) -> None:
        from transformers import ViTMAEConfig, ViTMAEModel

        opt = ViTMAEOptions.model_validate(cfg.options)
        if cfg.path:
            p = _need_folder("vit_mae", cfg.path)
            model = _shared(
                ("vit_mae", str(p)), lambda: ViTMAEModel.from_pretrained(p, mask_ratio=0.0, local_files_only=True)
            )
            ident = weights_identity(str(p))
        elif cfg.tiny:
            torch.manual_seed(0)
            model = _shared(
                ("vit_mae", "tiny"),
                lambda: ViTMAEModel(
                    ViTMAEConfig(
                        image_size=32,
                        patch_size=8,
                        hidden_size=32,
                        num_hidden_layers=2,
                        num_attention_heads=2,
                        intermediate_size=64,
                        mask_ratio=0.0,
                    )
                ),
            )
            ident = weights_identity(None, tiny_seed=0)
        else:
            raise FileNotFoundError("vit_mae: set encoder.path to a local ViT-MAE folder (or tiny: true for tests)")
        if model.config.mask_ratio != 0.0:
            model.config.mask_ratio = 0.0
            model.embeddings.config.mask_ratio = 0.0
        self.opt = opt
        self.size = model.config.image_size
        self.mean, self.std = _norm_stats(cfg.path, IMAGENET_MEAN, IMAGENET_STD)
        tokens = 1 if opt.pooling == "mean" else opt.n_frames
        super().__init__(
            "vit_mae",
            MediaRequest("faces", n_frames=opt.n_frames, selection=opt.selection),
            model.config.hidden_size,
            tokens,
            f"vit_mae|{ident}|{opt.model_dump_json()}|{self.size}|{self.mean}|{self.std}",
            model,
        )

    def forward_batch(self, batch: Sequence[np.ndarray]) -> torch.Tensor:
        outs = []
        for frames in batch:
            x = preprocess(frames, self.size, self.mean, self.std).to(self.device)
            # MAE shuffles patches by argsort(torch.rand) even with mask_ratio 0: ascending noise keeps every
            # patch in raster order, so features are bit-reproducible and the global RNG is left untouched
            n_patch = (self.size // self.module.config.patch_size) ** 2  # type: ignore[union-attr]
            noise = torch.arange(n_patch, dtype=torch.float32, device=x.device).expand(x.shape[0], n_patch)
            h = self.module(pixel_values=x, noise=noise).last_hidden_state  # type: ignore[misc]  # [T, 1+P, D]
            v = h[:, 0] if self.opt.token == "cls" else h[:, 1:].mean(1)  # [T, D]
            if self.opt.pooling == "mean":
                v = v.mean(0, keepdim=True)
            elif v.shape[0] != self.opt.n_frames:
                idx = torch.linspace(0, v.shape[0] - 1, self.opt.n_frames).round().long()
                v = v[idx]
            outs.append(v)
        return torch.stack(outs).cpu()


@register_encoder("vit_mae", ViTMAEOptions, input_kind="faces", description="ViT-MAE face encoder (mask_ratio 0)")
def build_vit_mae(cfg: EncoderConfig) -> Encoder:
    return ViTMAEEncoder(cfg)


# ---------------------------------------------------------------------------------------------- VideoMAE


class VideoMAEEncoder(Encoder):
    def __init__(self, cfg: EncoderConfig) -> None:
        from transformers import VideoMAEConfig, VideoMAEModel

        opt = VideoMAEOptions.model_validate(cfg.options)
        if cfg.path:
            p = _need_folder("videomae", cfg.path)
            model = _shared(("videomae", str(p)), lambda: VideoMAEModel.from_pretrained(p, local_files_only=True))
            ident = weights_identity(str(p))
        elif cfg.tiny:
            torch.manual_seed(0)
            model = _shared(
                ("videomae", "tiny"),
                lambda: VideoMAEModel(
                    VideoMAEConfig(
                        image_size=32,
                        patch_size=8,
                        num_frames=4,
                        tubelet_size=2,
                        hidden_size=32,
                        num_hidden_layers=2,
                        num_attention_heads=2,
                        intermediate_size=64,
                    )
                ),
            )
            ident = weights_identity(None, tiny_seed=0)
        else:
            raise FileNotFoundError("videomae: set encoder.path to a local VideoMAE folder (or tiny: true for tests)")
        self.opt = opt
        self.size = model.config.image_size
        self.n = model.config.num_frames
        self.mean, self.std = _norm_stats(cfg.path, IMAGENET_MEAN, IMAGENET_STD)
        super().__init__(
            "videomae",
            MediaRequest("faces", n_frames=self.n, selection=opt.selection),
            model.config.hidden_size,
            1,
            f"videomae|{ident}|{opt.model_dump_json()}|{self.size}|{self.n}|{self.mean}|{self.std}",
            model,
        )

    def forward_batch(self, batch: Sequence[np.ndarray]) -> torch.Tensor:
        clips = []
        for frames in batch:
            frames = np.asarray(frames)
            if frames.shape[0] != self.n:
                idx = np.linspace(0, frames.shape[0] - 1, self.n).round().astype(int)
                frames = frames[idx]
            clips.append(preprocess(frames, self.size, self.mean, self.std))
        x = torch.stack(clips).to(self.device)  # [B, T, 3, H, W]
        h = self.module(pixel_values=x).last_hidden_state  # type: ignore[misc]
        return h.mean(1, keepdim=True).cpu()


@register_encoder("videomae", VideoMAEOptions, input_kind="faces", description="VideoMAE face-clip encoder")
def build_videomae(cfg: EncoderConfig) -> Encoder:
    return VideoMAEEncoder(cfg)


# ---------------------------------------------------------------------------------------------- EVA ViT-g


def _load_blip2_vision(p: Path) -> Any:
    from transformers import Blip2Config, Blip2VisionConfig, Blip2VisionModel

    cfg = json.loads((p / "config.json").read_text())
    if cfg.get("model_type") == "blip-2":  # a full BLIP-2 folder: keep only the vision tower
        from safetensors.torch import load_file

        vcfg = Blip2Config.from_pretrained(p, local_files_only=True).vision_config
        model = Blip2VisionModel(vcfg)
        state: dict[str, torch.Tensor] = {}
        for f in sorted(p.glob("*.safetensors")):
            state.update(
                {k.removeprefix("vision_model."): v for k, v in load_file(f).items() if k.startswith("vision_model.")}
            )
        if not state:
            raise FileNotFoundError(f"eva_vit_g: no vision_model.* tensors in safetensors files under {p}")
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing:
            raise ValueError(f"eva_vit_g: {p} lacks vision weights {missing[:5]} ({len(missing)} missing)")
        return model
    return Blip2VisionModel.from_pretrained(p, local_files_only=True, config=Blip2VisionConfig.from_pretrained(p))


class EvaViTgEncoder(Encoder):
    _memo: dict[int, tuple[str, torch.Tensor]] = {}

    def __init__(self, cfg: EncoderConfig) -> None:
        from transformers import Blip2VisionConfig, Blip2VisionModel

        opt = EvaViTgOptions.model_validate(cfg.options)
        if cfg.path:
            p = _need_folder("eva_vit_g", cfg.path)
            model = _shared(("eva_vit_g", str(p)), lambda: _load_blip2_vision(p))
            ident = weights_identity(str(p))
        elif cfg.tiny:
            torch.manual_seed(0)
            model = _shared(
                ("eva_vit_g", "tiny"),
                lambda: Blip2VisionModel(
                    Blip2VisionConfig(
                        image_size=56,
                        patch_size=14,
                        hidden_size=32,
                        num_hidden_layers=2,
                        num_attention_heads=2,
                        intermediate_size=64,
                    )
                ),
            )
            ident = weights_identity(None, tiny_seed=0)
        else:
            raise FileNotFoundError("eva_vit_g: set encoder.path to a local BLIP-2 / EVA ViT-g folder (or tiny: true)")
        self.opt = opt
        self.size = model.config.image_size
        self.mean, self.std = _norm_stats(cfg.path, CLIP_MEAN, CLIP_STD)
        d = model.config.hidden_size
        n_patch = (self.size // model.config.patch_size) ** 2
        if opt.view == "patches4":
            if n_patch % 4:
                raise ValueError(f"eva_vit_g: {n_patch} patches cannot be grouped by 4")
            tokens, dim = n_patch // 4, d * 4
        elif opt.view == "cls":
            tokens, dim = 1, d
        else:
            tokens, dim = n_patch, d
        super().__init__(
            "eva_vit_g",
            MediaRequest("frames", n_frames=1, selection=opt.selection),
            dim,
            tokens,
            f"eva_vit_g|{ident}|{opt.model_dump_json()}|{self.size}|{self.mean}|{self.std}",
            model,
        )

    def _hidden(self, frames: np.ndarray) -> torch.Tensor:
        """``[1+P, D]`` for one frame; memoised so the patch and CLS views share one forward."""
        key = id(self.module)
        first = np.ascontiguousarray(frames[:1])
        digest = hashlib.sha1(repr(first.shape).encode() + first.tobytes()).hexdigest()
        hit = EvaViTgEncoder._memo.get(key)
        if hit is not None and hit[0] == digest:
            return hit[1]
        x = preprocess(frames[:1], self.size, self.mean, self.std).to(self.device)
        h = self.module(pixel_values=x).last_hidden_state[0]  # type: ignore[misc]
        EvaViTgEncoder._memo[key] = (digest, h)
        return h

    def forward_batch(self, batch: Sequence[np.ndarray]) -> torch.Tensor:
        outs = []
        for frames in batch:
            h = self._hidden(np.asarray(frames))
            if self.opt.view == "cls":
                outs.append(h[:1])
            elif self.opt.view == "patches4":
                outs.append(h[1:].reshape(-1, h.shape[-1] * 4))  # 4 consecutive patches, raster order
            else:
                outs.append(h[1:])
        return torch.stack(outs).cpu()


@register_encoder(
    "eva_vit_g", EvaViTgOptions, input_kind="frames", description="EVA ViT-g/14 frame encoder (BLIP-2 vision)"
)
def build_eva_vit_g(cfg: EncoderConfig) -> Encoder:
    return EvaViTgEncoder(cfg)
