"""Instruction recipes: turn a manifest Sample into a Conversation for a task.

A mixture (``data_recipes/mixtures/*.yaml``) names tasks with weights. Each task has a tag
(``[emotion]``, ``[reason]``...), an instruction pool in ``prompts/instructions/`` and the Sample
field that is the answer::

    name: stage1_coarse
    subtitle: include                    # include | omit | random
    tasks:
      emotion: {weight: 1.0, pool: emotion, target: label}
      reason:  {weight: 1.0, pool: describe, target: coarse}

The user turn is, in this order: one media part per available modality (model order), the
subtitle sentence ("The person in video says: ..."), then ``[tag] instruction``. The label list in
classification instructions is the model's label space in canonical order, so the labels a model
is trained on are the labels eval scores.

    recipe = InstructionRecipe(load_mixture("data_recipes/mixtures/stage1_coarse.yaml"), label_space("mer6"))
    conv = recipe.conversation(sample, "emotion", modalities=["audio", "face"], prompt_index=0)
    task = recipe.sample_task(sample, rng)   # weighted choice among tasks whose target the sample has
"""

from __future__ import annotations

import functools
import random
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, field_validator

from emollm.config import Strict, load_config
from emollm.data.conversation import Conversation, Media, Message
from emollm.data.sample import Sample
from emollm.labels import LabelSpace
from emollm.paths import resolve_resource

Target = Literal["label", "coarse", "fine", "openset"]


class TaskSpec(Strict):
    weight: float = Field(1.0, ge=0)
    pool: str = "emotion"
    """Instruction pool name (prompts/instructions/<pool>.yaml) or a path to such a file."""
    target: Target = "label"
    tag: str | None = None
    """Task tag shown as ``[tag]``; defaults to the task name. Empty string: no tag."""


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


def _clean_subtitle(text: str) -> str:
    t = " ".join(text.split())
    return t if t.endswith((".", "!", "?", "。", "！", "？")) else t + "."


class InstructionRecipe:
    def __init__(self, mixture: MixtureConfig, labels: LabelSpace) -> None:
        self.mixture = mixture
        self.labels = labels
        for name, t in mixture.tasks.items():
            pool = load_pool(t.pool)
            if t.target == "label" and not any("{labels}" in p for p in pool):
                raise ValueError(
                    f"mixture {mixture.name!r}: task {name!r} targets labels but pool {t.pool!r} never lists {{labels}}"
                )

    def label_list(
        self, order: list[str] | None = None, forms: dict[str, str] | None = None, sep: str | None = None
    ) -> str:
        labs = order or list(self.labels.labels)
        if forms:
            labs = [forms.get(x, x) for x in labs]
        return (sep if sep is not None else self.mixture.label_separator).join(labs)

    def target(self, sample: Sample, task: str) -> str | None:
        t = self.mixture.tasks[task].target
        if t == "label":
            return sample.label
        if t == "coarse":
            return sample.coarse
        if t == "fine":
            return sample.fine
        return ", ".join(sample.openset) if sample.openset else None

    def available_tasks(self, sample: Sample) -> list[str]:
        return [n for n, t in self.mixture.tasks.items() if t.weight > 0 and self.target(sample, n)]

    def sample_task(self, sample: Sample, rng: random.Random) -> str | None:
        """A weighted random task whose answer this sample has, or None (reported as skipped)."""
        avail = self.available_tasks(sample)
        if not avail:
            return None
        weights = [self.mixture.tasks[n].weight for n in avail]
        return rng.choices(avail, weights=weights, k=1)[0]

    def instruction(self, task: str, prompt_index: int = 0, label_order: list[str] | None = None) -> str:
        spec = self.mixture.tasks[task]
        pool = load_pool(spec.pool)
        text = pool[prompt_index % len(pool)]
        if "{labels}" in text:
            text = text.replace("{labels}", self.label_list(label_order))
        tag = task if spec.tag is None else spec.tag
        return f"[{tag}] {text}" if tag else text

    def user_message(
        self,
        sample: Sample,
        task: str,
        modalities: list[str],
        prompt_index: int = 0,
        include_subtitle: bool | None = None,
        instruction: str | None = None,
    ) -> Message:
        parts: list[str | Media] = [Media(m) for m in modalities]
        if include_subtitle is None:
            include_subtitle = self.mixture.subtitle != "omit"
        text = ""
        if include_subtitle and sample.subtitle and sample.subtitle.strip():
            text += self.mixture.subtitle_template.format(subtitle=_clean_subtitle(sample.subtitle))
        text += instruction if instruction is not None else self.instruction(task, prompt_index)
        lead = " " if modalities else ""
        parts.append(lead + text)
        return Message("user", parts)

    def conversation(
        self,
        sample: Sample,
        task: str,
        modalities: list[str],
        prompt_index: int = 0,
        with_answer: bool = True,
        include_subtitle: bool | None = None,
        instruction: str | None = None,
    ) -> Conversation:
        if task not in self.mixture.tasks:
            raise KeyError(f"task {task!r} not in mixture {self.mixture.name!r}; tasks: {list(self.mixture.tasks)}")
        msgs = [self.user_message(sample, task, modalities, prompt_index, include_subtitle, instruction)]
        if with_answer:
            ans = self.target(sample, task)
            if not ans:
                raise ValueError(f"sample {sample.id!r} has no {self.mixture.tasks[task].target!r} for task {task!r}")
            msgs.append(Message("assistant", [ans]))
        return Conversation(msgs, sample_id=sample.id)

    def training_conversation(self, sample: Sample, modalities: list[str], rng: random.Random) -> Conversation | None:
        task = self.sample_task(sample, rng)
        if task is None:
            return None
        spec = self.mixture.tasks[task]
        idx = rng.randrange(len(load_pool(spec.pool)))
        sub = None
        if self.mixture.subtitle == "random":
            sub = rng.random() < self.mixture.subtitle_prob
        return self.conversation(sample, task, modalities, prompt_index=idx, include_subtitle=sub)


def classification_mixture() -> MixtureConfig:
    """The plain classification mixture eval and chat use when a run names none."""
    return MixtureConfig(name="emotion", tasks={"emotion": TaskSpec(pool="emotion", target="label")})
