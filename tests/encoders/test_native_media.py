"""The native media inputs match the models' own processors (CPU, no torchvision, no weights).

    pytest tests/encoders/test_native_media.py

- ``patchify`` on one image equals ``Qwen2VLImageProcessorPil`` (the numpy-only image processor of
  Qwen2-VL and Qwen2.5-Omni): same ``pixel_values`` and ``image_grid_thw``. The processor tiles one
  image to ``temporal_patch_size`` (2) frames; ``patchify`` pads a 1-frame clip the same way.
- ``NativeAudioEncoder`` equals ``WhisperFeatureExtractor(feature_size=128)`` ``input_features`` of the
  same waveform (the first ``100 x seconds`` frames), and its token count equals the towers'
  ``_get_feat_extract_output_lengths``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emollm.config import EncoderConfig
from emollm.encoders import build_encoder
from emollm.encoders.native import audio_tokens, patchify


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # smooth content plus noise: bicubic resizing of pure noise would still be compared exactly
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (h + w)], axis=-1)
    return np.clip(base + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("side", [112, 100])  # 100 is resized to 112 (smart_resize) by both
def test_patchify_equals_the_qwen2_vl_pil_image_processor(side: int) -> None:
    from PIL import Image
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    img = _image(side, side)
    ref = Qwen2VLImageProcessorPil()(images=[Image.fromarray(img)], return_tensors="np")
    ours, grid = patchify(img[None], size=112)
    assert tuple(int(v) for v in ref["image_grid_thw"][0]) == grid == (1, 8, 8)
    want = torch.from_numpy(np.asarray(ref["pixel_values"], dtype=np.float32))
    assert ours.shape == want.shape == (64, 3 * 2 * 14 * 14)
    torch.testing.assert_close(ours, want, atol=1e-5, rtol=0)


def test_native_video_encoder_layout() -> None:
    enc = build_encoder(EncoderConfig(name="native_video", options={"family": "qwen2-vl", "n_frames": 4, "size": 56}))
    frames = np.stack([_image(80, 96, s) for s in range(4)])
    out = enc.encode([frames])
    assert enc.grid == (2, 4, 4) and out.shape == (1, 2 * 4 * 4, 1176) and enc.llm_tokens == 8
    # the first temporal pair of patches is the first two frames, patched as one 2-frame clip
    first, _ = patchify(frames[:2], size=56)
    torch.testing.assert_close(out[0, :16], first)


@pytest.mark.parametrize("seconds", [1.0, 2.5])
def test_native_audio_equals_whisper_features_and_token_count(seconds: float) -> None:
    from transformers import WhisperFeatureExtractor
    from transformers.models.qwen2_audio.modeling_qwen2_audio import Qwen2AudioEncoder

    rng = np.random.default_rng(1)
    t = np.arange(int(16000 * seconds)) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.05 * rng.normal(size=t.size)).astype(np.float32)
    enc = build_encoder(EncoderConfig(name="native_audio", options={"family": "qwen2-audio", "seconds": seconds}))
    ours = enc.encode([wave])
    frames = int(round(100 * seconds))
    fe = WhisperFeatureExtractor(feature_size=128)  # Qwen2-Audio's / Qwen2.5-Omni's preprocessor settings
    ref = fe(wave, sampling_rate=16000, return_tensors="np")["input_features"][0]  # [128, 3000]
    assert ours.shape == (1, frames, 128)
    torch.testing.assert_close(ours[0], torch.from_numpy(np.ascontiguousarray(ref[:, :frames].T)))
    # tokens the language model sees: the towers' own length formula
    _, out_len = Qwen2AudioEncoder._get_feat_extract_output_lengths(None, torch.tensor([frames]))
    assert enc.llm_tokens == audio_tokens(frames) == int(out_len)
    from transformers.models.qwen2_5_omni.modeling_qwen2_5_omni import Qwen2_5OmniAudioEncoder

    for tower in (Qwen2AudioEncoder, Qwen2_5OmniAudioEncoder):
        for n in (1, 2, 3, 99, 100, 101, 1000, 1500, 3000):
            assert audio_tokens(n) == int(tower._get_feat_extract_output_lengths(None, torch.tensor(n))[1])
