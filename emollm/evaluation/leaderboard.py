"""``emollm leaderboard``: several models' eval runs on one suite, side by side (Markdown, HTML, a plot).

    emollm leaderboard runs/eval/gpt4o runs/eval/qwen-vllm runs/eval/mini --out runs/leaderboard
    emollm leaderboard mini=runs/eval/mini tuned=runs/eval/ckpt --out runs/lb --title "MER-UniBench"

    lb = build_leaderboard([("mini", "runs/eval/mini"), ("tuned", "runs/eval/ckpt")])
    write_leaderboard(lb, "runs/lb")   # leaderboard.{md,html,json,png} + prompts/<model>.yaml

Each RUN is an ``emollm eval`` output folder (``results.json`` and ``prompt_contract.yaml``): a checkpoint,
a preset or an endpoint (``--backend openai``). A model is named by its folder unless given as
``NAME=RUN``. The table has one row per task (its benchmark and headline metric, scores × 100) and one
column per model, then the mean over the tasks every model has (``n`` tasks). Below it, per model: what
was evaluated (kind, identity, endpoint), the protocol (reading, method, modalities, extractor, limit,
each task's answer method and mode) and the exact base prompt of every task (instruction, candidate
labels, subtitle, modalities); each run's prompt contract is copied to ``prompts/<model>.yaml``. A task
two runs asked differently (a different ``prompt_id``) is flagged, since the scores are then not the same
protocol. The plot is a grouped bar chart of the headline scores (matplotlib, Agg backend).
"""

from __future__ import annotations

import html
import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emollm.io import atomic_write_json, atomic_write_text


@dataclass
class ModelRun:
    name: str
    folder: Path
    results: dict[str, Any]

    @property
    def tasks(self) -> dict[str, Any]:
        return self.results.get("tasks", {})

    def headline(self, task: str) -> float | None:
        h = (self.tasks.get(task) or {}).get("headline") or {}
        v = h.get("value")
        return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


@dataclass
class Leaderboard:
    models: list[ModelRun]
    tasks: list[str]
    title: str = "Leaderboard"
    notes: list[str] = field(default_factory=list)

    def scores(self) -> dict[str, dict[str, float | None]]:
        return {t: {m.name: m.headline(t) for m in self.models} for t in self.tasks}

    def mean(self) -> tuple[dict[str, float | None], list[str]]:
        """Mean headline per model over the tasks every model has a value for."""
        sc = self.scores()
        common = [t for t in self.tasks if all(sc[t][m.name] is not None for m in self.models)]
        out: dict[str, float | None] = {}
        for m in self.models:
            vals = [sc[t][m.name] for t in common]
            out[m.name] = sum(v for v in vals if v is not None) / len(vals) if vals else None
        return out, common


def _parse_runs(items: list[str]) -> list[tuple[str, Path]]:
    from emollm.evaluation.multirun import parse_named

    return parse_named(items)


def build_leaderboard(runs: list[tuple[str, str | Path]], title: str = "Leaderboard") -> Leaderboard:
    """Read each run's results.json; tasks in first-seen order across runs."""
    if not runs:
        raise ValueError("a leaderboard needs at least one eval run folder")
    models = []
    for name, folder in runs:
        f = Path(folder) / "results.json"
        if not f.is_file():
            raise FileNotFoundError(f"{folder}: not an eval run folder (no results.json; run emollm eval first)")
        try:
            res = json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{f}: not valid JSON ({e})") from None
        models.append(ModelRun(name, Path(folder), res))
    tasks: list[str] = []
    for m in models:
        tasks += [t for t in m.tasks if t not in tasks]
    lb = Leaderboard(models, tasks, title)
    for t in tasks:
        ids = {
            m.name: ((m.tasks.get(t) or {}).get("conditions") or {}).get("base", {}).get("prompt_id") for m in models
        }
        shown = {k: v for k, v in ids.items() if v}
        heads = {(m.tasks.get(t) or {}).get("headline", {}).get("name") for m in models if t in m.tasks}
        if len(set(shown.values())) > 1:
            lb.notes.append(
                f"{t}: the models were asked with different prompts (prompt ids differ); see each model's prompts"
            )
        if len(heads - {None}) > 1:
            lb.notes.append(
                f"{t}: the headline metrics differ between runs ({', '.join(sorted(h for h in heads if h))})"
            )
    return lb


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f}"


def _task_info(lb: Leaderboard, task: str) -> tuple[str, str]:
    for m in lb.models:
        t = m.tasks.get(task)
        if t:
            return t.get("benchmark", ""), (t.get("headline") or {}).get("name") or ""
    return "", ""


def table_rows(lb: Leaderboard) -> tuple[list[str], list[list[str]]]:
    header = ["task", "benchmark", "metric", *[m.name for m in lb.models]]
    sc = lb.scores()
    rows = []
    for t in lb.tasks:
        bench, metric = _task_info(lb, t)
        vals = [sc[t][m.name] for m in lb.models]
        best = max((v for v in vals if v is not None), default=None)
        cells = [(_pct(v) + (" *" if v is not None and v == best and len(lb.models) > 1 else "")) for v in vals]
        rows.append([t, bench, metric, *cells])
    mean, common = lb.mean()
    rows.append([f"mean ({len(common)} tasks)", "", "", *[_pct(mean[m.name]) for m in lb.models]])
    return header, rows


