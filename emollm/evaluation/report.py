"""Evaluation outputs: records -> scores -> results.json, report.md, PNG plots, CSVs and a console summary.

``write_report`` is called by the runner once every planned record exists. Per task it

- reads the base condition's answers (``answers.py`` for free text; constrained answers are labels),
- writes ``gold/<task>.csv`` and the submission ``submissions/<task>.csv`` (MER format
  ``name,discrete,valence``; ``name,openset`` for open-vocabulary tasks; ``name,discrete`` with
  positive/negative/neutral for sentiment; ``names,reasons`` for explanations), and ``predictions/<task>.jsonl``,
- scores the two CSVs with every metric of the task through ``emollm.evaluation.score.score`` — the very
  function behind ``emollm score``, so ``emollm score`` on the written files prints the same numbers,
- adds what the suite asked for: modality ablation, prompt robustness (``robustness.robustness_report``),
  noise levels, calibration (``calibration``), fairness (``fairness.metric_by_group``), and for
  explanation tasks judge-free overlap / similarity plus an LLM judge when configured (``judge``),
- draws the plots with ``plots`` / ``calibration.plot_reliability`` into ``plots/``.

``results.json`` holds every number with the mode that produced it, the checkpoint identity, git sha,
task versions and the computed/reused record counts; ``report.md`` renders it as tables with the plots.

    results = json.loads((out / "results.json").read_text())
    print_summary(results)          # rich table on the terminal
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emollm.evaluation.answers import (
    ReadingMode,
    original_rule_labels,
    read_labels,
    read_openset,
    sentiment_of_words,
)
from emollm.evaluation.metrics.classification import classification_metrics
from emollm.io import atomic_write_json, atomic_write_text
from emollm.log import get_logger

if TYPE_CHECKING:
    from emollm.evaluation.plan import CheckpointInfo, Condition, EvalOptions, Plan, RecordStore, TaskPlan

log = get_logger(__name__)

RESULTS_FORMAT = "emollm-eval-results-v1"


# ----------------------------------------------------------------------------------------------
# small helpers


def _csv_text(header: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    w.writerows(rows)
    return buf.getvalue()


def _num(v: float | None) -> str:
    """A float cell written so that it reads back exactly; empty for None."""
    return "" if v is None else repr(float(v))


def _openset_cell(words: list[str]) -> str:
    """``['a', 'b']`` (the quoted form every list rule of ``readers.parse_openset`` reads)."""
    clean = [w.replace("'", "").replace('"', "").replace("[", "").replace("]", "").strip() for w in words]
    return "[" + ", ".join(f"'{w}'" for w in clean if w) + "]"


def _rel(path: Path, out: Path) -> str:
    try:
        return str(path.relative_to(out))
    except ValueError:
        return str(path)


def _records(tp: TaskPlan, c: Condition, store: RecordStore) -> list[dict[str, Any]]:
    return [store.get(tp.task.name, c.prompt_id, s.id) for s in tp.samples]


def _fmt(v: Any, digits: int = 4) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.{digits}f}"
    return str(v)


def _finite(obj: Any) -> Any:
    """NaN / inf -> None, recursively (results.json stays strict JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------------------------
# answers of one condition


def label_answers(
    tp: TaskPlan, c: Condition, store: RecordStore, mode: ReadingMode | None = None
) -> tuple[list[str | None], np.ndarray | None, dict[str, int], list[str | None]]:
    """(labels or None, probabilities [N, C] in label-space order or None, reading counts, raw texts)."""
    recs = _records(tp, c, store)
    space = tp.data.space
    if recs and recs[0]["method"] == "score_labels":
        preds: list[str | None] = [c.to_canonical(r["answer"]) for r in recs]
        probs = np.zeros((len(recs), len(space.labels)))
        for i, r in enumerate(recs):
            for cand, p in r["probs"].items():
                probs[i, space.labels.index(c.to_canonical(cand))] = p
        probs /= probs.sum(axis=1, keepdims=True)  # float32 softmax rounding: rows sum to 1 exactly
        return preds, probs, {"n": len(recs), "n_unparsed": 0}, [None] * len(recs)
    texts = [r.get("text") for r in recs]
    preds, counts = read_labels(texts, space, mode or tp.reading)
    return preds, None, counts, texts


def _gold_labels(tp: TaskPlan) -> list[str]:
    space = tp.data.space
    out = []
    for s in tp.samples:
        if s.label not in space.labels:
            raise ValueError(
                f"task {tp.task.name!r}: sample {s.id!r} has gold label {s.label!r}, not in label space {space.name}"
            )
        out.append(s.label)
    return out


def _short_metrics(m: dict[str, Any]) -> dict[str, Any]:
    keys = ("n", "weighted_f1", "accuracy", "uar", "macro_f1", "n_unparsed", "unparsed_rate")
    return {k: m[k] for k in keys if k in m}


# ----------------------------------------------------------------------------------------------
# valence


def _valence_table(tp: TaskPlan) -> tuple[dict[str, float], float, str]:
    """Per-label valence, the prior used for unparsed answers, and where they came from."""
    spec = tp.task.valence
    assert spec is not None
    labels = tp.data.space.labels
    if spec.table is not None:
        table = {
            tp.data.space.require(k, f"task {tp.task.name}: valence.table"): float(v) for k, v in spec.table.items()
        }
        missing = [lab for lab in labels if lab not in table]
        if missing:
            raise ValueError(f"task {tp.task.name!r}: valence.table lacks {missing}")
        return table, float(np.mean(list(table.values()))), "table"
    assert spec.split is not None
    try:
        ref = tp.data.manifest.split(spec.split)
    except ValueError as e:
        raise ValueError(f"task {tp.task.name!r}: valence.split: {e}") from None
    vals: dict[str, list[float]] = {}
    for s in ref:
        if s.label is not None and s.valence is not None:
            vals.setdefault(s.label, []).append(s.valence)
    missing = [lab for lab in labels if lab not in vals]
    if missing:
        raise ValueError(
            f"task {tp.task.name!r}: split {spec.split!r} has no valence for label(s) {missing}; "
            "give valence.table in the task instead"
        )
    table = {lab: float(np.mean(vals[lab])) for lab in labels}
    prior = float(np.mean([v for vs in vals.values() for v in vs]))
    return table, prior, f"class means of split {spec.split} ({sum(len(v) for v in vals.values())} samples)"


def predicted_valence(
    tp: TaskPlan, preds: list[str | None], probs: np.ndarray | None
) -> tuple[list[float], dict[str, Any]]:
    """Expected class valence (sum_c p_c v_c) with probabilities, else v of the label, else the prior."""
    table, prior, source = _valence_table(tp)
    labels = tp.data.space.labels
    vec = np.array([table[lab] for lab in labels])
    out: list[float] = []
    n_prior = 0
    for i, p in enumerate(preds):
        if probs is not None:
            out.append(float(probs[i] @ vec))
        elif p is not None:
            out.append(table[p])
        else:
            out.append(prior)
            n_prior += 1
    info = {"method": "expected class valence", "source": source, "table": table, "prior": prior}
    info["n_prior"] = n_prior
    return out, info


# ----------------------------------------------------------------------------------------------
# scoring one task


def _run_metrics(tp: TaskPlan, gold: Path, sub: Path, out: Path) -> dict[str, Any]:
    from emollm.evaluation.score import score

    results: dict[str, Any] = {}
    for m in tp.metrics:
        if m.skipped:
            results[m.name] = {"skipped": m.skipped}
            continue
        try:
            r = score(m.name, gold, sub, **m.options)
        except (ValueError, KeyError, FileNotFoundError) as e:
            msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
            raise ValueError(f"task {tp.task.name!r}: metric {m.name!r}: {msg}") from None
        r["gold"], r["pred"] = _rel(gold, out), _rel(sub, out)
        results[m.name] = r
    return results


def _write_predictions(path: Path, rows: list[dict[str, Any]]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows))


