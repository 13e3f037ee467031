"""MER2025 Track 1 (MER-SEMI) and Track 2 (MER-FG) scores and submission files (``zeroQiaoba/MERTools``).

    m = mer2025_fg(gold_lists, pred_lists, wheel)     # {"L1": {...}, "L2": {...}, "score": (L1 F + L2 F) / 2}
    write_track1_csv({"name": "happy", ...}, "track_all_candidates.csv", "sub.csv")
    write_track2_npz({"name": ["happy", "relieved"], ...}, "track_all_candidates.csv", "sub-openset.npz")

- **Track 1, MER-SEMI** (``mer2025_semi``): WAF (``f1_score(average="weighted")``) over the gold names;
  labels are the six ``neutral, angry, happy, sad, worried, surprise`` (published mode: anything else
  is an error, as the official ``emo2idx`` lookup raises a KeyError). With ``candidates`` (the
  ``track_all_candidates.csv`` name list) the prediction file must hold exactly those names, as the
  official scorer asserts 20,000 rows; without it extra names are allowed and ignored.
- **Track 2, MER-FG** (``mer2025_fg``): the emotion-wheel set scores (``wheel.py``) at level 1 and at
  level 2, each the mean over the 5 wheels of the per-wheel F, and their mean, which the baseline's
  ``evaluation.py`` prints as ``[L1-F, L2-F, mean]``; main score = the mean. Predictions are a
  ``name,openset`` CSV or the Codalab ``*-openset.npz`` (arrays ``filenames`` and ``fileitems``, the
  items being list strings); both are parsed with the AffectGPT ``string_to_list`` rule in published
  mode. ``candidates`` is checked as for Track 1.

The writers check that the predictions cover exactly the candidate names (a missing or unknown name is
an error naming it), write atomically, and refuse a Track 1 label outside the six.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emollm.answers import parse_emotion_list
from emollm.evaluation.metrics.classification import make_resampler, read_label_pairs
from emollm.evaluation.metrics.mer import MER_LABELS, mer2023_metrics
from emollm.evaluation.metrics.registry import Scored, ScoreOptions, align_names, register_metric
from emollm.evaluation.metrics.wheel import WheelVersion, ew_set_scores, load_wheel, summarize_ew
from emollm.evaluation.readers import OpensetFile, read_label_csv, read_openset_csv
from emollm.io import atomic_path, atomic_write_text
from emollm.labels import label_space

N_CANDIDATES = 20_000
"""Names in ``track_all_candidates.csv`` (what the official scorers assert)."""


def read_candidates(path: str | Path) -> list[str]:
    """The ``name`` column of ``track_all_candidates.csv`` (duplicates and empty names are errors)."""
    from emollm.evaluation.readers import _read_rows

    rows = _read_rows(path, ("name",))
    seen: dict[str, int] = {}
    for row_no, rec in rows.rows:
        n = rec["name"].strip()
        if not n:
            raise ValueError(f"{path}: row {row_no}, column name: empty name")
        if n in seen:
            raise ValueError(f"{path}: row {row_no}, column name: duplicate name {n!r} (row {seen[n]})")
        seen[n] = row_no
    return list(seen)


def check_candidates(names: Sequence[str], candidates: Sequence[str], where: str) -> None:
    """``names`` must be exactly the candidate names (the official row-count assertion, with the names)."""
    have, want = set(names), set(candidates)
    missing = [n for n in candidates if n not in have]
    extra = [n for n in names if n not in want]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"{len(missing)} candidate name(s) without a prediction, e.g. {missing[:3]}")
        if extra:
            parts.append(f"{len(extra)} name(s) that are not candidates, e.g. {extra[:3]}")
        raise ValueError(
            f"{where}: a MER2025 submission covers exactly the {len(want)} candidate names: " + "; ".join(parts)
        )


def mer2025_fg(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], wheel: Any) -> dict[str, Any]:
    """Track 2 numbers: ``L1`` and ``L2`` (F, P, R means over the 5 wheels) and ``score`` = mean of the two F."""
    s = summarize_ew(ew_set_scores(gold, pred, wheel))
    l1, l2 = s["EW_L1_mean"], s["EW_L2_mean"]
    return {"score": (l1["F"] + l2["F"]) / 2, "L1": l1, "L2": l2, "per_mapping": s}


class Track1Options(ScoreOptions):
    candidates: Path | None = None
    """track_all_candidates.csv: the prediction file must hold exactly these names (20,000)."""


class Track2Options(Track1Options):
    wheel: Path
    """Folder with the emotion-wheel resources (see the wheel metric)."""
    wheel_version: WheelVersion = "affectgpt2025"


@register_metric("mer2025_semi", "MER2025 Track 1 MER-SEMI: WAF over the 6 labels (main score)", Track1Options)
def score_mer2025_semi(gold_path: Path, pred_path: Path, opts: Track1Options) -> Scored:
    gold = read_label_csv(gold_path, valence="absent")
    pred = read_label_csv(pred_path, valence="absent")
    if opts.candidates is not None:
        check_candidates(pred.names, read_candidates(opts.candidates), str(pred_path))
    _, g, p, extra = read_label_pairs(gold, pred, label_space("mer6"), opts.mode)
    m = mer2023_metrics(g, p)
    values = {"score": m["waf"], "track": "MER-SEMI", **m, "n_extra_pred": len(extra)}
    return Scored(values, len(g), make_resampler(g, p, m["labels"]))


def read_openset_npz(path: str | Path, style: str = "affectgpt") -> OpensetFile:
    """A Codalab ``*-openset.npz`` (``filenames``, ``fileitems``) as an ``OpensetFile``."""
    p = Path(path)
    try:
        z = np.load(p, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise ValueError(f"{p}: not a readable .npz ({e})") from None
    for key in ("filenames", "fileitems"):
        if key not in z.files:
            raise ValueError(f"{p}: no array {key!r} (found {z.files}); expected filenames and fileitems")
    names, items = [str(x) for x in z["filenames"]], [str(x) for x in z["fileitems"]]
    if len(names) != len(items):
        raise ValueError(f"{p}: {len(names)} filenames but {len(items)} fileitems")
    out = OpensetFile(p, style=style)  # type: ignore[arg-type]
    for i, (n, cell) in enumerate(zip(names, items, strict=True)):
        name = out._add_name(n, i + 1)
        out.items[name] = parse_emotion_list(cell, style)  # type: ignore[arg-type]
        out.raw[name] = cell
    return out


@register_metric("mer2025_fg", "MER2025 Track 2 MER-FG: mean of EW-L1 and EW-L2 F (main score)", Track2Options)
def score_mer2025_fg(gold_path: Path, pred_path: Path, opts: Track2Options) -> Scored:
    style = "affectgpt" if opts.mode == "published" else "clean"
    wheel = load_wheel(opts.wheel, opts.wheel_version)
    gold = read_openset_csv(gold_path, style=style)
    if pred_path.suffix == ".npz":
        pred = read_openset_npz(pred_path, style)
    else:
        pred = read_openset_csv(pred_path, style=style)
    if opts.candidates is not None:
        check_candidates(pred.names, read_candidates(opts.candidates), str(pred_path))
    names, extra = align_names(gold, pred)
    per = ew_set_scores([gold.items[n] for n in names], [pred.items[n] for n in names], wheel)
    s = summarize_ew(per)
    l1, l2 = s["EW_L1_mean"], s["EW_L2_mean"]
    values = {
        "score": (l1["F"] + l2["F"]) / 2,
        "L1": l1,
        "L2": l2,
        "printed": [l1["F"], l2["F"], (l1["F"] + l2["F"]) / 2],
        "n": len(names),
        "n_extra_pred": len(extra),
        "wheel_version": wheel.version,
        "list_style": style,
    }
    keys = [[f"M3_W{k}_L{j}" for k in range(1, 6)] for j in (1, 2)]

    def resample(idx: np.ndarray) -> float:
        return float(np.mean([np.mean([per[m].summary(idx)["F"] for m in ks]) for ks in keys]))

    return Scored(values, len(names), resample)


# ----------------------------------------------------------------------------------------------
# submission files


def write_track1_csv(preds: Mapping[str, str], candidates: str | Path, path: str | Path) -> Path:
    """Track 1 submission ``name,discrete`` over exactly the candidate names (in candidate order)."""
    names = read_candidates(candidates)
    check_candidates(list(preds), names, "track 1 predictions")
    bad = sorted({v for v in preds.values() if v not in MER_LABELS})
    if bad:
        raise ValueError(f"track 1 predictions: label(s) {bad} are not among {', '.join(MER_LABELS)}")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "discrete"])
    w.writerows([n, preds[n]] for n in names)
    atomic_write_text(path, buf.getvalue())
    return Path(path)


def write_track2_npz(preds: Mapping[str, Sequence[str]], candidates: str | Path, path: str | Path) -> Path:
    """Track 2 Codalab submission ``*-openset.npz``: ``filenames`` and ``fileitems`` (list strings)."""
    p = Path(path)
    if not p.name.endswith("-openset.npz"):
        raise ValueError(f"{p}: Codalab expects a file named *-openset.npz")
    names = read_candidates(candidates)
    check_candidates(list(preds), names, "track 2 predictions")
    items = [str([str(w) for w in preds[n]]) for n in names]
    with atomic_path(p) as tmp, open(tmp, "wb") as f:
        np.savez(f, filenames=np.asarray(names), fileitems=np.asarray(items))
    return p
