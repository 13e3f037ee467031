"""The prompt contract: everything that decides what a model is asked, saved with every checkpoint.

A contract holds the tasks a model was trained on (their ``[tag]``, the instruction texts themselves,
the Sample field that is the answer and the answer format), the subtitle rule and template, the system
prompt, and the label list with its separator. It is resolved from the training mixtures when training
starts, written as ``prompt_contract.yaml`` beside ``model.yaml`` in every checkpoint (steps, best,
final), and loaded with the system. Training collate, eval (whose prompt variants are transformations
of the contract), predict, chat, serve and bench build conversations only through it, so what a model
was trained on is what every job asks it::

    contract = PromptContract.from_mixture(load_mixture("data_recipes/mixtures/stage1_coarse.yaml"), space)
    contract = contract.over(default_contract(space))       # tasks it did not train keep the defaults
    conv = contract.conversation(sample, "reason", ["audio", "face"], with_answer=False)
    contract.instruction("emotion", 0)                      # "[emotion] Please determine ...: neutral, angry, ..."
    contract.save("runs/x/final"); PromptContract.load("runs/x/final")

A preset (zero-shot) uses :func:`default_contract`. A checkpoint saved before contracts existed loads
with the default and says so once (:func:`load_contract`).

The user turn is, in this order: one media part per available modality (model order), the subtitle
sentence (``subtitle_template``), then ``[tag] instruction``. ``{labels}`` in an instruction is the
label list in canonical order joined by ``label_separator``.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, field_validator, model_validator

from emollm.config import Strict
from emollm.data.conversation import Conversation, Media, Message
from emollm.data.instructions import MixtureConfig, Target, load_pool
from emollm.data.sample import Sample
from emollm.labels import LabelSpace
from emollm.log import get_logger

log = get_logger(__name__)

CONTRACT_FILE = "prompt_contract.yaml"
CONTRACT_VERSION = 1
AnswerFormat = Literal["label", "text", "list", "think_answer"]
_FORMAT_OF: dict[str, AnswerFormat] = {"label": "label", "coarse": "text", "fine": "text", "openset": "list"}
ChatKind = Literal["label", "explain", "openset"]
_SUBTITLE_ENDS = (".", "!", "?", "。", "！", "？")


class ContractTask(Strict):
    """One task of the contract: how it is asked and what its answer is."""

    tag: str
    """Shown as ``[tag]`` before the instruction; empty: no tag."""
    prompts: list[str] = Field(min_length=1)
    """The instruction texts (index 0 is the one inference asks by default)."""
    target: Target
    """The Sample field that is the answer: label, coarse, fine or openset."""
    answer_format: AnswerFormat
    """label: one label of the label list; text: free text; list: comma-separated emotion words;
    think_answer: ``<think>reasoning</think><answer>gold</answer>`` (the gold is the target field)."""
    pool: str = ""
    """The instruction pool the prompts came from (provenance only: the texts above are what is asked)."""
    weight: float = Field(1.0, ge=0)
    """Training weight (the share of samples asked this task)."""
    trained: bool = False
    """True when the checkpoint was trained on this task (False: a default the model never saw)."""

    @field_validator("prompts")
    @classmethod
    def _texts(cls, v: list[str]) -> list[str]:
        bad = [i for i, p in enumerate(v) if not isinstance(p, str) or not p.strip()]
        if bad:
            raise ValueError(f"prompts {bad} are empty")
        return v


class PromptContract(Strict):
    """Everything that decides what the model is asked. See the module docstring."""

    version: int = CONTRACT_VERSION
    name: str = "default"
    """The mixture(s) it was resolved from, e.g. ``stage1_coarse+stage2_fine``."""
    source: Literal["default", "training"] = "default"
    """default: a preset's (or an old checkpoint's) contract; training: resolved when training started."""
    system_prompt: str | None = None
    """A system message for every conversation (None: the chat template's default)."""
    subtitle: Literal["include", "omit", "random"] = "include"
    """Training rule; inference includes the subtitle unless the rule is ``omit``."""
    subtitle_prob: float = Field(0.5, ge=0, le=1)
    subtitle_template: str = "The person in video says: {subtitle} "
    label_space: str = "mer6"
    labels: list[str] = Field(min_length=2)
    """The label list in canonical order (what ``{labels}`` shows and classification scores)."""
    label_separator: str = ", "
    tasks: dict[str, ContractTask] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> PromptContract:
        if self.version > CONTRACT_VERSION:
            raise ValueError(f"prompt contract version {self.version} is newer than this emollm ({CONTRACT_VERSION})")
        if "{subtitle}" not in self.subtitle_template:
            raise ValueError(f"subtitle_template must contain {{subtitle}}, got {self.subtitle_template!r}")
        for name, t in self.tasks.items():
            asks_label = t.answer_format == "label" or (t.answer_format == "think_answer" and t.target == "label")
            if asks_label and not any("{labels}" in p for p in t.prompts):
                raise ValueError(f"task {name!r} answers with a label but none of its prompts lists {{labels}}")
        return self

    # ------------------------------------------------------------------ building

    @classmethod
    def from_mixture(
        cls, mixture: MixtureConfig, labels: LabelSpace, system_prompt: str | None = None
    ) -> PromptContract:
        """The contract a training stage with this mixture teaches (every task marked trained)."""
        tasks = {}
        for name, spec in mixture.tasks.items():
            prompts = list(load_pool(spec.pool))
            if spec.target == "label" and not any("{labels}" in p for p in prompts):
                raise ValueError(
                    f"mixture {mixture.name!r}: task {name!r} targets labels but pool {spec.pool!r} never lists {{labels}}"
                )
            tasks[name] = ContractTask(
                tag=name if spec.tag is None else spec.tag,
                prompts=prompts,
                target=spec.target,
                answer_format=spec.answer_format or _FORMAT_OF[spec.target],
                pool=spec.pool,
                weight=spec.weight,
                trained=spec.weight > 0,
            )
        return cls(
            name=mixture.name,
            source="training",
            system_prompt=system_prompt,
            subtitle=mixture.subtitle,
            subtitle_prob=mixture.subtitle_prob,
            subtitle_template=mixture.subtitle_template,
            label_space=labels.name,
            labels=list(labels.labels),
            label_separator=mixture.label_separator,
            tasks=tasks,
        )

    def over(self, earlier: PromptContract) -> PromptContract:
        """This contract on top of ``earlier`` (a previous stage's, or the default): this one's tasks and
        rules win; tasks only ``earlier`` has are kept as they were (trained or not)."""
        if earlier.labels != self.labels:
            raise ValueError(
                f"contract {self.name!r} has labels {self.labels} but {earlier.name!r} has {earlier.labels}"
            )
        tasks = {**earlier.tasks, **self.tasks}
        name = self.name if earlier.source == "default" else f"{earlier.name}+{self.name}"
        return self.model_copy(update={"tasks": tasks, "name": name})

    # ------------------------------------------------------------------ files

    def save(self, folder: str | os.PathLike[str]) -> Path:
        """Write ``prompt_contract.yaml`` into ``folder`` (atomically)."""
        from emollm.io import atomic_write_text

        f = Path(folder) / CONTRACT_FILE
        text = "# The prompt contract this model was trained with (emollm prompt --checkpoint shows it rendered).\n"
        text += yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=1000)
        atomic_write_text(f, text)
        return f

    @classmethod
    def load(cls, folder_or_file: str | os.PathLike[str]) -> PromptContract:
        p = Path(folder_or_file)
        f = p / CONTRACT_FILE if p.is_dir() else p
        try:
            data = yaml.safe_load(f.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as e:
            raise ValueError(f"{f}: cannot read the prompt contract: {e}") from e
        try:
            return cls.model_validate(data)
        except ValueError as e:
            raise ValueError(f"{f}: not a valid prompt contract: {e}") from e

    # ------------------------------------------------------------------ tasks

    def task(self, name: str) -> ContractTask:
        if name not in self.tasks:
            raise KeyError(f"task {name!r} is not in prompt contract {self.name!r}; tasks: {', '.join(self.tasks)}")
        return self.tasks[name]

    def chat_task(self, kind: ChatKind) -> str:
        """The contract task a chat/serve request of this kind is asked with: ``label`` -> the label task
        (``emotion`` if present), ``explain`` -> ``reason`` if present, else the first free-text task,
        ``openset`` -> the open-vocabulary task."""
        fmt: AnswerFormat = {"label": "label", "explain": "text", "openset": "list"}[kind]
        preferred = {"label": "emotion", "explain": "reason", "openset": "openset"}[kind]
        if preferred in self.tasks and self.tasks[preferred].answer_format == fmt:
            return preferred
        for name, t in self.tasks.items():
            if t.answer_format == fmt and t.trained:
                return name
        for name, t in self.tasks.items():
            if t.answer_format == fmt:
                return name
        raise KeyError(f"prompt contract {self.name!r} has no task answering as {fmt!r} (for a {kind!r} request)")

    def target(self, sample: Sample, task: str) -> str | None:
        """The answer text the model is trained on (None: the sample has none). A ``think_answer`` task
        wraps the gold in ``<answer>`` after the sample's fine (else coarse) reasoning in ``<think>``."""
        gold = self.gold(sample, task)
        if gold is None or self.task(task).answer_format != "think_answer":
            return gold
        reasoning = sample.fine or sample.coarse
        return think_answer(reasoning, gold) if reasoning else None

    def gold(self, sample: Sample, task: str) -> str | None:
        """The sample's gold field of this task as text (label, coarse, fine or the openset words)."""
        t = self.task(task).target
        if t == "label":
            return sample.label
        if t == "coarse":
            return sample.coarse
        if t == "fine":
            return sample.fine
        return ", ".join(sample.openset) if sample.openset else None

    def available_tasks(self, sample: Sample, gold_only: bool = False) -> list[str]:
        """Weighted tasks this sample can be trained on: it has their answer (``gold_only``: their gold
        field, what an RL stage needs, since RL never shows the answer)."""
        pick = self.gold if gold_only else self.target
        return [n for n, t in self.tasks.items() if t.weight > 0 and pick(sample, n)]

    def sample_task(self, sample: Sample, rng: random.Random, gold_only: bool = False) -> str | None:
        """A weighted random task whose answer this sample has, or None (reported as skipped)."""
        avail = self.available_tasks(sample, gold_only)
        if not avail:
            return None
        return rng.choices(avail, weights=[self.tasks[n].weight for n in avail], k=1)[0]

    # ------------------------------------------------------------------ rendering

    def label_list(
        self, order: list[str] | None = None, forms: dict[str, str] | None = None, sep: str | None = None
    ) -> str:
        labs = order or list(self.labels)
        if forms:
            labs = [forms.get(x, x) for x in labs]
        return (sep if sep is not None else self.label_separator).join(labs)

    def tagged(self, task: str, text: str) -> str:
        """``[tag] text`` with the task's tag (text unchanged when the tag is empty)."""
        tag = self.task(task).tag
        return f"[{tag}] {text}" if tag else text

    def prompt_text(self, task: str, prompt_index: int = 0) -> str:
        """The raw instruction text (``{labels}`` not yet filled in)."""
        prompts = self.task(task).prompts
        return prompts[prompt_index % len(prompts)]

    def instruction(self, task: str, prompt_index: int = 0, label_order: list[str] | None = None) -> str:
        text = self.prompt_text(task, prompt_index)
        if "{labels}" in text:
            text = text.replace("{labels}", self.label_list(label_order))
        return self.tagged(task, text)

    def include_subtitle(self) -> bool:
        """Whether inference shows the subtitle (training's ``random`` rule: yes)."""
        return self.subtitle != "omit"

    def subtitle_sentence(self, subtitle: str | None) -> str:
        if not subtitle or not subtitle.strip():
            return ""
        t = " ".join(subtitle.split())
        t = t if t.endswith(_SUBTITLE_ENDS) else t + "."
        return self.subtitle_template.format(subtitle=t)

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
            include_subtitle = self.include_subtitle()
        text = self.subtitle_sentence(sample.subtitle) if include_subtitle else ""
        text += instruction if instruction is not None else self.instruction(task, prompt_index)
        parts.append((" " if modalities else "") + text)
        return Message("user", parts)

    def system_messages(self) -> list[Message]:
        return [Message("system", [self.system_prompt])] if self.system_prompt is not None else []

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
        self.task(task)
        msgs = [
            *self.system_messages(),
            self.user_message(sample, task, modalities, prompt_index, include_subtitle, instruction),
        ]
        if with_answer:
            ans = self.target(sample, task)
            if not ans:
                raise ValueError(f"sample {sample.id!r} has no {self.task(task).target!r} for task {task!r}")
            msgs.append(Message("assistant", [ans]))
        return Conversation(msgs, sample_id=sample.id)

    def questions(
        self,
        samples: Sequence[Sample],
        modalities: Sequence[list[str]],
        task: str,
        prompt_index: int = 0,
        include_subtitle: bool | None = None,
        instruction: str | None = None,
        label_order: list[str] | None = None,
    ) -> list[Conversation]:
        """The inference conversations (no answer) of ``samples``, each with its own ``modalities``;
        ``label_order`` renders ``{labels}`` in that order (a prompt variant) unless ``instruction`` is given."""
        if instruction is None and label_order is not None:
            instruction = self.instruction(task, prompt_index, label_order)
        return [
            self.conversation(s, task, mods, prompt_index, False, include_subtitle, instruction)
            for s, mods in zip(samples, modalities, strict=True)
        ]

    def training_conversation(self, sample: Sample, modalities: list[str], rng: random.Random) -> Conversation | None:
        """One training conversation: a weighted task, a random prompt of it, the subtitle rule."""
        task = self.sample_task(sample, rng)
        if task is None:
            return None
        idx = rng.randrange(len(self.task(task).prompts))
        sub = rng.random() < self.subtitle_prob if self.subtitle == "random" else None
        return self.conversation(sample, task, modalities, prompt_index=idx, include_subtitle=sub)


THINK_ANSWER_RE = re.compile(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", re.DOTALL)
"""The ``think_answer`` format, matched on the whole completion (R1-Omni's ``re.fullmatch`` rule)."""


def think_answer(reasoning: str, answer: str) -> str:
    """``<think>reasoning</think><answer>answer</answer>``."""
    return f"<think>{reasoning.strip()}</think><answer>{answer.strip()}</answer>"


def split_think_answer(text: str) -> tuple[str, str] | None:
    """(reasoning, answer) of a well-formed ``think_answer`` completion, else None."""
    m = THINK_ANSWER_RE.fullmatch(text or "")
    return (m.group(1).strip(), m.group(2).strip()) if m else None


def default_contract(labels: LabelSpace, system_prompt: str | None = None) -> PromptContract:
    """The contract of a preset (zero-shot) and of old checkpoints: classification (``emotion``),
    fine reasoning (``reason``), coarse description (``describe``) and open-vocabulary (``openset``)
    with the shipped pools, none of them marked trained."""
    mix = MixtureConfig.model_validate(
        {
            "name": "default",
            "tasks": {
                "emotion": {"pool": "emotion", "target": "label"},
                "reason": {"pool": "reason", "target": "fine"},
                "describe": {"pool": "describe", "target": "coarse"},
                "openset": {"pool": "openset", "target": "openset"},
            },
        }
    )
    c = PromptContract.from_mixture(mix, labels, system_prompt)
    tasks = {n: t.model_copy(update={"trained": False}) for n, t in c.tasks.items()}
    return c.model_copy(update={"source": "default", "tasks": tasks})


_warned: set[str] = set()


def load_contract(
    folder: str | os.PathLike[str], labels: LabelSpace, system_prompt: str | None = None
) -> PromptContract:
    """A checkpoint's contract; one saved before contracts existed gets the default (said once per folder)."""
    f = Path(folder) / CONTRACT_FILE
    if f.is_file():
        c = PromptContract.load(f)
        if c.labels != list(labels.labels):
            raise ValueError(f"{f}: labels {c.labels} differ from the model's label space {list(labels.labels)}")
        return c
    key = str(Path(folder).resolve())
    if key not in _warned:
        _warned.add(key)
        log.warning(
            "%s has no %s (saved before emollm 0.2): asking it with the default prompt contract", folder, CONTRACT_FILE
        )
    return default_contract(labels, system_prompt)
