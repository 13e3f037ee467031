"""The typed settings of every ``emollm bench`` command, light (pydantic only), so the command line is
generated from them at start-up without importing torch: each field is an option, its docstring the help.

    cfg = TrainBenchConfig.model_validate({"workload": {"preset": "tiny", "samples": 16}, "steps": 2})

``WorkloadConfig`` (which model, which data, how many samples) is shared by train, eval and generate.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from emollm.config import Strict
from emollm.device import Precision


class SynthTextConfig(Strict):
    """Lengths of synthetic texts (the sequence-length knob of the sweeps)."""

    subtitle_sentences: int = Field(1, ge=0)
    """SynthMER pool sentences per subtitle (about 8 words each)."""
    answer_words: int = Field(40, ge=1)
    """Approximate words of each coarse/fine description (the training answers of the reason tasks)."""


class WorkloadConfig(Strict):
    preset: str = "tiny"
    """A bench preset (tiny, tiny-fast, mini, emotion-llama-shapes, the native tiny-qwen2-audio, tiny-qwen2.5-omni,
    tiny-qwen2-vl) or an emollm checkpoint folder."""
    corpus: str | None = None
    """``synthetic``, a prepared manifest folder or a data recipe; None: the preset's default."""
    split: str | None = None
    """Manifest split to take samples from (None: all)."""
    samples: int = Field(32, gt=0)
    """Samples in the workload (the preset's default)."""
    seed: int = 0
    """Seed of the workload (samples drawn, random features)."""
    cache_dir: str = "runs/bench/features"
    """Feature cache for manifest data."""
    text: SynthTextConfig = Field(default_factory=SynthTextConfig)
    shape: dict[str, Any] = Field(default_factory=dict)
    """emotion-llama-shapes overrides (ShapeConfig fields, e.g. num_hidden_layers=2)."""
    overrides: list[str] = Field(default_factory=list)
    """Model config overrides for presets and checkpoints (``llm.dtype=float32``...)."""
    gradient_checkpointing: bool = False
    """Recompute LLM activations in the backward pass."""
    allow_slow: bool = False
    """Allow emotion-llama-shapes at full size on a CPU."""


class TrainBenchConfig(Strict):
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    mixture: str = "data_recipes/mixtures/emotion_only.yaml"
    """Instruction mixture YAML the training samples are drawn with."""
    batch_size: int = Field(8, gt=0)
    """Micro-batch size of the fast path (the reference always uses 1)."""
    grad_accum: int = Field(1, gt=0)
    """Micro-batches per optimiser step (fast path)."""
    steps: int = Field(4, gt=0)
    """Timed optimiser steps of the fast path."""
    warmup_steps: int = Field(1, ge=0)
    """Untimed fast-path steps before timing."""
    ref_samples: int = Field(8, gt=0)
    """Timed reference steps (one sample each)."""
    ref_warmup: int = Field(1, ge=0)
    """Untimed reference steps."""
    precision: Precision = "auto"
    """Fast-path autocast; auto: see ``fast_precision``."""
    bucket: bool = True
    """Length-bucketed micro-batches."""
    lr: float = Field(1e-4, ge=0)
    """Learning rate of both paths."""


class EvalBenchConfig(Strict):
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    batch_size: int = Field(16, gt=0)
    """Fast-path batch size (label scoring)."""
    repeats: int = Field(3, gt=0)
    """Timed passes of the fast path over all samples (the median is reported)."""
    ref_samples: int = Field(8, gt=0)
    """Samples the reference answers one at a time (the first ones of the workload)."""
    ref_max_new_tokens: int = Field(500, gt=0)
    """Reference generation cap (stops at EOS)."""
    ref_answer_tokens: int | None = Field(None, gt=0)
    """Answer length for the short-answer estimate (None: the longest label's tokens incl. end of turn)."""
    precision: Precision = "auto"
    """Fast-path autocast (``fast_precision``: bf16 on a GPU, on a CPU only with AMX and hidden >= 512).
    The reference casts the frozen weights to fp16 on a GPU (as Emotion-LLaMA) and fp32 on a CPU."""


class GenerateBenchConfig(Strict):
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    task: str = "reason"
    """Instruction task (emotion, reason, describe, openset)."""
    batch_size: int = Field(16, gt=0)
    """Fast-path batch size (left-padded, KV cache)."""
    max_new_tokens: int = Field(32, gt=0)
    """Tokens generated per sample."""
    ignore_eos: bool = True
    """Generate exactly max_new_tokens (default) or stop at EOS."""
    ref_samples: int = Field(8, gt=0)
    """Samples the reference generates one at a time."""


class ExtractBenchConfig(Strict):
    preset: str = "tiny-fast"
    """Model preset or checkpoint whose encoders run (the LLM is not loaded)."""
    corpus: str
    """A prepared manifest folder or data recipe (media files are needed)."""
    split: str | None = None
    """Manifest split to take samples from (None: all)."""
    samples: int = Field(24, gt=0)
    """Samples whose features are extracted."""
    batch_size: int = Field(16, gt=0)
    """Encoder batch size."""
    change: str | None = None
    """``modality.option=value`` for pass 3 (None: a default change)."""
    cache_dir: str | None = None
    """Parent folder for the fresh cache (None: the system temp folder)."""
    keep_cache: bool = False
    """Keep the cache folder afterwards."""


class RLBenchConfig(Strict):
    workload: WorkloadConfig = Field(default_factory=WorkloadConfig)
    mixture: str = "data_recipes/mixtures/rl_emotion.yaml"
    """Instruction mixture YAML the prompts are drawn with."""
    group_size: int = Field(8, ge=2)
    """Completions per prompt (G)."""
    batch_size: int = Field(4, gt=0)
    """Prompts per rollout call of the fast path."""
    max_new_tokens: int = Field(32, gt=0)
    """Tokens generated per completion."""
    ignore_eos: bool = True
    """Generate exactly max_new_tokens (default) or stop at EOS."""
    micro_batch_size: int = Field(16, gt=0)
    """Completions per forward/backward chunk of the fast update."""
    ref_prompts: int = Field(2, gt=0)
    """Prompts the reference runs (group_size rollouts each, one at a time)."""
    temperature: float = Field(1.0, gt=0)
    """Sampling temperature of the rollouts."""
