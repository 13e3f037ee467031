"""Scoring one task of an eval run: its answers read from the records, the gold and submission CSVs, every
metric through ``emollm.evaluation.score.score`` (what ``emollm score`` runs), predictions and the
confusion plot. One function per task kind:

    res, answers = score_classification(tp, store, out, out / "plots")   # answers: gold/preds/probs
    res = score_openset(tp, store, out, roots)
    res = score_sentiment(tp, store, out, roots)
    res = score_explanation(tp, store, out, judge_config)

The analyses that compare conditions (ablation, robustness, noise, calibration, fairness) are in
``analyses.py``; ``report.py`` composes both per task.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from emollm.answers import (
    ReadingMode,
    original_rule_labels,
    read_labels,
)
from emollm.evaluation.metrics.classification import classification_metrics
from emollm.io import atomic_write_text
from emollm.log import get_logger

if TYPE_CHECKING:
    from emollm.evaluation.plan import Condition, RecordStore, TaskPlan


log = get_logger(__name__)


def _csv_text(header: list[str], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)
    # csv quotes a cell holding \n but not one holding a lone \r (not in the line terminator), which a reader
    # then splits into two records: model replies may hold either, so carriage returns become \n
    w.writerows([[c.replace("\r\n", "\n").replace("\r", "\n") if isinstance(c, str) else c for c in r] for r in rows])
    return buf.getvalue()


def _num(v: float | None) -> str:
    """A float cell written so that it reads back exactly; empty for None."""
    return "" if v is None else repr(float(v))


def _openset_cell(words: list[str]) -> str:
    """``['a', 'b']`` (the quoted form every list style of ``emollm.answers.parse_emotion_list`` reads)."""
    clean = [w.replace("'", "").replace('"', "").replace("[", "").replace("]", "").strip() for w in words]
    return "[" + ", ".join(f"'{w}'" for w in clean if w) + "]"


def _rel(path: Path, out: Path) -> str:
    try:
        return str(path.relative_to(out))
    except ValueError:
        return str(path)


def _records(tp: TaskPlan, c: Condition, store: RecordStore) -> list[dict[str, Any]]:
    return [store.get(tp.task.name, c.prompt_id, s.id) for s in tp.samples]


def label_answers(
    tp: TaskPlan, c: Condition, store: RecordStore, mode: ReadingMode | None = None
) -> tuple[list[str | None], np.ndarray | None, dict[str, int], list[str | None]]:
    """(labels or None, probabilities [N, C] in label-space order or None, reading counts, raw texts)."""
    recs = _records(tp, c, store)
    space = tp.data.space
    canon = [_canonical(tp, c, s.id) for s in tp.samples]
    if recs and recs[0]["method"] == "score_labels":
        preds: list[str | None] = [canon[i](r["answer"]) for i, r in enumerate(recs)]
        probs = np.zeros((len(recs), len(space.labels)))
        for i, r in enumerate(recs):
            for cand, p in r["probs"].items():
                probs[i, space.labels.index(canon[i](cand))] = p
        probs /= probs.sum(axis=1, keepdims=True)  # float32 softmax rounding: rows sum to 1 exactly
        return preds, probs, {"n": len(recs), "n_unparsed": 0}, [None] * len(recs)
    texts = [r.get("text") for r in recs]
    if not c.per_sample:
        preds, counts = read_labels(texts, space, mode or tp.reading)
        return preds, None, counts, texts
    # each reply is read against the labels its own instruction listed (a mention of another label is none)
    preds, counts = [], {}
    for s, t in zip(tp.samples, texts, strict=True):
        p, n = read_labels([t], candidate_space(space, tp.prompts[s.id].labels), mode or tp.reading)
        preds += p
        for k, v in n.items():
            counts[k] = counts.get(k, 0) + v
    return preds, None, counts, texts


def _canonical(tp: TaskPlan, c: Condition, sample_id: str) -> Any:
    """candidate as scored -> label of the task's space (the sample's own candidates when per sample)."""
    if c.per_sample:
        return tp.prompts[sample_id].canonical.__getitem__
    return c.to_canonical


_SUBSPACES: dict[tuple[str, tuple[str, ...]], Any] = {}


def candidate_space(space: Any, labels: list[str]) -> Any:
    """``space`` restricted to ``labels`` (its synonyms and aliases kept), for reading a per-sample answer."""
    from emollm.labels import LabelSpace

    key = (space.name, tuple(labels))
    if key not in _SUBSPACES:
        aliases = {k: v for k, v in space.aliases.items() if v in labels and k not in labels}
        _SUBSPACES[key] = LabelSpace(f"{space.name}[{'|'.join(labels)}]", tuple(labels), aliases)
    return _SUBSPACES[key]


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
    m = task_res.get("metrics", {}).get(name, {})
    head = {"name": spec, "value": m.get(key or "score"), "mode": m.get("mode")}
    if m.get("undefined") and (key or "score") == "score":
        head["undefined"] = m["undefined"]  # the official code gives NaN here: say so, never print 0
    return head


class LabelAnswers(NamedTuple):
    """The base condition's answers of a classification task, which the analyses start from."""

    gold: list[str]
    preds: list[str | None]
    probs: np.ndarray | None
    """[n, labels] probabilities (constrained scoring) or None (free text)."""
    overall: dict[str, Any]
    """``classification_metrics`` of the base condition."""