def _headline(task_res: dict[str, Any], spec: str | None, metrics: list[Any]) -> dict[str, Any] | None:
    if spec is None:
        run = [m for m in metrics if not m.skipped]
        if not run:
            return None
        spec = f"{run[0].name}.score"
    name, _, key = spec.partition(".")
    value = task_res.get("metrics", {}).get(name, {}).get(key or "score")
    return {"name": spec, "value": value, "mode": task_res.get("metrics", {}).get(name, {}).get("mode")}


def score_classification(tp: TaskPlan, store: RecordStore, out: Path, plots: Path) -> dict[str, Any]:
    from emollm.evaluation.plots import plot_confusion_matrix

    task, space = tp.task, tp.data.space
    base = tp.condition("base")
    gold = _gold_labels(tp)
    preds, probs, counts, texts = label_answers(tp, base, store)
    res: dict[str, Any] = {}
    val_pred: list[float] | None = None
    if task.valence is not None:
        val_pred, res["valence"] = predicted_valence(tp, preds, probs)
    gold_csv, sub_csv = out / "gold" / f"{task.name}.csv", out / "submissions" / f"{task.name}.csv"
    atomic_write_text(
        gold_csv, _csv_text(["name", "discrete", "valence"], [[s.id, s.label, _num(s.valence)] for s in tp.samples])
    )
    rows = [
        [s.id, p or "", _num(val_pred[i]) if val_pred is not None else ""]
        for i, (s, p) in enumerate(zip(tp.samples, preds, strict=True))
    ]
    atomic_write_text(sub_csv, _csv_text(["name", "discrete", "valence"], rows))
    res["files"] = {"gold": _rel(gold_csv, out), "submission": _rel(sub_csv, out)}
    res["metrics"] = _run_metrics(tp, gold_csv, sub_csv, out)
    overall = classification_metrics(gold, preds, labels=list(space.labels))
    res["overall"] = overall
    res["answers"] = counts
    if tp.method == "generate":
        res["readings"] = _reading_comparison(tp, gold, texts)
    pred_rows = []
    for i, s in enumerate(tp.samples):
        row: dict[str, Any] = {"id": s.id, "gold": s.label, "pred": preds[i]}
        if val_pred is not None:
            row.update(valence_gold=s.valence, valence_pred=val_pred[i])
        if probs is not None:
            row["probs"] = {lab: float(probs[i, j]) for j, lab in enumerate(space.labels)}
        if texts[i] is not None:
            row["text"] = texts[i]
        row["modalities"] = store.get(task.name, base.prompt_id, s.id)["modalities"]
        pred_rows.append(row)
    pred_path = out / "predictions" / f"{task.name}.jsonl"
    _write_predictions(pred_path, pred_rows)
    res["files"]["predictions"] = _rel(pred_path, out)
    cm = overall["confusion_matrix"]
    res["plots"] = {
        "confusion": _rel(
            plot_confusion_matrix(
                cm["matrix"],
                cm["rows"],
                plots / f"{task.name}_confusion.png",
                pred_labels=cm["columns"],
                title=f"{task.name}: confusion matrix (base prompt)",
            ),
            out,
        )
    }
    entry = tp.entry
    if entry.ablation is not None:
        res["ablation"] = _ablation(tp, store, gold, plots, out, res["plots"])
    if entry.robustness is not None:
        res["robustness"] = _robustness(tp, store, gold, plots, out, res["plots"])
    if entry.noise is not None:
        res["noise"] = _noise(tp, store, gold, overall, plots, out, res["plots"])
    if entry.calibration is not None:
        res["calibration"] = _calibration(tp, gold, probs, entry.calibration.n_bins, plots, out, res["plots"])
    if entry.fairness is not None:
        res["fairness"] = _fairness(tp, gold, preds)
    return res


