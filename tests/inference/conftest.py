"""Fixtures for the inference tests: a small tiny-fast checkpoint with non-zero LoRA, predictors on it,
and a live server on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny-fast checkpoint whose LoRA and projector weights are seeded random (not the zero-LoRA init),
    so reloading it from disk is what makes predictions agree."""
    from emollm.model.checkpoint import save_checkpoint
    from emollm.model.presets import model_config
    from emollm.model.system import build_system

    system = build_system(model_config("tiny-fast"), source="tiny-fast")
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for _, p in system.model.trainable_named_parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return save_checkpoint(system, tmp_path_factory.mktemp("ckpt") / "tiny_ckpt")


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("features")


@pytest.fixture(scope="session")
def predictor(tiny_ckpt: Path, feature_cache: Path):
    from emollm.inference.chat import open_predictor

    return open_predictor(tiny_ckpt, feature_cache, device="cpu")


@pytest.fixture(scope="session")
def test_samples(synthmer_small: Path):
    from emollm.data.sample import Manifest

    man = Manifest.load(synthmer_small)
    return man, man.split("test")


@pytest.fixture(scope="session")
def media_root(tmp_path_factory: pytest.TempPathFactory, test_samples) -> Path:
    """A server media root: one SynthMER clip, a 31 s recording, and a symlink pointing outside."""
    import shutil

    import numpy as np
    import soundfile as sf

    man, samples = test_samples
    root = tmp_path_factory.mktemp("media_root")
    (root / "clips").mkdir()
    shutil.copy(man.media_path(samples[0], "video"), root / "clips" / "a.mp4")
    sf.write(root / "long.wav", np.zeros(31 * 8000, np.float32), 8000)
    outside = tmp_path_factory.mktemp("outside") / "secret.mp4"
    shutil.copy(man.media_path(samples[1], "video"), outside)
    (root / "escape.mp4").symlink_to(outside)
    return root


@pytest.fixture(scope="module")
def server(tiny_ckpt: Path, feature_cache: Path, media_root: Path) -> Iterator[tuple[str, object]]:
    """(base URL, app) of a server over its own load of the checkpoint (1 MiB bodies, 30 s clips, 32 tokens)."""
    from emollm.inference.chat import open_predictor
    from emollm.inference.server import BackgroundServer, ServeSettings, create_app

    pred = open_predictor(tiny_ckpt, feature_cache, device="cpu")
    settings = ServeSettings(
        model_id="tiny-test", media_root=media_root, max_body_mb=1.0, max_seconds=30, max_new_tokens=32
    )
    app = create_app(pred, settings)
    with BackgroundServer(app) as url:
        yield url, app
