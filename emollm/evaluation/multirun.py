"""Several runs at once: one score per prediction file or eval run, then mean ± std, max and bootstrap intervals.

    emollm score --metric wheel --gold ov.csv --wheel emotion_wheel --pred seed0=a.csv --pred seed1=b.csv
    emollm score --pred runs/eval/epoch30 --pred runs/eval/epoch35 --pred runs/eval/epoch40 --markdown runs.md

    r = score_files("hitrate", "gold.csv", [("e30", "p30.csv"), ("e35", "p35.csv")], wheel="emotion_wheel")
    r["mean"], r["std"], r["max"]["run"], r["max"]["label"]

Each run is scored exactly as ``emollm score`` scores one file (``score.score``, with its bootstrap interval
when ``bootstrap`` > 0). Across runs the result holds:

- ``mean`` and ``std`` (sample standard deviation, ddof = 1; None for one run) over the runs: the honest
  number for seeds, or for a fixed checkpoint schedule;
- ``max``: the best run and its score, labelled **"selected on the test set"**: the AffectGPT MER-UniBench
  protocol reports, per dataset, the maximum over checkpoints (epochs 30-60), which picks the checkpoint
  on the test data; comparable to the published numbers, not a held-out estimate;
- ``min`` and every run's score and interval.

Run folders (``emollm eval`` outputs): every task of each run's ``results.json`` is rescored from its
``gold/`` and ``submissions/`` files with the metric options the run recorded, so runs of different
checkpoints, seeds or models line up per (task, metric). A run is named by its folder name unless given
as ``NAME=DIR``. ``render_markdown`` writes the table (one row per task and metric).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

SELECTED_ON_TEST = "selected on the test set (max over runs, the AffectGPT checkpoint protocol)"


def parse_named(items: Sequence[str | Path]) -> list[tuple[str, Path]]:
    """``["seed0=a.csv", "runs/x"]`` -> [(name, path)]; a bare path is named by its stem / folder name."""
    out: list[tuple[str, Path]] = []
    for item in items:
        s = str(item)
        name, sep, path = s.partition("=")
        if sep and name and "/" not in name and path:
            p = Path(path)
        else:
            p, name = Path(s), ""
        out.append((name or (p.name if p.is_dir() else p.stem), p))
    names = [n for n, _ in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"run name(s) {dup} given twice; name runs as NAME=PATH")
    return out


def aggregate(scores: dict[str, float | None]) -> dict[str, Any]:
    """mean, std (ddof 1), min and max (labelled selected on the test set) of per-run scores.

    A run whose main score is undefined (``None``: e.g. no scorable sample) is left out and listed in
    ``undefined_runs``; with no defined score at all every statistic is None.
    """
    defined = {k: v for k, v in scores.items() if v is not None}
    out: dict[str, Any] = {"n_runs": len(scores), "undefined_runs": [k for k in scores if k not in defined]}
    if not defined:
        return {**out, "mean": None, "std": None, "max": None, "min": None}
    vals = np.asarray(list(defined.values()), float)
    best = max(defined, key=lambda k: defined[k])
    worst = min(defined, key=lambda k: defined[k])
    return {
        **out,
        "mean": float(vals.mean()),
        "std": float(vals.std(ddof=1)) if len(vals) > 1 else None,
        "max": {"score": defined[best], "run": best, "label": SELECTED_ON_TEST},
        "min": {"score": defined[worst], "run": worst},
    }


def score_files(
    metric: str,
    gold: str | Path,
    preds: Sequence[tuple[str, str | Path]],
    *,
    bootstrap: int = 0,
    seed: int = 0,
    alpha: float = 0.05,
    **options: Any,
) -> dict[str, Any]:
    """Score every prediction file against one gold file; see the module docstring for the result."""
    from emollm.evaluation.score import score

    if not preds:
        raise ValueError("no prediction files to score")
    runs = []
    for name, p in preds:
        r = score(metric, gold, p, bootstrap=bootstrap, seed=seed, alpha=alpha, **options)
        runs.append({"run": name, "pred": str(p), "score": r["score"], "bootstrap": r.get("bootstrap"), "result": r})
    agg = aggregate({r["run"]: r["score"] for r in runs})
    mode = runs[0]["result"]["mode"]
    return {"metric": metric, "mode": mode, "gold": str(gold), **agg, "runs": runs}


def _load_results(run: Path) -> dict[str, Any]:
    f = run / "results.json"
    if not f.is_file():
        raise FileNotFoundError(f"{run}: not an eval run folder (no results.json)")
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{f}: not valid JSON ({e})") from None


def score_run_dirs(
    runs: Sequence[tuple[str, str | Path]], *, bootstrap: int = 0, seed: int = 0, alpha: float = 0.05
) -> dict[str, Any]:
    """Rescore every (task, metric) of several eval runs and aggregate per (task, metric)."""
    from emollm.evaluation.score import score

    per: dict[tuple[str, str], dict[str, Any]] = {}
    checkpoints: dict[str, str] = {}
    for name, d in runs:
        d = Path(d)
        res = _load_results(d)
        checkpoints[name] = res.get("checkpoint", {}).get("identity", "")
        for task, t in res.get("tasks", {}).items():
            for m, mr in (t.get("metrics") or {}).items():
                if not isinstance(mr, dict) or "options" not in mr or "gold" not in mr or "pred" not in mr:
                    continue  # skipped metrics and judge-free summaries have no files to rescore
                opts = {k: v for k, v in mr["options"].items() if v is not None}
                mode = opts.pop("mode", "published")
                r = score(
                    m, d / mr["gold"], d / mr["pred"], mode=mode, bootstrap=bootstrap, seed=seed, alpha=alpha, **opts
                )
                entry = per.setdefault((task, m), {"task": task, "metric": m, "mode": mode, "runs": []})
                entry["runs"].append({"run": name, "score": r["score"], "bootstrap": r.get("bootstrap")})
    if not per:
        raise ValueError("none of the runs has a scored task with gold and submission files")
    rows = []
    for (_, _), e in per.items():
        e.update(aggregate({r["run"]: r["score"] for r in e["runs"]}))
        rows.append(e)
    return {"runs": [n for n, _ in runs], "checkpoints": checkpoints, "tasks": rows}


def _f(v: float | None) -> str:
    return "–" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{100 * v:.2f}"


def _ci(b: dict[str, Any] | None) -> str:
    return f"[{_f(b['low'])}, {_f(b['high'])}]" if b and "low" in b else ""  # skipped: undefined score


def render_markdown(result: dict[str, Any]) -> str:
    """A Markdown table: per (task, metric) each run's score [CI], mean ± std, and the max selected on test."""
    rows = result["tasks"] if "tasks" in result else [{"task": "", **result}]
    names = result.get("runs") if "tasks" in result else [r["run"] for r in result["runs"]]
    header = ["task", "metric", *names, "mean ± std", f"max ({SELECTED_ON_TEST.split(' (')[0]})"]
    lines = ["# Several runs", "", "Scores × 100; [low, high] = bootstrap interval of that run.", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for e in rows:
        by = {r["run"]: r for r in e["runs"]}
        cells = [f"{_f(by[n]['score'])} {_ci(by[n].get('bootstrap'))}".strip() if n in by else "–" for n in names]
        std = "" if e["std"] is None else f" ± {_f(e['std'])}"
        best = "–" if e["max"] is None else f"{_f(e['max']['score'])} ({e['max']['run']})"
        lines.append("| " + " | ".join([e["task"], e["metric"], *cells, _f(e["mean"]) + std, best]) + " |")
    lines += ["", f"Max: {SELECTED_ON_TEST}. Mean ± std is over runs (ddof = 1).", ""]
    return "\n".join(lines)
