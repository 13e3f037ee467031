"""Training recipes: the typed schema of ``train/*.yaml``.

    name: mini
    preset: mini                  # model preset; `model:` below is merged over it
    model: {lora: {r: 16}}
    data:
      corpus: data_recipes/synthmer.yaml
      features: {mode: auto, cache_dir: runs/features}
    stages:
      - {name: stage1_coarse, mixture: data_recipes/mixtures/stage1_coarse.yaml, epochs: 2}
      - {name: stage2_fine, mixture: data_recipes/mixtures/stage2_fine.yaml, epochs: 1, lr_lora: 5.0e-5}

    cfg = load_run_config("train/mini.yaml", ["stages.0.epochs=1", "precision=bf16"])

Every stage trains projectors + LoRA with its own mixture and optimiser; stage *k+1* starts from stage
*k*'s final weights. Effective batch = micro_batch_size x grad_accum x world size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from emollm.config import (
    ConfigError,
    ModelConfig,
    Strict,
    apply_overrides,
    deep_merge,
    read_yaml,
    validate,
)


class FeatureConfig(Strict):
    mode: Literal["auto", "cache", "live"] = "auto"
    """auto: compute what the cache lacks; cache: require `emollm extract` output; live: no cache."""
    cache_dir: str = "runs/features"
    batch_size: int = Field(16, gt=0)


class DataConfig(Strict):
    corpus: str
    """A data recipe (data_recipes/*.yaml) or a prepared manifest folder."""
    train_split: str = "train"
    val_split: str | None = "val"
    """Held-out split for validation (None: no validation)."""
    prepare_if_missing: bool = False
    """Run `emollm prepare` on `corpus` first when its manifest does not exist yet (the demo does)."""
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    num_workers: int = Field(0, ge=0)
    length_bucketing: bool = True
    """Group samples of similar length into batches (less padding, faster)."""


class RLConfig(Strict):
    """GRPO-family RL of an ``kind: rl`` stage (option names as TRL's GRPOConfig; emollm.training.rl)."""

    group_size: int = Field(8, ge=2)
    """G: completions sampled per prompt (TRL num_generations)."""
    prompts_per_step: int = Field(4, gt=0)
    """Prompts per process per optimiser step (each gives group_size completions)."""
    max_new_tokens: int = Field(64, gt=0)
    """Completion length cap (TRL max_completion_length; dr_grpo divides by it)."""
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    beta: float = Field(0.04, ge=0)
    """KL coefficient (k3 estimator) to the reference policy; 0 skips the reference forward."""
    reference: Literal["lora_disabled", "stage_start"] = "lora_disabled"
    """lora_disabled: the same model with its LoRA adapters off (peft disable_adapter, no copy);
    stage_start: the trainable weights (LoRA + projectors) as this stage began, swapped in for the
    reference forward (a copy of the small trainable part only: KL to the SFT policy)."""
    epsilon: float = Field(0.2, gt=0)
    """Lower clip of the probability ratio (1 - epsilon)."""
    epsilon_high: float | None = Field(None, gt=0)
    """Upper clip (1 + epsilon_high; DAPO clip-higher 0.28); None: epsilon."""
    loss_type: Literal["grpo", "dapo", "dr_grpo"] = "grpo"
    """grpo: mean over each completion's tokens, then over completions (length-biased); dapo: sum over
    every token of the global batch / their count (token-level); dr_grpo: sum / (completions x max_new_tokens)."""
    scale_rewards: Literal["group", "batch", "none"] = "group"
    """Advantage = (r - group mean) / std (of the group, of the batch, or not scaled: Dr.GRPO)."""
    dynamic_sampling: bool = False
    """DAPO dynamic sampling: groups whose rewards all agree (zero variance) leave the loss and its
    token count instead of contributing zero-advantage tokens."""
    dynamic_sampling_max_rounds: int = Field(0, ge=0)
    """DAPO refill: up to this many extra rollout rounds per step, each on the next ``prompts_per_step``
    prompts of the epoch plan, until the step has ``prompts_per_step`` groups with reward variance (per
    process; the plan advances past every prompt rolled out). 0: no refill (needs dynamic_sampling)."""
    num_iterations: int = Field(1, gt=0)
    """Optimiser steps per rollout batch (TRL num_iterations, mu); >1 uses the clipped ratio for real."""
    rewards: list[dict[str, Any]] = Field(default_factory=lambda: [{"name": "label", "weight": 1.0}], min_length=1)
    """Reward components {name, weight, options} (emollm.training.rewards: format, label, wheel_f1,
    hitrate, valence, consistency, judge)."""
    shared_prefix: bool = True
    """Roll out the G completions of a prompt from one prefill whose KV cache is expanded G times (False:
    G separate prefills; the bench reference)."""
    log_completions: int = Field(2, ge=0)
    """Completions written to rl_samples.jsonl per logging step (rank 0)."""

    @model_validator(mode="after")
    def _refill(self) -> RLConfig:
        if self.dynamic_sampling_max_rounds and not self.dynamic_sampling:
            raise ValueError(
                "rl.dynamic_sampling_max_rounds refills zero-variance groups; it needs dynamic_sampling: true"
            )
        return self


class StageConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Stage name: its checkpoints go to runs/<run>/<stage>/."""
    kind: Literal["sft", "rl"] = "sft"
    """sft: next-token cross-entropy on the mixture's answers; rl: GRPO with verifiable rewards (`rl`)."""
    rl: RLConfig | None = None
    """RL settings of a ``kind: rl`` stage (defaults when omitted)."""
    mixture: str = "data_recipes/mixtures/emotion_only.yaml"
    """Instruction mixture (data_recipes/mixtures/*.yaml): tasks, weights, subtitles."""
    epochs: float = Field(1.0, gt=0)
    """Passes over the training split (fractions allowed); ignored when max_steps is set."""
    max_steps: int | None = Field(None, gt=0)
    """Optimiser steps for this stage (overrides epochs)."""
    micro_batch_size: int = Field(8, gt=0)
    """Samples per process per forward pass."""
    grad_accum: int = Field(1, gt=0)
    """Micro-batches per optimiser step (effective batch = micro x accum x world size)."""
    lr_projector: float = Field(1e-3, ge=0)
    """Peak learning rate of the projectors."""
    lr_lora: float = Field(2e-4, ge=0)
    """Peak learning rate of the LoRA adapters."""
    weight_decay: float = Field(0.05, ge=0)
    """AdamW decay (not applied to biases and 1-d weights)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    warmup_steps: int | None = Field(None, ge=0)
    """Linear warm-up steps (overrides warmup_ratio)."""
    warmup_ratio: float = Field(0.05, ge=0, le=1)
    """Warm-up as a fraction of the stage's steps."""
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    """Decay after warm-up."""
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    """Cosine/linear decay ends at this fraction of the peak learning rate."""
    max_grad_norm: float | None = Field(1.0, gt=0)
    """Clip the global gradient norm (None: no clipping)."""
    modality_dropout: float = Field(0.0, ge=0, lt=1)
    """Drop each modality of a training sample with this probability (its placeholder and features go)."""
    subtitle_dropout: float = Field(0.0, ge=0, lt=1)
    """Drop the subtitle of a training sample with this probability."""
    eval_every: int | None = Field(None, gt=0)
    """Validate every N optimiser steps (and at the end of the stage); None: only at the end."""
    eval_samples: int | None = Field(None, gt=0)
    """Cap on validation samples (None: the whole split)."""
    save_every: int | None = Field(None, gt=0)
    """Write a resumable checkpoint every N optimiser steps (the final one is always written)."""
    keep_last: int = Field(2, ge=1)
    """Keep this many step checkpoints (best and final are always kept)."""
    log_every: int = Field(10, gt=0)
    """Log training metrics every N optimiser steps."""

    @model_validator(mode="after")
    def _kind(self) -> StageConfig:
        if self.kind == "rl" and self.rl is None:
            self.rl = RLConfig()
        if self.kind == "sft" and self.rl is not None:
            raise ValueError(f"stage {self.name!r}: `rl` settings need `kind: rl`")
        return self


class DistributedConfig(Strict):
    strategy: Literal["auto", "ddp", "deepspeed", "fsdp"] = "auto"
    """auto: DDP when launched with several processes (torchrun), else single process."""
    deepspeed_config: str | None = None
    """DeepSpeed JSON (train/deepspeed/zero2.json ...); required with strategy deepspeed."""
    backend: Literal["auto", "nccl", "gloo"] = "auto"
    find_unused_parameters: bool = False


class LoggingConfig(Strict):
    tensorboard: bool = True
    wandb: bool = False
    """Log to Weights & Biases when the package is installed (never required)."""
    wandb_project: str = "emollm"


class RunConfig(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Run name: the default output folder is runs/<name>."""
    preset: str | None = None
    """Model preset the `model` section is merged over (tiny, mini, emotion-llama)."""
    model: ModelConfig
    """The model (merged over `preset`)."""
    data: DataConfig
    """Corpus, splits and features."""
    stages: list[StageConfig] = Field(min_length=1)
    """Training stages, run in order; each starts from the previous stage's final weights."""
    output_dir: str | None = None
    """Default runs/<name>."""
    init_from: str | None = None
    """Start from these trainable weights: an emollm checkpoint folder or an Emotion-LLaMA .pth."""
    seed: int = 0
    """Seeds data order, task draws, dropout and projector initialisation."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "fp32"
    """Mixed precision: auto = bf16 where it is fast (GPUs with bf16, CPUs with AVX512-BF16/AMX), else fp32."""
    gradient_checkpointing: bool = False
    """Recompute LLM activations in the backward pass (less memory, about 30% more time)."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """auto: CUDA when available (the local rank's GPU under torchrun), else CPU."""
    distributed: DistributedConfig = Field(default_factory=DistributedConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @model_validator(mode="after")
    def _checks(self) -> RunConfig:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must be unique, got {names}")
        if any(s.kind == "rl" for s in self.stages) and self.distributed.strategy == "fsdp":
            raise ValueError(
                "rl stages run single-process, DDP or DeepSpeed ZeRO-0/1/2, not fsdp: FSDP2 shards the parameters "
                "into DTensors that only the root module's forward gathers, while rollouts call the model's "
                "prefill/decode and reference: stage_start copies full tensors into the weights"
            )
        if self.distributed.strategy == "deepspeed" and not self.distributed.deepspeed_config:
            raise ValueError("distributed.deepspeed_config is required with strategy deepspeed")
        if self.precision == "fp16" and self.distributed.strategy != "deepspeed" and self.device == "cpu":
            raise ValueError("fp16 mixed precision needs a GPU; use bf16 or fp32 on CPU")
        return self

    @property
    def out_dir(self) -> Path:
        return Path(self.output_dir) if self.output_dir else Path("runs") / self.name

    @classmethod
    def expand_presets(cls, data: dict[str, Any]) -> dict[str, Any]:
        from emollm.model.presets import preset_dict

        preset = data.get("preset")
        if preset:
            data = dict(data)
            data["model"] = deep_merge(preset_dict(preset), data.get("model") or {})
        return data


def load_run_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a training recipe, merge the preset, apply ``key=value`` overrides (``stages.0.epochs=2``
    addresses a stage by index), validate."""
    data = read_yaml(path)
    data = _apply_with_lists(data, list(overrides))
    try:
        data = RunConfig.expand_presets(data)
    except KeyError as e:
        raise ConfigError(f"{path}: {e.args[0]}") from None
    return validate(RunConfig, data, str(path))


def _apply_with_lists(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Like apply_overrides, but ``stages.N.key=value`` indexes into the stages list."""
    plain = []
    for o in overrides:
        key, sep, raw = o.partition("=")
        parts = key.split(".")
        if sep and len(parts) >= 3 and parts[0] == "stages" and parts[1].isdigit():
            idx = int(parts[1])
            stages = data.get("stages") or []
            if idx >= len(stages):
                raise ConfigError(f"override {o!r}: there are only {len(stages)} stages")
            stages[idx] = apply_overrides(dict(stages[idx]), [".".join(parts[2:]) + "=" + raw])
        else:
            plain.append(o)
    return apply_overrides(data, plain)
