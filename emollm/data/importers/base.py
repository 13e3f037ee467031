"""What every importer shares: the registry entry, the import context, and checked readers.

An importer is a function ``load(opts, ctx) -> list[Sample]`` plus a ``Strict`` options model,
registered by short name::

    class MyOptions(CommonOptions):
        table: str = "labels.csv"

    @register_importer("mine", MyOptions, "my corpus: labels.csv (name,label)")
    def load_mine(opts: MyOptions, ctx: ImportContext) -> list[Sample]:
        table = read_table(ctx, opts.table, id_cols=("name",), columns=("label",))
        ...

The ``ImportContext`` carries the corpus root, the output folder (media paths are written relative to
it when the media lies inside it, absolute otherwise), the label space and the ``ImportReport`` every
problem goes to. Helpers here never raise for bad data: they report a problem with file and row and
return None, so a whole corpus is checked in one pass. ``ImporterError`` is for input so broken that
there is nothing to import.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import Field

from emollm.answers import parse_emotion_list
from emollm.config import ConfigError, Strict
from emollm.data.report import Action, ImportReport, ProblemKind
from emollm.data.sample import Sample
from emollm.labels import LabelSpace
from emollm.registry import Registry, close_match

VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv", ".mpg", ".mpeg", ".m4v")
"""Video suffixes a media folder scan accepts, in order of preference when one name has several."""

VALENCE_RANGE = (-5.0, 5.0)
"""The valence scale of every importer (MER2023/MER2024/MERR: -5 very negative .. 5 very positive)."""

OptionsT = TypeVar("OptionsT", bound=Strict)


class ImporterError(ValueError):
    """The input is unusable as a whole (e.g. no label file at all); the message names what is missing."""


class CommonOptions(Strict):
    """Options every importer accepts."""

    label_aliases: dict[str, str] = Field(default_factory=dict)
    """Extra surface forms -> canonical label of the recipe's label space, applied before the space's own
    synonyms (e.g. ``{担忧: worried}`` for EMER's Chinese labels)."""


@dataclass(frozen=True)
class ImporterSpec(Generic[OptionsT]):
    name: str
    options_model: type[OptionsT]
    load: Callable[[OptionsT, ImportContext], list[Sample]]
    summary: str


IMPORTERS: Registry[ImporterSpec[Any]] = Registry("importer")


def register_importer(
    name: str, options_model: type[OptionsT], summary: str
) -> Callable[[Callable[[OptionsT, ImportContext], list[Sample]]], Callable[[OptionsT, ImportContext], list[Sample]]]:
    """Register ``load(opts, ctx)`` under ``name`` with its options model (see module docstring)."""

    def deco(
        fn: Callable[[OptionsT, ImportContext], list[Sample]],
    ) -> Callable[[OptionsT, ImportContext], list[Sample]]:
        IMPORTERS.add(name, ImporterSpec(name=name, options_model=options_model, load=fn, summary=summary))
        return fn

    return deco


@dataclass
class ImportContext:
    """Everything an importer needs besides its options; collects problems in ``report``."""

    root: Path
    out_dir: Path
    space: LabelSpace
    report: ImportReport
    corpus: str = ""
    label_aliases: dict[str, str] = field(default_factory=dict)
    origin: dict[str, tuple[str, int | None]] = field(default_factory=dict)
    """sample id -> (file, row) of the record that created it (for problems found later, e.g. by the probe)."""
    _out_prefix: str = field(init=False, repr=False, default="")
    _shown: dict[str, str] = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        self.out_dir = Path(self.out_dir).resolve()
        self._out_prefix = str(self.out_dir).rstrip(os.sep) + os.sep
        self.set_aliases(self.label_aliases)

    def set_aliases(self, aliases: dict[str, str]) -> None:
        table = {}
        for k, v in aliases.items():
            if v not in self.space.labels:
                raise ConfigError(
                    f"label_aliases: {k!r} -> {v!r}: {v!r} is not a label of space {self.space.name!r}"
                    f"{close_match(v, list(self.space.labels))}; known: {', '.join(self.space.labels)}"
                )
            table[k.strip().lower()] = v
        self.label_aliases = table

    # paths -------------------------------------------------------------------------------------
    def path(self, rel: str | os.PathLike[str]) -> Path:
        """A path from the options: absolute as given, otherwise relative to the corpus root."""
        p = Path(rel).expanduser()
        return p if p.is_absolute() else self.root / p

    def display(self, p: str | os.PathLike[str]) -> str:
        """How a file is named in the report: relative to the root when inside it (memoised: few files)."""
        key = os.fspath(p)
        shown = self._shown.get(key)
        if shown is None:
            q = Path(key)
            try:
                shown = str(q.resolve().relative_to(self.root))
            except ValueError:
                shown = key
            self._shown[key] = shown
        return shown

    def media_ref(self, p: str | os.PathLike[str]) -> str:
        """The path stored in the manifest: relative to the output folder when inside it, else absolute.

        Lexical (no symlink resolution, no system call per file): 100k samples cost milliseconds.
        """
        q = os.path.abspath(p)
        if q.startswith(self._out_prefix):
            return Path(q[len(self._out_prefix) :]).as_posix()
        return q

    # problems ----------------------------------------------------------------------------------
    def problem(
        self,
        file: str | os.PathLike[str],
        row: int | None,
        fld: str | None,
        kind: ProblemKind,
        message: str,
        *,
        sample_id: str | None = None,
        action: Action = "kept",
        rows_affected: int = 1,
        media: str | None = None,
    ) -> None:
        self.report.add(
            self.display(file),
            row,
            fld,
            kind,
            message,
            sample_id=sample_id,
            action=action,
            rows_affected=rows_affected,
            media=media,
        )

    def claim(self, sid: str, file: str | os.PathLike[str], row: int | None) -> bool:
        """Register a new sample id; a duplicate is reported (excluded) and False is returned."""
        if sid in self.origin:
            f0, r0 = self.origin[sid]
            where = f"{f0}:{r0}" if r0 is not None else f0
            self.problem(
                file,
                row,
                "id",
                "duplicate_id",
                f"id {sid!r} already seen at {where}; this row is excluded",
                sample_id=sid,
                action="excluded",
            )
            return False
        self.origin[sid] = (self.display(file), row)
        return True

    # values ------------------------------------------------------------------------------------
    def label(
        self, raw: str | None, file: str | os.PathLike[str], row: int | None, fld: str, sid: str | None
    ) -> tuple[str | None, dict[str, Any]]:
        """(canonical label, extra meta). Unknown or empty labels are reported; the raw text goes to meta."""
        text = (raw or "").strip()
        if not text:
            self.problem(file, row, fld, "unknown_label", "empty label", sample_id=sid)
            return None, {}
        lab = self.label_aliases.get(text.lower()) or self.space.normalize(text)
        if lab is None:
            hint = close_match(text.lower(), list(self.space.labels))
            self.problem(
                file,
                row,
                fld,
                "unknown_label",
                f"unknown label {text!r} for label space {self.space.name!r}{hint}; known: "
                f"{', '.join(self.space.labels)} (add it to options.label_aliases to map it)",
                sample_id=sid,
            )
            return None, {"raw_label": text}
        return lab, {}

    def number(
        self,
        raw: Any,
        file: str | os.PathLike[str],
        row: int | None,
        fld: str,
        sid: str | None,
        placeholder: float | None = None,
        integer: bool = False,
        bounds: tuple[float, float] | None = None,
    ) -> float | int | None:
        """A float (or int) from text; empty, NaN or ``placeholder`` gives None; text that is not a number,
        an infinite value (``inf``, ``1e999``) or one outside ``bounds`` (inclusive) is a bad_value (None)."""
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            return None
        try:
            v = float(raw)
        except (TypeError, ValueError):
            self.problem(file, row, fld, "bad_value", f"{fld} {raw!r} is not a number", sample_id=sid)
            return None
        if v != v:  # NaN is "no value" in pandas-written files
            return None
        if placeholder is not None and v == placeholder:
            return None
        if math.isinf(v):
            self.problem(file, row, fld, "bad_value", f"{fld} {raw!r} is not a finite number", sample_id=sid)
            return None
        if bounds is not None and not bounds[0] <= v <= bounds[1]:
            self.problem(
                file,
                row,
                fld,
                "bad_value",
                f"{fld} {raw!r} is outside {bounds[0]:g}..{bounds[1]:g}"
                + (" (the MER valence scale)" if bounds == VALENCE_RANGE else ""),
                sample_id=sid,
            )
            return None
        if integer:
            if not v.is_integer():
                self.problem(file, row, fld, "bad_value", f"{fld} {raw!r} is not an integer", sample_id=sid)
                return None
            return int(v)
        return v


# ------------------------------------------------------------------------------------------------
# readers


def clean(text: Any) -> str | None:
    """Stripped text, or None for empty / missing."""
    if text is None:
        return None
    s = str(text).strip()
    return s or None


@dataclass
class Table:
    """A CSV read with line numbers: ``rows`` yields ``(line_no, {column: text})``."""

    path: Path
    header: list[str]
    id_col: str
    missing: set[str]
    records: list[tuple[int, dict[str, str]]]

    def rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        return iter(self.records)

    def has(self, col: str) -> bool:
        return col in self.header

    def first_present(self, cols: tuple[str, ...] | list[str]) -> str | None:
        return next((c for c in cols if c in self.header), None)

    def require(self, ctx: ImportContext, columns: tuple[str, ...] | list[str]) -> None:
        """Report each absent value column once (missing_column, row 1); rows are kept with it empty."""
        for c in columns:
            if c not in self.header and c not in self.missing:
                self.missing.add(c)
                ctx.problem(
                    self.path,
                    1,
                    c,
                    "missing_column",
                    f"column {c!r} not found{close_match(c, self.header)}; header is {self.header}; "
                    f"rows kept with it empty",
                    rows_affected=len(self.records),
                )


_UNDECODED = re.compile("[\udc80-\udcff]")
"""A byte that is not UTF-8, as ``errors="surrogateescape"`` decodes it (U+DC80..U+DCFF)."""


def _not_utf8(fields: list[str], header: list[str]) -> str | None:
    """Why a record is not UTF-8 (the first bad byte and its column), or None when every cell is."""
    for i, f in enumerate(fields):
        m = _UNDECODED.search(f)
        if m:
            col = header[i] if i < len(header) else f"#{i + 1}"
            return (
                f"not valid UTF-8: byte 0x{ord(m.group()) - 0xDC00:02x} in column {col!r} at character {m.start() + 1} "
                "(save the file as UTF-8)"
            )
    return None


def read_table(
    ctx: ImportContext,
    rel: str | os.PathLike[str],
    id_cols: tuple[str, ...] = ("name",),
    columns: tuple[str, ...] = (),
    delimiter: str = ",",
) -> Table | None:
    """Read a CSV with a header row, reporting problems; None when the file cannot be used at all.

    ``id_cols``: accepted names of the id column (first present wins); without one the file is skipped.
    ``columns``: value columns the importer needs; each absent one is reported once (missing_column)
    and the rows are kept with that field None. A row with a different number of fields than the header,
    or an empty id, or a byte that is not UTF-8, is reported as malformed_row and excluded (the rest of the
    file is imported). Row numbers are the line where the record
    starts (header = 1), so a quoted field spanning lines does not shift later numbers.
    """
    path = ctx.path(rel)
    if not path.is_file():
        ctx.problem(path, None, None, "missing_file", f"file not found: {path}", action="excluded", rows_affected=0)
        return None
    try:
        raw = path.read_bytes()
    except OSError as e:
        ctx.problem(path, None, None, "unreadable_file", f"cannot read: {e}", action="excluded", rows_affected=0)
        return None
    try:
        text = raw.decode("utf-8-sig")
        bad_utf8 = False
    except UnicodeDecodeError:
        # keep going: each record holding a byte that is not UTF-8 is named and excluded, the rest imported
        text = raw.decode("utf-8-sig", errors="surrogateescape")
        bad_utf8 = True
    # newline="": records split on \n, \r\n or \r only (not on U+2028 inside a quoted cell), as csv expects
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        ctx.problem(path, 1, None, "malformed_row", "empty file (no header row)", action="excluded", rows_affected=0)
        return None
    except csv.Error as e:
        ctx.problem(path, 1, None, "malformed_row", f"header is not valid CSV: {e}", action="excluded")
        return None
    if bad_utf8 and (why := _not_utf8(header, header)):
        ctx.problem(path, 1, None, "unreadable_file", f"header {why}; the whole file is skipped", action="excluded")
        return None
    records: list[tuple[int, dict[str, str]]] = []
    raw_rows: list[tuple[int, list[str]]] = []
    prev_end = reader.line_num
    while True:
        start = prev_end + 1
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            ctx.problem(path, start, None, "malformed_row", f"not valid CSV: {e}", action="excluded")
            prev_end = reader.line_num
            continue
        prev_end = reader.line_num
        if not fields or all(not f.strip() for f in fields):
            continue
        raw_rows.append((start, fields))
    id_col = next((c for c in id_cols if c in header), None)
    if id_col is None:
        ctx.problem(
            path,
            1,
            id_cols[0],
            "missing_column",
            f"no id column: expected one of {list(id_cols)}{close_match(id_cols[0], header)}; header is {header}; "
            f"the whole file is skipped",
            action="excluded",
            rows_affected=len(raw_rows),
        )
        return None
    n = len(header)
    for start, fields in raw_rows:
        if len(fields) != n:
            ctx.problem(
                path, start, None, "malformed_row", f"{len(fields)} fields where the header has {n}", action="excluded"
            )
            continue
        if bad_utf8 and (why := _not_utf8(fields, header)):
            ctx.problem(path, start, None, "malformed_row", f"{why}; row excluded", action="excluded")
            continue
        rec = dict(zip(header, fields, strict=True))
        if not rec[id_col].strip():
            ctx.problem(path, start, id_col, "malformed_row", f"empty {id_col!r}", action="excluded")
            continue
        rec[id_col] = rec[id_col].strip()
        records.append((start, rec))
    table = Table(path=path, header=header, id_col=id_col, missing=set(), records=records)
    table.require(ctx, columns)
    return table


def read_lookup(
    ctx: ImportContext, rel: str | os.PathLike[str], value_cols: tuple[str, ...], id_cols: tuple[str, ...] = ("name",)
) -> dict[str, dict[str, str]]:
    """A side table (transcripts, metadata) as ``id -> {column: text}``; one dict lookup per sample later.

    ``value_cols`` are alternatives: the first present is used as ``"value"`` in each row dict (a
    missing_column problem is reported when none is present). The full row is kept as well.
    """
    table = read_table(ctx, rel, id_cols=id_cols)
    if table is None:
        return {}
    col = table.first_present(value_cols) if value_cols else None
    if value_cols and col is None:
        ctx.problem(
            table.path,
            1,
            value_cols[0],
            "missing_column",
            f"none of the columns {list(value_cols)} found{close_match(value_cols[0], table.header)}; "
            f"header is {table.header}",
            rows_affected=len(table.records),
        )
    out: dict[str, dict[str, str]] = {}
    first: dict[str, int] = {}
    for row, rec in table.rows():
        key = rec[table.id_col]
        if key in out:
            ctx.problem(
                table.path,
                row,
                table.id_col,
                "duplicate_id",
                f"{key!r} already at row {first[key]}; this row is ignored",
                sample_id=key,
                action="excluded",
            )
            continue
        if col is not None:
            rec["value"] = rec[col]
        out[key] = rec
        first[key] = row
    return out


def read_json_object(ctx: ImportContext, rel: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A JSON file whose top level is an object (MERR annotation files); problems reported, None if unusable."""
    import json

    path = ctx.path(rel)
    if not path.is_file():
        ctx.problem(path, None, None, "missing_file", f"file not found: {path}", action="excluded", rows_affected=0)
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, OSError) as e:
        ctx.problem(
            path, None, None, "unreadable_file", f"cannot read as UTF-8: {e}", action="excluded", rows_affected=0
        )
        return None
    except json.JSONDecodeError as e:
        ctx.problem(
            path,
            e.lineno,
            None,
            "unreadable_file",
            f"invalid JSON: {e.msg} (column {e.colno})",
            action="excluded",
            rows_affected=0,
        )
        return None
    if not isinstance(data, dict):
        ctx.problem(
            path,
            1,
            None,
            "unreadable_file",
            f"expected a JSON object keyed by sample name, got {type(data).__name__}",
            action="excluded",
            rows_affected=0,
        )
        return None
    return data


class MediaIndex:
    """Media files of one or more folders by stem, scanned once (one dict lookup per sample).

    Folders that do not exist are reported once as missing_file; samples then simply have no media of
    that kind (no per-sample problem). ``find(name)`` returns the file for ``name`` with the preferred
    suffix, or None.
    """

    def __init__(
        self, ctx: ImportContext, folders: list[str | os.PathLike[str]], exts: tuple[str, ...] = VIDEO_EXTS
    ) -> None:
        self.exts = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in exts)
        rank = {e: i for i, e in enumerate(self.exts)}
        self.files: dict[str, str] = {}
        best: dict[str, int] = {}
        self.folders: list[Path] = []
        for rel in folders:
            d = ctx.path(rel).resolve()
            if not d.is_dir():
                ctx.problem(
                    d,
                    None,
                    None,
                    "missing_file",
                    f"media folder not found: {d}; samples are kept without media from it",
                    rows_affected=0,
                )
                continue
            self.folders.append(d)
            with os.scandir(d) as it:
                for e in it:
                    stem, suf = os.path.splitext(e.name)
                    r = rank.get(suf.lower())
                    if r is None or not e.is_file():
                        continue
                    if stem not in best or r < best[stem]:
                        best[stem] = r
                        self.files[stem] = e.path

    @property
    def usable(self) -> bool:
        return bool(self.folders)

    def find(self, name: str) -> Path | None:
        f = self.files.get(name)
        return Path(f) if f is not None else None

    def where(self) -> str:
        return ", ".join(str(d) for d in self.folders)


def openset_words(
    ctx: ImportContext, raw: str | None, file: str | os.PathLike[str], row: int | None, fld: str, sid: str | None
) -> list[str] | None:
    """An ``openset`` cell -> lower-case words (``emollm.answers.parse_emotion_list``, clean style).

    ``['a', 'b']``, ``[a, b]``, ``a, b`` and ``[]`` are read; a cell that is not a flat list (unbalanced or
    nested brackets) is a ``bad_value`` problem naming the row and the sample is kept with ``None``.
    """
    try:
        return parse_emotion_list(raw, "clean")
    except ValueError as e:
        ctx.problem(file, row, fld, "bad_value", f"not a list of emotion words: {e}; kept without it", sample_id=sid)
        return None


def video_media(
    ctx: ImportContext, videos: MediaIndex | None, sid: str, file: str | os.PathLike[str], row: int | None
) -> dict[str, str]:
    """``{"video": ref}`` for ``sid``, or ``{}``; a file missing from a usable folder is a missing_media problem."""
    if videos is None or not videos.usable:
        return {}
    vp = videos.files.get(sid)
    if vp is None:
        ctx.problem(
            file,
            row,
            "video",
            "missing_media",
            f"no video {sid}.{{{','.join(e.lstrip('.') for e in videos.exts)}}} in {videos.where()}; "
            f"kept without video",
            sample_id=sid,
        )
        return {}
    return {"video": ctx.media_ref(vp)}


def read_openset(ctx: ImportContext, rel: str | os.PathLike[str]) -> list[tuple[str, int, str, list[str] | None]]:
    """Rows of a ``name,openset`` file as ``(path, row, name, words)``; words None when the cell is not a list
    (reported as ``bad_value``, see ``openset_words``)."""
    table = read_table(ctx, rel, id_cols=("name",), columns=("openset",))
    if table is None or "openset" in table.missing:
        return []
    path = str(table.path)
    return [
        (path, row, r["name"], openset_words(ctx, r["openset"], path, row, "openset", r["name"]))
        for row, r in table.rows()
    ]
