"""Chat, predict, serve and eval-style Predictor calls give the same answer for the same clip (greedy)."""

from __future__ import annotations

import base64

import httpx
import pytest

from emollm.inference.chat import ChatSession
from emollm.inference.predict import PredictOptions, load_records, run_predict

N_NEW = 24


@pytest.fixture(scope="module")
def eval_answers(predictor, test_samples):
    """What evaluation computes: batched classify + batched reason generation over the test split."""
    man, samples = test_samples
    labels = predictor.classify(samples, man.root)
    texts = predictor.generate(samples, man.root, task="reason", max_new_tokens=N_NEW)
    return {s.id: (r, t) for s, r, t in zip(samples, labels, texts, strict=True)}


def test_predict_matches_eval(predictor, test_samples, eval_answers, tmp_path) -> None:
    man, samples = test_samples
    run_predict(
        predictor,
        samples,
        man.root,
        tmp_path,
        PredictOptions(explain=True, max_new_tokens=N_NEW, batch_size=5),
        progress=False,
    )
    recs = load_records(tmp_path)
    assert set(recs) == {s.id for s in samples}
    for sid, (res, text) in eval_answers.items():
        assert recs[sid]["discrete"] == res.label
        assert recs[sid]["probs"] == pytest.approx(res.probs, abs=1e-5)
        assert recs[sid]["explanation"] == text


def test_chat_matches_eval(predictor, test_samples, eval_answers) -> None:
    man, samples = test_samples
    texts = set()
    for s in samples[:6]:
        res, text = eval_answers[s.id]
        # as a user would: a bare video path plus the subtitle
        chat = ChatSession(predictor, max_new_tokens=N_NEW)
        chat.attach("video", man.media_path(s, "video"))
        chat.set_subtitle(s.subtitle)
        r = chat.ask(task="label")
        assert r.label == r.text == res.label
        assert r.probs == pytest.approx(res.probs, abs=1e-5)
        # the manifest sample itself, streamed
        chat = ChatSession(predictor, max_new_tokens=N_NEW)
        chat.attach_sample(s, man.root)
        chunks: list[str] = []
        r = chat.ask(task="explain", on_text=chunks.append)
        assert r.text == text == "".join(chunks)
        texts.add(text)
    assert len(texts) > 1  # answers depend on the clip


def test_serve_matches_eval(server, test_samples, eval_answers) -> None:
    url, _ = server
    man, samples = test_samples
    with httpx.Client(base_url=url, timeout=120) as c:
        for s in samples[:3]:
            res, text = eval_answers[s.id]
            data = base64.b64encode(man.media_path(s, "video").read_bytes()).decode()
            content = [{"type": "video_url", "video_url": {"url": f"data:video/mp4;base64,{data}"}}]
            body = {"model": "tiny-test", "messages": [{"role": "user", "content": content}], "max_tokens": N_NEW}
            # eval decodes plainly greedy; the server's anti-loop defaults are switched off as
            # emollm.inference.remote does for eval through an endpoint
            body.update(repetition_penalty=1.0, no_repeat_ngram_size=0)
            lab = c.post("/v1/chat/completions", json={**body, "emollm": {"task": "label", "subtitle": s.subtitle}})
            assert lab.status_code == 200, lab.text
            assert lab.json()["choices"][0]["message"]["content"] == res.label
            assert lab.json()["emollm"]["probs"] == pytest.approx(res.probs, abs=1e-5)
            gen = c.post("/v1/chat/completions", json={**body, "emollm": {"task": "explain", "subtitle": s.subtitle}})
            assert gen.status_code == 200, gen.text
            assert gen.json()["choices"][0]["message"]["content"] == text
