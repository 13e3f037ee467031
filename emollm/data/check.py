"""Re-validate a prepared manifest: rows that do not parse, duplicate ids, missing media, label-space drift.

A manifest can go stale after it was written (media moved or deleted, rows edited by hand, the label
space changed). ``check_manifest`` reads ``samples.jsonl`` line by line and reports every problem in
the same ``ImportReport`` format as ``emollm prepare`` (file = samples.jsonl, row = its line number)::

    report = check_manifest("runs/data/mer2023", probe=False)
    report.ok  # True when nothing is wrong

CLI: ``emollm data check runs/data/mer2023 [--probe]``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import ValidationError

from emollm.data.report import ImportReport, count_labels
from emollm.data.sample import Sample
from emollm.labels import label_space


def check_manifest(
    path: str | os.PathLike[str], probe: bool = False, workers: int = 8, progress: bool = True
) -> ImportReport:
    """Check a manifest folder (or its ``samples.jsonl``); never raises for bad rows, only for a missing file."""
    p = Path(path)
    jsonl = p / "samples.jsonl" if p.is_dir() else p
    if not jsonl.is_file():
        raise FileNotFoundError(f"no manifest at {p}: expected {jsonl}")
    root = jsonl.parent
    info_p = root / "manifest.json"
    info = json.loads(info_p.read_text(encoding="utf-8")) if info_p.is_file() else {}
    report = ImportReport(
        corpus=info.get("corpus", ""), importer="check", label_space=info.get("label_space", ""), root=str(root)
    )
    space = None
    if report.label_space:
        try:
            space = label_space(report.label_space)
        except KeyError as e:
            report.add("manifest.json", None, "label_space", "unknown_label", str(e.args[0]))
    fname = jsonl.name
    seen: dict[str, int] = {}
    valid: list[Sample] = []
    todo: list[tuple[int, str, str, Path]] = []  # (row, sample id, kind, path) of media to probe
    with open(jsonl, encoding="utf-8") as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                s = Sample.model_validate_json(line)
            except ValidationError as e:
                err = e.errors()[0]
                loc = ".".join(str(x) for x in err["loc"]) or None
                report.add(fname, i, loc, "malformed_row", err["msg"], action="excluded")
                continue
            if s.id in seen:
                report.add(
                    fname,
                    i,
                    "id",
                    "duplicate_id",
                    f"id {s.id!r} already at row {seen[s.id]}",
                    sample_id=s.id,
                    action="excluded",
                )
                continue
            seen[s.id] = i
            valid.append(s)
            if space is not None and s.label is not None and s.label not in space.labels:
                report.add(
                    fname,
                    i,
                    "label",
                    "unknown_label",
                    f"label {s.label!r} is not canonical in label space {space.name!r} (label-space drift)",
                    sample_id=s.id,
                )
            for kind, ref in s.media.items():
                mp = Path(ref) if Path(ref).is_absolute() else root / ref
                if not mp.is_file():
                    report.add(
                        fname, i, kind, "missing_media", f"{kind} file not found: {mp}", sample_id=s.id, media=str(mp)
                    )
                elif probe:
                    todo.append((i, s.id, kind, mp))
    if todo:
        from emollm.media.probe import probe_many

        infos = probe_many([str(t[3]) for t in todo], workers=workers, progress=progress)
        for (i, sid, kind, mp), inf in zip(todo, infos, strict=True):
            if not inf.ok:
                report.add(
                    fname,
                    i,
                    kind,
                    "unreadable_media",
                    f"{kind} {mp} cannot be decoded: {inf.error}",
                    sample_id=sid,
                    media=str(mp),
                )
    n = len(seen)
    report.n_samples = n
    report.counts = count_labels(valid)
    expected = info.get("n_samples")
    if expected is not None and expected != n + report.n_excluded:
        report.add(
            "manifest.json",
            None,
            "n_samples",
            "bad_value",
            f"manifest.json says {expected} samples, samples.jsonl has {n + report.n_excluded} rows",
        )
    _check_against_report(root, info, n + report.n_excluded, report)
    report.manifest_written = True
    return report


def _check_against_report(root: Path, info: dict[str, object], n_rows: int, report: ImportReport) -> None:
    """Flag a manifest that does not belong to the ``report.json`` beside it (a failed or interrupted prepare)."""
    rp = root / "report.json"
    if not rp.is_file():
        return
    try:
        last = ImportReport.read(rp)
    except (ValueError, OSError) as e:
        report.add("report.json", None, None, "stale_manifest", f"report.json cannot be read: {e}")
        return
    why = None
    if not last.manifest_written:
        why = (
            f"report.json says the last prepare failed and wrote no manifest (n_samples {last.n_samples}, "
            f"{len(last.problems)} problem(s)), so this samples.jsonl is left from an earlier run"
        )
    elif last.created and info.get("created") and last.created != info.get("created"):
        why = f"report.json is from the prepare of {last.created}, manifest.json from {info.get('created')}"
    elif last.n_samples != info.get("n_samples", n_rows):
        why = f"report.json counts {last.n_samples} samples, the manifest {info.get('n_samples', n_rows)}"
    if why:
        report.add(
            "report.json",
            None,
            "n_samples",
            "stale_manifest",
            f"{why}: the manifest is stale; re-run emollm prepare before training on it",
        )
