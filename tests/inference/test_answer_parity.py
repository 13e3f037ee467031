"""One answer reader: the same model output gives the same emotion words in predict, serve, eval and score.

The tiny model cannot be steered to write a given sentence, so its tokenizer's ``decode`` returns
scripted answers for generated tokens (everything else, features, prompts, generation, records, the
HTTP server and the CSV round trip, is real). Each path must read every answer into the hand-checked
words below; the eval path is checked on a real eval run in ``tests/evaluation/test_runner_benchmarks.py``.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from emollm.answers import read_openset
from emollm.evaluation.readers import read_openset_csv
from emollm.evaluation.scoring import _openset_cell
from emollm.inference.predict import PredictOptions, load_records, run_predict, write_submission

ANSWERS: dict[str, list[str]] = {
    "The character's emotional state is happy, anxious and tired.": ["happy", "anxious", "tired"],
    "['Sad', 'angry']": ["sad", "angry"],
    "She looks angry at first and then rather sad when he leaves the room.": ["angry", "sad"],  # label words
    "worried，calm": ["worried", "calm"],
    "Nothing to see here at all, really nothing.": [],
}


@pytest.fixture
def scripted(predictor, monkeypatch):
    """``processor.decode`` of generated answers returns the scripted texts in turn."""
    proc = predictor.system.processor
    queue: list[str] = []
    real = proc.decode

    def decode(ids, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        return queue.pop(0) if queue else real(ids, *args, **kwargs)

    monkeypatch.setattr(proc, "decode", decode)
    return queue


def test_same_words_in_predict_serve_and_score(predictor, scripted, test_samples, tmp_path: Path) -> None:
    from emollm.inference.server import BackgroundServer, ServeSettings, create_app

    man, samples = test_samples
    texts = list(ANSWERS)
    chosen = samples[: len(texts)]
    space = predictor.system.labels
    for t, words in ANSWERS.items():  # the reader itself, clean mode with the label words
        assert read_openset(t, "clean", space.mentions) == words, t

    # predict: one batch, one decode per sample (the order inside a batch may differ from the samples')
    scripted.extend(texts)
    opts = PredictOptions(task="openset", batch_size=len(texts), max_new_tokens=4)
    run_predict(predictor, chosen, man.root, tmp_path / "pred", opts, progress=False)
    assert not scripted
    recs = load_records(tmp_path / "pred")
    assert sorted(r["openset_text"] for r in recs.values()) == sorted(texts)
    for r in recs.values():
        assert r["openset"] == ANSWERS[r["openset_text"]], r["openset_text"]

    # score: the submission CSV read back by every list style gives the same words
    sub = write_submission(tmp_path / "pred", opts)
    for style in ("affectgpt", "mer2024", "clean"):
        table = read_openset_csv(sub, style=style)
        for name, r in recs.items():
            assert [w.lower() for w in table.items[name]] == r["openset"], (style, name)
    # eval writes its submission cells with _openset_cell: the same round trip
    for words in ANSWERS.values():
        cell = _openset_cell(words)
        assert read_openset(cell, "published") == words and read_openset(cell, "clean") == words

    # serve: a real request over loopback; the reply's emollm.openset is the same reading of its text
    app = create_app(predictor, ServeSettings(model_id="parity", max_new_tokens=4))
    with BackgroundServer(app) as url, httpx.Client(base_url=url, timeout=120) as client:
        for t in texts:
            scripted.append(t)
            body = {
                "model": "parity",
                "messages": [{"role": "user", "content": "How does she feel?"}],
                "max_tokens": 4,
                "emollm": {"task": "openset"},
            }
            r = client.post("/v1/chat/completions", json=body)
            assert r.status_code == 200, r.text
            j = r.json()
            assert j["choices"][0]["message"]["content"] == t
            assert j["emollm"]["openset"] == ANSWERS[t], t
