"""Real ``emollm eval`` runs of the tiny-fast preset, then the producer step in eval, several run folders
rescored at once, and ``emollm leaderboard`` over them.

    pytest tests/evaluation/test_leaderboard_runs.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import typer
from chat_stub import ChatStub
from typer.testing import CliRunner

from emollm.evaluation.commands import register
from emollm.evaluation.judge import ENV_BASE_URL
from emollm.evaluation.leaderboard import build_leaderboard, write_leaderboard
from emollm.evaluation.metrics.wheel import WHEELS, load_wheel
from emollm.evaluation.multirun import SELECTED_ON_TEST, score_run_dirs
from emollm.evaluation.runner import EvalOptions, EvalOutcome, run_eval

OV_TASK = """\
name: synth_ov
version: "1"
benchmark: SynthMER
kind: openset
data: {recipe: synthmer, root: synthmer, split: test}
gold: label
prompt: {task: openset, index: 0, subtitle: true}
answers: {method: generate, max_new_tokens: 6}
metrics:
  - {name: hitrate, options: {wheel: "{root:emotion_wheel}", wheel_version: affectgpt2025}}
"""
SENT_TASK = """\
name: synth_sent
version: "1"
benchmark: SynthMER
kind: sentiment
data: {recipe: synthmer, root: synthmer, split: test}
prompt: {task: openset, index: 0, subtitle: true}
answers: {method: generate, max_new_tokens: 6}
metrics:
  - {name: sentiment}
