"""Instruction mixtures and pools: the YAML a training stage names, before it becomes a prompt contract.

A mixture (``data_recipes/mixtures/*.yaml``) names tasks with weights. Each task has a tag
(``[emotion]``, ``[reason]``...), an instruction pool in ``prompts/instructions/`` and the Sample
field that is the answer::

    name: stage1_coarse
    subtitle: include                    # include | omit | random
    tasks:
      emotion: {weight: 1.0, pool: emotion, target: label}
      reason:  {weight: 1.0, pool: describe, target: coarse}

Training resolves each stage's mixture into a :class:`emollm.data.contract.PromptContract` (the pool
texts themselves, tags, subtitle rule, labels), saves it with every checkpoint, and every job renders
conversations from that contract only::

    mix = load_mixture("data_recipes/mixtures/stage1_coarse.yaml")
    load_pool("describe")        # ("Describe the person's ...", ...)
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, field_validator

from emollm.config import Strict, load_config
from emollm.paths import resolve_resource

Target = Literal["label", "coarse", "fine", "openset"]


class TaskSpec(Strict):
    weight: float = Field(1.0, ge=0)
    pool: str = "emotion"
    """Instruction pool name (prompts/instructions/<pool>.yaml) or a path to such a file."""
    target: Target = "label"
    tag: str | None = None
    """Task tag shown as ``[tag]``; defaults to the task name. Empty string: no tag."""
    answer_format: Literal["label", "text", "list", "think_answer"] | None = None
    """None: from the target (label -> label, coarse/fine -> text, openset -> list). ``think_answer``:
    ``<think>reasoning</think><answer>gold</answer>`` (RL stages; SFT teaches it from fine/coarse)."""


class MixtureConfig(Strict):
    name: str = "mixture"
    tasks: dict[str, TaskSpec] = Field(default_factory=lambda: {"emotion": TaskSpec()})
    subtitle: Literal["include", "omit", "random"] = "include"
    subtitle_prob: float = Field(0.5, ge=0, le=1)
    """Probability of including the subtitle when ``subtitle: random``."""
    subtitle_template: str = "The person in video says: {subtitle} "
    label_separator: str = ", "

    @field_validator("tasks")
    @classmethod
    def _nonempty(cls, v: dict[str, TaskSpec]) -> dict[str, TaskSpec]:
        if not v:
            raise ValueError("a mixture needs at least one task")
        if sum(t.weight for t in v.values()) <= 0:
            raise ValueError("task weights must not all be zero")
        return v


def load_mixture(path: str | Path) -> MixtureConfig:
    return load_config(MixtureConfig, resolve_resource(path, "instruction mixture"))


@functools.lru_cache(maxsize=64)
def load_pool(name_or_path: str) -> tuple[str, ...]:
    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml"):
        p = Path("prompts") / "instructions" / f"{name_or_path}.yaml"
    f = resolve_resource(p, "instruction pool")
    data = yaml.safe_load(f.read_text(encoding="utf-8")) or {}
    prompts = data.get("prompts")
    if not isinstance(prompts, list) or not prompts or not all(isinstance(x, str) and x.strip() for x in prompts):
        raise ValueError(f"{f}: expected a non-empty list of strings under 'prompts'")
    return tuple(prompts)