def _reading_comparison(tp: TaskPlan, gold: list[str], texts: list[str | None]) -> dict[str, Any]:
    """Both label readings of the generated answers, and what Emotion-LLaMA's original rule would score."""
    space = tp.data.space
    out: dict[str, Any] = {"used": tp.reading}
    modes: tuple[ReadingMode, ...] = ("clean", "published")
    for mode in modes:
        preds, counts = read_labels(texts, space, mode)
        m = classification_metrics(gold, preds, labels=list(space.labels))
        out[mode] = {**counts, "weighted_f1": m["weighted_f1"], "accuracy": m["accuracy"]}
    if "neutral" in space.labels:
        orig = original_rule_labels(texts, space.labels)
        m = classification_metrics(gold, orig, labels=list(space.labels))
        out["published"]["original_rule_weighted_f1"] = m["weighted_f1"]
        out["published"]["original_rule_accuracy"] = m["accuracy"]
        out["published"]["note"] = (
            "original_rule_* score every off-list answer as 'neutral', as Emotion-LLaMA's eval_emotion.py does; "
            "n_forced_neutral answers were counted unparsed here instead"
        )
    return out


def _ablation(
    tp: TaskPlan, store: RecordStore, gold: list[str], plots: Path, out: Path, plot_paths: dict[str, str]
) -> dict[str, Any]:
    from emollm.evaluation.plots import plot_modality_ablation

    labels = list(tp.data.space.labels)
    rows: dict[str, Any] = {}
    for c in tp.conditions:
        if c.kind != "ablation":
            continue
        preds, _, _, _ = label_answers(tp, c, store)
        m = classification_metrics(gold, preds, labels=labels)
        rows[c.title] = {"modalities": list(c.modalities), "subtitle": c.subtitle, **_short_metrics(m)}
    full = max(rows, key=lambda k: len(k.split("+")))
    plot_paths["ablation"] = _rel(
        plot_modality_ablation(
            {k: v["weighted_f1"] for k, v in rows.items()},
            plots / f"{tp.task.name}_ablation.png",
            baseline=full,
            ylabel="weighted F1",
            title=f"{tp.task.name}: modality ablation",
        ),
        out,
    )
    return {
        "metric": "weighted_f1",
        "mode": "clean (unparsed answers count as wrong)",
        "full": full,
        "conditions": rows,
    }


def _robustness(
    tp: TaskPlan, store: RecordStore, gold: list[str], plots: Path, out: Path, plot_paths: dict[str, str]
) -> dict[str, Any]:
    from emollm.evaluation.plots import plot_robustness_curves
    from emollm.evaluation.robustness import VariantPredictions, robustness_report
    from emollm.evaluation.variants import FAMILY_NAMES

    spec = tp.entry.robustness
    assert spec is not None
    labels = list(tp.data.space.labels)
    base = tp.condition("base")
    conds = [base] + [c for c in tp.conditions if c.kind == "robustness"]
    preds = {c.id: label_answers(tp, c, store)[0] for c in conds}
    vp = VariantPredictions.from_mapping(preds, labels=labels, base="base")
    families: dict[str, list[str]] = {}
    for c in conds[1:]:
        families.setdefault(c.family or "other", ["base"]).append(c.id)
    orders = {c.id: c.labels.order for c in conds if c.labels is not None and (c.family == "O" or c.id == "base")}
    if not any(c.family == "O" for c in conds):
        orders = {}
    rep = robustness_report(
        vp, gold, "waf", families=families, orders=orders or None, n_boot=spec.n_boot, seed=spec.seed
    )
    rep["mode"] = "clean (unparsed answers count as wrong)"
    rep["variant_file"] = spec.variants
    rep["family_names"] = {f: FAMILY_NAMES.get(f, f) for f in families}
    rep["variants"] = {c.id: c.describe() for c in conds}
    scores = rep["overall"]["scores"]
    series: dict[str, dict[float | str, float]] = {"base prompt": {"base": scores["base"]}}
    for f, ids in families.items():  # one line per family through its own variants (the base is its own point)
        series[f"{f} ({FAMILY_NAMES.get(f, f)})"] = {v: scores[v] for v in ids if v != "base"}
    if len(series) > 1:
        plot_paths["robustness"] = _rel(
            plot_robustness_curves(
                series,
                plots / f"{tp.task.name}_robustness.png",
                xlabel="prompt variant",
                ylabel="weighted F1",
                title=f"{tp.task.name}: prompt robustness",
            ),
            out,
        )
    return rep


