"""Decoding options in chat and predict: the defaults keep a greedy answer from looping, the flags reach
``generate``, caller stopping criteria and logits processors pass through ``ChatSession.ask``.

    python -m pytest -q tests/inference/test_chat_generation.py
"""

from __future__ import annotations

import json

import pytest
import torch
from transformers import LogitsProcessor, LogitsProcessorList, StoppingCriteria, StoppingCriteriaList
from typer.testing import CliRunner

from emollm.inference.chat import ChatSession
from emollm.inference.commands import INTERRUPT, run_repl
from emollm.inference.generation import GenerationOptions


class _Record(StoppingCriteria):
    """Keeps the generated ids (generation from embeddings: input_ids are the new tokens only)."""

    def __init__(self) -> None:
        self.ids: list[int] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: object) -> torch.Tensor:
        self.ids = input_ids[0].tolist()
        return torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)


class _Count(LogitsProcessor):
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return scores


class _LoopBias(LogitsProcessor):
    """A strong pull towards the token of 4 steps back: greedy decoding then loops with period 4, as a
    small model's explanations do ("They're not happy, they're not happy..."). The seeded random tiny
    model does not loop on its own, so the test gives it the tendency."""

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if input_ids.shape[1] >= 4:
            scores = scores.clone()
            scores[torch.arange(scores.shape[0]), input_ids[:, -4]] += 100.0
        return scores


def _repeated_4grams(ids: list[int]) -> int:
    grams = [tuple(ids[i : i + 4]) for i in range(len(ids) - 3)]
    return len(grams) - len(set(grams))


def _answer_ids(predictor, *processors: LogitsProcessor, **gen) -> tuple[list[int], int]:
    chat = ChatSession(predictor)
    chat.set_subtitle("I can't believe you did that to me.")
    rec, count = _Record(), _Count()
    r = chat.ask(
        stopping_criteria=StoppingCriteriaList([rec]),
        logits_processor=LogitsProcessorList([*processors, count]),
        **gen,
    )
    assert r.completion_tokens == len(rec.ids) == count.calls  # both passed through, every step
    return rec.ids, count.calls


def test_default_options_keep_a_greedy_answer_from_looping(predictor) -> None:
    plain, _ = _answer_ids(predictor, _LoopBias(), max_new_tokens=64)
    assert _repeated_4grams(plain) > 40  # plain greedy decoding loops
    ids, _ = _answer_ids(predictor, _LoopBias(), **GenerationOptions(max_new_tokens=64).generate_kwargs())
    assert len(ids) == 64 and _repeated_4grams(ids) == 0
    free, _ = _answer_ids(predictor, **GenerationOptions(max_new_tokens=64).generate_kwargs())
    assert _repeated_4grams(free) == 0


def test_stopping_criteria_pass_through_with_cancel(predictor) -> None:
    import threading

    chat = ChatSession(predictor)
    rec = _Record()
    r = chat.ask("Why?", cancel=threading.Event(), stopping_criteria=StoppingCriteriaList([rec]), max_new_tokens=5)
    assert len(rec.ids) == r.completion_tokens == 5 and r.finish_reason == "length"


def test_repl_set_save_and_ctrl_c_at_the_prompt(predictor, tmp_path) -> None:
    out: list[str] = []
    chat = ChatSession(predictor, max_new_tokens=4)
    lines = [
        "/set repetition_penalty 1.3",
        "/set seed 7",
        "/set temperature 3",
        "/set colour blue",
        "/set max_tokens 3",
        "why?",
        INTERRUPT,
        "/set",
        f"/save {tmp_path / 'no' / 'such' / 'x.json'}",
        f"/save {tmp_path / 'c.json'}",
        INTERRUPT,
        INTERRUPT,
        "never read",
    ]
    assert run_repl(chat, lines, out.append, spec="tiny") == 1
    text = "".join(out)
    assert "[repetition_penalty: 1.3]" in text and "[seed: 7]" in text
    assert "error: /set temperature 3: Input should be less than or equal to 2" in text
    assert "error: /set colour: unknown setting" in text
    assert text.count("[Ctrl-C again, /bye or Ctrl-D to leave]") == 2  # the first of each pair
    assert "error: /save " in text and "does not exist" in text
    saved = json.loads((tmp_path / "c.json").read_text())
    assert saved["generation"]["repetition_penalty"] == 1.3 and saved["generation"]["max_new_tokens"] == 3
    assert saved["generation"]["seed"] == 7 and len(saved["turns"]) == 1 and saved["model"] == "tiny"
    assert chat.turns[0].answer == saved["turns"][0]["answer"]


def test_cli_flags_reach_chat_and_predict(tiny_ckpt, feature_cache, test_samples, tmp_path) -> None:
    from emollm.cli import app

    man, samples = test_samples
    common = ["--checkpoint", str(tiny_ckpt), "--cache-dir", str(feature_cache), "--device", "cpu"]
    res = CliRunner().invoke(app, ["chat", *common, "--top-p", "0", "-p", "hi"])
    assert res.exit_code != 0 and "--top-p 0.0: Input should be greater than 0" in str(res.exception)
    endpoint = ["--backend", "openai", "--base-url", "http://127.0.0.1:9/v1", "--model", "m"]
    res = CliRunner().invoke(app, ["predict", *endpoint, "--folder", str(tmp_path), "--out", "x", "--temperature", "1"])
    assert "decoding flags (--temperature, --repetition-penalty...) apply to --backend local" in str(res.exception)
    out = tmp_path / "pred"
    args = ["predict", *common, "--manifest", str(man.root), "--split", "test", "--out", str(out), "--quiet"]
    args += ["--explain", "--max-new-tokens", "12", "--temperature", "0.8", "--top-k", "5", "--seed", "3"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert settings["max_new_tokens"] == 12
    g = settings["generation"]
    assert (g["temperature"], g["top_k"], g["seed"], g["repetition_penalty"], g["no_repeat_ngram"]) == (
        0.8,
        5,
        3,
        1.15,
        4,
    )
    first = [json.loads(x) for x in next(out.glob("records/*.jsonl")).read_text().splitlines()]
    assert len(first) == len(samples) and all(r["explanation"] for r in first)
    again = tmp_path / "again"  # the same seed samples the same explanations
    res = CliRunner().invoke(app, [*args[: args.index("--out") + 1], str(again), *args[args.index("--out") + 2 :]])
    assert res.exit_code == 0, res.output
    second = [json.loads(x) for x in next(again.glob("records/*.jsonl")).read_text().splitlines()]
    assert [r["explanation"] for r in first] == [r["explanation"] for r in second]


@pytest.mark.parametrize("flag", ["--repetition-penalty", "--no-repeat-ngram", "--temperature"])
def test_flags_are_listed_once_for_both_commands(flag) -> None:
    from emollm.cli import app

    for cmd in ("chat", "predict"):
        res = CliRunner().invoke(app, [cmd, "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0 and res.output.count(flag) == 1
