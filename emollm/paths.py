"""Where emollm looks for things: the repository's declarative folders and the user cache.

- ``resource_root()``: the folder holding ``prompts/``, ``eval/``, ``data_recipes/`` and ``train/``
  (the repository root for an editable install; override with ``EMOLLM_RESOURCES``).
- ``home()``: ``EMOLLM_HOME`` or ``~/.cache/emollm``; converted GGUF models live here.
- ``resolve_resource(path)``: a path as given if it exists, else relative to the resource root.

Nothing here touches the network.
"""

from __future__ import annotations

import os
from pathlib import Path


def resource_root() -> Path:
    env = os.environ.get("EMOLLM_RESOURCES")
    if env:
        return Path(env).expanduser().resolve()
    return Path(__file__).resolve().parent.parent


def home() -> Path:
    p = Path(os.environ.get("EMOLLM_HOME", Path.home() / ".cache" / "emollm")).expanduser()
    p.mkdir(parents=True, exist_ok=True)
    return p


def resolve_resource(path: str | os.PathLike[str], kind: str = "file") -> Path:
    """Resolve ``path`` against the cwd first, then the resource root; raise naming both places."""
    p = Path(path).expanduser()
    if p.exists():
        return p
    q = resource_root() / p
    if q.exists():
        return q
    raise FileNotFoundError(f"{kind} {str(path)!r} not found: looked in {p.resolve()} and {q}")


def conformance_root() -> Path | None:
    """The shared conformance kit, if present (``EMOLLM_CONFORMANCE`` or ``../shared/conformance``)."""
    env = os.environ.get("EMOLLM_CONFORMANCE")
    cands = [Path(env)] if env else []
    cands.append(resource_root().parent / "shared" / "conformance")
    for c in cands:
        if c.is_dir():
            return c
    return None
