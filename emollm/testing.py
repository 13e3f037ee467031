"""Helpers for tests and benchmarks: random inputs shaped like a system's encoder outputs.

feats = random_features(system, {"audio": 2, "face": 1}, seed=0)   # {modality: Tensor[n, tokens, dim]}
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from emollm.model.system import EmoSystem


def random_features(system: EmoSystem, counts: dict[str, int], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random features ``{modality: [n, tokens, dim]}`` matching ``system.encoders``."""
    g = torch.Generator().manual_seed(seed)
    return {
        m: torch.randn(n, system.encoders[m].tokens_per_item, system.encoders[m].dim, generator=g)
        for m, n in counts.items()
        if n
    }