def score_classification(
    tp: TaskPlan, store: RecordStore, out: Path, plots: Path
) -> tuple[dict[str, Any], LabelAnswers]:
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
    if tp.prompts:  # the candidates of every sample travel with the gold (the emobench metric reads them)
        g_rows = [[s.id, s.label, _num(s.valence), "|".join(tp.prompts[s.id].labels)] for s in tp.samples]
        atomic_write_text(gold_csv, _csv_text(["name", "discrete", "valence", "candidates"], g_rows))
    else:
        atomic_write_text(
            gold_csv,
            _csv_text(["name", "discrete", "valence"], [[s.id, s.label, _num(s.valence)] for s in tp.samples]),
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
    return res, LabelAnswers(gold, preds, probs, overall)


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


def _lexicon_reader(tp: TaskPlan, roots: dict[str, str]) -> Any:
    """``text -> words`` for non-list answers: label-space mentions (sentiment tasks: the words of the polarity
    table), or every word the emotion wheel knows."""
    if tp.task.answers.lexicon == "wheel":
        from emollm.evaluation.lexicon import EmotionLexicon
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
        from emollm.answers import POLARITY
        from emollm.evaluation.lexicon import EmotionLexicon

        return EmotionLexicon.from_words(list(POLARITY), name="polarity-words").find
    return tp.data.space.mentions


def score_openset(
    tp: TaskPlan, store: RecordStore, out: Path, roots: dict[str, str], extractor: str | None = None
) -> dict[str, Any]:
    from emollm.evaluation.extract import answer_words

    task = tp.task
    recs = _records(tp, tp.condition("base"), store)
    lexicon = _lexicon_reader(tp, roots)
    words, reader = answer_words(recs, [s.id for s in tp.samples], lexicon, extractor, out)
    gold_csv, sub_csv = out / "gold" / f"{task.name}.csv", out / "submissions" / f"{task.name}.csv"
    if task.gold_field == "openset":
        g_rows = [[s.id, _openset_cell(list(s.openset or []))] for s in tp.samples]
        atomic_write_text(gold_csv, _csv_text(["name", "openset"], g_rows))
    else:
        atomic_write_text(gold_csv, _csv_text(["name", "discrete"], [[s.id, s.label] for s in tp.samples]))
    # text: the raw reply, for metrics that judge it (mme_emotion); list readers ignore extra columns
    sub_rows = [[s.id, _openset_cell(w), r.get("text") or ""] for s, w, r in zip(tp.samples, words, recs, strict=True)]
    atomic_write_text(sub_csv, _csv_text(["name", "openset", "text"], sub_rows))
    res: dict[str, Any] = {"files": {"gold": _rel(gold_csv, out), "submission": _rel(sub_csv, out)}}
    res["metrics"] = _run_metrics(tp, gold_csv, sub_csv, out)
    n_empty = sum(1 for w in words if not w)
    res["answers"] = {
        "n": len(words),
        "n_unparsed": n_empty,
        "unparsed_rate": n_empty / len(words),
        "extractor": reader,
    }
    rows = [
        {"id": s.id, "gold": s.openset if task.gold_field == "openset" else s.label, "pred": w, "text": r.get("text")}
        for s, w, r in zip(tp.samples, words, recs, strict=True)
    ]
    pred_path = out / "predictions" / f"{task.name}.jsonl"
    _write_predictions(pred_path, rows)
    res["files"]["predictions"] = _rel(pred_path, out)
    return res


def score_sentiment(
    tp: TaskPlan, store: RecordStore, out: Path, roots: dict[str, str], extractor: str | None = None
) -> dict[str, Any]:
    from emollm.evaluation.extract import answer_sentiments

    task = tp.task
    base = tp.condition("base")
    recs = _records(tp, base, store)
    words: list[list[str]] | None = None
    reader: dict[str, Any] = {"kind": "constrained", "id": "score_labels"}
    if tp.method == "score_labels":
        preds: list[str | None] = [
            _canonical(tp, base, s.id)(r["answer"]) for s, r in zip(tp.samples, recs, strict=True)
        ]
    else:
        lexicon = _lexicon_reader(tp, roots)
        words, preds, reader = answer_sentiments(recs, [s.id for s in tp.samples], lexicon, extractor, out)
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
    res["answers"] = {"n": len(preds), "n_unparsed": n_un, "unparsed_rate": n_un / len(preds), "extractor": reader}
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


def score_joint(tp: TaskPlan, store: RecordStore, out: Path) -> dict[str, Any]:
    """Joint tasks (EmoBench-M MC-EIU): gold ``name,emotion,intent`` and the raw replies ``name,text``, which the
    task's metrics (``emobench_joint``) read."""
    task = tp.task
    recs = _records(tp, tp.condition("base"), store)
    gold_csv, sub_csv = out / "gold" / f"{task.name}.csv", out / "submissions" / f"{task.name}.csv"
    g_rows = [[s.id, s.meta["emotion"], s.meta["intent"]] for s in tp.samples]
    atomic_write_text(gold_csv, _csv_text(["name", "emotion", "intent"], g_rows))
    texts = [r.get("text") or "" for r in recs]
    atomic_write_text(sub_csv, _csv_text(["name", "text"], [[s.id, t] for s, t in zip(tp.samples, texts, strict=True)]))
    res: dict[str, Any] = {"files": {"gold": _rel(gold_csv, out), "submission": _rel(sub_csv, out)}}
    res["metrics"] = _run_metrics(tp, gold_csv, sub_csv, out)
    rows = [
        {"id": s.id, "gold": {"emotion": s.meta["emotion"], "intent": s.meta["intent"]}, "text": t}
        for s, t in zip(tp.samples, texts, strict=True)
    ]
    pred_path = out / "predictions" / f"{task.name}.jsonl"
    _write_predictions(pred_path, rows)
    res["files"]["predictions"] = _rel(pred_path, out)
    return res


def score_explanation(tp: TaskPlan, store: RecordStore, out: Path, judge: dict[str, Any] | None) -> dict[str, Any]:
    from emollm.evaluation.lexicon import EmotionLexicon
    from emollm.evaluation.metrics.explanation import DescriptionPair, emotion_word_overlap, text_similarity
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
    # file metrics of the task (e.g. EmoBench-M SMILE's BLEU / ROUGE-L / BERTScore / laughter judge) on the
    # names,reasons gold and submission written above
    res["metrics"].update(_run_metrics(tp, gold_csv, sub_csv, out))
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
