"""Training state shared by the SFT loop (``trainer.py``) and the RL stage (``rl.py``): progress, the
error a user must act on, RNG state save/restore. It imports neither, so both can import it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch


class TrainingError(RuntimeError):
    """A run stopped for a reason the user must act on (the message says what and where)."""


@dataclass
class Progress:
    stage: int = 0
    step: int = 0
    """Optimiser steps done in this stage."""
    epoch: int = 0
    micro: int = 0
    """Global micro-batches consumed in this epoch."""
    global_step: int = 0
    best: float | None = None
    history: list[dict[str, Any]] = field(default_factory=list)


def _set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    st = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def _set_rng_state(st: dict[str, Any]) -> None:
    random.setstate(st["python"])
    np.random.set_state(st["numpy"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def _unwrap(model: Any) -> Any:
    return getattr(model, "module", model)
