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


@pytest.fixture(scope="session")
def synthmer_small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small prepared SynthMER manifest (24 train / 12 val / 12 test clips), built once per session."""
    from emollm.data.prepare import prepare

    out = tmp_path_factory.mktemp("synthmer_small")
    prepare(
        "data_recipes/synthmer.yaml",
        out=out,
        overrides=["generate.synthmer.n_train=24", "generate.synthmer.n_val=12", "generate.synthmer.n_test=12"],
        progress=False,
    )
    return out
