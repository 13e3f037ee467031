"""Readers for the MER challenge label and prediction files, with errors that name file, row and column.

Formats (UTF-8 CSV with a header row; a BOM is tolerated; extra columns are ignored):

- label / prediction CSV ``name,discrete[,valence]`` (MER2023 ``test1-label.csv``, MER2024
  ``test1_name_convert_label.csv``, a model's predictions): ``read_label_csv``.
- open-vocabulary CSV ``name,openset`` whose cell is a list written ``['a', 'b']``, ``[a, b]`` or ``a, b``
  (MER2024 ``check-openset.csv``, OV-MERD ``ovlabel.csv``): ``read_openset_csv``.
- sentiment gold ``name,valence`` (MOSI/MOSEI/SIMS style, any real number): ``read_valence_csv``;
  sentiment predictions are ``name,discrete`` with positive/negative/neutral (``read_label_csv``).

    gold = read_label_csv("test1-label.csv", valence="required")
    gold.discrete["sample_00001998"]      # 'worried'   (raw cell text, stripped; '' when empty)
    gold.where("sample_00001998", "discrete")  # 'test1-label.csv: row 2, column discrete'

Readers only check the file's shape (header, field counts, duplicate or empty names, numbers); what a
label *means* (known label, unparsed, synonyms) is decided by the metric and its mode. Rows are
numbered by file line, the header being row 1 (a record whose quoted cell spans lines is numbered
by its first line).

List cells are parsed by ``emollm.answers.parse_emotion_list`` (styles ``clean``, ``affectgpt``,
``mer2024``; see that module). A cell that ``pandas.read_csv`` reads as missing (empty, ``NA``,
``nan``, ``None``, ... : ``emollm.answers.MISSING_CELLS``) is an empty list, as in the official scorers,
which read the files with pandas; ``OpensetFile.missing`` names those rows.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from emollm.answers import MISSING_CELLS, ListStyle, parse_emotion_list

ValenceRule = Literal["required", "optional", "absent"]


@dataclass
class _Rows:
    """A parsed CSV: header and rows as dicts, with 1-based spreadsheet row numbers."""

    path: Path
    header: list[str]
    rows: list[tuple[int, dict[str, str]]]


def _read_rows(path: str | Path, required: tuple[str, ...]) -> _Rows:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: file not found")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{p}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError(f"{p}: empty file; expected a header with columns {', '.join(required)}") from None
    except csv.Error as e:
        raise ValueError(f"{p}: row 1: malformed CSV ({e})") from None
    header = [h.strip() for h in header]
    missing = [c for c in required if c not in header]
    if missing:
        raise ValueError(
            f"{p}: missing column(s) {', '.join(missing)}; header is {','.join(header)!r}, "
            f"expected {','.join(required)}"
        )
    dup = sorted({h for h in header if header.count(h) > 1 and h})
    if dup:
        raise ValueError(f"{p}: row 1: column(s) {', '.join(dup)} appear more than once")
    rows: list[tuple[int, dict[str, str]]] = []
    while True:
        row_no = reader.line_num + 1  # the line a record starts on (a quoted cell may span lines)
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise ValueError(f"{p}: row {row_no}: malformed CSV ({e})") from None
        if not fields or all(not f.strip() for f in fields):
            continue  # blank line
        if len(fields) != len(header):
            raise ValueError(
                f"{p}: row {row_no}: {len(fields)} field(s) but the header has {len(header)} "
                f"({','.join(header)}); quote cells that contain commas"
            )
        rows.append((row_no, dict(zip(header, fields, strict=True))))
    return _Rows(p, header, rows)


@dataclass
class NameTable:
    path: Path
    names: list[str] = field(default_factory=list)
    """Names in file order."""
    rows: dict[str, int] = field(default_factory=dict)
    """name -> spreadsheet row number (header = 1)."""

    def where(self, name: str, column: str | None = None) -> str:
        loc = f"{self.path}: row {self.rows[name]}"
        return f"{loc}, column {column}" if column else loc

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: object) -> bool:
        return name in self.rows

    def _add_name(self, raw: str, row: int) -> str:
        name = raw.strip()
        if not name:
            raise ValueError(f"{self.path}: row {row}, column name: empty name")
        if name in self.rows:
            raise ValueError(
                f"{self.path}: row {row}, column name: duplicate name {name!r} (first seen in row {self.rows[name]})"
            )
        self.rows[name] = row
        self.names.append(name)
        return name


@dataclass
class LabelFile(NameTable):
    """``name,discrete[,valence]``: raw discrete cells (stripped, '' when empty) and valences."""

    discrete: dict[str, str] = field(default_factory=dict)
    valence: dict[str, float | None] = field(default_factory=dict)
    has_valence_column: bool = False


@dataclass
class OpensetFile(NameTable):
    """``name,openset``: the parsed word list per name and the raw cell text."""

    items: dict[str, list[str]] = field(default_factory=dict)
    raw: dict[str, str] = field(default_factory=dict)
    style: ListStyle = "clean"
    missing: list[str] = field(default_factory=list)
    """Names whose cell pandas reads as missing (empty, NA, nan, None, ...): an empty list."""


@dataclass
class ValenceFile(NameTable):
    """``name,valence``: one real number per name."""

    valence: dict[str, float] = field(default_factory=dict)


def _parse_float(cell: str, where: str) -> float:
    try:
        v = float(cell)
    except ValueError:
        raise ValueError(f"{where}: {cell!r} is not a number") from None
    if not math.isfinite(v):
        raise ValueError(f"{where}: {cell!r} is not a finite number")
    return v


def read_label_csv(path: str | Path, *, valence: ValenceRule = "optional") -> LabelFile:
    """Read ``name,discrete[,valence]``.

    ``valence``: ``required`` (column and every cell must hold a number), ``optional`` (column may be
    missing; empty cells give None; MER2023 test3 writes them empty) or ``absent`` (ignored).
    """
    need = ("name", "discrete", "valence") if valence == "required" else ("name", "discrete")
    raw = _read_rows(path, need)
    out = LabelFile(raw.path, has_valence_column="valence" in raw.header and valence != "absent")
    for row_no, rec in raw.rows:
        name = out._add_name(rec["name"], row_no)
        out.discrete[name] = rec["discrete"].strip()
        v: float | None = None
        if out.has_valence_column:
            cell = rec["valence"].strip()
            if cell:
                v = _parse_float(cell, f"{raw.path}: row {row_no}, column valence")
            elif valence == "required":
                raise ValueError(f"{raw.path}: row {row_no}, column valence: empty; a valence number is required")
        out.valence[name] = v
    return out


def read_valence_csv(path: str | Path) -> ValenceFile:
    """Read ``name,valence`` (sentiment gold); every cell must be a finite number."""
    raw = _read_rows(path, ("name", "valence"))
    out = ValenceFile(raw.path)
    for row_no, rec in raw.rows:
        name = out._add_name(rec["name"], row_no)
        out.valence[name] = _parse_float(rec["valence"].strip(), f"{raw.path}: row {row_no}, column valence")
    return out


def read_openset_csv(path: str | Path, *, style: ListStyle = "clean") -> OpensetFile:
    """Read ``name,openset`` and parse each cell with ``emollm.answers.parse_emotion_list(cell, style)``.

    A missing cell (``MISSING_CELLS``, matched exactly as pandas does; in the ``clean`` style also after
    stripping spaces) is an empty list and its name is listed in ``missing``.
    """
    raw = _read_rows(path, ("name", "openset"))
    out = OpensetFile(raw.path, style=style)
    for row_no, rec in raw.rows:
        name = out._add_name(rec["name"], row_no)
        cell = rec["openset"]
        if cell in MISSING_CELLS or (style == "clean" and cell.strip() in MISSING_CELLS):
            out.items[name] = []
            out.missing.append(name)
            out.raw[name] = cell
            continue
        try:
            out.items[name] = parse_emotion_list(cell, style)
        except ValueError as e:
            raise ValueError(f"{raw.path}: row {row_no}, column openset: {e}") from None
        out.raw[name] = cell
    return out
