"""``EvalOptions``: everything ``emollm eval`` takes, as one typed model (light: no torch, no numpy).

The command line is generated from it (``emollm.evaluation.commands``: a field is an option, its
docstring the help), and ``emollm.evaluation.plan`` turns it into a plan::

    opts = EvalOptions(checkpoint="runs/mini/final", suite="eval/suites/synthmer.yaml")
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from emollm.answers import ReadingMode
from emollm.config import Strict
from emollm.inference.remote import EndpointConfig


class EvalOptions(Strict):
    """Everything ``emollm eval`` takes (see docs/EVALUATION.md)."""

    checkpoint: str = ""
    """A checkpoint folder (trainable.safetensors + model.yaml) or a preset name (zero-shot); with
    ``backend: openai`` it may be empty (the endpoint's model is evaluated)."""
    backend: Literal["local", "native", "openai"] = "local"
    """local: an emollm checkpoint or preset in this process; native: the same for a native multimodal model
    (a native preset or checkpoint, or a released Qwen2-Audio / Qwen2.5-Omni / Qwen2-VL folder), checked to
    be one; openai: an OpenAI-compatible endpoint."""
    endpoint: EndpointConfig | None = None
    """The endpoint (``backend: openai``): base URL, model, media parts, concurrency, retries, cache."""
    tasks: list[str] = Field(default_factory=list)
    """Task names (eval/tasks) or YAML paths; each runs its base condition."""
    suite: str | None = None
    """A suite YAML (eval/suites/*.yaml) or suite name; tasks with their analyses."""
    out: str | None = None
    """Output folder; default runs/eval/<checkpoint name>."""
    roots: dict[str, str] = Field(default_factory=dict)
    """Data roots and resources by name (--root NAME=DIR)."""
    limit: int | None = Field(None, gt=0)
    """At most this many samples per task (the first ones of the split)."""
    shard: tuple[int, int] = (0, 1)
    """(index, count): this process runs blocks index, index+count, ... of ``batch_size`` samples (keep the
    batch size equal across shards)."""
    merge: bool = False
    """Only combine the records of all shards and write the report (no model is loaded)."""
    batch_size: int = Field(16, gt=0)
    device: str | None = None
    features: str = "runs/features"
    """Feature cache folder (shared with training and extraction)."""
    feature_mode: Literal["auto", "cache", "live"] = "auto"
    modalities: str = "auto"
    """Base condition input: auto (all modalities for a checkpoint, subtitle only for a preset), all, none,
    or a comma list of model modalities."""
    reading: ReadingMode | None = None
    """Override the reading of generated labels (clean | published) for every task."""
    method: Literal["score_labels", "generate"] | None = None
    """Override how classification tasks answer (constrained scoring or free text)."""
    judge: str | None = None
    """An LLM judge config YAML (``JudgeConfig``) for explanation tasks; overrides the suite's."""
    extractor: str | None = None
    """An ``ExtractorConfig`` YAML: open-set and sentiment answers are read by that LLM (AffectGPT's producer
    step, ``emollm.evaluation.extract``) instead of the deterministic readers."""
    progress: bool = True

    @model_validator(mode="after")
    def _backend(self) -> EvalOptions:
        if self.backend == "openai" and self.endpoint is None:
            raise ValueError("backend openai needs an endpoint (--base-url URL --model NAME)")
        if self.backend in ("local", "native") and not self.checkpoint:
            raise ValueError(
                f"a {self.backend} run needs --checkpoint (a checkpoint folder, a preset or a model folder)"
            )
        return self

    @field_validator("shard")
    @classmethod
    def _shard(cls, v: tuple[int, int]) -> tuple[int, int]:
        i, n = v
        if n < 1 or not 0 <= i < n:
            raise ValueError(f"shard {i}/{n}: expected i/n with 0 <= i < n")
        return v
