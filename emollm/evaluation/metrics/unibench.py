"""MER-UniBench (AffectGPT, ICML 2025) scores: emotion-wheel hit rate and binary sentiment weighted F1.

    wheel = load_wheel("/data/emotion_wheel", "affectgpt2025")
    hit_rate(["angry", "neutral"], [["annoyed", "sad"], ["calm"]], wheel)["hit_rate"]
    sentiment_f1([1.2, -0.4, 0.0], ["positive", "neutral", None], mode="published")["weighted_f1"]

- **Hit rate** (MER2023 test1, MER2024 test1, MELD, IEMOCAP Session 5): per level-1 wheel W1..W5, the
  single gold label and every predicted word go through the M3 mapping (``wheel.EmotionWheel.m3``);
  samples whose gold label maps to nothing are skipped (``neutral`` always is); hit = 1 if the mapped
  gold label is among the mapped predictions. HR = mean over the 5 wheels of the per-wheel mean hit.
  Over-generating words is never penalised. Modes: published parses lists with the AffectGPT rule,
  clean with the strict ``clean`` rule; the numbers agree on well-formed files. When every gold label
  maps to nothing on a wheel, the official ``np.mean([])`` is NaN and so is HR: the result says
  ``hit_rate`` NaN with the reason in ``undefined`` (``emollm score`` prints ``score: null``).
  Published mode reads the gold cell as the official code does (``string_to_list``): an empty gold cell
  is skipped like ``neutral``; clean mode requires one gold label per row.
- **Sentiment** (MOSI, MOSEI, SIMS, SIMSv2): predictions are positive / negative / neutral (an LLM's
  mapping of the predicted words). Only samples with non-zero gold valence are scored.
  * published: the stripped cell must be ``positive`` / ``negative`` / ``neutral`` exactly
    (case-sensitive: ``Positive`` is unreadable, as in ``evaluation-scoreonly.py``); positive = 1,
    negative = -1, neutral = 0 and anything unreadable = 0; score =
    ``f1_score(gold > 0, pred > 0, average="weighted")``, so neutral and unreadable count as negative.
  * clean: cells are case-folded (``emollm.answers.read_sentiment``); gold is positive/negative; neutral
    and unreadable predictions count as wrong for either class (weighted F1 over the two gold classes);
    ``n_neutral_pred`` and ``n_unparsed`` are reported.

File formats: hit rate gold ``name,discrete`` (one word) and predictions ``name,openset``; sentiment gold
``name,valence`` and predictions ``name,discrete``. A gold name without a prediction is an error; extra
prediction names are ignored (``n_extra_pred``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from emollm.answers import SENTIMENTS, parse_emotion_list, read_sentiment
from emollm.evaluation.metrics.classification import weighted_f1_codes
from emollm.evaluation.metrics.registry import Mode, Scored, ScoreOptions, align_names, register_metric
from emollm.evaluation.metrics.wheel import WHEELS, EmotionWheel, WheelVersion, load_wheel
from emollm.evaluation.readers import read_label_csv, read_openset_csv, read_valence_csv

SENTIMENT_VALUE = dict(zip(SENTIMENTS, (1, -1, 0), strict=True))


def hit_matrix(gold: Sequence[str | Sequence[str]], pred: Sequence[Sequence[str]], wheel: EmotionWheel) -> np.ndarray:
    """[5, N] hits per level-1 wheel and sample, NaN where the gold maps to nothing.

    A gold item is one label (hit 1.0 / 0.0) or, as the official code reads the gold cell through
    ``string_to_list``, a list of words: the hit is then ``|mapped gold & mapped predictions|``.
    """
    if len(gold) != len(pred):
        raise ValueError(f"{len(gold)} gold labels but {len(pred)} predicted lists")
    out = np.full((len(WHEELS), len(gold)), np.nan)
    for k, w in enumerate(WHEELS):
        for i, (g, words) in enumerate(zip(gold, pred, strict=True)):
            mg = {m for x in ([g] if isinstance(g, str) else g) if (m := wheel.m3(x, w, "level1")) is not None}
            if not mg:
                continue
            out[k, i] = float(len(mg & {wheel.m3(x, w, "level1") for x in words}))
    return out


def _summarize_hits(hits: np.ndarray, empty: float = float("nan")) -> dict[str, Any]:
    """Per-wheel and mean hit rate; a wheel without a scorable sample gives ``empty`` (NaN, as the official
    ``np.mean([])``) and, when NaN, an ``undefined`` reason."""
    per = {}
    no_sample = []
    for k, w in enumerate(WHEELS):
        row = hits[k][~np.isnan(hits[k])]
        if not len(row):
            no_sample.append(w)
        per[w] = {"hit_rate": float(np.mean(row)) if len(row) else empty, "n_scored": len(row)}
    out: dict[str, Any] = {"hit_rate": float(np.mean([v["hit_rate"] for v in per.values()])), "per_wheel": per}
    if no_sample and math.isnan(empty):
        out["undefined"] = (
            f"hit rate undefined (NaN in the official code): every gold label maps to nothing on "
            f"{', '.join(no_sample)} (neutral is on no wheel), so that wheel has no sample to score"
        )
    return out


def hit_rate(gold: Sequence[str], pred: Sequence[Sequence[str]], wheel: EmotionWheel) -> dict[str, Any]:
    """MER-UniBench hit rate: mean over the 5 level-1 wheels; ``per_wheel`` holds each rate and n_scored.

    NaN (with ``undefined`` giving the reason) when a wheel has no sample whose gold label it maps.
    """
    return _summarize_hits(hit_matrix(gold, pred, wheel))


def sentiment_f1(gold_valence: Sequence[float], pred: Sequence[str | None], mode: Mode = "published") -> dict[str, Any]:
    """Binary weighted F1 on samples with non-zero gold valence (see the module docstring for the modes).

    pred: 'positive' / 'negative' / 'neutral' or None (unreadable), aligned with ``gold_valence``.
    """
    if len(gold_valence) != len(pred):
        raise ValueError(f"{len(gold_valence)} gold values but {len(pred)} predictions")
    keep = [i for i, v in enumerate(gold_valence) if v != 0]
    if not keep:
        raise ValueError("no sample has a non-zero gold valence")
    bad = {p for p in pred if p is not None and p not in SENTIMENT_VALUE}
    if bad:
        raise ValueError(f"sentiment predictions must be positive/negative/neutral or None, got {sorted(bad)}")
    gv = np.asarray([gold_valence[i] for i in keep], float)
    pk = [pred[i] for i in keep]
    out: dict[str, Any] = {
        "n_total": len(gold_valence),
        "n": len(keep),
        "n_zero_gold": len(gold_valence) - len(keep),
        "n_neutral_pred": sum(1 for p in pk if p == "neutral"),
        "n_unparsed": sum(1 for p in pk if p is None),
    }
    if mode == "published":
        y_true = gv > 0
        y_pred = np.asarray([SENTIMENT_VALUE.get(p, 0) if p is not None else 0 for p in pk]) > 0
        out["weighted_f1"] = float(f1_score(y_true, y_pred, average="weighted", zero_division=0))
        out["accuracy"] = float(accuracy_score(y_true, y_pred))
    else:
        y_true_s = np.where(gv > 0, "positive", "negative").astype(object)
        y_pred_s = np.asarray(["<unparsed>" if p is None else p for p in pk], dtype=object)
        out["weighted_f1"] = float(
            f1_score(y_true_s, y_pred_s, labels=["negative", "positive"], average="weighted", zero_division=0)
        )
        out["accuracy"] = float(accuracy_score(y_true_s, y_pred_s))
    out["unparsed_rate"] = out["n_unparsed"] / len(keep)
    return out


class HitRateOptions(ScoreOptions):
    wheel: Path
    """Folder with the emotion-wheel resources (see the wheel metric)."""
    wheel_version: WheelVersion = "affectgpt2025"


@register_metric("hitrate", "MER-UniBench hit rate over the 5 level-1 emotion wheels (main score)", HitRateOptions)
def score_hitrate(gold_path: Path, pred_path: Path, opts: HitRateOptions) -> Scored:
    wheel = load_wheel(opts.wheel, opts.wheel_version)
    gold = read_label_csv(gold_path, valence="absent")
    pred = read_openset_csv(pred_path, style="affectgpt" if opts.mode == "published" else "clean")
    names, extra = align_names(gold, pred)
    if opts.mode == "published":  # the official code reads the gold cell with string_to_list too
        gold_items: list[str | list[str]] = [parse_emotion_list(gold.discrete[n], "affectgpt") for n in names]
    else:
        for n in names:
            if not gold.discrete[n]:
                raise ValueError(f"{gold.where(n, 'discrete')}: empty gold label")
        gold_items = [gold.discrete[n] for n in names]
    hits = hit_matrix(gold_items, [pred.items[n] for n in names], wheel)
    m = _summarize_hits(hits)
    values = {
        "score": m["hit_rate"],
        **m,
        "n": len(names),
        "n_empty_pred": sum(1 for n in names if not pred.items[n]),
        "n_extra_pred": len(extra),
        "wheel_version": wheel.version,
    }
    # a resample that happens to hold no scorable sample on a wheel counts that wheel as 0
    return Scored(values, len(names), lambda idx: _summarize_hits(hits[:, idx], 0.0)["hit_rate"])


@register_metric("sentiment", "MER-UniBench binary sentiment weighted F1 on non-zero gold (main score)")
def score_sentiment(gold_path: Path, pred_path: Path, opts: ScoreOptions) -> Scored:
    gold = read_valence_csv(gold_path)
    pred = read_label_csv(pred_path, valence="absent")
    names, extra = align_names(gold, pred)
    gv = [gold.valence[n] for n in names]
    pl = [read_sentiment(pred.discrete[n], opts.mode) for n in names]
    m = sentiment_f1(gv, pl, opts.mode)
    values = {"score": m["weighted_f1"], **m, "n_extra_pred": len(extra)}
    keep = [i for i, v in enumerate(gv) if v != 0]
    gold_codes = np.asarray([int(gv[i] > 0) for i in keep], dtype=np.int64)  # negative 0, positive 1
    if opts.mode == "published":  # pred > 0 is positive; neutral and unreadable fall to negative
        pred_codes = np.asarray([int(pl[i] == "positive") for i in keep], dtype=np.int64)
    else:  # neutral and unreadable are outside both classes (code 2): wrong either way
        pred_codes = np.asarray([{"negative": 0, "positive": 1}.get(pl[i] or "", 2) for i in keep], dtype=np.int64)

    def resample(idx: np.ndarray) -> float:
        return weighted_f1_codes(gold_codes[idx], pred_codes[idx], 2)

    return Scored(values, len(keep), resample)