"""


@pytest.fixture(scope="module")
def tiny_fast() -> Any:
    from emollm.model.resolve import load_system

    return load_system("tiny-fast")


@pytest.fixture(scope="module")
def runs(
    tmp_path_factory: pytest.TempPathFactory, synthmer_small: Path, tiny_fast: Any, conformance: Path
) -> dict[str, EvalOutcome]:
    work = tmp_path_factory.mktemp("lb")
    task = work / "synth_ov.yaml"
    task.write_text(OV_TASK)
    sent = work / "synth_sent.yaml"
    sent.write_text(SENT_TASK)
    ycfg = work / "extractor.yaml"
    ycfg.write_text("backend: openai\nmodel: Qwen2.5-7B-Instruct\nmax_retries: 0\n")
    mp = pytest.MonkeyPatch()
    out: dict[str, EvalOutcome] = {}
    # an extractor that reads every answer as "happy": the hit rate then depends on the gold labels only
    with ChatStub(lambda m: "Output: [happy]" if "main character" in m[0]["content"] else "positive") as stub:
        mp.setenv(ENV_BASE_URL, stub.url)
        for name, modalities, extractor in (("all", "all", None), ("text", "none", str(ycfg))):
            opts = EvalOptions.model_validate(
                {
                    "checkpoint": "tiny-fast",
                    "tasks": ["synthmer", str(task), str(sent)],
                    "out": str(work / name),
                    "roots": {"synthmer": str(synthmer_small), "emotion_wheel": str(conformance / "emotion_wheel")},
                    "features": str(work / "features"),
                    "modalities": modalities,
                    "limit": 6,
                    "extractor": extractor,
                    "progress": False,
                }
            )
            out[name] = run_eval(opts, system=tiny_fast)
            assert out[name].complete
        out["_requests"] = len(stub.requests)  # type: ignore[assignment]
    mp.undo()
    return out


def s_cache_hits(runs: dict[str, Any]) -> int:
    return runs["text"].results["tasks"]["synth_sent"]["answers"]["extractor"]["cache_hits"]


def test_eval_reports_which_reader_was_used(runs: dict[str, Any], conformance: Path) -> None:
    det = runs["all"].results["tasks"]["synth_ov"]["answers"]["extractor"]
    llm = runs["text"].results["tasks"]["synth_ov"]["answers"]["extractor"]
    assert det["kind"] == "deterministic" and llm["kind"] == "llm" and llm["official"] is True
    assert runs["text"].results["options"]["extractor"].endswith("extractor.yaml")
    assert (
        "- words read by: llm `openai:Qwen2.5-7B-Instruct|affectgpt" in (runs["text"].out_dir / "report.md").read_text()
    )
    assert (
        "- words read by: deterministic `list split, else lexicon`" in (runs["all"].out_dir / "report.md").read_text()
    )
    # open-set task: one producer-step call per answer; sentiment task: answer -> list -> sentiment. Both tasks
    # ask the same prompt of the same clips, so the list step of the sentiment task is answered from the cache
    assert runs["_requests"] == 6 + 6
    assert s_cache_hits(runs) == 6
    s = runs["text"].results["tasks"]["synth_sent"]
    assert s["answers"]["extractor"]["kind"] == "llm"
    assert runs["all"].results["tasks"]["synth_sent"]["answers"]["extractor"]["sentiment"] == "polarity table"
    # every answer read as positive: published binary weighted F1 = p * 2p / (1 + p), p = share of positive gold
    vals = [
        json.loads(x)["valence_gold"]
        for x in (runs["text"].out_dir / "predictions" / "synth_sent.jsonl").read_text().splitlines()
    ]
    nz = [v for v in vals if v != 0]
    p = sum(v > 0 for v in nz) / len(nz)
    assert s["metrics"]["sentiment"]["score"] == pytest.approx(p * 2 * p / (1 + p))
    # every answer read as [happy]: per wheel, hit = gold maps like happy; neutral is skipped everywhere
    res = runs["text"].results["tasks"]["synth_ov"]["metrics"]["hitrate"]
    wheel = load_wheel(conformance / "emotion_wheel", "affectgpt2025")
    gold = [
        json.loads(x)["gold"]
        for x in (runs["text"].out_dir / "predictions" / "synth_ov.jsonl").read_text().splitlines()
    ]
    rates = []
    for w in WHEELS:
        mapped = [wheel.m3(g, w, "level1") for g in gold]
        scored = [m for m in mapped if m is not None]
        happy = wheel.m3("happy", w, "level1")
        rates.append(sum(m == happy for m in scored) / len(scored) if scored else 0.0)
    assert res["score"] == pytest.approx(sum(rates) / 5)


def test_several_run_folders_rescored(runs: dict[str, Any]) -> None:
    a, b = runs["all"], runs["text"]
    r = score_run_dirs([("all", a.out_dir), ("text", b.out_dir)], bootstrap=10)
    row = next(e for e in r["tasks"] if e["task"] == "synthmer" and e["metric"] == "classification")
    sa = a.results["tasks"]["synthmer"]["metrics"]["classification"]["score"]
    sb = b.results["tasks"]["synthmer"]["metrics"]["classification"]["score"]
    assert [x["score"] for x in row["runs"]] == pytest.approx([sa, sb])
    assert row["mean"] == pytest.approx((sa + sb) / 2) and row["max"]["label"] == SELECTED_ON_TEST
    assert row["max"]["score"] == pytest.approx(max(sa, sb)) and row["runs"][0]["bootstrap"]["n_boot"] == 10
    assert {e["task"] for e in r["tasks"]} == {"synthmer", "synth_ov", "synth_sent"}


def test_leaderboard_tables_plot_and_prompts(runs: dict[str, Any], tmp_path: Path) -> None:
    a, b = runs["all"], runs["text"]
    app = typer.Typer()
    register(app)
    out = tmp_path / "lb"
    r = CliRunner().invoke(
        app,
        ["leaderboard", f"all={a.out_dir}", f"text={b.out_dir}", "--out", str(out), "--title", "tiny-fast on SynthMER"],
    )
    assert r.exit_code == 0, r.output
    md = (out / "leaderboard.md").read_text()
    head_a = a.results["tasks"]["synthmer"]["headline"]["value"]
    head_b = b.results["tasks"]["synthmer"]["headline"]["value"]
    row = next(line for line in md.splitlines() if line.startswith("| synthmer |"))
    assert f"{100 * head_a:.2f}" in row and f"{100 * head_b:.2f}" in row
    assert "| mean (3 tasks) |" in md and "## all" in md and "## text" in md
    instr = a.results["tasks"]["synthmer"]["conditions"]["base"]["instruction"]
    assert instr.replace("|", "\\|").replace("\n", " ") in md  # each model's exact prompt is shown
    assert "none (deterministic readers)" in md and "extractor.yaml" in md
    html = (out / "leaderboard.html").read_text()
    assert "<table>" in html and "tiny-fast on SynthMER" in html
    assert (out / "leaderboard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "prompts" / "all.yaml").read_text() == (a.out_dir / "prompt_contract.yaml").read_text()
    data = json.loads((out / "leaderboard.json").read_text())
    assert data["scores"]["synthmer"] == pytest.approx({"all": head_a, "text": head_b})
    # the same runs through the library, and a folder that is not a run
    lb = build_leaderboard([("all", a.out_dir)])
    assert write_leaderboard(lb, tmp_path / "one", plot=False)["md"].is_file()
    bad = CliRunner().invoke(app, ["leaderboard", str(tmp_path), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "no results.json" in bad.output


def test_score_cli_over_run_folders(runs: dict[str, Any], tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    md = tmp_path / "runs.md"
    a, b = runs["all"].out_dir, runs["text"].out_dir
    r = CliRunner().invoke(app, ["score", "--pred", f"all={a}", "--pred", f"text={b}", "--markdown", str(md)])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["runs"] == ["all", "text"] and {e["task"] for e in res["tasks"]} == {
        "synthmer",
        "synth_ov",
        "synth_sent",
    }
    assert "| synthmer | classification |" in md.read_text()
    mixed = CliRunner().invoke(app, ["score", "--pred", str(a), "--pred", str(tmp_path / "x.csv"), "--metric", "wheel"])
    assert mixed.exit_code == 2 and "not both" in mixed.output
