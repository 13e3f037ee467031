"""HuBERT audio encoder (transformers ``HubertModel``), frozen.

Emotion-LLaMA uses chinese-hubert-large, last hidden layer, mean over time ("UTT"): one 1024-d
token per clip. Layer and pooling are configurable; ``pooling: segments`` keeps ``tokens`` time
segments instead of one vector.

Config::

    encoder: {name: hubert, path: /weights/chinese-hubert-large, options: {layer: -1, pooling: mean}}
    encoder: {name: hubert, tiny: true}      # tiny random model for tests

Input: mono float32 waveform at 16 kHz. Output: ``[B, tokens, hidden_size]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from emollm.config import EncoderConfig, HubertOptions
from emollm.encoders.base import Encoder, MediaRequest, pool_time, register_encoder, weights_identity


class HubertEncoder(Encoder):
    def __init__(self, cfg: EncoderConfig) -> None:
        from transformers import HubertConfig, HubertModel

        opt = HubertOptions.model_validate(cfg.options)
        if cfg.path:
            p = Path(cfg.path)
            if not (p / "config.json").is_file():
                raise FileNotFoundError(f"hubert: no config.json in weight folder {p}")
            model = HubertModel.from_pretrained(p, local_files_only=True)
            ident = weights_identity(str(p))
        elif cfg.tiny:
            torch.manual_seed(0)
            model = HubertModel(
                HubertConfig(
                    hidden_size=32,
                    num_hidden_layers=2,
                    num_attention_heads=2,
                    intermediate_size=64,
                    conv_dim=(32,) * 7,
                    num_conv_pos_embeddings=16,
                    num_conv_pos_embedding_groups=2,
                )
            )
            ident = weights_identity(None, tiny_seed=0)
        else:
            raise FileNotFoundError("hubert: set encoder.path to a local HuBERT folder (or tiny: true for tests)")
        self.opt = opt
        # GroupNorm in the CNN (HuBERT-base style, feat_extract_norm "group") normalises over time, padding
        # included, and such models take no attention mask: their clips are encoded one at a time so a
        # clip's features never depend on its batch-mates. LayerNorm models (chinese-hubert-large) batch.
        self.per_clip = getattr(model.config, "feat_extract_norm", "layer") == "group"
        tokens = opt.tokens if opt.pooling == "segments" else 1
        super().__init__(
            "hubert",
            MediaRequest("audio", sample_rate=16000, max_seconds=opt.max_seconds),
            model.config.hidden_size,
            tokens,
            f"hubert|{ident}|{opt.model_dump_json()}" + ("|per-clip" if self.per_clip else ""),
            model,
        )

    def forward_batch(self, batch: Sequence[np.ndarray]) -> torch.Tensor:
        waves = []
        for w in batch:
            w = np.asarray(w, dtype=np.float32).reshape(-1)
            if w.size < 400:  # HuBERT's CNN needs at least one 25 ms window
                w = np.pad(w, (0, 400 - w.size))
            if self.opt.normalize_waveform:
                w = (w - w.mean()) / np.sqrt(w.var() + 1e-7)
            waves.append(torch.from_numpy(w))
        if self.per_clip and len({len(w) for w in waves}) > 1:
            return torch.cat([self._forward(w[None], torch.tensor([len(w)])) for w in waves], 0)
        return self._forward(
            torch.nn.utils.rnn.pad_sequence(waves, batch_first=True), torch.tensor([len(w) for w in waves])
        )

    def _forward(self, x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """Zero-padded waveforms ``[B, n_samples]`` with true lengths ``[B]`` -> pooled ``[B, tokens, D]``."""
        dev = self.device
        x = x.to(dev)
        mask = (torch.arange(x.shape[1])[None, :] < lens[:, None]).long().to(dev)
        out = self.module(x, attention_mask=mask, output_hidden_states=True)  # type: ignore[misc]
        h = out.hidden_states[self.opt.layer]  # [B, frames, D]
        flens = self.module._get_feat_extract_output_lengths(lens).clamp(min=1)  # type: ignore[union-attr,operator]
        pooled = []
        for i in range(h.shape[0]):
            pooled.append(pool_time(h[i : i + 1, : int(flens[i])], self.opt.pooling, self.opt.tokens))
        return torch.cat(pooled, 0).cpu()


@register_encoder("hubert", HubertOptions, input_kind="audio", description="HuBERT speech encoder (HF HubertModel)")
def build_hubert(cfg: EncoderConfig) -> Encoder:
    return HubertEncoder(cfg)