def _noise(
    tp: TaskPlan,
    store: RecordStore,
    gold: list[str],
    overall: dict[str, Any],
    plots: Path,
    out: Path,
    plot_paths: dict[str, str],
) -> dict[str, Any]:
    from emollm.evaluation.plots import plot_robustness_curves

    labels = list(tp.data.space.labels)
    levels: dict[str, Any] = {"clean": {"noise": None, **_short_metrics(overall)}}
    for c in tp.conditions:
        if c.kind != "noise":
            continue
        preds, _, _, _ = label_answers(tp, c, store)
        m = classification_metrics(gold, preds, labels=labels)
        levels[c.title] = {"noise": c.noise.model_dump() if c.noise else None, **_short_metrics(m)}
        if not c.modalities:
            levels[c.title]["note"] = "no media in the input (subtitle only): noise cannot act"
    plot_paths["noise"] = _rel(
        plot_robustness_curves(
            {"weighted F1": {k: v["weighted_f1"] for k, v in levels.items()}},
            plots / f"{tp.task.name}_noise.png",
            xlabel="noise level",
            ylabel="weighted F1",
            title=f"{tp.task.name}: noise robustness (MER-NOISE recipe, synthetic babble)",
        ),
        out,
    )
    return {"metric": "weighted_f1", "mode": "clean (unparsed answers count as wrong)", "levels": levels}


def _calibration(
    tp: TaskPlan,
    gold: list[str],
    probs: np.ndarray | None,
    n_bins: int,
    plots: Path,
    out: Path,
    plot_paths: dict[str, str],
) -> dict[str, Any]:
    from emollm.evaluation.calibration import calibration_report, plot_reliability, reliability_bins

    if probs is None:
        return {"skipped": "calibration needs probabilities (answers.method score_labels)"}
    labels = list(tp.data.space.labels)
    y = np.array([labels.index(g) for g in gold], dtype=np.int64)
    rep: dict[str, Any] = {"mode": "candidate probabilities of the base prompt"}
    rep.update(calibration_report(probs, y, n_bins=n_bins))
    bins = reliability_bins(probs, y, n_bins=n_bins)
    rep["bins"] = {
        "edges": bins.edges.tolist(),
        "counts": bins.counts.tolist(),
        "confidence": [None if math.isnan(x) else float(x) for x in bins.confidence],
        "accuracy": [None if math.isnan(x) else float(x) for x in bins.accuracy],
    }
    plot_paths["reliability"] = _rel(
        plot_reliability(bins, plots / f"{tp.task.name}_reliability.png", title=f"{tp.task.name}: reliability"), out
    )
    return rep


def _fairness(tp: TaskPlan, gold: list[str], preds: list[str | None]) -> dict[str, Any]:
    from emollm.evaluation.fairness import groups_from_metadata, metric_by_group

    spec = tp.entry.fairness
    assert spec is not None
    out: dict[str, Any] = {}
    meta = [s.meta for s in tp.samples]
    for col in spec.columns:
        try:
            groups = groups_from_metadata(meta, col, missing=spec.missing)
        except ValueError as e:
            raise ValueError(f"task {tp.task.name!r}: fairness column {col!r}: {e}") from None
        rep = metric_by_group(
            gold,
            preds,
            groups,
            metric=spec.metric,
            labels=list(tp.data.space.labels),
            min_group_size=spec.min_group_size,
            column=col,
        )
        out[col] = {**rep.to_dict(), "mode": "clean (unparsed answers count as wrong)"}
    return out


def _lexicon_reader(tp: TaskPlan, roots: dict[str, str]) -> Any:
    """``text -> words`` for non-list answers: label-space mentions (sentiment tasks: the words of the polarity
    table), or every word the emotion wheel knows."""
    if tp.task.answers.lexicon == "wheel":
        from emollm.evaluation.judge import EmotionLexicon
        from emollm.evaluation.metrics.wheel import load_wheel

        name = tp.task.answers.wheel_root
        if name not in roots:
            raise ValueError(f"task {tp.task.name!r}: answers.lexicon wheel needs --root {name}=DIR (emotion wheel)")
        wheel = load_wheel(roots[name])
        lex = EmotionLexicon(
            f"wheel-words:{wheel.version}", lambda w: w if wheel.map_word(w, "M3_W1_L1") else None, max_words=1
        )
        return lex.find
    if tp.task.kind == "sentiment":  # the sentiment space has no emotion words: use the polarity table's
        from emollm.evaluation.answers import POLARITY
        from emollm.evaluation.judge import EmotionLexicon

        return EmotionLexicon.from_words(list(POLARITY), name="polarity-words").find
    return tp.data.space.mentions


