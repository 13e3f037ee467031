"""EmoBench-M classification scores (``EmoBench-M_eval.py``) with its answer extraction made explicit.

    read_emobench_answer("{'emotion': 'Negative'}", ["neutral", "negative", "positive"])   # 'negative'
    read_emobench_answer("I think it is positive overall.", [...])                          # 'positive'
    m = emobench_metrics(["positive", "negative"], ["positive", None])
    m["official"]["accuracy"], m["clean"]["accuracy"]        # 1.0 (empty dropped), 0.5 (counted wrong)

The official scorer compares lower-cased ``expected_value`` and ``predicted_value`` strings and reports
accuracy and **weighted** precision / recall / F1 (sklearn, ``zero_division=0``); **samples with an empty
prediction are dropped**. Extracting the label from the model's reply is left to the user; here it is
``read_emobench_answer``: the value of the ``{'emotion': 'label'}`` dict the instructions ask for (the
first key naming "emotion", else the first value), else the reply itself when it is a candidate, else the
candidate mentioned earliest; otherwise unparsed (None).

The ``emobench`` metric of ``emollm score`` reads gold ``name,discrete[,candidates]`` (``candidates`` =
the scenario's labels joined by ``|``; default: the distinct gold labels) and predictions
``name,discrete`` (a label or the raw reply). Both numbers are always reported: ``official`` (empty /
unparsed predictions dropped, as released) and ``clean`` (they count as wrong). Main score: accuracy,
of ``official`` in published mode and of ``clean`` in clean mode.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from emollm.evaluation.metrics.registry import Scored, ScoreOptions, align_names, register_metric
from emollm.evaluation.readers import _read_rows, read_label_csv

_DICT = re.compile(r"\{[^{}]*\}", re.DOTALL)


def _dict_value(text: str) -> str | None:
    for m in _DICT.finditer(text):
        obj: Any = None
        for parse in (json.loads, ast.literal_eval):
            try:
                obj = parse(m.group(0))
                break
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
        if isinstance(obj, dict) and obj:
            key = next((k for k in obj if "emotion" in str(k).lower()), next(iter(obj)))
            return str(obj[key]).strip().lower()
    return None


def read_emobench_answer(text: str | None, candidates: Sequence[str]) -> str | None:
    """The label of one reply (see the module docstring), lower-cased; None when nothing is found."""
    t = (text or "").strip()
    if not t:
        return None
    cands = [c.lower() for c in candidates]
    v = _dict_value(t)
    if v is not None:
        return v or None
    low = t.lower().strip(" .!'\"")
    if low in cands or not cands:
        return low or None
    best: tuple[int, str] | None = None
    for c in sorted(cands, key=len, reverse=True):
        m = re.search(r"(?<![a-z])" + re.escape(c) + r"(?![a-z])", t.lower())
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), c)
    return best[1] if best else None


def _scores(gold: Sequence[str], pred: Sequence[str]) -> dict[str, Any]:
    if not gold:
        return {"n": 0, "accuracy": 0.0, "precision": 0.0, "recall": 0.0, "f1": 0.0}
    p, r, f, _ = precision_recall_fscore_support(gold, pred, average="weighted", zero_division=0)
    return {
        "n": len(gold),
        "accuracy": float(accuracy_score(gold, pred)),
        "precision": float(p),
        "recall": float(r),
        "f1": float(f),
    }


def emobench_metrics(gold: Sequence[str], pred: Sequence[str | None]) -> dict[str, Any]:
    """``official`` (unparsed dropped) and ``clean`` (unparsed wrong) accuracy and weighted P/R/F1."""
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predictions")
    keep = [i for i, p in enumerate(pred) if p]
    official = _scores([gold[i] for i in keep], [str(pred[i]) for i in keep])
    clean = _scores(list(gold), [p if p else "<unparsed>" for p in pred])
    n_un = len(gold) - len(keep)
    return {
        "official": official,
        "clean": clean,
        "n": len(gold),
        "n_unparsed": n_un,
        "unparsed_rate": n_un / len(gold) if gold else 0.0,
    }


@register_metric("emobench", "EmoBench-M accuracy (main score) and weighted P/R/F1, official and clean")
def score_emobench(gold_path: Path, pred_path: Path, opts: ScoreOptions) -> Scored:
    gold = read_label_csv(gold_path, valence="absent")
    pred = read_label_csv(pred_path, valence="absent")
    names, extra = align_names(gold, pred)
    rows = _read_rows(gold_path, ("name", "discrete"))
    cand_col = {rec["name"].strip(): rec.get("candidates", "") for _, rec in rows.rows}
    default = sorted({gold.discrete[n].lower() for n in names})
    g: list[str] = []
    p: list[str | None] = []
    for n in names:
        if not gold.discrete[n]:
            raise ValueError(f"{gold.where(n, 'discrete')}: empty gold label")
        g.append(gold.discrete[n].strip().lower())
        cands = [c.strip() for c in (cand_col.get(n) or "").split("|") if c.strip()] or default
        p.append(read_emobench_answer(pred.discrete[n], cands))
    m = emobench_metrics(g, p)
    key = "official" if opts.mode == "published" else "clean"
    values = {"score": m[key]["accuracy"], "main": f"{key}.accuracy", **m, "n_extra_pred": len(extra)}
    garr = np.asarray(g, dtype=object)
    parr = np.asarray([x or "" for x in p], dtype=object)

    def resample(idx: np.ndarray) -> float:
        gi, pi = garr[idx], parr[idx]
        if key == "official":
            keep = pi != ""
            return float((gi[keep] == pi[keep]).mean()) if keep.any() else 0.0
        return float((gi == pi).mean())

    return Scored(values, len(names), resample)


def _dict_pair(text: str) -> tuple[str | None, str | None]:
    """(emotion, intent) from a ``{'emotion label': ..., 'intent label': ...}`` reply."""
    for m in _DICT.finditer(text or ""):
        for parse in (json.loads, ast.literal_eval):
            try:
                obj = parse(m.group(0))
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(obj, dict):
                emo = next((str(v) for k, v in obj.items() if "emotion" in str(k).lower()), None)
                intent = next((str(v) for k, v in obj.items() if "intent" in str(k).lower()), None)
                return (emo.strip().lower() if emo else None), (intent.strip().lower() if intent else None)
    return None, None


@register_metric("emobench_joint", "EmoBench-M MC-EIU joint emotion + intent accuracy (main score), weighted F1")
def score_emobench_joint(gold_path: Path, pred_path: Path, opts: ScoreOptions) -> Scored:
    """Gold ``name,emotion,intent``; predictions ``name,emotion,intent`` or ``name,text`` (the reply's dict).

    Scored on the joined ``emotion_intent`` strings (``evaluate_joint``); the official rule drops a sample
    when any of the four cells is empty (published), clean mode counts such a sample wrong.
    """
    g_rows = _read_rows(gold_path, ("name", "emotion", "intent"))
    p_rows = _read_rows(pred_path, ("name",))
    gold: dict[str, tuple[str, str]] = {}
    for row_no, r in g_rows.rows:
        n = r["name"].strip()
        if n in gold:
            raise ValueError(f"{gold_path}: row {row_no}, column name: duplicate name {n!r}")
        if not r["emotion"].strip() or not r["intent"].strip():
            raise ValueError(f"{gold_path}: row {row_no}: empty gold emotion or intent")
        gold[n] = (r["emotion"].strip().lower(), r["intent"].strip().lower())
    preds: dict[str, tuple[str | None, str | None]] = {}
    for row_no, r in p_rows.rows:
        if r["name"].strip() in preds:
            raise ValueError(f"{pred_path}: row {row_no}, column name: duplicate name {r['name'].strip()!r}")
        if "emotion" in p_rows.header and "intent" in p_rows.header:
            preds[r["name"].strip()] = (r["emotion"].strip().lower() or None, r["intent"].strip().lower() or None)
        elif "text" in p_rows.header:
            preds[r["name"].strip()] = _dict_pair(r["text"])
        else:
            raise ValueError(f"{pred_path}: needs emotion,intent columns or a text column; header is {p_rows.header}")
    missing = [n for n in gold if n not in preds]
    if missing:
        raise ValueError(f"{pred_path}: no prediction for {len(missing)} gold name(s) of {gold_path}: {missing[:5]}")
    names = list(gold)
    g = [f"{gold[n][0]}_{gold[n][1]}" for n in names]
    p = [f"{preds[n][0]}_{preds[n][1]}" if preds[n][0] and preds[n][1] else None for n in names]
    m = emobench_metrics(g, p)
    key = "official" if opts.mode == "published" else "clean"
    values = {"score": m[key]["accuracy"], "main": f"{key}.accuracy", **m, "n_extra_pred": len(set(preds) - set(gold))}
    garr = np.asarray(g, dtype=object)
    parr = np.asarray([x or "" for x in p], dtype=object)

    def resample(idx: np.ndarray) -> float:
        gi, pi = garr[idx], parr[idx]
        keep = pi != "" if key == "official" else np.ones(len(idx), bool)
        return float((gi[keep] == pi[keep]).mean()) if keep.any() else 0.0

    return Scored(values, len(names), resample)
