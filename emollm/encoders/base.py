"""The frozen-encoder contract every encoder implements, and the registry entry that builds one.

An encoder turns decoded media into features ``Tensor[B, tokens_per_item, dim]``:

- ``input_kind`` says what it consumes:
  ``"audio"``  -> ``np.float32[n_samples]`` mono waveform at ``sample_rate`` (16 kHz unless stated);
  ``"frames"`` -> ``np.uint8[T, H, W, 3]`` RGB video frames (or one image as T=1);
  ``"faces"``  -> ``np.uint8[T, h, w, 3]`` RGB face crops (the media pipeline detects and crops).
- ``media`` (a ``MediaRequest``) says how to decode: how many frames, which selection rule.
- ``identity`` is a string naming the model weights (content hash or ``tiny-random-seed``), the
  revision and every preprocessing option. The feature cache keys on it, so changing any setting
  recomputes instead of serving stale features.
- ``encode(batch)`` runs under ``torch.no_grad`` in eval mode; parameters never require grad.

Register a new encoder in one file::

    class MyOptions(Strict): layer: int = -1
    @register_encoder("mine", MyOptions, input_kind="audio")
    def build_mine(cfg: EncoderConfig) -> Encoder: ...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from torch import nn

from emollm.config import Strict, register_encoder_options
from emollm.registry import Registry

if TYPE_CHECKING:
    from emollm.config import EncoderConfig

InputKind = Literal["audio", "frames", "faces", "features"]
FrameSelection = Literal["uniform", "first", "middle", "peak", "segments"]


@dataclass(frozen=True)
class MediaRequest:
    """How the media pipeline must decode a sample for one encoder (part of the cache identity)."""

    kind: InputKind
    n_frames: int = 1
    selection: FrameSelection = "uniform"
    sample_rate: int = 16000
    max_seconds: float | None = None

    def describe(self) -> str:
        if self.kind == "audio":
            return f"audio@{self.sample_rate}" + (f",max{self.max_seconds}s" if self.max_seconds else "")
        if self.kind == "features":
            return "features"
        return f"{self.kind}:{self.selection}x{self.n_frames}"


class Encoder(nn.Module):
    """Base class: holds the frozen module, enforces eval/no-grad, checks output shapes."""

    def __init__(
        self,
        name: str,
        media: MediaRequest,
        dim: int,
        tokens_per_item: int,
        identity: str,
        module: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.name = name
        self.media = media
        self.dim = int(dim)
        self.tokens_per_item = int(tokens_per_item)
        self.llm_tokens = int(tokens_per_item)
        """Placeholder tokens per item in the language model's sequence: ``tokens_per_item`` for emollm's
        projected features; fewer for a native model's inputs (its tower pools mel frames / merges patches)."""
        self.identity = f"{identity}|{media.describe()}|emollm-enc-v1"
        self.module = module
        if module is not None:
            module.eval()
            module.requires_grad_(False)

    @property
    def input_kind(self) -> InputKind:
        return self.media.kind

    def train(self, mode: bool = True) -> Encoder:  # frozen towers stay in eval mode
        super().train(False)
        return self

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def forward_batch(self, batch: Sequence[np.ndarray]) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, batch: Sequence[np.ndarray]) -> torch.Tensor:
        """Encode a batch of decoded media items. Returns ``Tensor[B, tokens_per_item, dim]`` (float32, CPU
        or the encoder's device)."""
        if len(batch) == 0:
            return torch.zeros(0, self.tokens_per_item, self.dim)
        out = self.forward_batch(batch)
        exp = (len(batch), self.tokens_per_item, self.dim)
        if tuple(out.shape) != exp:
            raise RuntimeError(f"encoder {self.name!r} returned shape {tuple(out.shape)}, expected {exp}")
        return out.float()

    def extra_repr(self) -> str:
        return f"name={self.name}, dim={self.dim}, tokens={self.tokens_per_item}, input={self.media.describe()}"


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    options_model: type[Strict]
    build: Callable[[EncoderConfig], Encoder]
    input_kind: InputKind
    description: str = ""


ENCODERS: Registry[EncoderSpec] = Registry("encoder")


def register_encoder(
    name: str, options_model: type[Strict], input_kind: InputKind, description: str = ""
) -> Callable[[Callable[[EncoderConfig], Encoder]], Callable[[EncoderConfig], Encoder]]:
    def deco(fn: Callable[[EncoderConfig], Encoder]) -> Callable[[EncoderConfig], Encoder]:
        register_encoder_options(name, options_model)  # configs naming this encoder validate without torch
        ENCODERS.add(name, EncoderSpec(name, options_model, fn, input_kind, description or (fn.__doc__ or "").strip()))
        return fn

    return deco


def build_encoder(cfg: EncoderConfig) -> Encoder:
    """Build a frozen encoder from its config (registry lookup; never touches the network)."""
    enc = ENCODERS.get(cfg.name).build(cfg)
    for p in enc.parameters():
        p.requires_grad_(False)
    return enc


def pool_time(x: torch.Tensor, mode: str, tokens: int = 1) -> torch.Tensor:
    """Pool ``[B, T, D]`` over time: ``mean``/``max`` -> ``[B, 1, D]``; ``segments`` -> ``[B, tokens, D]``
    (mean over equal segments); ``none`` keeps ``[B, T, D]``."""
    if mode == "mean":
        return x.mean(dim=1, keepdim=True)
    if mode == "max":
        return x.amax(dim=1, keepdim=True)
    if mode == "segments":
        b, t, d = x.shape
        if t < tokens:
            x = torch.nn.functional.interpolate(x.transpose(1, 2), size=tokens, mode="nearest").transpose(1, 2)
            t = tokens
        edges = torch.linspace(0, t, tokens + 1).round().long().tolist()
        return torch.stack([x[:, edges[i] : max(edges[i + 1], edges[i] + 1)].mean(1) for i in range(tokens)], dim=1)
    if mode == "none":
        return x
    raise ValueError(f"unknown pooling {mode!r}; expected mean, max, segments or none")


def weights_identity(path: str | None, tiny_seed: int | None = None, extra: dict[str, Any] | None = None) -> str:
    """Identity of the weights: a content hash of the weight files in ``path`` (memoised) or the tiny seed."""
    from pathlib import Path

    from emollm.io import file_hash

    if path is None:
        base = f"tiny-random-seed{tiny_seed}"
    else:
        p = Path(path)
        files = (
            sorted(
                f
                for f in p.rglob("*")
                if f.is_file() and f.suffix in {".safetensors", ".bin", ".json", ".pth", ".h5", ".hdf5", ".npy"}
            )
            if p.is_dir()
            else [p]
        )
        if not files:
            raise FileNotFoundError(f"no weight files under {p}")
        import hashlib

        h = hashlib.sha256()
        for f in files:
            h.update(f.name.encode())
            h.update(file_hash(f).encode())
        base = f"weights-sha256:{h.hexdigest()[:16]}"
    if extra:
        base += "|" + ",".join(f"{k}={extra[k]}" for k in sorted(extra))
    return base
