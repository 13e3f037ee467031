"""Trainable projectors: encoder width -> LLM hidden size, chosen by name.

    proj = build_projector("linear", in_dim=1024, out_dim=llm.config.hidden_size)
    y = proj(x)   # x: [n, tokens, in_dim] -> y: [n, tokens, out_dim]

- ``linear``: one Linear layer (Emotion-LLaMA's projections).
- ``mlp2x_gelu``: Linear -> GELU -> Linear (LLaVA-1.5).

With ``standardize=True`` the projector holds per-dimension ``mean``/``std`` buffers (fitted on
training features by ``fit_standardizer`` and saved with the checkpoint) and standardises its input
first; hand-crafted features such as eGeMAPS need it because their dimensions differ by orders of
magnitude.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from emollm.config import PROJECTOR_NAMES
from emollm.registry import Registry

# a registered projector is also a valid ``projector.name`` in configs (validated without torch)
PROJECTORS: Registry[Callable[[int, int], nn.Module]] = Registry(
    "projector", on_add=lambda name, _: PROJECTOR_NAMES.add(name)
)


@PROJECTORS.register("linear")
def _linear(in_dim: int, out_dim: int) -> nn.Module:
    return nn.Linear(in_dim, out_dim)


@PROJECTORS.register("mlp2x_gelu")
def _mlp(in_dim: int, out_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(in_dim, out_dim), nn.GELU(), nn.Linear(out_dim, out_dim))


class Projector(nn.Module):
    """``[n, tokens, in_dim] -> [n, tokens, out_dim]`` with optional input standardisation."""

    def __init__(self, name: str, in_dim: int, out_dim: int, standardize: bool = False) -> None:
        super().__init__()
        self.name = name
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.standardize = standardize
        self.net = PROJECTORS.get(name)(in_dim, out_dim)
        if standardize:
            self.register_buffer("mean", torch.zeros(in_dim))
            self.register_buffer("std", torch.ones(in_dim))
            self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"projector expects input width {self.in_dim}, got features of shape {tuple(x.shape)}")
        w = next(self.net.parameters())
        x = x.to(device=w.device, dtype=torch.float32)
        if self.standardize:
            x = (x - self.mean) / self.std
        return self.net(x.to(w.dtype))

    @torch.no_grad()
    def fit_standardizer(self, feats: torch.Tensor) -> None:
        """Fit mean/std on training features ``[n, tokens, in_dim]`` (or ``[m, in_dim]``)."""
        if not self.standardize:
            raise RuntimeError("projector was built without standardize=True")
        f = feats.reshape(-1, self.in_dim).float()
        if f.shape[0] < 2:
            raise ValueError(f"need at least 2 feature vectors to fit a standardizer, got {f.shape[0]}")
        f = torch.nan_to_num(f)
        self.mean.copy_(f.mean(0))
        self.std.copy_(f.std(0).clamp(min=1e-4))
        self.fitted.fill_(True)

    def extra_repr(self) -> str:
        return f"name={self.name}, in={self.in_dim}, out={self.out_dim}, standardize={self.standardize}"


def build_projector(name: str, in_dim: int, out_dim: int, standardize: bool = False) -> Projector:
    return Projector(name, in_dim, out_dim, standardize)
