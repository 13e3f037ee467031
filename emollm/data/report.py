"""The import report: every problem an importer or the media probe found, what was done about it, counts.

Each problem names the file, the row (1-based line number as a text editor shows it, header = row 1),
the field, a kind from ``KINDS`` and a message. Nothing is dropped silently: every problem says whether
its row was *kept* (the offending field set to None) or *excluded* (counted in ``n_excluded``).

    report = ImportReport(corpus="mer2023", importer="mer2023", label_space="mer6", root="/data/mer2023")
    report.add("train-label.csv", 7, "discrete", "unknown_label", "unknown label 'bored'", action="kept")
    report.write(out_dir)           # report.json + report.md
    print_report(report, console)   # rich summary tables on the terminal

The rule per kind (``KIND_RULES``) is what an importer does with a row that has that problem; it is
printed in ``report.md`` and in docs/DATA.md.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from emollm.io import atomic_write_json, atomic_write_text

if TYPE_CHECKING:
    from emollm.data.sample import Sample

ProblemKind = Literal[
    "missing_file",
    "unreadable_file",
    "missing_column",
    "unknown_column",
    "malformed_row",
    "unknown_label",
    "bad_value",
    "missing_annotation",
    "missing_media",
    "unreadable_media",
    "duplicate_id",
    "stale_manifest",
]
Action = Literal["kept", "excluded"]

KIND_RULES: dict[str, str] = {
    "missing_file": "A file named in the recipe options is absent. Import goes on without it; rows it would have "
    "provided are counted as excluded, information it would have added stays None. A folder of media that is "
    "absent is reported once (not per sample).",
    "unreadable_file": "A file exists but cannot be parsed (not UTF-8, invalid JSON, not an npz). Same rule as "
    "missing_file.",
    "missing_column": "A required column is absent (header = row 1). Without the id column the whole file is "
    "skipped (its rows excluded); without a value column the rows are kept with that field None.",
    "unknown_column": "A column the importer does not know that is a close match of one it does (``lable`` for "
    "``label``): almost surely a misspelt header. Its cells go to meta under the column's name; the field it was "
    "meant for stays None.",
    "malformed_row": "A row cannot be read (wrong number of fields, empty id, wrong JSON type). Excluded.",
    "unknown_label": "A label that is not in the recipe's label space (after synonyms and label_aliases), or an "
    "empty one where a label is required. Kept with label None; the raw text is kept in meta['raw_label'].",
    "bad_value": "A value of the wrong type (valence or frame count that is not a number). Kept with that field None.",
    "missing_annotation": "An id has no entry in a file the recipe marks as required (options.require). Kept with "
    "that field None.",
    "missing_media": "The media file for a sample is not there. Kept without that media entry (text-only use works).",
    "unreadable_media": "The media file exists but cannot be decoded (media probe). Kept without that media entry.",
    "duplicate_id": "An id seen before (in the same or an earlier file). The later row is excluded.",
    "stale_manifest": "(emollm data check) samples.jsonl / manifest.json do not belong to the last prepare's "
    "report.json (it failed, or counted other samples): re-run emollm prepare before training on it.",
}


class Problem(BaseModel):
    """One thing wrong with the input, and what the importer did about it."""

    file: str
    """The annotation file (relative to the corpus root when inside it)."""
    row: int | None = None
    """1-based line number in ``file`` (header = row 1); None for whole-file problems or JSON/npz entries."""
    field: str | None = None
    kind: ProblemKind
    message: str
    sample_id: str | None = None
    action: Action = "kept"
    rows_affected: int = 1
    """How many rows the action covers (a skipped file excludes all its rows at once)."""
    media: str | None = None
    """The media path concerned (missing_media, unreadable_media)."""

    def where(self) -> str:
        loc = self.file + (f":{self.row}" if self.row is not None else "")
        return loc + (f" [{self.field}]" if self.field else "")


class ImportReport(BaseModel):
    """All problems of one import, plus what came out (counts, media summary)."""

    corpus: str = ""
    importer: str = ""
    label_space: str = ""
    root: str = ""
    problems: list[Problem] = Field(default_factory=list)
    n_samples: int = 0
    counts: dict[str, dict[str, int]] = Field(default_factory=dict)
    """split -> label (``<none>`` for unlabelled) -> number of samples."""
    media: dict[str, Any] = Field(default_factory=dict)
    """Probe summary: n_probed, n_ok, n_unreadable, hours, fps/size ranges; ``{"skipped": true}`` with --no-probe."""
    manifest_written: bool = False
    created: str = ""
    """When the prepare that wrote this report ran; equals ``manifest.json``'s ``created`` when it wrote one."""

    def add(
        self,
        file: str,
        row: int | None,
        field: str | None,
        kind: ProblemKind,
        message: str,
        *,
        sample_id: str | None = None,
        action: Action = "kept",
        rows_affected: int = 1,
        media: str | None = None,
    ) -> Problem:
        p = Problem(
            file=file,
            row=row,
            field=field,
            kind=kind,
            message=message,
            sample_id=sample_id,
            action=action,
            rows_affected=rows_affected,
            media=media,
        )
        self.problems.append(p)
        return p

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def n_excluded(self) -> int:
        return sum(p.rows_affected for p in self.problems if p.action == "excluded")

    def by_kind(self) -> dict[str, int]:
        return dict(Counter(p.kind for p in self.problems).most_common())

    def to_json(self) -> dict[str, Any]:
        d = self.model_dump(mode="json")
        d["n_problems"] = len(self.problems)
        d["n_excluded"] = self.n_excluded
        d["problems_by_kind"] = self.by_kind()
        return d

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> ImportReport:
        """Load ``report.json`` (or the folder holding it)."""
        p = Path(path)
        p = p / "report.json" if p.is_dir() else p
        data = json.loads(p.read_text(encoding="utf-8"))
        for k in ("n_problems", "n_excluded", "problems_by_kind"):
            data.pop(k, None)
        return cls.model_validate(data)

    def write(self, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``report.json`` and ``report.md`` into ``out_dir`` atomically; returns both paths."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "report.json", self.to_json())
        atomic_write_text(out / "report.md", self.to_markdown())
        return out / "report.json", out / "report.md"

    def to_markdown(self, max_rows: int = 200) -> str:
        def cell(x: object) -> str:
            return "" if x is None else str(x).replace("|", "\\|").replace("\n", " ")

        lines = [f"# Import report: {self.corpus or self.importer}", ""]
        lines += [
            f"- importer: `{self.importer}`, label space: `{self.label_space}`",
            f"- corpus root: `{self.root}`",
            f"- samples written: {self.n_samples}" + ("" if self.manifest_written else " (manifest NOT written)"),
            f"- problems: {len(self.problems)}, rows excluded: {self.n_excluded}",
            "",
        ]
        if self.counts:
            labels = label_order(self)
            lines += ["## Samples per split and label", ""]
            lines.append("| split | n | " + " | ".join(labels) + " |")
            lines.append("|---|---|" + "---|" * len(labels))
            for split, c in self.counts.items():
                row = [str(c.get(lab, 0)) for lab in labels]
                lines.append(f"| {split} | {sum(c.values())} | " + " | ".join(row) + " |")
            lines.append("")
        if self.media:
            lines += ["## Media", ""]
            lines += [f"- {k}: {v}" for k, v in self.media.items()]
            lines.append("")
        if self.problems:
            lines += ["## Problems by kind", "", "| kind | count | what was done |", "|---|---|---|"]
            for kind, n in self.by_kind().items():
                lines.append(f"| {kind} | {n} | {cell(KIND_RULES[kind])} |")
            lines += ["", "## Problems", ""]
            lines += ["| file | row | field | kind | action | id | message |", "|---|---|---|---|---|---|---|"]
            for p in self.problems[:max_rows]:
                lines.append(
                    f"| {cell(p.file)} | {cell(p.row)} | {cell(p.field)} | {p.kind} | {p.action} | "
                    f"{cell(p.sample_id)} | {cell(p.message)} |"
                )
            if len(self.problems) > max_rows:
                lines.append(f"\n... and {len(self.problems) - max_rows} more (all of them are in report.json).")
        else:
            lines.append("No problems found.")
        return "\n".join(lines) + "\n"


def count_labels(samples: list[Sample]) -> dict[str, dict[str, int]]:
    """split -> label (``<none>`` for unlabelled) -> count, splits in first-seen order."""
    counts: dict[str, dict[str, int]] = {}
    for s in samples:
        c = counts.setdefault(s.split, {})
        key = s.label if s.label is not None else "<none>"
        c[key] = c.get(key, 0) + 1
    return counts


def label_order(report: ImportReport) -> list[str]:
    """Labels present in ``report.counts``, in the label space's order, then any others, ``<none>`` last."""
    present = {lab for c in report.counts.values() for lab in c}
    try:
        from emollm.labels import label_space

        order = list(label_space(report.label_space).labels)
    except KeyError:
        order = []
    rest = sorted(present - set(order) - {"<none>"})
    return [lab for lab in order if lab in present] + rest + (["<none>"] if "<none>" in present else [])


def print_report(report: ImportReport, console: Any = None, max_problems: int = 15) -> None:
    """Summarise a report on the terminal with rich tables (counts per split/label, problems)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    if report.counts:
        labels = label_order(report)
        t = Table(title=f"{report.corpus}: samples per split and label ({report.label_space})")
        t.add_column("split")
        t.add_column("n", justify="right")
        for lab in labels:
            t.add_column(lab, justify="right")
        for split, c in report.counts.items():
            t.add_row(split, str(sum(c.values())), *[str(c.get(lab, 0)) for lab in labels])
        console.print(t)
    if not report.problems:
        console.print("[green]no problems found[/green]")
        return
    t = Table(title=f"{len(report.problems)} problem(s), {report.n_excluded} row(s) excluded")
    t.add_column("kind")
    t.add_column("count", justify="right")
    t.add_column("first at")
    t.add_column("first message", overflow="fold")
    first: dict[str, Problem] = {}
    for p in report.problems:
        first.setdefault(p.kind, p)
    for kind, n in report.by_kind().items():
        p = first[kind]
        t.add_row(kind, str(n), p.where(), p.message)
    console.print(t)
    if len(report.problems) <= max_problems:
        d = Table(title="problems")
        for col in ("file", "row", "field", "kind", "action", "message"):
            d.add_column(col, overflow="fold")
        for p in report.problems:
            d.add_row(p.file, str(p.row or ""), p.field or "", p.kind, p.action, p.message)
        console.print(d)
