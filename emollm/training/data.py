"""Training batches: deterministic epoch order, rank slicing, per-sample task/modality draws.

The global micro-batch *i* of epoch *e* is the same set of samples whatever the world size: the
epoch permutation is drawn from ``(seed, e)``, cut into global micro-batches of
``micro_batch_size x world_size`` samples (optionally length-bucketed), and rank *r* takes its
``micro_batch_size`` slice. Each sample's task, prompt paraphrase, modality and subtitle dropout
are drawn from ``(seed, e, sample index)``. So a 2-process DDP run sees exactly the batches of a
1-process run with the same global batch, and a resumed run sees exactly the batches it would have.

    plan = EpochPlan(n_samples=600, micro=8, world=2, seed=0, lengths=est)
    for batch_indices in plan.rank_batches(epoch=0, rank=1, start=0): ...
    batch = collate_training(system, recipe, featurizer, samples, root, indices, epoch, stage_cfg, seed)
"""

from __future__ import annotations

import hashlib
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from emollm.data.contract import PromptContract
from emollm.data.sample import Sample
from emollm.features.featurizer import Featurizer, stack_features

if TYPE_CHECKING:
    from emollm.model.system import EmoSystem


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "little")


@dataclass
class EpochPlan:
    n_samples: int
    micro: int
    world: int
    seed: int
    lengths: Sequence[int] | None = None
    bucket: bool = True

    @property
    def global_micro(self) -> int:
        return self.micro * self.world

    @property
    def micro_batches_per_epoch(self) -> int:
        """Full global micro-batches per epoch (the ragged tail is dropped so ranks stay in step)."""
        return self.n_samples // self.global_micro

    def global_batches(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng(_seed(self.seed, "epoch", epoch))
        perm = rng.permutation(self.n_samples).tolist()
        g = self.global_micro
        n = self.micro_batches_per_epoch
        if self.bucket and self.lengths is not None and n > 1:
            # sort within windows of 32 global batches by length, then shuffle the batches
            win = 32 * g
            chunks = []
            for w in range(0, n * g, win):
                part = sorted(perm[w : min(w + win, n * g)], key=lambda i: self.lengths[i])  # type: ignore[index]
                chunks += [part[j : j + g] for j in range(0, len(part), g) if len(part[j : j + g]) == g]
            order = rng.permutation(len(chunks)).tolist()
            return [chunks[i] for i in order]
        return [perm[i * g : (i + 1) * g] for i in range(n)]

    def rank_batches(self, epoch: int, rank: int, start: int = 0) -> list[list[int]]:
        return [b[rank * self.micro : (rank + 1) * self.micro] for b in self.global_batches(epoch)[start:]]


def estimate_length(sample: Sample, tokens_per_modality: int) -> int:
    """A cheap length proxy for bucketing (characters / 4 + media tokens)."""
    text = (sample.subtitle or "") + (sample.coarse or "") + (sample.fine or "")
    return len(text) // 4 + tokens_per_modality


def collate_training(
    system: EmoSystem,
    recipe: PromptContract,
    featurizer: Featurizer,
    samples: Sequence[Sample],
    root: str | os.PathLike[str] | None,
    indices: Sequence[int],
    epoch: int,
    seed: int,
    modality_dropout: float = 0.0,
    subtitle_dropout: float = 0.0,
) -> dict[str, Any]:
    """One micro-batch: ``input_ids``/``attention_mask``/``labels`` ``[b, L]`` and ``features``."""
    chosen = [samples[i] for i in indices]
    feats = featurizer(chosen, root, system.modalities)
    encs = []
    kept = []
    skipped = 0
    for i, s, f in zip(indices, chosen, feats, strict=True):
        rng = random.Random(_seed(seed, "sample", epoch, i))
        mods = [m for m in system.modalities if m in f.features]
        if modality_dropout > 0:
            mods = [m for m in mods if rng.random() >= modality_dropout]
            f.features = {m: f.features[m] for m in mods}
        task = recipe.sample_task(s, rng)
        if task is None:
            skipped += 1
            continue
        pidx = rng.randrange(len(recipe.task(task).prompts))
        sub: bool | None = None
        if recipe.subtitle == "random":
            sub = rng.random() < recipe.subtitle_prob
        if subtitle_dropout > 0 and rng.random() < subtitle_dropout:
            sub = False
        conv = recipe.conversation(s, task, mods, prompt_index=pidx, include_subtitle=sub)
        encs.append(system.processor.encode(conv))
        kept.append(f)
    if not encs:
        raise ValueError(
            f"no sample in batch {list(indices)} has an answer for any task of prompt contract {recipe.name!r}"
        )
    batch = system.processor.collate(encs, padding_side="right")
    batch["features"] = stack_features(kept, system.modalities)
    batch["n_samples"] = len(encs)
    batch["n_skipped"] = skipped
    batch["n_tokens"] = int(batch["attention_mask"].sum())
    return batch


def answer_positions(labels: torch.Tensor) -> torch.Tensor:
    """Boolean ``[B, L]``: positions whose logits predict an answer token (for ``logits_to_keep``)."""
    keep = torch.zeros_like(labels, dtype=torch.bool)
    keep[:, :-1] = labels[:, 1:] != -100
    return keep


def answer_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over samples of the mean next-token cross-entropy over that sample's answer tokens.

    ``logits`` is either ``[B, L, V]`` or the answer positions only, ``[N, V]`` / ``[1, N, V]`` in
    row-major order of ``answer_positions(labels)`` (what the LLM returns with
    ``logits_to_keep=answer_positions(labels)``, which skips the vocabulary projection elsewhere).
    ``labels [B, L]`` (-100 where no loss). Per-sample averaging makes the gradient of a global batch
    independent of how it is split across ranks and micro-batches."""
    tgt = labels[:, 1:]
    mask = tgt != -100
    if not bool(mask.any()):
        raise ValueError("batch has no answer tokens (every label is -100)")
    n = int(mask.sum())
    if logits.dim() == 3 and logits.shape[:2] == labels.shape:
        sel = logits[:, :-1][mask].float()  # [N, V]
    else:
        sel = logits.reshape(-1, logits.shape[-1]).float()
        if sel.shape[0] != n:
            raise ValueError(f"got logits for {sel.shape[0]} positions but the labels have {n} answer tokens")
    tok = torch.nn.functional.cross_entropy(sel, tgt[mask], reduction="none")  # [N]
    counts = mask.sum(1)  # [B]
    sample_idx = torch.arange(labels.shape[0], device=labels.device).repeat_interleave(counts)
    per = torch.zeros(labels.shape[0], device=tok.device, dtype=tok.dtype).index_add_(0, sample_idx, tok)
    valid = counts > 0
    return (per[valid] / counts[valid]).mean()
