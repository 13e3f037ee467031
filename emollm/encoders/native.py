"""A native multimodal model's own media inputs, as emollm encoders (no weights: preprocessing only).

A native backbone (``llm.family`` qwen2-audio, qwen2.5-omni or qwen2-vl, ``emollm.model.native``)
reads its media through its own towers; what emollm prepares for it is what the model's processor
would: Whisper log-mel frames for audio, normalised patches for video. Making that preparation an
``Encoder`` means native models get emollm's whole media path for free: PyAV decoding, frame selection,
face crops, MER-NOISE corruption, the feature cache, missing-modality handling and ablations.

    enc = build_encoder(EncoderConfig(name="native_audio", options={"family": "qwen2-audio", "seconds": 10}))
    enc.encode([wave])            # Tensor[1, 1000, 128]: mel frames x mel bins (frames = 100 x seconds)
    enc.llm_tokens                # 250: audio tokens the language model sees per clip

    enc = build_encoder(EncoderConfig(name="native_video", options={"family": "qwen2-vl", "n_frames": 8}))
    enc.encode([frames])          # Tensor[1, 4*16*16, 1176]: patches (t x h x w) x (3 x 2 x 14 x 14)
    enc.llm_tokens                # 256 = 4*16*16 / (2*2) after the 2x2 merger
    enc.grid                      # (4, 16, 16): ``video_grid_thw`` of every clip

The layout follows the models' published processors (checked against transformers'
``WhisperFeatureExtractor`` and ``Qwen2VLImageProcessorPil`` in the tests); transformers' video
processors need torchvision, which is never installed here, so frames are patched by hand.
With ``path`` (the model folder), the folder's ``preprocessor_config.json`` supplies patch size,
merge size, mean/std and mel bins; without it the published defaults apply (the tiny presets).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emollm.config import EncoderConfig, NativeAudioOptions, NativeVideoOptions
from emollm.encoders.base import Encoder, MediaRequest, register_encoder

SAMPLE_RATE = 16000
HOP = 160
WINDOW_FRAMES = 3000
"""The 30 s window (3000 mel frames) Whisper-style towers read; Qwen2-Audio's tower requires exactly it."""
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def audio_tokens(frames: int) -> int:
    """Audio tokens the language model sees for ``frames`` mel frames (stride-2 conv, then 2x pooling),
    as ``_get_feat_extract_output_lengths`` of Qwen2-Audio and Qwen2.5-Omni."""
    conv = (frames - 1) // 2 + 1
    return (conv - 2) // 2 + 1


