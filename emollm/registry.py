"""A tiny name -> builder registry used for encoders, projectors, importers, metrics and tasks.

ENCODERS = Registry("encoder")
@ENCODERS.register("hubert")
def build(...): ...
ENCODERS.get("hubrt")  # KeyError: unknown encoder 'hubrt'; did you mean 'hubert'? known: ...
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


def close_match(name: str, options: list[str] | tuple[str, ...] | set[str]) -> str:
    """`` (did you mean 'x'?)`` or an empty string."""
    m = difflib.get_close_matches(str(name), [str(o) for o in options], n=1, cutoff=0.5)
    return f" (did you mean {m[0]!r}?)" if m else ""


def unknown_message(kind: str, name: str, known: Iterable[str]) -> str:
    """``unknown encoder 'hubrt' (did you mean 'hubert'?); known: ...`` (the one wording for every registry)."""
    names = sorted(known)
    return f"unknown {kind} {name!r}{close_match(name, names)}; known: {', '.join(names)}"


class Registry(Generic[T]):
    def __init__(self, kind: str, on_add: Callable[[str, T], None] | None = None) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._on_add = on_add

    def register(self, name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            if self._on_add is not None:
                self._on_add(name, obj)
            self._items[name] = obj
            return obj

        return deco

    def add(self, name: str, obj: T) -> None:
        self.register(name)(obj)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(unknown_message(self.kind, name, self._items)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        return sorted(self._items)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
