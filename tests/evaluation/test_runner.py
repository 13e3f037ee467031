"""``emollm eval`` end to end on the tiny-fast preset and the small SynthMER manifest.

One module-scoped run of a small suite (classification + ablation + three prompt variants + one noise
level + calibration + fairness, a generated-answer task and a few explanations) feeds most tests; the
others rerun it (resume), shard it, or point it at a checkpoint folder.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from emollm.answers import read_label
from emollm.evaluation.commands import register
from emollm.evaluation.runner import EvalOptions, EvalOutcome, checkpoint_info, run_eval
from emollm.labels import label_space

SUITE = """\
name: small
tasks:
  - task: synthmer
    limit: 8
    ablation: {}
    robustness: {variants: pr_mer, only: [P1, O_rev, L_noun]}
    noise: {levels: [{snr_db: 5, blur: 4}]}
    calibration: {n_bins: 5}
    fairness: {columns: [gender, speaker]}
  - {task: synthmer_generate, limit: 4}
  - {task: synthmer_explain, limit: 3}
"""


@pytest.fixture(scope="module")
def tiny_fast() -> Any:
    """The tiny-fast preset, loaded the way ``emollm eval -c tiny-fast`` loads it."""
    from emollm.model.resolve import load_system

    return load_system("tiny-fast")


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("eval_runner")


def _opts(work: Path, synthmer: Path, out: str, **kw: Any) -> EvalOptions:
    base: dict[str, Any] = {
        "checkpoint": "tiny-fast",
        "out": str(work / out),
        "roots": {"synthmer": str(synthmer)},
        "features": str(work / "features"),
        "modalities": "all",
        "progress": False,
    }
    base.update(kw)
    return EvalOptions.model_validate(base)


@pytest.fixture(scope="module")
def suite_run(work: Path, synthmer_small: Path, tiny_fast: Any) -> EvalOutcome:
    suite = work / "small.yaml"
    suite.write_text(SUITE)
    outcome = run_eval(_opts(work, synthmer_small, "main", suite=str(suite)), system=tiny_fast)
    assert outcome.complete and outcome.results is not None
    return outcome


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_suite_writes_every_output(suite_run: EvalOutcome) -> None:
    out, res = suite_run.out_dir, suite_run.results
    assert res is not None
    on_disk = json.loads((out / "results.json").read_text())
    assert on_disk == res
    assert res["checkpoint"]["identity"].startswith("preset:tiny-fast@") and "git_sha" in res
    assert res["run"]["computed"] == res["run"]["total"] > 0 and res["run"]["reused"] == 0
    syn = res["tasks"]["synthmer"]
    assert syn["version"] == "1" and syn["data"]["n_samples"] == 8 and syn["method"] == "score_labels"
    # MER submission CSV and gold, one row per sample, valence predicted from the class means
    sub = _read_csv(out / syn["files"]["submission"])
    assert list(sub[0]) == ["name", "discrete", "valence"] and len(sub) == 8
    assert all(r["discrete"] in label_space("mer6").labels and float(r["valence"]) == float(r["valence"]) for r in sub)
    assert len((out / syn["files"]["predictions"]).read_text().splitlines()) == 8
    report = (out / "report.md").read_text()
    for heading in ("## Overall", "### Per class", "### Modality ablation", "### Prompt robustness",
                    "### Noise robustness", "### Calibration", "### Fairness", "### Explanations"):  # fmt: skip
        assert heading in report
    for kind in ("confusion", "ablation", "robustness", "noise", "reliability"):
        png = out / syn["plots"][kind]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"]({syn['plots'][kind]})" in report


@pytest.fixture(scope="module")
def score_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _root() -> None:
        """test app"""

    register(app)
    return app


def test_numbers_equal_emollm_score_on_the_written_files(suite_run: EvalOutcome, score_app: typer.Typer) -> None:
    out, res = suite_run.out_dir, suite_run.results
    assert res is not None
    checked = 0
    for task in res["tasks"].values():
        for metric, r in task["metrics"].items():
            if r.get("mode") == "judge-free":
                continue
            args = ["score", "--metric", metric, "--gold", str(out / r["gold"]), "--pred", str(out / r["pred"])]
            for key, value in r["options"].items():
                args += [f"--{key.replace('_', '-')}", str(value)]
            cli = CliRunner().invoke(score_app, args)
            assert cli.exit_code == 0, cli.stderr
            printed = json.loads(cli.stdout)
            for key in ("score", "waf", "mse", "combined", "accuracy", "n_unparsed", "per_class", "confusion_matrix"):
                if key in r:
                    assert printed[key] == r[key], (metric, key)
            checked += 1
    assert checked == 3  # synthmer: classification + mer2023; synthmer_generate: classification


def test_ablation_robustness_noise_calibration_fairness(suite_run: EvalOutcome) -> None:
    assert suite_run.results is not None
    syn = suite_run.results["tasks"]["synthmer"]
    abl = syn["ablation"]["conditions"]
    assert list(abl) == ["A", "V", "T", "A+V", "A+T", "V+T", "A+V+T"]
    assert abl["A"]["modalities"] == ["audio"] and abl["A"]["subtitle"] is False
    assert abl["T"]["modalities"] == [] and abl["T"]["subtitle"] is True
    assert abl["A+V+T"]["modalities"] == ["audio", "face"]
    # the full condition is the base prompt: same prompt id, so the same records and score
    assert syn["conditions"]["ablation:A+V+T"]["prompt_id"] == syn["conditions"]["base"]["prompt_id"]
    assert abl["A+V+T"]["weighted_f1"] == syn["overall"]["weighted_f1"]
    rob = syn["robustness"]
    assert set(rob["flip_rate_vs_base"]) == {"P1", "O_rev", "L_noun"}
    assert set(rob["families"]) == {"P", "O", "L"} and rob["base_score"] == syn["overall"]["weighted_f1"]
    assert rob["overall"]["parse_fail_mean"] == 0.0 and "order_bias" in rob
    assert "happiness" in rob["variants"]["L_noun"]["candidates"]
    for fam in rob["families"].values():
        s = fam["summary"]
        assert s["worst"] <= s["mean"] <= s["best"]
    noise = syn["noise"]["levels"]
    assert list(noise) == ["clean", "snr5_blur4"] and noise["snr5_blur4"]["noise"]["snr_db"] == 5
    cal = syn["calibration"]
    assert 0 <= cal["ece"] <= 1 and 0 <= cal["brier"] <= 2 and cal["n"] == 8
    gender = syn["fairness"]["gender"]
    vals = [g["value"] for g in gender["per_group"].values()]
    assert gender["gap"] == pytest.approx(max(vals) - min(vals))
    assert sum(g["n"] for g in gender["per_group"].values()) == 8


def test_generated_answers_count_unparsed(suite_run: EvalOutcome) -> None:
    out, res = suite_run.out_dir, suite_run.results
    assert res is not None
    gen = res["tasks"]["synthmer_generate"]
    rows = [json.loads(line) for line in (out / gen["files"]["predictions"]).read_text().splitlines()]
    expected = sum(read_label(r["text"], label_space("mer6")).label is None for r in rows)
    assert gen["answers"]["n_unparsed"] == expected == gen["metrics"]["classification"]["n_unparsed"]
    sub = _read_csv(out / gen["files"]["submission"])
    assert sum(r["discrete"] == "" for r in sub) == expected  # unparsed: an empty cell, never a default label
    pub = gen["readings"]["published"]
    assert pub["n"] == 4 and pub["n_unparsed"] == pub["n_forced_neutral"]
    assert pub["n_unparsed"] + pub["n_last_word"] == 4
    assert "original_rule_weighted_f1" in pub
    ex = res["tasks"]["synthmer_explain"]
    assert ex["judge_free"]["text_similarity"]["n"] == 3 and "skipped" in ex["judge"]


def test_rerun_reuses_every_record(suite_run: EvalOutcome, work: Path, synthmer_small: Path, tiny_fast: Any) -> None:
    again = run_eval(_opts(work, synthmer_small, "main", suite=str(work / "small.yaml")), system=tiny_fast)
    assert again.results is not None and suite_run.results is not None
    assert again.stats == {"computed": 0, "reused": suite_run.stats["total"], "total": suite_run.stats["total"]}
    for name, task in suite_run.results["tasks"].items():
        assert again.results["tasks"][name]["metrics"] == task["metrics"]


def test_two_shards_and_merge_equal_one_run(work: Path, synthmer_small: Path, tiny_fast: Any) -> None:
    suite = work / "shard_suite.yaml"
    suite.write_text("name: shards\ntasks:\n  - {task: synthmer}\n  - {task: synthmer_generate, limit: 6}\n")

    def opts(out: str, **kw: Any) -> EvalOptions:
        return _opts(work, synthmer_small, out, suite=str(suite), batch_size=4, **kw)

    whole = run_eval(opts("whole"), system=tiny_fast)
    assert whole.results is not None and whole.stats["computed"] == whole.stats["total"] == 18
    first = run_eval(opts("sharded", shard=(0, 2)), system=tiny_fast)
    assert not first.complete and first.missing > 0 and first.stats["computed"] == 8 + 4  # blocks 0, 2 / 0
    with pytest.raises(ValueError, match="record\\(s\\) are missing"):
        run_eval(opts("sharded", merge=True))
    second = run_eval(opts("sharded", shard=(1, 2)), system=tiny_fast)
    assert second.complete and first.stats["computed"] + second.stats["computed"] == 18
    merged = run_eval(opts("sharded", merge=True))
    assert merged.results is not None and merged.stats == {"computed": 0, "reused": 18, "total": 18}
    recs = (work / "sharded" / "records").glob("shard-*-of-2.jsonl")
    assert sorted(p.name for p in recs) == ["shard-0-of-2.jsonl", "shard-1-of-2.jsonl"]
    for name in ("synthmer", "synthmer_generate"):
        a, b = whole.results["tasks"][name], merged.results["tasks"][name]
        assert a["metrics"] == b["metrics"] and a["overall"] == b["overall"]
    for sub in ("submissions/synthmer.csv", "predictions/synthmer.jsonl", "predictions/synthmer_generate.jsonl"):
        assert (work / "whole" / sub).read_text() == (work / "sharded" / sub).read_text()


def test_checkpoint_folder_has_its_own_identity(
    suite_run: EvalOutcome, work: Path, synthmer_small: Path, fresh_tiny_fast: Any
) -> None:
    from emollm.model.checkpoint import save_checkpoint
    from emollm.model.resolve import load_system

    ckpt = save_checkpoint(fresh_tiny_fast, work / "ckpt" / "final")
    info = checkpoint_info(str(ckpt))
    assert (
        info.kind == "checkpoint" and info.name == "ckpt_final" and info.identity.startswith("checkpoint:ckpt_final@")
    )
    assert info.identity != checkpoint_info("tiny-fast").identity
    # records of the preset in the same folder are not reused for the checkpoint
    shutil.copytree(suite_run.out_dir / "records", work / "ck" / "records")
    opts = _opts(work, synthmer_small, "ck", checkpoint=str(ckpt), tasks=["synthmer"], limit=4, modalities="auto")
    res = run_eval(opts, system=load_system(ckpt))
    assert res.stats == {"computed": 4, "reused": 0, "total": 4} and res.results is not None
    syn = res.results["tasks"]["synthmer"]
    assert syn["conditions"]["base"]["modalities"] == ["audio", "face"]  # a checkpoint uses its modalities
    assert res.results["checkpoint"]["identity"] == info.identity


def test_preset_zero_shot_reads_the_subtitle_only(work: Path, synthmer_small: Path, tiny_fast: Any) -> None:
    opts = _opts(work, synthmer_small, "zero", tasks=["synthmer"], limit=3, modalities="auto")
    res = run_eval(opts, system=tiny_fast)
    assert res.results is not None
    base = res.results["tasks"]["synthmer"]["conditions"]["base"]
    assert base["modalities"] == [] and base["subtitle"] is True
    rows = (res.out_dir / "predictions" / "synthmer.jsonl").read_text().splitlines()
    assert all(json.loads(r)["modalities"] == [] for r in rows)


class _JudgeServer:
    """A loopback OpenAI-compatible server: emotion words for summaries, 'Score: 7' for everything else."""

    def __init__(self) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.prompts: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][0]["content"]
                outer.prompts.append(prompt)
                reply = "sad" if "Output:" in prompt else "'Score': 7; 'Reason': overlap"
                data = json.dumps({"choices": [{"message": {"role": "assistant", "content": reply}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


def test_explanations_with_an_llm_judge(
    suite_run: EvalOutcome, work: Path, synthmer_small: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emollm.evaluation.judge import ENV_BASE_URL

    server = _JudgeServer()
    server.thread.start()
    monkeypatch.setenv(ENV_BASE_URL, server.url)
    try:
        judge = work / "judge.yaml"
        judge.write_text("backend: openai\nmodel: judge-test\nlanguage: en\nmax_retries: 0\n")
        shutil.copytree(suite_run.out_dir / "records", work / "judged" / "records")
        opts = _opts(work, synthmer_small, "judged", tasks=["synthmer_explain"], limit=3, judge=str(judge))
        res = run_eval(opts)  # the explanations are recorded already: no model is loaded
        assert res.stats["computed"] == 0 and res.results is not None
        j = res.results["tasks"]["synthmer_explain"]["judge"]
        assert j["clue_overlap"]["mean"] == 7.0 and j["clue_overlap"]["n_scored"] == 3
        assert j["label_overlap"]["mean"] == 7.0 and j["clue_overlap"]["judge_id"].startswith("openai:judge-test")
        assert len(server.prompts) == 3 + 3 * 3  # clue: 1 call per sample; label: 2 summaries + 1 score
        assert "judge clue_overlap" in (work / "judged" / "report.md").read_text()
        again = run_eval(opts)  # replies are cached in <out>/judge_cache: the judge is not asked again
        assert again.results is not None and len(server.prompts) == 12
        assert again.results["tasks"]["synthmer_explain"]["judge"]["clue_overlap"]["cache_hits"] == 3
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()


def test_ablation_only_runs_the_named_subsets(work: Path, synthmer_small: Path, tiny_fast: Any) -> None:
    suite = work / "only.yaml"
    suite.write_text("name: only\ntasks:\n  - {task: synthmer, limit: 4, ablation: {only: [T, V+A]}}\n")
    out = run_eval(_opts(work, synthmer_small, "only", suite=str(suite)), system=tiny_fast)
    assert out.results is not None
    abl = out.results["tasks"]["synthmer"]["ablation"]["conditions"]
    assert list(abl) == ["T", "A+V"]  # canonical names, canonical order
    bad = work / "bad_only.yaml"
    bad.write_text("name: bad\ntasks:\n  - {task: synthmer, limit: 4, ablation: {only: [A+X]}}\n")
    with pytest.raises(ValueError, match=r"ablation.only names \['A\+X'\].*'A\+V\+T'"):
        run_eval(_opts(work, synthmer_small, "bad_only", suite=str(bad)), system=tiny_fast)
