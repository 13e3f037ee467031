"""``precomputed``: features that already exist on disk, read instead of computed.

For corpora shipped with features (Emotion-LLaMA's ``mae_340_UTT/<name>.npy``, ``HL-UTT/<name>.npy``)
or features extracted by another tool. Each file holds ``[dim]`` or ``[tokens, dim]``.

Config::

    encoder: {name: precomputed, options: {dir: /data/MER2023/HL-UTT, dim: 1024, tokens: 1}}

A missing file is an error naming the sample and the path looked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from emollm.config import EncoderConfig, PrecomputedOptions
from emollm.encoders.base import Encoder, MediaRequest, register_encoder


def read_feature_file(path: Path) -> np.ndarray:
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return z[z.files[0]]
    if path.suffix == ".pt":
        return torch.load(path, weights_only=True).numpy()
    raise ValueError(f"{path}: unsupported feature file type {path.suffix!r} (use .npy, .npz or .pt)")


class PrecomputedEncoder(Encoder):
    def __init__(self, cfg: EncoderConfig) -> None:
        opt = PrecomputedOptions.model_validate(cfg.options)
        self.opt = opt
        self.root = Path(opt.dir).expanduser()
        super().__init__(
            "precomputed",
            MediaRequest("features"),
            opt.dim,
            opt.tokens,
            f"precomputed|{self.root.resolve()}|{opt.pattern}|{opt.dim}x{opt.tokens}",
            None,
        )

    def path_for(self, sample_id: str) -> Path:
        return self.root / self.opt.pattern.format(id=sample_id)

    def load(self, sample_id: str) -> np.ndarray:
        p = self.path_for(sample_id)
        if not p.is_file():
            raise FileNotFoundError(f"precomputed features for sample {sample_id!r} not found at {p}")
        a = np.asarray(read_feature_file(p), dtype=np.float32)
        if a.ndim == 1:
            a = a[None]
        if a.shape != (self.tokens_per_item, self.dim):
            raise ValueError(f"{p}: features have shape {a.shape}, expected ({self.tokens_per_item}, {self.dim})")
        return a

    def forward_batch(self, batch: Sequence[np.ndarray]) -> torch.Tensor:
        """``batch`` items are already-loaded arrays ``[tokens, dim]`` (see ``load``)."""
        return torch.from_numpy(np.stack([np.asarray(b, dtype=np.float32) for b in batch]))


@register_encoder(
    "precomputed", PrecomputedOptions, input_kind="features", description="features read from .npy/.npz/.pt files"
)
def build_precomputed(cfg: EncoderConfig) -> Encoder:
    return PrecomputedEncoder(cfg)
