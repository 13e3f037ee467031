"""AffectGPT's producer step through a real loopback endpoint, and several prediction files scored at once.

pytest tests/evaluation/test_extract_multirun.py
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest
import typer
from chat_stub import ChatStub
from typer.testing import CliRunner

from emollm.evaluation.commands import register
from emollm.evaluation.extract import Extractor, ExtractorConfig, postprocess_qwen
from emollm.evaluation.judge import ENV_BASE_URL
from emollm.evaluation.multirun import SELECTED_ON_TEST, score_files


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


# a stand-in for Qwen2.5 behind vLLM: answers the two published prompts from the text after the last "Input:"
WORDS = {"smiles": "[happy, relieved]", "shouts": "[angry]", "shrugs": "[]"}
SENT = {"[happy, relieved]": "positive", "[angry]": "negative", "[]": "neutral"}


def _qwen(messages: list[dict]) -> str:
    assert len(messages) == 1 and messages[0]["role"] == "user"  # one user message, no system message
    prompt = messages[0]["content"]
    tail = prompt.rsplit("Input:", 1)[1]
    if "identify the emotional states of the main character" in prompt:
        return "Output: " + next((v for k, v in WORDS.items() if k in tail), "[confused")  # unbalanced on purpose
    assert "most likely sentiment" in prompt
    return next((v for k, v in SENT.items() if k in tail), "mixed") + "\n"


def test_postprocess_qwen() -> None:
    assert postprocess_qwen("  Output: [happy,\nsad]") == "[happy,sad]"
    assert postprocess_qwen("输出：positive") == "positive"


def test_extractor_published_sampling_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = ExtractorConfig(backend="openai", model="Qwen2.5-7B-Instruct", cache_dir=str(tmp_path / "c"), seed=3)
    with ChatStub(_qwen) as stub:
        monkeypatch.setenv(ENV_BASE_URL, stub.url)
        with Extractor(cfg) as ex:
            assert ex.openset("a", "She smiles warmly.") == ["happy", "relieved"]
            assert ex.openset("b", "He shouts.") == ["angry"]
            assert ex.openset("c", "He shrugs.") == []
            assert ex.sentiment("a", ["happy", "relieved"]) == "positive"
            assert ex.sentiment("c", []) == "neutral"
            assert ex.sentiment("x", ["confused"]) is None  # 'mixed' is none of the three
            d = ex.describe()
        body = stub.requests[0]
        assert (body["temperature"], body["top_p"], body["repetition_penalty"]) == (0.7, 0.8, 1.05)
        assert body["max_tokens"] == 512 and body["seed"] == 3 and len(stub.requests) == 6
    assert d["official"] and d["calls"] == 6 and "affectgpt" in d["id"] and "seed=3" in d["id"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", h) for h in d["prompts"].values())
    # the server is gone: the same questions are answered from the cache
    with Extractor(cfg) as ex:
        assert ex.openset("a", "She smiles warmly.") == ["happy", "relieved"]
        assert ex.sentiment("a", ["happy", "relieved"]) == "positive"
        assert ex.describe()["calls"] == 0 and ex.describe()["cache_hits"] == 2


def test_extractor_greedy_goes_through_the_judge_backend(tmp_path: Path) -> None:
    with ChatStub(_qwen) as stub:
        cfg = ExtractorConfig(backend="openai", model="m", preset="greedy", base_url=stub.url)
        with Extractor(cfg) as ex:
            assert ex.openset("a", "She smiles.") == ["happy", "relieved"]
            assert not ex.describe()["official"] and "greedy" in ex.describe()["id"]
        assert stub.requests[0]["temperature"] == 0 and "top_p" not in stub.requests[0]


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_score_cli_with_extractor_sentiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gold = _csv(tmp_path / "gold.csv", ["name", "valence"], [["a", 1.5], ["b", -2.0], ["c", -0.5], ["d", 0.0]])
    pred = _csv(
        tmp_path / "answers.csv",
        ["name", "text"],
        [["a", "She smiles."], ["b", "He shouts."], ["c", "He shrugs."], ["d", "She smiles."]],
    )
    ycfg = tmp_path / "extractor.yaml"
    ycfg.write_text("backend: openai\nmodel: Qwen2.5-7B-Instruct\nmax_retries: 0\n")
    with ChatStub(_qwen) as stub:
        monkeypatch.setenv(ENV_BASE_URL, stub.url)
        out = tmp_path / "res" / "score.json"
        r = CliRunner().invoke(
            _app(),
            [
                "score",
                "--metric",
                "sentiment",
                "--gold",
                str(gold),
                "--pred",
                str(pred),
                "--extractor",
                str(ycfg),
                "--out",
                str(out),
            ],
        )
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    # d (gold 0) is left out; a positive ok, b negative ok, c neutral -> counts as negative (published): all 3 right
    assert res["score"] == 1.0 and res["n"] == 3 and res["n_neutral_pred"] == 1
    assert res["extractor"]["official"] is True and res["extractor"]["calls"] == 8
    extracted = (tmp_path / "res" / "extracted" / "answers" / "answers.extracted.csv").read_text().splitlines()
    assert extracted == ["name,discrete", "a,positive", "b,negative", "c,neutral", "d,positive"]


def test_score_files_mean_std_and_max_selected_on_test(tmp_path: Path) -> None:
    gold = _csv(tmp_path / "g.csv", ["name", "discrete"], [["a", "happy"], ["b", "sad"], ["c", "angry"], ["d", "sad"]])
    p = {
        "e30": ["happy", "sad", "sad", "sad"],  # 3/4
        "e35": ["happy", "happy", "happy", "happy"],  # 1/4
        "e40": ["happy", "sad", "angry", "sad"],  # 4/4
    }
    preds = [
        (k, _csv(tmp_path / f"{k}.csv", ["name", "discrete"], [[n, lab] for n, lab in zip("abcd", v, strict=True)]))
        for k, v in p.items()
    ]
    r = score_files("classification", gold, preds, label_space="mer6", bootstrap=20)
    acc = {x["run"]: x["result"]["accuracy"] for x in r["runs"]}
    assert acc == {"e30": 0.75, "e35": 0.25, "e40": 1.0}
    # main score = WAF (F1 = 2 tp / (support + predicted), weighted by support):
    # e30: happy 1, sad 2*2/(2+3) = 0.8, angry 0 -> (1 + 2*0.8 + 0)/4; e35: happy 2*1/(1+4) = 0.4 -> 0.4/4
    waf = {"e30": (1 + 2 * 0.8 + 0) / 4, "e35": 0.4 / 4, "e40": 1.0}
    assert {x["run"]: x["score"] for x in r["runs"]} == pytest.approx(waf)
    mean = sum(waf.values()) / 3
    std = (sum((v - mean) ** 2 for v in waf.values()) / 2) ** 0.5
    assert r["mean"] == pytest.approx(mean) and r["std"] == pytest.approx(std)
    assert r["max"] == {"score": 1.0, "run": "e40", "label": SELECTED_ON_TEST} and r["min"]["run"] == "e35"
    assert all(x["bootstrap"]["n_boot"] == 20 for x in r["runs"])


def test_score_cli_repeated_pred_and_markdown(tmp_path: Path) -> None:
    gold = _csv(tmp_path / "g.csv", ["name", "discrete"], [["a", "happy"], ["b", "sad"]])
    a = _csv(tmp_path / "a.csv", ["name", "discrete"], [["a", "happy"], ["b", "sad"]])
    b = _csv(tmp_path / "b.csv", ["name", "discrete"], [["a", "sad"], ["b", "sad"]])
    md = tmp_path / "runs.md"
    r = CliRunner().invoke(
        _app(),
        [
            "score",
            "--metric",
            "classification",
            "--gold",
            str(gold),
            "--pred",
            f"seed0={a}",
            "--pred",
            f"seed1={b}",
            "--markdown",
            str(md),
        ],
    )
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert [x["run"] for x in res["runs"]] == ["seed0", "seed1"] and res["max"]["run"] == "seed0"
    text = md.read_text()
    assert "| seed0 | seed1 |" in text and "selected on the test set" in text
    bad = CliRunner().invoke(_app(), ["score", "--gold", str(gold), "--pred", str(a), "--pred", str(b)])
    assert bad.exit_code == 2 and "--metric and --gold are required" in bad.output


@pytest.fixture(scope="module")
def tiny_llm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from emollm.model.tiny import tiny_llama, tiny_tokenizer

    folder = tmp_path_factory.mktemp("tiny-extractor")
    tok = tiny_tokenizer("bpe-chatml", 512)
    tiny_llama(32, 64, 2, 4, 2, len(tok), seed=0).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_local_extractor_sampling_is_seeded_and_cached(tiny_llm_folder: Path, tmp_path: Path) -> None:
    def run(seed: int, cache: Path | None) -> tuple[list[list[str]], dict]:
        cfg = ExtractorConfig(
            backend="local",
            model=str(tiny_llm_folder),
            seed=seed,
            max_new_tokens=8,
            device="cpu",
            cache_dir=str(cache) if cache else None,
        )
        with Extractor(cfg) as ex:
            words = [ex.openset(sid, "She smiles warmly.") for sid in ("a", "b")]
            return words, ex.describe()

    w1, d1 = run(7, tmp_path / "c")
    w2, _ = run(7, None)  # a fresh model and generator, no cache: the same seed samples the same replies
    assert w1 == w2 and d1["calls"] == 2 and d1["id"].startswith("local:tiny-extractor")
    assert "affectgpt" in d1["id"] and "seed=7" in d1["id"] and d1["official"]
    w3, d3 = run(7, tmp_path / "c")
    assert w3 == w1 and d3["calls"] == 0 and d3["cache_hits"] == 2


def test_aggregate_leaves_undefined_runs_out() -> None:
    from emollm.evaluation.multirun import aggregate, render_markdown

    a = aggregate({"e30": 0.5, "e35": None, "e40": 0.7})
    assert a["mean"] == pytest.approx(0.6) and a["undefined_runs"] == ["e35"] and a["max"]["run"] == "e40"
    none = aggregate({"e30": None})
    assert none["mean"] is None and none["max"] is None
    md = render_markdown(
        {"runs": ["e30"], "tasks": [{"task": "t", "metric": "m", "runs": [{"run": "e30", "score": None}], **none}]}
    )
    assert "| t | m | – | – | – |" in md