def score_openset(tp: TaskPlan, store: RecordStore, out: Path, roots: dict[str, str]) -> dict[str, Any]:
    task = tp.task
    recs = _records(tp, tp.condition("base"), store)
    lexicon = _lexicon_reader(tp, roots)
    words = [read_openset(r.get("text"), lexicon) for r in recs]
    gold_csv, sub_csv = out / "gold" / f"{task.name}.csv", out / "submissions" / f"{task.name}.csv"
    if task.gold_field == "openset":
        g_rows = [[s.id, _openset_cell(list(s.openset or []))] for s in tp.samples]
        atomic_write_text(gold_csv, _csv_text(["name", "openset"], g_rows))
    else:
        atomic_write_text(gold_csv, _csv_text(["name", "discrete"], [[s.id, s.label] for s in tp.samples]))
    sub_rows = [[s.id, _openset_cell(w)] for s, w in zip(tp.samples, words, strict=True)]
    atomic_write_text(sub_csv, _csv_text(["name", "openset"], sub_rows))
    res: dict[str, Any] = {"files": {"gold": _rel(gold_csv, out), "submission": _rel(sub_csv, out)}}
    res["metrics"] = _run_metrics(tp, gold_csv, sub_csv, out)
    n_empty = sum(1 for w in words if not w)
    res["answers"] = {
        "n": len(words),
        "n_unparsed": n_empty,
        "unparsed_rate": n_empty / len(words),
        "extractor": "list split, else lexicon",
    }
    rows = [
        {"id": s.id, "gold": s.openset if task.gold_field == "openset" else s.label, "pred": w, "text": r.get("text")}
        for s, w, r in zip(tp.samples, words, recs, strict=True)
    ]
    pred_path = out / "predictions" / f"{task.name}.jsonl"
    _write_predictions(pred_path, rows)
    res["files"]["predictions"] = _rel(pred_path, out)
    return res


def score_sentiment(tp: TaskPlan, store: RecordStore, out: Path, roots: dict[str, str]) -> dict[str, Any]:
    task = tp.task
    base = tp.condition("base")
    recs = _records(tp, base, store)
    words: list[list[str]] | None = None
    if tp.method == "score_labels":
        preds: list[str | None] = [base.to_canonical(r["answer"]) for r in recs]
    else:
        lexicon = _lexicon_reader(tp, roots)
        words = [read_openset(r.get("text"), lexicon) for r in recs]
        preds = [sentiment_of_words(w) for w in words]
    bad = [p for p in preds if p is not None and p not in ("positive", "negative", "neutral")]
    if bad:
        raise ValueError(f"task {task.name!r}: sentiment answers must be positive/negative/neutral, got {bad[:3]}")
    gold_csv, sub_csv = out / "gold" / f"{task.name}.csv", out / "submissions" / f"{task.name}.csv"
    atomic_write_text(gold_csv, _csv_text(["name", "valence"], [[s.id, _num(s.valence)] for s in tp.samples]))
    sub_rows = [[s.id, p or ""] for s, p in zip(tp.samples, preds, strict=True)]
    atomic_write_text(sub_csv, _csv_text(["name", "discrete"], sub_rows))
    res: dict[str, Any] = {"files": {"gold": _rel(gold_csv, out), "submission": _rel(sub_csv, out)}}
    res["metrics"] = _run_metrics(tp, gold_csv, sub_csv, out)
    n_un = sum(1 for p in preds if p is None)
    res["answers"] = {"n": len(preds), "n_unparsed": n_un, "unparsed_rate": n_un / len(preds)}
    rows = []
    for i, (s, p, r) in enumerate(zip(tp.samples, preds, recs, strict=True)):
        row: dict[str, Any] = {"id": s.id, "valence_gold": s.valence, "pred": p}
        if words is not None:
            row.update(words=words[i], text=r.get("text"))
        rows.append(row)
    pred_path = out / "predictions" / f"{task.name}.jsonl"
    _write_predictions(pred_path, rows)
    res["files"]["predictions"] = _rel(pred_path, out)
    return res


