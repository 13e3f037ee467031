"""Shared fixtures: tiny systems built offline in milliseconds, random features, conformance paths."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("EMOLLM_LOG_LEVEL", "WARNING")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session", autouse=True)
def _emollm_home(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep converted/tiny models of the test run out of the user's cache (unless EMOLLM_HOME is set)."""
    if "EMOLLM_HOME" not in os.environ:
        os.environ["EMOLLM_HOME"] = str(tmp_path_factory.mktemp("emollm_home"))


@pytest.fixture(scope="session")
def conformance() -> Path:
    from emollm.paths import conformance_root

    root = conformance_root()
    if root is None:
        pytest.skip("conformance kit not present (set EMOLLM_CONFORMANCE or place ../shared/conformance)")
    return root


def random_features(system, counts: dict[str, int], seed: int = 0) -> dict[str, torch.Tensor]:
    """Random features ``{modality: [n, tokens, dim]}`` matching a system's encoders."""
    g = torch.Generator().manual_seed(seed)
    return {
        m: torch.randn(n, system.encoders[m].tokens_per_item, system.encoders[m].dim, generator=g)
        for m, n in counts.items()
        if n
    }


@pytest.fixture(scope="session")
def tiny_system():
    """The full tiny preset (all five modalities), session-scoped: do not train it in place."""
    from emollm.model.presets import model_config
    from emollm.model.system import build_system

    return build_system(model_config("tiny"), source="tiny")


@pytest.fixture
def fresh_tiny_fast():
    """A fresh tiny-fast system (audio + face) that a test may train."""
    from emollm.model.presets import model_config
    from emollm.model.system import build_system

    return build_system(model_config("tiny-fast"), source="tiny-fast")
