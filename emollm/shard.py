"""``--shard i/n``: which part of a job this process runs (extract, eval, predict share the syntax).

from emollm.shard import parse_shard
parse_shard("1/4")  # -> (1, 4): this process is shard 1 of 4
parse_shard(None)   # -> (0, 1): the whole job
"""

from __future__ import annotations


def parse_shard(text: str | None) -> tuple[int, int]:
    """``"i/n"`` -> ``(i, n)`` with ``0 <= i < n``; empty or None -> ``(0, 1)``."""
    if not text:
        return 0, 1
    a, sep, b = text.partition("/")
    try:
        i, n = int(a), int(b)
    except ValueError:
        raise ValueError(f"--shard must look like i/n (e.g. 0/4), got {text!r}") from None
    if not sep or n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text!r}: need i/n with 0 <= i < n")
    return i, n
