"""``emollm demo``: the main job end to end on the embedded default (what ``make demo`` runs).

    emollm demo                    # SynthMER -> features -> train mini (2 stages) -> eval -> explain a clip
    emollm demo --quick            # a smaller corpus and one short epoch (a smoke run, lower numbers)

Steps, each reusing what an earlier run left (delete ``runs/`` to start over):

1. prepare SynthMER (``data_recipes/synthmer.yaml``) -> ``runs/data/synthmer``
2. extract eGeMAPS audio + FER2013 face features -> ``runs/features``
3. train ``train/mini.yaml`` (stage 1 coarse, stage 2 fine) -> ``runs/mini``
4. evaluate the best checkpoint with ``eval/suites/demo.yaml`` (weighted F1, per-class table,
   modality ablation, prompt robustness, noise, calibration, fairness) -> ``runs/mini/eval``
5. explain one test clip (label, probabilities, explanation)

Progress is shown throughout; the summary at the end names every output.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

STEPS = 5


def _rule(console: Any, i: int, title: str) -> None:
    console.rule(f"[bold]{i}/{STEPS}[/] {title}")


def run_demo(
    out: Path = Path("runs"),
    quick: bool = False,
    retrain: bool = False,
    eval_limit: int | None = None,
    recipe: str = "train/mini.yaml",
    train_overrides: tuple[str, ...] = (),
    suite: str = "eval/suites/demo.yaml",
) -> dict[str, Any]:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    t_all = time.perf_counter()
    times: dict[str, float] = {}
    data_dir = out / "data" / ("synthmer_quick" if quick else "synthmer")
    feat_dir = out / "features"
    from emollm.training.config import load_run_config

    name = load_run_config(recipe).name
    run_dir = out / (f"{name}_quick" if quick else name)
    gen = ["generate.synthmer.n_train=60", "generate.synthmer.n_val=24", "generate.synthmer.n_test=24"] if quick else []

    # 1. data
    _rule(console, 1, "SynthMER: synthetic clips with a drawn face, a synthetic voice and a subtitle")
    t = time.perf_counter()
    from emollm.data.sample import Manifest

    if (data_dir / "samples.jsonl").is_file() and (data_dir / "manifest.json").is_file():
        console.print(f"reusing {data_dir}")
    else:
        from emollm.data.prepare import prepare

        prepare("data_recipes/synthmer.yaml", out=data_dir, overrides=gen)
    man = Manifest.load(data_dir)
    ceilings = (
        json.loads((data_dir / "raw" / "SYNTHMER.json").read_text()).get("ceilings", {})
        if (data_dir / "raw" / "SYNTHMER.json").is_file()
        else {}
    )
    times["prepare"] = time.perf_counter() - t

    # 2. features
    _rule(console, 2, "features: openSMILE eGeMAPSv02 (audio) and the FER2013 CNN on face crops (video frames)")
    t = time.perf_counter()
    from emollm.features.extract import extract_corpus

    stats = extract_corpus(man, load_run_config(recipe).model, feat_dir)
    console.print(
        f"cache hits {stats.cache['hits']}, computed {stats.cache['writes']} ({stats.samples_per_s:.1f} samples/s)"
    )
    times["extract"] = time.perf_counter() - t

    # 3. training
    _rule(console, 3, f"training {name}: LLM + LoRA + projectors, stage 1 (coarse) then stage 2 (fine)")
    t = time.perf_counter()
    overrides = [f"data.corpus={data_dir}", f"data.features.cache_dir={feat_dir}", f"output_dir={run_dir}"]
    if quick:
        overrides += [
            "stages.0.epochs=1",
            "stages.1.epochs=0.5",
            "stages.0.eval_every=1000",
            "stages.1.eval_every=1000",
        ]
    cfg = load_run_config(recipe, [*overrides, *train_overrides])
    best = run_dir / "best"
    done = (run_dir / "run.json").is_file() and json.loads((run_dir / "run.json").read_text()).get(
        "status"
    ) == "finished"
    if done and not retrain:
        console.print(f"reusing the trained model in {run_dir} (--retrain to train again)")
    else:
        from emollm.training.trainer import train

        resume = "auto" if any(run_dir.glob("*/step_*/progress.json")) else None
        train(cfg, resume=resume)
    ckpt = best if best.is_dir() else run_dir / "final"
    times["train"] = time.perf_counter() - t

    # 4. evaluation
    _rule(console, 4, "evaluation on the SynthMER test split")
    t = time.perf_counter()
    from emollm.evaluation.runner import EvalOptions, run_eval

    eval_dir = run_dir / "eval"
    outcome = run_eval(
        EvalOptions(
            checkpoint=str(ckpt),
            suite=suite,
            out=str(eval_dir),
            roots={"synthmer": str(data_dir)},
            features=str(feat_dir),
            limit=eval_limit,
        )
    )
    times["eval"] = time.perf_counter() - t

    # 5. an explained answer
    _rule(console, 5, "an explained answer for one test clip")
    t = time.perf_counter()
    from emollm.inference.chat import ChatSession, open_predictor

    clip = man.split("test")[0]
    predictor = open_predictor(str(ckpt), cache_dir=feat_dir)
    session = ChatSession(predictor)
    session.attach_sample(clip, man.root)
    label = session.ask(task="label")
    session.reset()
    session.attach_sample(clip, man.root)
    reason = session.ask(task="explain", max_new_tokens=96)
    probs = label.probs or {}
    top = sorted(probs.items(), key=lambda kv: -kv[1])[:3]
    console.print(f"clip {clip.id}: subtitle {clip.subtitle!r}; gold label [bold]{clip.label}[/]")
    console.print(f"model label: [bold]{label.text}[/]  ({', '.join(f'{k} {v:.2f}' for k, v in top)})")
    console.print(f"model explanation: {reason.text}")
    times["explain"] = time.perf_counter() - t

    per_class = outcome.results["tasks"]["synthmer"]["metrics"]["classification"]["per_class"]
    pc = Table(title="per class (SynthMER test, all inputs)")
    for col in ("label", "precision", "recall", "F1", "n"):
        pc.add_column(col, justify="left" if col == "label" else "right")
    for lab, v in per_class.items():
        pc.add_row(lab, f"{v['precision']:.3f}", f"{v['recall']:.3f}", f"{v['f1']:.3f}", str(v["support"]))
    console.print(pc)
    summary = _summary(outcome.results, ceilings)
    table = Table(title="emollm demo: mini on SynthMER test")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for k, v in summary.items():
        table.add_row(k, f"{v:.3f}" if isinstance(v, float) else str(v))
    total = time.perf_counter() - t_all
    for k, v in times.items():
        table.add_row(f"time: {k}", f"{v / 60:.1f} min")
    table.add_row("time: total", f"{total / 60:.1f} min")
    console.print(table)
    console.print(f"report: {eval_dir / 'report.md'}   checkpoint: {ckpt}   training log: {run_dir / 'metrics.jsonl'}")
    console.print(
        f"next: emollm chat --checkpoint {ckpt} --video {man.media_path(clip, 'video')} -p 'Why does this person feel this way?'"
    )
    result = {
        "summary": summary,
        "times_s": {**times, "total": total},
        "checkpoint": str(ckpt),
        "report": str(eval_dir / "report.md"),
    }
    from emollm.io import atomic_write_json

    atomic_write_json(run_dir / "demo.json", result)
    return result


def _summary(results: dict[str, Any], ceilings: dict[str, Any]) -> dict[str, Any]:
    """The headline numbers from the eval results: overall weighted F1 and the modality ablation."""
    task = results["tasks"]["synthmer"]
    explain = results["tasks"].get("synthmer_explain", {}).get("metrics")
    m = task["metrics"]["classification"]
    out: dict[str, Any] = {"weighted F1 (all inputs)": m["weighted_f1"], "accuracy": m["accuracy"], "UAR": m["uar"]}
    singles: dict[str, float] = {}
    for name, rec in task.get("ablation", {}).get("conditions", {}).items():
        out[f"weighted F1 ({name})"] = rec["weighted_f1"]
        if "+" not in name:
            singles[name] = rec["weighted_f1"]
    if singles:
        best = max(singles, key=lambda k: singles[k])
        out["best single modality"] = f"{best} ({singles[best]:.3f})"
    rob = task.get("robustness", {}).get("overall", {})
    if isinstance(rob.get("summary"), dict):
        out["prompt robustness: mean weighted F1"] = rob["summary"]["mean"]
        out["prompt robustness: worst weighted F1"] = rob["summary"]["worst"]
    if isinstance(rob.get("flip_rate"), int | float):
        out["prompt robustness: flip rate"] = rob["flip_rate"]
    for name, lvl in task.get("noise", {}).get("levels", {}).items():
        if name != "clean":
            out[f"weighted F1 under {name.upper()}"] = lvl["weighted_f1"]
    if isinstance(task.get("calibration", {}).get("ece"), int | float):
        out["calibration: ECE"] = task["calibration"]["ece"]
    for name, em in (explain or {}).items():
        if isinstance(em, dict) and isinstance(em.get("score"), int | float):
            out[f"explanations: {name.replace('_', ' ')}"] = em["score"]
    for k, v in ceilings.items():
        if isinstance(v, int | float):
            out[f"SynthMER ceiling ({k})"] = float(v)
    return out


def register(app: typer.Typer) -> None:
    @app.command("demo")
    def demo(
        out: Path = typer.Option(Path("runs"), help="working folder (data, features, runs)"),
        quick: bool = typer.Option(False, "--quick", help="smaller corpus and shorter training (a smoke run)"),
        retrain: bool = typer.Option(False, "--retrain", help="train again even if a finished run exists"),
        eval_limit: int = typer.Option(0, help="evaluate at most this many test clips (0: all)"),
    ) -> None:
        """The main job on the embedded default: SynthMER -> features -> train mini -> evaluate -> explain."""
        run_demo(out, quick, retrain, eval_limit or None)
