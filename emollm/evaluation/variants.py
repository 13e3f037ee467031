"""Prompt-robustness variants (PR-MER, mer_eval.md §5.2): how one prompt variant rewrites the task's prompt.

A variant is a transformation of the model's prompt contract (``apply_variant``): the contract's
instruction for the task, with one thing changed. There is no second prompt builder.

A variant file (``prompts/robustness/<name>.yaml``) lists variants, each changing one thing of the
task's base prompt::

    name: pr_mer
    variants:
      - {id: P1, family: P, prompt_index: 1}                 # paraphrase: another instruction of the pool
      - {id: O_rev, family: O, order: reversed}              # label order: canonical | reversed | shuffled (+seed)
      - {id: O_shuf1, family: O, order: shuffled, seed: 1}
      - {id: S_pipe, family: S, separator: " | "}            # separators, list format (plain | json | bullets), casing
      - {id: S_caps, family: S, casing: capitalized}
      - {id: L_noun, family: L, forms: {happy: happiness}}   # label word forms, mapped back through the label space
      - {id: R_role, family: R, role: "You are an expert in the field of emotions."}
      - {id: T_nosub, family: T, subtitle: false}            # with / without the subtitle

    vf = load_variants("pr_mer")
    base = PromptVariant(id="base")
    shown = render_labels(space, vf.get("O_rev"))           # RenderedLabels(text, order, candidates, to_canonical)
    text = render_instruction(pool_text, shown.text, tag="emotion", role=None)  # "[emotion] Please ... sad, happy, ..."

Candidates (what constrained classification scores) are the canonical labels, except for a word-form
variant, whose candidates are the forms shown in the prompt; ``to_canonical`` maps every candidate back
to its label (each form must normalise to its label through the label space, checked on load). Casing,
separators and list formats change only the prompt text: the answer vocabulary stays canonical.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from emollm.config import Strict, load_config
from emollm.labels import LabelSpace
from emollm.paths import resolve_resource

if TYPE_CHECKING:
    from emollm.data.contract import PromptContract

Family = Literal["P", "O", "S", "L", "R", "T", "F"]
FAMILY_NAMES: dict[str, str] = {
    "P": "paraphrase",
    "O": "label order",
    "S": "separator / format / casing",
    "L": "label word forms",
    "R": "role line",
    "T": "subtitle",
    "F": "output constraint",
}


class PromptVariant(Strict):
    """One prompt variant; every field left at its default keeps the task's base prompt."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    family: Family | None = None
    """P paraphrase, O label order, S separator/format/casing, L word forms, R role line, T subtitle."""
    prompt_index: int | None = Field(None, ge=0)
    """Another instruction of the task's pool (None: the task's own index)."""
    order: Literal["canonical", "reversed", "shuffled"] | list[str] = "canonical"
    """Label order in the prompt: canonical, reversed, shuffled (with ``seed``) or an explicit permutation."""
    seed: int = 0
    separator: str | None = None
    """Between labels (None: the task's separator, ", ")."""
    format: Literal["plain", "json", "bullets"] = "plain"
    """plain: joined by the separator; json: a quoted JSON list; bullets: one '- label' per line."""
    casing: Literal["lower", "capitalized", "upper"] = "lower"
    forms: dict[str, str] = Field(default_factory=dict)
    """Label -> surface form shown and scored (happy -> happiness); must normalise back to the label."""
    role: str | None = None
    """A role sentence put before the instruction (None: no role line)."""
    subtitle: bool | None = None
    """Include the subtitle (None: as the task says)."""
    suffix: str | None = None
    """Text appended to the instruction (output-constraint family F, e.g. ' Answer with one word.')."""

    @field_validator("forms")
    @classmethod
    def _lower_forms(cls, v: dict[str, str]) -> dict[str, str]:
        return {k.strip().lower(): f.strip() for k, f in v.items()}


class VariantFile(Strict):
    """A named list of prompt variants (``prompts/robustness/*.yaml``)."""

    name: str
    description: str = ""
    variants: list[PromptVariant]

    @model_validator(mode="after")
    def _unique(self) -> VariantFile:
        ids = [v.id for v in self.variants]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"duplicate variant id(s) {dup}")
        if "base" in ids:
            raise ValueError("'base' is reserved for the task's own prompt; give the variant another id")
        return self

    def get(self, vid: str) -> PromptVariant:
        for v in self.variants:
            if v.id == vid:
                return v
        raise KeyError(f"variant file {self.name!r} has no variant {vid!r}; ids: {', '.join(self.ids())}")

    def ids(self) -> list[str]:
        return [v.id for v in self.variants]

    def select(self, only: list[str] | None = None, families: list[str] | None = None) -> list[PromptVariant]:
        """Variants by id (in the given order) and/or by family; both None: all."""
        out = [self.get(i) for i in only] if only else list(self.variants)
        if families:
            unknown = sorted(set(families) - set(FAMILY_NAMES))
            if unknown:
                raise ValueError(f"unknown variant famil(ies) {unknown}; known: {', '.join(FAMILY_NAMES)}")
            out = [v for v in out if v.family in families]
        return out


