"""Safe file writing and hashing shared by every job.

- ``atomic_write_*``: write to a temporary file in the same folder, fsync, then ``os.replace``; a
  reader never sees half a file and a crash never destroys the previous version.
- ``JsonlAppender``: per-record append with flush+fsync, used for resumable per-sample logs.
- ``sha256_file`` / ``FileHashMemo``: content hashes, memoised by (path, size, mtime).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically."""
    dst = Path(path)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    tmp_p = Path(tmp)
    os.chmod(tmp_p, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
    try:
        yield tmp_p
        with open(tmp_p, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp_p, dst)
    finally:
        if tmp_p.exists():
            tmp_p.unlink()


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False, default=str) + "\n")


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a JSONL file; a torn last line (killed writer) is ignored, any other bad line raises."""
    out: list[dict[str, Any]] = []
    p = Path(path)
    if not p.exists():
        return out
    lines = p.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError as e:
            if i == len(lines):
                break
            raise ValueError(f"{p}: line {i} is not valid JSON: {e}") from None
    return out


class JsonlAppender:
    """Append JSON records durably, one line each (``with JsonlAppender(p) as w: w.write(rec)``)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # repair a torn last line from a killed writer before appending
        if self.path.exists() and self.path.stat().st_size > 0:
            data = self.path.read_bytes()
            if not data.endswith(b"\n"):
                cut = data.rfind(b"\n") + 1
                with open(self.path, "r+b") as f:
                    f.truncate(cut)
        self._f = open(self.path, "a", encoding="utf-8")

    def write(self, rec: dict[str, Any]) -> None:
        self._f.write(json.dumps(rec, ensure_ascii=False, default=str) + "\n")
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while b := f.read(chunk):
            h.update(b)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class FileHashMemo:
    """Content hash of files, memoised in memory by (resolved path, size, mtime_ns)."""

    def __init__(self) -> None:
        self._memo: dict[tuple[str, int, int], str] = {}

    def __call__(self, path: str | os.PathLike[str]) -> str:
        p = Path(path).resolve()
        st = p.stat()
        key = (str(p), st.st_size, st.st_mtime_ns)
        h = self._memo.get(key)
        if h is None:
            h = self._memo[key] = sha256_file(p)
        return h


file_hash = FileHashMemo()
