"""Paired emotion descriptions (EMER-style explanation tasks): read a gold or predicted description file
and pair the two by sample id. Both the LLM judge and the judge-free explanation metrics score these
pairs, so they live below both.

    gold = read_descriptions("EMER/dataset-v1/gt-chi.csv")            # id -> text
    pred = read_descriptions("runs/x/emer.csv", text_column="chi_reasons")
    pairs = pair_descriptions(gold, pred)                              # missing predictions are listed
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from emollm.log import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class DescriptionPair:
    """One sample's gold and predicted description."""

    sample_id: str
    gold: str
    pred: str


@dataclass(frozen=True)
class PairedDescriptions:
    """Pairs to score, plus the gold ids that had no prediction (reported, never scored)."""

    pairs: list[DescriptionPair]
    missing: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.pairs)


_ID_COLUMNS = ("names", "name", "sample_id", "id")


_TEXT_COLUMNS = ("chi_reasons", "reasons", "reason", "description", "chinese", "english")


def read_descriptions(
    path: str | os.PathLike[str], id_column: str | None = None, text_column: str | None = None
) -> dict[str, str]:
    """Read ``id -> description`` from a CSV (EMER ``names,chi_reasons`` / ``names,...,reasons`` layouts).

    Without explicit columns the first of ``names, name, sample_id, id`` and of
    ``chi_reasons, reasons, reason, description, chinese, english`` present in the header is used.
    Duplicate or empty ids raise, naming the file and row.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"description file {str(p)!r} not found")
    with open(p, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []

        def pick(given: str | None, options: tuple[str, ...], what: str) -> str:
            if given is not None:
                if given not in header:
                    raise ValueError(f"{p}: no {what} column {given!r}; columns are {header}")
                return given
            for c in options:
                if c in header:
                    return c
            raise ValueError(f"{p}: no {what} column (looked for {', '.join(options)}); columns are {header}")

        id_col = pick(id_column, _ID_COLUMNS, "id")
        text_col = pick(text_column, _TEXT_COLUMNS, "text")
        out: dict[str, str] = {}
        for row_no, row in enumerate(reader, start=2):
            sid = (row.get(id_col) or "").strip()
            if not sid:
                raise ValueError(f"{p}: row {row_no}: empty {id_col!r}")
            if sid in out:
                raise ValueError(f"{p}: row {row_no}: duplicate id {sid!r}")
            out[sid] = (row.get(text_col) or "").strip()
    return out


def pair_descriptions(gold: Mapping[str, str], pred: Mapping[str, str]) -> PairedDescriptions:
    """Pair gold and predicted descriptions by id, in gold order.

    A gold id without prediction goes to ``missing``; predictions for unknown ids are ignored.
    An empty gold description is bad input and raises; an empty prediction is kept (it scores low).
    """
    pairs: list[DescriptionPair] = []
    missing: list[str] = []
    for sid, g in gold.items():
        if not g.strip():
            raise ValueError(f"gold description of sample {sid!r} is empty")
        if sid not in pred:
            missing.append(sid)
            continue
        pairs.append(DescriptionPair(sid, g, pred[sid]))
    if missing:
        log.warning("%d of %d gold samples have no prediction (reported as missing)", len(missing), len(gold))
    return PairedDescriptions(pairs, missing)


def _as_paired(pairs: PairedDescriptions | Sequence[DescriptionPair]) -> PairedDescriptions:
    return pairs if isinstance(pairs, PairedDescriptions) else PairedDescriptions(list(pairs))
