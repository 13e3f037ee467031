"""MER2024 MER-OV: set-level precision/recall of open-vocabulary emotion words with cached GPT synonym groups.

    groupings = load_synonym_groupings("openset-synonym.zip")       # name -> "[['a', 'b'], ['c']]"
    m = ov_gpt_scores(gold_words, pred_words, {n: parse_grouping(t) for n, t in groupings.items()})
    m["accuracy_s"], m["recall_s"], m["avg"]                          # avg = main score

Protocol (MERTools ``MER2024/main-ov.py``): for each sample, GPT-3.5 grouped the union of gold and
predicted words into synonym groups (cached, one ``<name>.npy`` per sample). Every word of a group maps
to the group's first word; words outside every group stay as they are. With G and P the mapped gold and
predicted sets: precision = |G&P|/|P| and recall = |G&P|/|G|, both 0 when P is empty. Accuracy_s and
Recall_s are the means over samples and the final score is their mean.

Modes of the ``ov`` metric:

- ``published``: lists are parsed with the MER2024 rule (``emollm.answers.parse_emotion_list(style="mer2024")``:
  the text after the first ``[`` up to the next ``]``, split on quotes only, so ``[a, b]`` is one word);
  grouping words are compared as written. A prediction cell that is empty or that pandas reads as
  missing (``NA``, ``nan``, ``None``, ...) is an empty list: precision and recall 0. The official code
  scores the names that have a cached grouping, so a gold name without one is skipped (counted and
  named in ``n_skipped_no_grouping`` / ``skipped_no_grouping``); only the scored names need a prediction.
  Reproduces 0.581777108433735 / 0.4977911646586345 / 0.5397841365461847 on the shipped MER2024 files.
- ``clean``: lists in any of the forms ``['a', 'b']``, ``[a, b]``, ``a, b`` (``style="clean"``); grouping
  words are lower-cased and stripped like the lists; every gold name needs a cached grouping and a
  prediction (else an error naming it).

Groupings and predictions for names outside the gold are ignored and counted (``n_unused_groupings``,
``n_extra_pred``; the official code would fail on such a grouping). A gold list that is empty is an error
in both modes (recall is undefined; the official scorer divides by zero).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emollm.answers import parse_grouping
from emollm.evaluation.metrics.registry import Scored, ScoreOptions, _show, align_names, register_metric
from emollm.evaluation.readers import read_openset_csv


def _npy_text(data: bytes, where: str) -> str:
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        raise ValueError(f"{where}: not a plain .npy array ({e})") from None
    if arr.ndim != 0 or arr.dtype.kind != "U":
        raise ValueError(
            f"{where}: expected a 0-d unicode array holding a list-of-lists string, got {arr.dtype}{arr.shape}"
        )
    return str(arr)


def load_synonym_groupings(path: str | Path) -> dict[str, str]:
    """Cached GPT groupings: a zip of ``<dir>/<name>.npy`` (``openset-synonym.zip``) or a folder of ``.npy``.

    Returns name -> raw grouping text (parse with ``emollm.answers.parse_grouping``).
    """
    p = Path(path)
    out: dict[str, str] = {}
    if p.is_dir():
        for f in sorted(p.glob("*.npy")):
            out[f.stem] = _npy_text(f.read_bytes(), str(f))
    elif p.is_file():
        try:
            zf = zipfile.ZipFile(p)
        except zipfile.BadZipFile:
            raise ValueError(f"{p}: not a zip file; expected openset-synonym.zip or a folder of <name>.npy") from None
        with zf:
            for info in zf.infolist():
                if info.is_dir() or not info.filename.endswith(".npy"):
                    continue
                name = Path(info.filename).stem
                if name in out:
                    raise ValueError(f"{p}: two groupings for {name!r}")
                out[name] = _npy_text(zf.read(info), f"{p}:{info.filename}")
    else:
        raise FileNotFoundError(f"{p}: synonym groupings not found (openset-synonym.zip or a folder of .npy files)")
    if not out:
        raise ValueError(f"{p}: holds no <name>.npy groupings")
    return out


def synonym_map(groups: Sequence[Sequence[str]]) -> dict[str, str]:
    """Every word of a group -> the group's first word (later groups win for repeated words)."""
    out: dict[str, str] = {}
    for group in groups:
        for w in group:
            out[w] = group[0]
    return out