def load_variants(name_or_path: str | Path) -> VariantFile:
    """A variant file by name (``prompts/robustness/<name>.yaml``) or path."""
    p = Path(name_or_path)
    if p.suffix not in (".yaml", ".yml"):
        p = Path("prompts") / "robustness" / f"{name_or_path}.yaml"
    return load_config(VariantFile, resolve_resource(p, "prompt-variant file"))


@dataclass(frozen=True)
class RenderedLabels:
    """The label list of one variant: prompt text, canonical order shown, scored candidates and their labels."""

    text: str
    order: list[str]
    """Canonical labels in the order the prompt shows them (for label-position bias)."""
    candidates: list[str]
    """Answer strings scored by constrained classification (canonical order)."""
    to_canonical: dict[str, str]
    """candidate -> canonical label."""


def label_order(labels: list[str], v: PromptVariant) -> list[str]:
    """The canonical labels in the order variant ``v`` shows them (seeded shuffle: same order every run)."""
    if isinstance(v.order, list):
        order = [x.strip().lower() for x in v.order]
        if sorted(order) != sorted(labels):
            raise ValueError(f"variant {v.id!r}: order {v.order} is not a permutation of {labels}")
        return order
    if v.order == "reversed":
        return labels[::-1]
    if v.order == "shuffled":
        out = list(labels)
        random.Random(v.seed).shuffle(out)
        return out
    return list(labels)


def check_forms(space: LabelSpace, v: PromptVariant) -> None:
    """Every form of ``v`` must belong to a label of ``space`` and normalise back to it."""
    for lab, form in v.forms.items():
        if lab not in space.labels:
            raise ValueError(
                f"variant {v.id!r}: forms name {lab!r}, which is not a label of {space.name} "
                f"({', '.join(space.labels)})"
            )
        back = space.normalize(form)
        if back != lab:
            raise ValueError(
                f"variant {v.id!r}: form {form!r} of {lab!r} does not map back to it through label space "
                f"{space.name} (it reads as {back!r}); add it to the space's synonyms or drop it"
            )


def _case(word: str, casing: str) -> str:
    if casing == "capitalized":
        return word[:1].upper() + word[1:]
    if casing == "upper":
        return word.upper()
    return word


def render_labels(space: LabelSpace, v: PromptVariant, labels: list[str] | None = None) -> RenderedLabels:
    """The label list text of variant ``v`` over ``labels`` (default: the space's labels, canonical order)."""
    labs = list(labels) if labels is not None else list(space.labels)
    check_forms(space, v)
    order = label_order(labs, v)
    shown = [_case(v.forms.get(lab, lab), v.casing) for lab in order]
    if v.format == "json":
        text = json.dumps(shown, ensure_ascii=False)
    elif v.format == "bullets":
        text = "\n" + "\n".join(f"- {w}" for w in shown) + "\n"
    else:
        text = (v.separator if v.separator is not None else ", ").join(shown)
    cands = [v.forms.get(lab, lab) for lab in labs]
    return RenderedLabels(text, order, cands, dict(zip(cands, labs, strict=True)))


def render_instruction(
    pool_text: str, labels_text: str, tag: str | None, role: str | None = None, suffix: str | None = None
) -> str:
    """``[tag] <role> <pool text with {labels} filled><suffix>`` (the Predictor's instruction string)."""
    text = pool_text.replace("{labels}", labels_text)
    if role:
        text = f"{role.strip()} {text}"
    if suffix:
        text += suffix
    return f"[{tag}] {text}" if tag else text


@dataclass(frozen=True)
class VariantPrompt:
    """What one variant of a contract task asks: the full ``[tag] instruction``, the subtitle choice and labels."""

    instruction: str
    subtitle: bool
    labels: RenderedLabels


def apply_variant(
    contract: PromptContract,
    task: str,
    variant: PromptVariant,
    space: LabelSpace | None = None,
    index: int = 0,
    pool: str | None = None,
    literal: str | None = None,
    separator: str | None = None,
    subtitle: bool | None = None,
) -> VariantPrompt:
    """The contract's prompt for ``task`` transformed by ``variant`` (the base variant changes nothing).

    ``space``: the label space listed (default: the contract's labels); ``index``: the base instruction;
    ``pool`` / ``literal``: an eval task asking with another pool or a literal text instead of the
    contract's; ``separator`` / ``subtitle``: the eval task's own choices (None: the contract's).
    """
    from emollm.data.instructions import load_pool
    from emollm.labels import label_space as get_space

    spec = contract.task(task)
    space = space or get_space(contract.label_space)
    idx = variant.prompt_index if variant.prompt_index is not None else index
    sep = separator if separator is not None else contract.label_separator
    v = variant if variant.separator is not None else variant.model_copy(update={"separator": sep})
    labels = render_labels(space, v)
    if literal is not None and idx == index:
        text = literal
    elif pool is not None:
        texts = load_pool(pool)
        text = texts[idx % len(texts)]
    else:
        text = contract.prompt_text(task, idx)
    instruction = render_instruction(text, labels.text, spec.tag, variant.role, variant.suffix)
    base_sub = subtitle if subtitle is not None else contract.include_subtitle()
    return VariantPrompt(instruction, base_sub if variant.subtitle is None else variant.subtitle, labels)