def score_explanation(tp: TaskPlan, store: RecordStore, out: Path, judge: dict[str, Any] | None) -> dict[str, Any]:
    from emollm.evaluation.judge import DescriptionPair, EmotionLexicon, emotion_word_overlap, text_similarity
    from emollm.evaluation.plan import gold_text

    task = tp.task
    recs = _records(tp, tp.condition("base"), store)
    texts = [r.get("text") or "" for r in recs]
    gold = [gold_text(task, s) or "" for s in tp.samples]
    pairs = [DescriptionPair(s.id, g, t) for s, g, t in zip(tp.samples, gold, texts, strict=True)]
    gold_csv, sub_csv = out / "gold" / f"{task.name}.csv", out / "submissions" / f"{task.name}.csv"
    atomic_write_text(gold_csv, _csv_text(["names", "reasons"], [[p.sample_id, p.gold] for p in pairs]))
    atomic_write_text(sub_csv, _csv_text(["names", "reasons"], [[p.sample_id, p.pred] for p in pairs]))
    res: dict[str, Any] = {"files": {"gold": _rel(gold_csv, out), "submission": _rel(sub_csv, out)}}
    lex_space = task.explanation.lexicon or tp.data.space.name
    sim = text_similarity(pairs).to_dict(with_samples=False)
    ov = emotion_word_overlap(pairs, EmotionLexicon.from_label_space(lex_space)).to_dict(with_samples=False)
    res["judge_free"] = {"text_similarity": sim, "emotion_word_overlap": ov}
    if all(s.label in tp.data.space.labels for s in tp.samples):
        preds, counts = read_labels(texts, tp.data.space, "clean")
        gold_labels = [str(s.label) for s in tp.samples]
        m = classification_metrics(gold_labels, preds, labels=list(tp.data.space.labels))
        res["label_from_explanation"] = {**_short_metrics(m), "reading": "clean", **counts}
    if judge:
        res["judge"] = _judge_scores(task, pairs, judge, out)
    else:
        res["judge"] = {"skipped": "no judge configured (--judge FILE or the suite's judge:)"}
    rows = [{"id": p.sample_id, "gold": p.gold, "pred": p.pred} for p in pairs]
    pred_path = out / "predictions" / f"{task.name}.jsonl"
    _write_predictions(pred_path, rows)
    res["files"]["predictions"] = _rel(pred_path, out)
    res["metrics"] = {
        "text_similarity": {"score": sim["mean"], "mode": "judge-free"},
        "emotion_word_f1": {"score": ov["f1"], "mode": "judge-free"},
    }
    return res


def _judge_scores(task: Any, pairs: list[Any], judge: dict[str, Any], out: Path) -> dict[str, Any]:
    from emollm.config import validate
    from emollm.evaluation.judge import Judge, JudgeConfig, JudgeError

    cfg = validate(JudgeConfig, {"cache_dir": str(out / "judge_cache"), **judge}, "judge config")
    res: dict[str, Any] = {}
    with Judge(cfg) as j:
        for metric in task.explanation.judge_metrics:
            try:
                res[metric] = j.score(metric, pairs).to_dict(with_samples=False)
            except JudgeError as e:
                log.warning("task %s: judge %s failed: %s", task.name, metric, e)
                res[metric] = {"error": str(e)}
    return res


def score_task(tp: TaskPlan, store: RecordStore, out: Path, plan: Plan, opts: EvalOptions) -> dict[str, Any]:
    """Every number of one task (see the module docstring); writes its CSVs, predictions and plots."""
    plots = out / "plots"
    kind = tp.task.kind
    if kind == "classification":
        res = score_classification(tp, store, out, plots)
    elif kind == "openset":
        res = score_openset(tp, store, out, opts.roots)
    elif kind == "sentiment":
        res = score_sentiment(tp, store, out, opts.roots)
    else:
        res = score_explanation(tp, store, out, plan.judge)
    task = tp.task
    head = _headline(res, task.headline, tp.metrics) if kind != "explanation" else None
    if kind == "explanation":
        head = {
            "name": "text_similarity.score",
            "value": res["metrics"]["text_similarity"]["score"],
            "mode": "judge-free",
        }
    info = {
        "version": task.version,
        "benchmark": task.benchmark,
        "kind": kind,
        "description": task.description,
        "notes": task.notes,
        "data": {
            "source": tp.data.source,
            "split": task.data.split,
            "label_space": tp.data.space.name,
            "n_samples": len(tp.samples),
            "n_without_gold": tp.n_without_gold,
            "without_gold": tp.without_gold,
        },
        "method": tp.method,
        "reading": tp.reading if tp.method == "generate" else None,
        "prompt": {"task": task.prompt.task, "pool": task.pool, "index": task.prompt.index},
        "conditions": {c.id: c.describe() for c in tp.conditions},
        "headline": head,
    }
    return {**info, **res}


# ----------------------------------------------------------------------------------------------
# the whole report


def write_report(
    plan: Plan, store: RecordStore, out: Path, ckpt: CheckpointInfo, opts: EvalOptions, stats: dict[str, int]
) -> dict[str, Any]:
    """Score every task and write results.json, report.md, plots and CSVs into ``out``; returns the results."""
    from emollm import __version__
    from emollm.model.checkpoint import git_sha

    out.mkdir(parents=True, exist_ok=True)
    shard_stats = {}
    for f in sorted((out / "records").glob("*.stats.json")):
        try:
            shard_stats[f.name.removesuffix(".stats.json")] = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError):
            continue
    results: dict[str, Any] = {
        "format": RESULTS_FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "emollm_version": __version__,
        "git_sha": git_sha(),
        "checkpoint": {"spec": ckpt.spec, "kind": ckpt.kind, "name": ckpt.name, "identity": ckpt.identity},
        "suite": plan.suite,
        "options": {
            "limit": opts.limit,
            "shard": list(opts.shard),
            "merge": opts.merge,
            "batch_size": opts.batch_size,
            "device": opts.device,
            "modalities": opts.modalities,
            "reading": opts.reading,
            "method": opts.method,
            "roots": dict(opts.roots),
        },
        "run": {**stats, "records_dir": "records", "shards": shard_stats},
        "tasks": {},
    }
    for tp in plan.tasks:
        results["tasks"][tp.task.name] = score_task(tp, store, out, plan, opts)
    results = _finite(results)
    atomic_write_json(out / "results.json", results)
    atomic_write_text(out / "report.md", render_markdown(results))
    return results