def set_precision_recall(gold: set[str], pred: set[str], where: str = "sample") -> tuple[float, float]:
    """Per-sample (precision, recall): |G&P|/|P|, |G&P|/|G|; (0, 0) when P is empty."""
    if not pred:
        return 0.0, 0.0
    if not gold:
        raise ValueError(f"{where}: the gold set is empty, recall is undefined")
    hit = len(gold & pred)
    return hit / len(pred), hit / len(gold)


def ov_gpt_scores(
    gold: Mapping[str, Sequence[str]],
    pred: Mapping[str, Sequence[str]],
    groupings: Mapping[str, Sequence[Sequence[str]]],
    names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Accuracy_s, Recall_s and their mean over ``names`` (default: the gold names in order).

    gold/pred: name -> words (already parsed and lower-cased); groupings: name -> synonym groups.
    Also returns per-sample ``precision``/``recall`` lists aligned with ``names``.
    """
    names = list(gold) if names is None else list(names)
    if not names:
        raise ValueError("no samples to score")
    precision, recall = [], []
    for n in names:
        smap = synonym_map(groupings[n])
        g = {smap.get(w, w) for w in gold[n]}
        p = {smap.get(w, w) for w in pred[n]}
        pr, rc = set_precision_recall(g, p, where=f"sample {n!r}")
        precision.append(pr)
        recall.append(rc)
    acc, rec = float(np.mean(precision)), float(np.mean(recall))
    return {
        "accuracy_s": acc,
        "recall_s": rec,
        "avg": float(np.mean([acc, rec])),
        "n": len(names),
        "names": names,
        "precision": precision,
        "recall": recall,
    }


class OVOptions(ScoreOptions):
    synonyms: Path
    """The cached GPT groupings: openset-synonym.zip or a folder of <name>.npy."""


@register_metric(
    "ov", "MER2024 MER-OV: (Accuracy_s + Recall_s)/2 with cached GPT synonym groups (main score)", OVOptions
)
def score_ov(gold_path: Path, pred_path: Path, opts: OVOptions) -> Scored:
    style = "mer2024" if opts.mode == "published" else "clean"
    gold = read_openset_csv(gold_path, style=style)
    pred = read_openset_csv(pred_path, style=style)
    raw = load_synonym_groupings(opts.synonyms)
    no_group = [n for n in gold.names if n not in raw]
    if opts.mode == "published":  # the official loop runs over the cached groupings: skip the others
        names = [n for n in gold.names if n in raw]
        if not names:
            raise ValueError(f"{opts.synonyms}: no cached grouping for any of the {len(gold)} gold names")
        missing = [n for n in names if n not in pred]
        if missing:
            raise ValueError(
                f"{pred.path}: no prediction for {len(missing)} gold name(s) of {gold.path}: {_show(missing)}"
            )
        extra = [n for n in pred.names if n not in gold]
    else:
        names, extra = align_names(gold, pred)
        if no_group:
            raise ValueError(f"{opts.synonyms}: no cached grouping for {len(no_group)} gold name(s): {_show(no_group)}")
    groupings: dict[str, list[list[str]]] = {}
    for n in names:
        groups = parse_grouping(raw[n])
        if opts.mode == "clean":
            groups = [[w.strip().lower() for w in grp] for grp in groups]
        groupings[n] = groups
    for n in names:
        if not gold.items[n]:
            raise ValueError(f"{gold.where(n, 'openset')}: empty gold list; recall is undefined")
    m = ov_gpt_scores(gold.items, pred.items, groupings, names)
    prec, rec = np.asarray(m.pop("precision")), np.asarray(m.pop("recall"))
    m.pop("names")
    values = {
        "score": m["avg"],
        **m,
        "n_empty_pred": sum(1 for n in names if not pred.items[n]),
        "n_missing_pred_cells": sum(1 for n in pred.missing if n in groupings),
        "n_extra_pred": len(extra),
        "n_unused_groupings": sum(1 for n in raw if n not in gold),
        "list_style": style,
    }
    if opts.mode == "published":
        values["n_skipped_no_grouping"] = len(no_group)
        values["skipped_no_grouping"] = no_group[:20]
    return Scored(values, len(names), lambda idx: (float(np.mean(prec[idx])) + float(np.mean(rec[idx]))) / 2)
