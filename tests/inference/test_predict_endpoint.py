"""``emollm predict --backend openai`` on loopback against ``emollm serve``: the same labels as asking the
model in-process by generation, read by the one answer reader; unparsed answers stay unparsed; label
probabilities from ``top_logprobs`` (``label_probs``) on hand-made logprob lists."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from emollm.answers import read_label
from emollm.cli import app
from emollm.inference.remote import label_probs
from emollm.io import read_jsonl

LABELS = ["neutral", "angry", "happy", "sad", "worried", "surprise"]


def _pos(token: str, *alts: tuple[str, float]) -> dict:
    return {"token": token, "logprob": dict(alts).get(token, -1.0), "top": [list(a) for a in alts]}


def test_label_probs_from_the_first_answer_token() -> None:
    lp = [_pos(" happy", (" happy", math.log(0.6)), (" sad", math.log(0.2)), (" the", math.log(0.1)))]
    p = label_probs(lp, LABELS)
    assert p is not None and p["happy"] == pytest.approx(0.75) and p["sad"] == pytest.approx(0.25)
    assert p["angry"] == 0.0 and sum(p.values()) == pytest.approx(1.0)
    # leading space / punctuation positions are skipped; word pieces count for the one label they start
    lp = [_pos(" ", (" ", 0.0)), _pos("**", ("**", 0.0)), _pos("Wor", ("Wor", math.log(0.5)), ("ang", math.log(0.5)))]
    p = label_probs(lp, LABELS)
    assert p == pytest.approx({**dict.fromkeys(LABELS, 0.0), "worried": 0.5, "angry": 0.5})
    # "s" starts sad and surprise: it counts only as the generated token, for the label the reader read
    lp = [_pos("s", ("s", math.log(0.4)), ("happy", math.log(0.4)))]
    p = label_probs(lp, LABELS, answered="surprise")
    assert p is not None and p["surprise"] == pytest.approx(0.5) and p["sad"] == 0.0
    assert label_probs(lp, LABELS, answered=None) == pytest.approx({**dict.fromkeys(LABELS, 0.0), "happy": 1.0})
    # nothing that names a label, or no logprobs at all: no probabilities (never a made-up distribution)
    assert label_probs([_pos("The", ("The", -0.1), ("I", -2.0))], LABELS) is None
    assert label_probs(None, LABELS) is None and label_probs([], LABELS) is None


def test_predict_against_an_endpoint_matches_in_process_generation(
    predictor, synthmer_small: Path, tmp_path: Path
) -> None:
    from emollm.data.sample import Manifest
    from emollm.inference.server import BackgroundServer, ServeSettings, create_app

    man = Manifest.load(synthmer_small)
    samples = man.split("test")
    task = predictor.contract.chat_task("label")
    local = predictor.generate(samples, man.root, task=task, max_new_tokens=32)
    want = {s.id: read_label(t, predictor.labels).label for s, t in zip(samples, local, strict=True)}

    out = tmp_path / "pred"
    app_ = create_app(predictor, ServeSettings(model_id="tiny-test", max_new_tokens=32))
    with BackgroundServer(app_) as url:
        args = [
            "predict", "--backend", "openai", "--base-url", f"{url}/v1", "--model", "tiny-test",
            "--profile", "emollm", "--manifest", str(synthmer_small), "--split", "test", "--out", str(out),
            "--quiet",
        ]  # fmt: skip
        res = CliRunner().invoke(app, args)
        assert res.exit_code == 0, res.output
    recs = {r["name"]: r for f in sorted((out / "records").glob("*.jsonl")) for r in read_jsonl(f)}
    assert {n: r["discrete"] for n, r in recs.items()} == want
    assert all(r["answer_text"] == t for r, t in zip((recs[s.id] for s in samples), local, strict=True))
    rows = {r["name"]: r for r in csv.DictReader((out / "submission.csv").open())}
    assert {n: (r["discrete"] or None) for n, r in rows.items()} == want  # unparsed: an empty cell
    n_unparsed = sum(v is None for v in want.values())
    if n_unparsed:
        assert "name no label" in res.output
    used = json.loads((out / "endpoint_usage.json").read_text())
    assert used["requests_sent"] == len(samples)
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert settings["checkpoint"].startswith("endpoint:tiny-test@")