# ----------------------------------------------------------------------------------------------
# rendering


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(x).replace("|", "\\|").replace("\n", " ") for x in r) + " |")
    return lines + [""]


def summary_rows(results: dict[str, Any]) -> list[list[Any]]:
    """One row per task: task, benchmark, headline metric, value, mode, n, unparsed."""
    rows = []
    for name, t in results["tasks"].items():
        h = t.get("headline") or {}
        ans = t.get("answers", {})
        rows.append(
            [
                name,
                t.get("benchmark", ""),
                h.get("name"),
                h.get("value"),
                h.get("mode"),
                t["data"]["n_samples"],
                ans.get("n_unparsed"),
            ]
        )
    return rows


def render_markdown(results: dict[str, Any]) -> str:
    """report.md: overall table, then per task its metrics, per-class table, analyses and plots."""
    ck = results["checkpoint"]
    run = results["run"]
    lines = [
        f"# Evaluation report: {ck['name']}",
        "",
        f"- checkpoint: `{ck['spec']}` ({ck['kind']}), identity `{ck['identity']}`",
        f"- emollm {results.get('emollm_version')}, git `{results.get('git_sha')}`, created {results['created']}",
        f"- suite: {results['suite']['name'] if results.get('suite') else '(tasks given on the command line)'}",
        f"- records: {run['total']} answers, {run['computed']} computed in the last run, {run['reused']} reused",
        "",
        "## Overall",
        "",
    ]
    lines += _table(["task", "benchmark", "metric", "value", "mode", "n", "unparsed"], summary_rows(results))
    for name, t in results["tasks"].items():
        lines += _task_markdown(name, t)
    return "\n".join(lines).rstrip() + "\n"


def _metric_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    rows = []
    for mname, m in metrics.items():
        if "skipped" in m:
            rows.append([mname, "skipped", None, m["skipped"]])
            continue
        extra = []
        keys = ("waf", "mse", "combined", "accuracy", "uar", "war", "hit_rate", "accuracy_s", "recall_s", "M_avg_12")
        for k in keys:
            if k in m and not isinstance(m[k], dict | list):
                extra.append(f"{k} {_fmt(m[k])}")
        main = m.get(m.get("main", ""), None)
        if isinstance(main, dict):  # wheel: P and R of the main EW level
            extra += [f"{m['main']} {k} {_fmt(main[k])}" for k in ("P", "R") if k in main]
        for k in ("n", "n_unparsed", "n_zero_gold"):
            if k in m and not isinstance(m[k], dict | list):
                extra.append(f"{k} {m[k]}")
        rows.append([mname, m.get("mode"), m.get("score"), ", ".join(extra)])
    return rows


