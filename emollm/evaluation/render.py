"""Rendering results.json for people: report.md (tables and plots per task) and the console summary.

    text = render_markdown(results)
    print_summary(results)          # rich table on the terminal

Nothing here computes a number: every value shown is read from results.json.
"""

from __future__ import annotations

import math
from typing import Any


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
                "undefined" if h.get("undefined") else h.get("value"),
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
        if m.get("undefined"):  # NaN in the official code: the reason, not a number
            rows.append([mname, m.get("mode"), "undefined", "; ".join([m["undefined"], ", ".join(extra)])])
            continue
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
    ex = (t.get("answers") or {}).get("extractor")
    if isinstance(ex, dict):  # who turned free text into words / sentiments (emollm.evaluation.extract)
        off = " (official AffectGPT setting)" if ex.get("official") else ""
        lines.append(f"- words read by: {ex.get('kind')} `{ex.get('id')}`{off}")
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
    for name, t in results["tasks"].items():
        why = (t.get("headline") or {}).get("undefined")
        if why:
            console.print(f"{name}: {t['headline']['name']} undefined: {why}", markup=False)
    run = results["run"]
    console.print(f"{run['computed']} answers computed, {run['reused']} reused (of {run['total']})")