def _protocol(m: ModelRun) -> dict[str, Any]:
    ck = m.results.get("checkpoint", {})
    opts = m.results.get("options", {})
    return {
        "evaluated": f"{ck.get('kind', '')} {ck.get('spec', '')}".strip(),
        "identity": ck.get("identity", ""),
        "suite": m.results.get("suite") or "",
        "emollm": f"{m.results.get('emollm_version', '')} @ {m.results.get('git_sha') or '?'}",
        "reading": opts.get("reading") or "task default",
        "method": opts.get("method") or "task default",
        "modalities": opts.get("modalities", ""),
        "extractor": opts.get("extractor") or "none (deterministic readers)",
        "limit": opts.get("limit") if opts.get("limit") is not None else "all samples",
    }


def _prompt_rows(m: ModelRun) -> list[list[str]]:
    rows = []
    for name, t in m.tasks.items():
        base = (t.get("conditions") or {}).get("base", {})
        ans = t.get("answers") or {}
        ex = ans.get("extractor")
        reader = ex.get("id") if isinstance(ex, dict) else (ex or t.get("reading") or "")
        rows.append(
            [
                name,
                t.get("method") or "",
                str(reader),
                "each sample's own (meta.instruction)" if base.get("per_sample") else base.get("instruction", ""),
                "each sample's own" if base.get("per_sample") else ", ".join(base.get("candidates") or []) or "–",
                "yes" if base.get("subtitle") else "no",
                "+".join(base.get("modalities") or []) or "text only",
            ]
        )
    return rows


PROMPT_HEADER = ["task", "answers", "read by", "instruction", "candidates", "subtitle", "inputs"]


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    def cell(x: Any) -> str:
        return str(x).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return out + [""]


def render_markdown(lb: Leaderboard, plot: str | None = "leaderboard.png") -> str:
    header, rows = table_rows(lb)
    lines = [
        f"# {lb.title}",
        "",
        "Headline score of each task × 100 (* = best). Mean over the tasks every model has.",
        "",
    ]
    lines += _md_table(header, rows)
    if plot:
        lines += [f"![headline scores]({plot})", ""]
    for n in lb.notes:
        lines.append(f"- note: {n}")
    if lb.notes:
        lines.append("")
    for m in lb.models:
        lines += [f"## {m.name}", ""]
        lines += [f"- {k}: `{v}`" for k, v in _protocol(m).items()]
        lines += [f"- prompt contract: [prompts/{m.name}.yaml](prompts/{m.name}.yaml)", ""]
        lines += _md_table(PROMPT_HEADER, _prompt_rows(m))
    return "\n".join(lines)


def _html_table(header: list[str], rows: list[list[str]]) -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{body}</tbody></table>"


def render_html(lb: Leaderboard, plot: str | None = "leaderboard.png") -> str:
    header, rows = table_rows(lb)
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(lb.title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}th{background:#f3f3f3}</style></head><body>",
        f"<h1>{html.escape(lb.title)}</h1>",
        "<p>Headline score of each task × 100 (* = best). Mean over the tasks every model has.</p>",
        _html_table(header, rows),
    ]
    if plot:
        parts.append(f"<img src='{html.escape(plot)}' alt='headline scores'>")
    parts += [f"<p>note: {html.escape(n)}</p>" for n in lb.notes]
    for m in lb.models:
        parts.append(f"<h2>{html.escape(m.name)}</h2><ul>")
        parts += [f"<li>{html.escape(k)}: <code>{html.escape(str(v))}</code></li>" for k, v in _protocol(m).items()]
        parts.append(
            f"<li>prompt contract: <a href='prompts/{html.escape(m.name)}.yaml'>prompts/{html.escape(m.name)}.yaml</a></li></ul>"
        )
        parts.append(_html_table(PROMPT_HEADER, _prompt_rows(m)))
    parts.append("</body></html>")
    return "\n".join(parts)


def plot_leaderboard(lb: Leaderboard, path: Path) -> Path:
    """Grouped bars: tasks on x, one bar per model (headline × 100); missing values are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sc = lb.scores()
    n_t, n_m = len(lb.tasks), len(lb.models)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.2 * n_t * max(1, n_m) / 2 + 2), 3.6), dpi=100)
    width = 0.8 / max(1, n_m)
    x = np.arange(n_t)
    for j, m in enumerate(lb.models):
        vals = [sc[t][m.name] for t in lb.tasks]
        ax.bar(x + (j - (n_m - 1) / 2) * width, [100 * v if v is not None else 0 for v in vals], width, label=m.name)
    ax.set_xticks(x, lb.tasks, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("headline score × 100")
    ax.set_title(lb.title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    from emollm.io import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def write_leaderboard(lb: Leaderboard, out: str | Path, plot: bool = True) -> dict[str, Path]:
    """leaderboard.md / .html / .json (+ .png) and prompts/<model>.yaml in ``out``; returns the paths."""
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    png = "leaderboard.png" if plot and lb.tasks else None
    if png:
        files["png"] = plot_leaderboard(lb, d / png)
    for m in lb.models:
        src = m.folder / "prompt_contract.yaml"
        if src.is_file():
            (d / "prompts").mkdir(exist_ok=True)
            dst = d / "prompts" / f"{m.name}.yaml"
            shutil.copyfile(src, dst)
            files[f"prompts/{m.name}"] = dst
    atomic_write_text(d / "leaderboard.md", render_markdown(lb, png))
    atomic_write_text(d / "leaderboard.html", render_html(lb, png))
    mean, common = lb.mean()
    atomic_write_json(
        d / "leaderboard.json",
        {
            "title": lb.title,
            "models": {m.name: {"folder": str(m.folder), **_protocol(m)} for m in lb.models},
            "tasks": lb.tasks,
            "scores": lb.scores(),
            "mean": {"tasks": common, "scores": mean},
            "notes": lb.notes,
        },
    )
    files.update(md=d / "leaderboard.md", html=d / "leaderboard.html", json=d / "leaderboard.json")
    return files
