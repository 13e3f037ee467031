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

import json
import math
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emollm.evaluation.analyses import classification_analyses
from emollm.evaluation.render import print_summary, render_markdown, summary_rows
from emollm.evaluation.scoring import (
    _headline,
    label_answers,
    predicted_valence,
    score_classification,
    score_explanation,
    score_joint,
    score_openset,
    score_sentiment,
)
from emollm.io import atomic_write_json, atomic_write_text
from emollm.log import get_logger

if TYPE_CHECKING:
    from emollm.evaluation.plan import CheckpointInfo, EvalOptions, Plan, RecordStore, TaskPlan

log = get_logger(__name__)


RESULTS_FORMAT = "emollm-eval-results-v1"


def _finite(obj: Any) -> Any:
    """NaN / inf -> None, recursively (results.json stays strict JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def score_task(tp: TaskPlan, store: RecordStore, out: Path, plan: Plan, opts: EvalOptions) -> dict[str, Any]:
    """Every number of one task (see the module docstring); writes its CSVs, predictions and plots."""
    plots = out / "plots"
    kind = tp.task.kind
    if kind == "classification":
        res, answers = score_classification(tp, store, out, plots)
        res.update(classification_analyses(tp, store, answers, plots, out, res["plots"]))
    elif kind == "openset":
        res = score_openset(tp, store, out, opts.roots, opts.extractor)
    elif kind == "sentiment":
        res = score_sentiment(tp, store, out, opts.roots, opts.extractor)
    elif kind == "joint":
        res = score_joint(tp, store, out)
    else:
        res = score_explanation(tp, store, out, plan.judge)
    task = tp.task
    head = _headline(res, task.headline, tp.metrics) if kind != "explanation" or tp.metrics else None
    if head is None and kind == "explanation":
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
            "extractor": opts.extractor,
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


__all__ = [
    "RESULTS_FORMAT",
    "label_answers",
    "predicted_valence",
    "print_summary",
    "render_markdown",
    "score_classification",
    "score_explanation",
    "score_joint",
    "score_openset",
    "score_sentiment",
    "score_task",
    "summary_rows",
    "write_report",
]
