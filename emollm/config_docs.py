"""Generate docs/CONFIG.md from the typed configs (field, type, default, description).

    python -m emollm.config_docs > docs/CONFIG.md      # regenerate
    emollm validate ...                                  # check a file against the same schemas

A test regenerates the page and compares it with the committed file, so the reference cannot drift.
"""

from __future__ import annotations

import json
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

# (title, schema, what it configures) in reading order
SECTIONS: list[tuple[str, str, str]] = [
    ("Training recipe (`train/*.yaml`)", "emollm.training.config:RunConfig", "`emollm train RECIPE`"),
    ("Model (`model:` in a recipe; presets)", "emollm.config:ModelConfig", "every job that builds a model"),
    ("Data recipe (`data_recipes/*.yaml`)", "emollm.data.prepare:DataRecipe", "`emollm prepare RECIPE`"),
    (
        "Instruction mixture (`data_recipes/mixtures/*.yaml`)",
        "emollm.data.instructions:MixtureConfig",
        "training stages",
    ),
    (
        "Prompt contract (`prompt_contract.yaml` in every checkpoint)",
        "emollm.data.contract:PromptContract",
        "every job that asks a model (written by training; `emollm prompt` shows it)",
    ),
    ("Eval task (`eval/tasks/*.yaml`)", "emollm.evaluation.tasks:EvalTask", "`emollm eval --tasks`"),
    ("Eval suite (`eval/suites/*.yaml`)", "emollm.evaluation.tasks:Suite", "`emollm eval --suite`"),
    (
        "SynthMER generator (`generate.synthmer` in data_recipes/synthmer.yaml)",
        "emollm.data.synthmer:SynthMERConfig",
        "`emollm prepare synthmer`",
    ),
]
ENCODER_OPTIONS = "Encoder options (`model.modalities.<m>.encoder.options`)"


def _load(ref: str) -> type[BaseModel]:
    import importlib

    mod, _, name = ref.partition(":")
    return getattr(importlib.import_module(mod), name)


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Literal:
        return " \\| ".join(json.dumps(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin in (list, tuple, dict):
        inner = ", ".join(_type_name(a) for a in args if a is not Ellipsis)
        return f"{origin.__name__}[{inner}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _default(field: Any) -> str:
    if field.default is not PydanticUndefined:
        d = field.default
    elif field.default_factory is not None:
        try:
            d = field.default_factory()
        except TypeError:
            return "(computed)"
    else:
        return "**required**"
    if isinstance(d, BaseModel):
        return "(see below)"
    return "`" + json.dumps(d, default=str) + "`"


def _nested(tp: Any) -> list[type[BaseModel]]:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    out = []
    for a in typing.get_args(tp):
        out += _nested(a)
    return out


def _table(model: type[BaseModel], prefix: str, seen: set[type], out: list[str]) -> None:
    if model in seen:
        return
    seen.add(model)
    out.append(f"\n**`{prefix or model.__name__}`** ({model.__name__})\n")
    out.append("| key | type | default | description |")
    out.append("|---|---|---|---|")
    children: list[tuple[str, type[BaseModel]]] = []
    for name, f in model.model_fields.items():
        desc = " ".join((f.description or "").split()).replace("|", "\\|")
        out.append(f"| `{name}` | {_type_name(f.annotation)} | {_default(f)} | {desc} |")
        for sub in _nested(f.annotation):
            key = f"{prefix}.{name}" if prefix else name
            if typing.get_origin(f.annotation) is dict or dict in [
                typing.get_origin(a) for a in typing.get_args(f.annotation)
            ]:
                key += ".<name>"
            if typing.get_origin(f.annotation) is list:
                key += ".<i>"
            children.append((key, sub))
    for key, sub in children:
        _table(sub, key, seen, out)


def render() -> str:
    out = [
        "# Configuration reference",
        "",
        "Generated from the typed configs by `python -m emollm.config_docs` (a test keeps it in sync).",
        "Every config rejects unknown keys and wrong types with a message naming the dotted key and a close",
        "match. Command lines accept `dotted.key=value` overrides; values are parsed as YAML.",
    ]
    for title, ref, used in SECTIONS:
        model = _load(ref)
        out += ["", f"## {title}", "", f"Used by {used}."]
        _table(model, "", set(), out)
    from emollm.encoders import ENCODERS

    out += ["", f"## {ENCODER_OPTIONS}", "", "Chosen by `encoder.name`; `emollm ls encoders` lists them."]
    for name in ENCODERS.names():
        spec = ENCODERS.get(name)
        out.append(f"\n### `{name}` (input: {spec.input_kind})\n\n{spec.description}")
        _table(spec.options_model, f"options ({name})", set(), out)
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    print(render(), end="")
