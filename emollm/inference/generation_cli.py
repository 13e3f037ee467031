"""The decoding flags of ``emollm chat`` and ``emollm predict``, declared once from ``GenerationOptions``.

``@generation_flags(max_new_tokens=256)`` adds ``--max-new-tokens --temperature --top-p --top-k
--repetition-penalty --no-repeat-ngram --seed`` to a Typer command and hands the command one validated
``GenerationOptions`` as its ``gen`` argument. Help texts and defaults come from the model's fields, so a
new decoding option is one line in ``FLAGS``::

    @generation_flags(max_new_tokens=128)
    def predict_command(out: Path = typer.Option(...), gen: GenerationOptions = None) -> None:
        ...gen.generate_kwargs(tokenizer)...

    emollm chat -c runs/mini/final --temperature 0.7 --top-p 0.9 --seed 1
    emollm predict -c runs/mini/final --folder clips/ --out runs/pred/clips --explain --repetition-penalty 1.0

A flag left out keeps the ``GenerationOptions`` default (repetition penalty 1.15, no repeated 4-gram:
greedy explanations do not loop); ``--repetition-penalty 1 --no-repeat-ngram 0`` is plain greedy
decoding, what ``emollm eval`` and the library calls use. A bad value is one ``error:`` line naming
the flag.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from pydantic import ValidationError

from emollm.inference.generation import GenerationOptions

F = TypeVar("F", bound=Callable[..., Any])

FLAGS: tuple[tuple[str, str, type], ...] = (
    ("max_new_tokens", "--max-new-tokens", int),
    ("temperature", "--temperature", float),
    ("top_p", "--top-p", float),
    ("top_k", "--top-k", int),
    ("repetition_penalty", "--repetition-penalty", float),
    ("no_repeat_ngram", "--no-repeat-ngram", int),
    ("seed", "--seed", int),
)
"""(GenerationOptions field, flag, type) of every decoding flag."""

PANEL = "Decoding"


def _help(field: str, default: Any) -> str:
    info = GenerationOptions.model_fields[field]
    text = (info.description or "").strip().rstrip(".")
    shown = "random" if default is None else default
    return f"{text} (default {shown})."


def options_from_flags(values: dict[str, Any], base: GenerationOptions | None = None) -> GenerationOptions:
    """``GenerationOptions`` from flag values (None: not given); a bad value -> ValueError naming the flag."""
    flag_of = {f: flag for f, flag, _ in FLAGS}
    try:
        return (base or GenerationOptions()).with_updates(**values)
    except ValidationError as e:
        msgs = []
        for err in e.errors():
            field = str(err["loc"][0]) if err["loc"] else ""
            msgs.append(f"{flag_of.get(field, field)} {values.get(field)!r}: {err['msg']}")
        raise ValueError("; ".join(msgs)) from None


def generation_flags(max_new_tokens: int) -> Callable[[F], F]:
    """Decorator: the command gets the decoding flags and receives ``gen: GenerationOptions``."""

    def wrap(fn: F) -> F:
        sig = inspect.signature(fn, eval_str=True)  # real types: typer resolves them here, not in fn's module
        if "gen" not in sig.parameters:
            raise TypeError(f"{fn.__name__} needs a `gen` parameter to receive the GenerationOptions")
        base = GenerationOptions(max_new_tokens=max_new_tokens)
        params = [p for p in sig.parameters.values() if p.name != "gen"]
        taken = {p.name for p in params}
        added = []
        for field, flag, typ in FLAGS:
            if field in taken:
                raise TypeError(f"{fn.__name__} already declares {field}; generation_flags adds it")
            default = getattr(base, field)
            opt = typer.Option(None, flag, help=_help(field, default), rich_help_panel=PANEL, show_default=False)
            added.append(inspect.Parameter(field, inspect.Parameter.KEYWORD_ONLY, default=opt, annotation=typ | None))

        @functools.wraps(fn)
        def command(*args: Any, **kwargs: Any) -> Any:
            values = {field: kwargs.pop(field, None) for field, _, _ in FLAGS}
            return fn(*args, gen=options_from_flags(values, base), **kwargs)

        del command.__wrapped__  # typer must see the new signature, not the wrapped function's
        command.__signature__ = sig.replace(  # type: ignore[attr-defined]
            parameters=[*(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params), *added]
        )
        command.__annotations__ = {p.name: p.annotation for p in command.__signature__.parameters.values()}  # type: ignore[attr-defined]
        return command  # type: ignore[return-value]

    return wrap