def _task_markdown(name: str, t: dict[str, Any]) -> list[str]:
    d = t["data"]
    lines = [
        f"## {name}",
        "",
        f"{t.get('description', '')}".strip(),
        "",
        f"- benchmark {t.get('benchmark') or '–'}, task version {t['version']}, kind {t['kind']}",
        f"- data: {d['source']}, split `{d['split']}`, {d['n_samples']} samples "
        f"({d['n_without_gold']} without gold left out), label space {d['label_space']}",
        f"- answers: {t['method']}" + (f", reading {t['reading']}" if t.get("reading") else ""),
    ]
    if t.get("notes"):
        lines.append(f"- notes: {' '.join(t['notes'].split())}")
    lines.append("")
    lines += ["### Metrics", ""]
    lines += _table(["metric", "mode", "score", "details"], _metric_rows(t.get("metrics", {})))
    if "valence" in t:
        v = t["valence"]
        lines += [
            f"Predicted valence: {v['method']} from {v['source']} ({v['n_prior']} unparsed answers got the prior).",
            "",
        ]
    ov = t.get("overall")
    if ov:
        lines += ["### Per class (base prompt)", ""]
        lines += _table(
            ["label", "precision", "recall", "F1", "support"],
            [[lab, c["precision"], c["recall"], c["f1"], c["support"]] for lab, c in ov["per_class"].items()],
        )
        lines += [f"Unparsed answers: {ov['n_unparsed']} of {ov['n']}.", ""]
    if "readings" in t:
        r = t["readings"]
        lines += ["### Answer reading", ""]
        rows = [
            [m, r[m]["weighted_f1"], r[m]["accuracy"], r[m]["n_unparsed"], r[m]["n_forced_neutral"]]
            for m in ("clean", "published")
        ]
        lines += _table(["reading", "weighted F1", "accuracy", "unparsed", "original would force to neutral"], rows)
        if "original_rule_weighted_f1" in r["published"]:
            lines += [
                f"Emotion-LLaMA's original rule (off-list -> neutral) would report weighted F1 "
                f"{_fmt(r['published']['original_rule_weighted_f1'])}.",
                "",
            ]
    if "ablation" in t:
        a = t["ablation"]
        lines += ["### Modality ablation", ""]
        lines += _table(
            ["inputs", "modalities", "subtitle", "weighted F1", "accuracy", "UAR", "unparsed"],
            [
                [
                    k,
                    "+".join(v["modalities"]) or "–",
                    v["subtitle"],
                    v["weighted_f1"],
                    v["accuracy"],
                    v["uar"],
                    v["n_unparsed"],
                ]
                for k, v in a["conditions"].items()
            ],
        )
    if "robustness" in t:
        lines += _robustness_markdown(t["robustness"])
    if "noise" in t:
        lines += ["### Noise robustness", ""]
        lines += _table(
            ["level", "weighted F1", "accuracy", "UAR", "unparsed"],
            [[k, v["weighted_f1"], v["accuracy"], v["uar"], v["n_unparsed"]] for k, v in t["noise"]["levels"].items()],
        )
    if "calibration" in t:
        c = t["calibration"]
        lines += ["### Calibration", ""]
        if "skipped" in c:
            lines += [c["skipped"], ""]
        else:
            lines += _table(
                ["ECE", "MCE", "Brier", "NLL", "accuracy", "mean confidence", "bins"],
                [[c["ece"], c["mce"], c["brier"], c["nll"], c["accuracy"], c["mean_confidence"], c["n_bins"]]],
            )
    if "fairness" in t:
        lines += ["### Fairness", ""]
        for col, f in t["fairness"].items():
            lines += [f"By `{col}` ({f['metric']}; gap {_fmt(f['gap'])}, worst group {f['worst_group']}):", ""]
            lines += _table(
                ["group", "n", f["metric"], "in gap"],
                [[g, v["n"], v["value"], v["in_gap"]] for g, v in f["per_group"].items()],
            )
    if "judge_free" in t:
        jf = t["judge_free"]
        lines += ["### Explanations", ""]
        rows = [
            ["text similarity (TF-IDF cosine)", jf["text_similarity"]["mean"], jf["text_similarity"]["n"]],
            ["emotion-word F1", jf["emotion_word_overlap"]["f1"], jf["emotion_word_overlap"]["n_scored"]],
        ]
        if "label_from_explanation" in t:
            lf = t["label_from_explanation"]
            rows.append(["label read from the explanation: weighted F1", lf["weighted_f1"], lf["n"]])
        for metric, j in t.get("judge", {}).items():
            if isinstance(j, dict) and "mean" in j:
                rows.append([f"judge {metric} ({j['judge_id']})", j["mean"], j["n_scored"]])
        lines += _table(["score", "value", "n"], rows)
        if "skipped" in t.get("judge", {}):
            lines += [f"LLM judge: {t['judge']['skipped']}.", ""]
    for title, rel in t.get("plots", {}).items():
        lines += [f"![{name} {title}]({rel})", ""]
    return lines


def _robustness_markdown(r: dict[str, Any]) -> list[str]:
    lines = ["### Prompt robustness", ""]
    o = r["overall"]
    lines += [
        f"Base prompt weighted F1 {_fmt(r.get('base_score'))}; over all {len(o['variants'])} prompts: "
        f"agreement {_fmt(o['agreement'])}, flip rate vs base {_fmt(o['flip_rate'])}, "
        f"Fleiss' kappa {_fmt(o['fleiss_kappa'])}, mean parse failures {_fmt(o['parse_fail_mean'])}.",
        "",
    ]
    rows = []
    for fam, b in r.get("families", {}).items():
        s = b.get("summary", {})
        rows.append(
            [
                f"{fam} ({r['family_names'].get(fam, fam)})",
                s.get("k"),
                s.get("mean"),
                s.get("std"),
                s.get("worst"),
                s.get("best"),
                b["flip_rate"],
                b["fleiss_kappa"],
                b["parse_fail_mean"],
            ]
        )
    lines += _table(["family", "prompts", "mean", "std", "worst", "best", "flip rate", "kappa", "parse fail"], rows)
    if "order_bias" in r:
        ob = r["order_bias"]
        lines += [f"Label-position bias: first {_fmt(ob['first'])}, last {_fmt(ob['last'])}.", ""]
    lines += _table(
        ["variant", "family", "weighted F1", "instruction"],
        [[v, d["family"] or "base", r["overall"]["scores"][v], d["instruction"]] for v, d in r["variants"].items()],
    )
    return lines


def print_summary(results: dict[str, Any], console: Any = None) -> None:
    """A rich table of the headline number of every task, plus where the files are."""
    from rich.console import Console
    from rich.table import Table

    if console is None:
        console = Console()
        if not console.is_terminal:  # a pipe or a log file: no reason to squeeze names into 80 columns
            console = Console(width=160)
    table = Table(title=f"emollm eval: {results['checkpoint']['name']}")
    for col in ("task", "benchmark", "metric", "value", "mode", "n", "unparsed"):
        right = col in ("value", "n", "unparsed")
        table.add_column(col, justify="right" if right else "left", overflow="fold")
    for row in summary_rows(results):
        table.add_row(*[_fmt(x) for x in row])
    console.print(table)
    run = results["run"]
    console.print(f"{run['computed']} answers computed, {run['reused']} reused (of {run['total']})")
