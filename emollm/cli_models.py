"""Command-line options generated from the typed option models: one declaration per option.

A command declares which model it fills; every field of the model becomes an option ``--field-name``
whose help is the field's docstring and whose default is the field's default. ``Flag`` says what the
command line does differently for one field (short names, the type typed on the command line, how
that value becomes the field's value); ``skip`` leaves a field to the command. Adding a field with a
docstring to the model adds the option::

    @model_command(EvalOptions, flags={"limit": Flag("--limit", "-n", min=1)}, skip={"endpoint"})
    def eval_command(values: dict[str, Any], quiet: bool = typer.Option(False, "--quiet")) -> None:
        opts = EvalOptions.model_validate(values)

The command receives ``values`` (field name -> value, parsed) followed by its own options. The
generated signature is what typer reads, so ``--help``, completion and errors work as for any command.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import typer
from pydantic import BaseModel, create_model
from pydantic.fields import FieldInfo

_UNSET: Any = object()


@dataclass(frozen=True, init=False)
class Flag:
    """How one model field appears on the command line (everything optional)."""

    decls: tuple[str, ...] = ()
    """Option names, e.g. ``("--checkpoint", "-c")``; default ``--field-name``."""
    help: str | None = None
    """Default: the first paragraph of the field's docstring."""
    type: Any = _UNSET
    """The type typed on the command line (``str`` for ``"i/n"``, ``list[str]`` for repeated options)."""
    default: Any = _UNSET
    """The command-line default; default: the field's own (None for a required or factory default)."""
    parse: Callable[[Any], Any] | None = None
    """Command-line value -> field value (e.g. ``"0/2"`` -> ``(0, 2)``)."""
    options: Mapping[str, Any] = field(default_factory=dict)
    """More ``typer.Option`` keywords (``min``, ``max``, ``show_default``...)."""

    def __init__(
        self,
        *decls: str,
        help: str | None = None,
        type: Any = _UNSET,
        default: Any = _UNSET,
        parse: Callable[[Any], Any] | None = None,
        **options: Any,
    ) -> None:
        object.__setattr__(self, "decls", decls)
        object.__setattr__(self, "help", help)
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "default", default)
        object.__setattr__(self, "parse", parse)
        object.__setattr__(self, "options", options)


def field_help(info: FieldInfo) -> str:
    """The first paragraph of a field's docstring, on one line."""
    text = (info.description or "").strip()
    return " ".join(text.split("\n\n")[0].split())


def _optional(tp: Any) -> tuple[Any, bool]:
    if get_origin(tp) in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(args) < len(get_args(tp)):
            return args[0], True
    return tp, False


def cli_type(tp: Any) -> Any:
    """The type typer parses for a field annotation: Literal choices are read as ``str`` (the model
    validates them, naming the choices), ``X | None`` stays optional; anything else typer cannot
    read as one value is ``str``."""
    inner, optional = _optional(tp)
    if get_origin(inner) is Literal:
        inner = str
    elif get_origin(inner) in (list, tuple, dict) or inner not in (str, int, float, bool, Path):
        inner = str
    return inner | None if optional else inner  # type: ignore[operator]


def _choices(tp: Any) -> list[str]:
    inner, _ = _optional(tp)
    return [str(a) for a in get_args(inner)] if get_origin(inner) is Literal else []


def model_options(
    model: type[BaseModel],
    flags: Mapping[str, Flag] | None = None,
    skip: Iterable[str] = (),
    default: Any = _UNSET,
) -> list[tuple[str, Any, Any, Flag]]:
    """``(field, cli type, typer.Option, Flag)`` for every field of ``model`` not in ``skip``. ``default``
    replaces every field's default on the command line (``None``: "not given", e.g. a preset decides)."""
    flags = flags or {}
    unknown = sorted(set(flags) - set(model.model_fields))
    if unknown:
        raise ValueError(f"{model.__name__} has no field(s) {unknown}")
    hints = {name: info.annotation for name, info in model.model_fields.items()}
    out = []
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        flag = flags.get(name, Flag())
        tp = flag.type if flag.type is not _UNSET else cli_type(hints[name])
        if flag.default is not _UNSET:
            value = flag.default
        elif info.is_required():
            value = ...  # required on the command line too
        elif default is not _UNSET:
            value = default
        elif info.default_factory is not None:
            value = None
        else:
            value = info.default
        text = flag.help if flag.help is not None else field_help(info)
        choices = _choices(hints[name])
        if choices and flag.help is None and not all(c in text for c in choices):
            text = f"{text} ({' | '.join(choices)})" if text else " | ".join(choices)
        decls = flag.decls or (f"--{name.replace('_', '-')}",)
        if tp is bool and not flag.decls and value is True:  # a default-on switch needs its "off"
            decls = (f"{decls[0]}/--no-{decls[0].removeprefix('--')}",)
        out.append((name, tp, typer.Option(value, *decls, help=text, **dict(flag.options)), flag))
    return out


def model_command(
    model: type[BaseModel],
    flags: Mapping[str, Flag] | None = None,
    skip: Iterable[str] = (),
    on_error: Callable[[Exception], Any] | None = None,
    default: Any = _UNSET,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: the command's options are ``model``'s fields (see the module docstring) followed by
    the function's own keyword options; the function is called as ``fn(values, **own)``. A ``Flag.parse``
    that raises ValueError or KeyError goes to ``on_error`` (the command's error printer), else to typer
    as a bad parameter."""
    generated = model_options(model, flags, skip, default)

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn, eval_str=True)
        own = list(sig.parameters.values())[1:]  # the first parameter receives the model's values
        clash = sorted({p.name for p in own} & {g[0] for g in generated})
        if clash:
            raise ValueError(f"{fn.__name__}: options {clash} are already fields of {model.__name__}")
        params = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=tp)
            for name, tp, opt, _ in generated
        ] + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own]
        parse = {name: flag.parse for name, _, _, flag in generated}
        decls = {name: "/".join(opt.param_decls) for name, _, opt, _ in generated}

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            values = {}
            for name, parser in parse.items():
                v = kwargs.pop(name)
                try:
                    values[name] = parser(v) if parser is not None else v
                except (ValueError, KeyError) as e:
                    if on_error is None:
                        raise typer.BadParameter(str(e), param_hint=decls[name]) from None
                    return on_error(e)
            return fn(values, **kwargs)

        wrapper.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in params}
        return wrapper

    return deco


def flat_model(name: str, *models: type[BaseModel], skip: Iterable[str] = ()) -> type[BaseModel]:
    """One model with the fields of ``models`` (first wins on a name clash), for a command whose options
    fill nested settings (a bench's own fields plus its workload's)."""
    fields: dict[str, Any] = {}
    for m in models:
        for fname, info in m.model_fields.items():
            if fname not in skip and fname not in fields:
                fields[fname] = (info.annotation, info)
    return create_model(name, **fields)