def _preprocessor_config(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    f = Path(path).expanduser() / "preprocessor_config.json"
    if not f.is_file():
        raise FileNotFoundError(f"native media encoder: {f} not found (the model folder's processor settings)")
    return dict(json.loads(f.read_text(encoding="utf-8")))


class NativeAudioEncoder(Encoder):
    """Waveform -> ``[frames, n_mels]`` log-mel (Whisper's, as the model's feature extractor makes it)."""

    def __init__(self, opts: NativeAudioOptions, path: str | None) -> None:
        from transformers import WhisperFeatureExtractor

        pc = _preprocessor_config(path)
        n_mels = int(pc.get("feature_size", 128))
        self.fe = WhisperFeatureExtractor(feature_size=n_mels, sampling_rate=SAMPLE_RATE, hop_length=HOP)
        self.frames = int(round(opts.seconds * SAMPLE_RATE / HOP))
        self.family = opts.family
        self.seconds = opts.seconds
        ident = f"native-audio:{opts.family}|mels{n_mels}|{self.frames}frames"
        super().__init__(
            "native_audio",
            MediaRequest("audio", sample_rate=SAMPLE_RATE, max_seconds=opts.seconds),
            n_mels,
            self.frames,
            ident,
        )
        self.llm_tokens = audio_tokens(self.frames)

    def forward_batch(self, batch: Sequence[np.ndarray]) -> torch.Tensor:
        n = int(round(self.seconds * SAMPLE_RATE))
        waves = [np.asarray(w, dtype=np.float32)[:n] for w in batch]
        out = self.fe(
            waves, sampling_rate=SAMPLE_RATE, padding="max_length", max_length=WINDOW_FRAMES * HOP, return_tensors="np"
        )["input_features"]  # [B, n_mels, 3000]
        return torch.from_numpy(np.ascontiguousarray(out[:, :, : self.frames].transpose(0, 2, 1)))


def patchify(
    frames: np.ndarray,
    size: int,
    patch: int = 14,
    temporal: int = 2,
    merge: int = 2,
    mean: Sequence[float] = CLIP_MEAN,
    std: Sequence[float] = CLIP_STD,
) -> tuple[torch.Tensor, tuple[int, int, int]]:
    """``uint8[T, H, W, 3]`` -> ``(patches [t*h*w, 3*temporal*patch*patch], (t, h, w))`` in Qwen2-VL's layout.

    Frames are resized to ``size x size`` (bicubic, as the PIL processor), scaled to [0, 1], normalised,
    padded in time to a multiple of ``temporal`` by repeating the last frame, and cut into patches
    ordered so that each ``merge x merge`` block is contiguous (what the merger expects)."""
    from PIL import Image

    if size % (patch * merge):
        raise ValueError(f"video size {size} must be a multiple of patch x merge = {patch * merge}")
    imgs = [np.asarray(Image.fromarray(f).resize((size, size), Image.Resampling.BICUBIC)) for f in frames]
    x = np.stack(imgs).astype(np.float32) / 255.0  # [T, S, S, 3]
    x = (x - np.asarray(mean, dtype=np.float32)) / np.asarray(std, dtype=np.float32)
    x = x.transpose(0, 3, 1, 2)  # [T, 3, S, S]
    if x.shape[0] % temporal:
        x = np.concatenate([x, np.repeat(x[-1:], temporal - x.shape[0] % temporal, axis=0)])
    t, g = x.shape[0] // temporal, size // patch
    x = x.reshape(t, temporal, 3, g // merge, merge, patch, g // merge, merge, patch)
    x = x.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
    return torch.from_numpy(np.ascontiguousarray(x.reshape(t * g * g, 3 * temporal * patch * patch))), (t, g, g)


class NativeVideoEncoder(Encoder):
    """Frames (or face crops) -> ``[t*h*w, 3*2*14*14]`` patches for a Qwen-style vision tower."""

    def __init__(self, name: str, kind: str, opts: NativeVideoOptions, path: str | None) -> None:
        pc = _preprocessor_config(path)
        self.patch = int(pc.get("patch_size", 14))
        self.temporal = int(pc.get("temporal_patch_size", 2))
        self.merge = int(pc.get("merge_size", 2))
        self.mean = tuple(pc.get("image_mean", CLIP_MEAN))
        self.std = tuple(pc.get("image_std", CLIP_STD))
        self.size = opts.size
        if opts.size % (self.patch * self.merge):
            raise ValueError(
                f"encoder {name}: size {opts.size} must be a multiple of patch x merge = {self.patch * self.merge}"
            )
        t = -(-opts.n_frames // self.temporal)
        g = opts.size // self.patch
        self.grid = (t, g, g)
        ident = f"{name}:{opts.family}|{opts.size}px|p{self.patch}t{self.temporal}m{self.merge}|{self.mean}{self.std}"
        super().__init__(
            name,
            MediaRequest(kind, n_frames=opts.n_frames, selection=opts.selection),  # type: ignore[arg-type]
            3 * self.temporal * self.patch * self.patch,
            t * g * g,
            ident,
        )
        self.llm_tokens = t * g * g // (self.merge * self.merge)

    def forward_batch(self, batch: Sequence[np.ndarray]) -> torch.Tensor:
        out = [
            patchify(np.asarray(f), self.size, self.patch, self.temporal, self.merge, self.mean, self.std)[0]
            for f in batch
        ]
        return torch.stack(out)


@register_encoder("native_audio", NativeAudioOptions, "audio", "A native model's own log-mel audio input")
def build_native_audio(cfg: EncoderConfig) -> Encoder:
    return NativeAudioEncoder(NativeAudioOptions(**cfg.options), cfg.path)


@register_encoder("native_video", NativeVideoOptions, "frames", "A native model's own video patches (frames)")
def build_native_video(cfg: EncoderConfig) -> Encoder:
    return NativeVideoEncoder("native_video", "frames", NativeVideoOptions(**cfg.options), cfg.path)


@register_encoder("native_face_video", NativeVideoOptions, "faces", "A native model's own video patches (faces)")
def build_native_face_video(cfg: EncoderConfig) -> Encoder:
    return NativeVideoEncoder("native_face_video", "faces", NativeVideoOptions(**cfg.options), cfg.path)
