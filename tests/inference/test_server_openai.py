"""The server through the official ``openai`` Python SDK on a real loopback uvicorn: long histories,
paginated files, model retrieval, logprobs, stop, JSON answers, refused tools and unknown fields,
strict validation, cancellation on disconnect and the compute-time bound (issue 13 items 1-4)."""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf

MODEL = "tiny-test"


def _wav_b64(seconds: float = 0.5, freq: float = 8.0) -> str:
    buf = io.BytesIO()
    n = int(16000 * seconds)
    sf.write(buf, (0.2 * np.sin(np.arange(n) / freq)).astype(np.float32), 16000, format="WAV")
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture(scope="module")
def sdk(server) -> openai.OpenAI:
    url, _ = server
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def roomy(tiny_ckpt: Path, feature_cache: Path) -> Iterator[tuple[str, object]]:
    """A server that accepts long histories and long answers (to see them fitted, cancelled, bounded)."""
    from emollm.inference.chat import open_predictor
    from emollm.inference.server import BackgroundServer, ServeSettings, create_app

    pred = open_predictor(tiny_ckpt, feature_cache, device="cpu")
    app = create_app(pred, ServeSettings(model_id=MODEL, max_new_tokens=1500, max_messages=5000))
    with BackgroundServer(app) as url:
        yield url, app


def _history(n_messages: int) -> list[dict]:
    msgs: list[dict] = []
    for i in range(n_messages // 2):
        msgs.append({"role": "user", "content": f"question {i}: how does the person feel?"})
        msgs.append({"role": "assistant", "content": f"answer {i}: calm and neutral"})
    msgs.append({"role": "user", "content": "And now?"})
    return msgs


def _wait_idle(url: str, app) -> dict:
    for _ in range(600):
        h = httpx.get(url + "/health").json()
        if h["queue"] == 0:
            return h
        time.sleep(0.05)
    raise AssertionError(f"the model worker never became idle: {h}")


# ------------------------------------------------------------------------------------------ item 1


def test_long_history_is_refused_or_fitted_and_the_server_keeps_serving(sdk, roomy) -> None:
    msgs = _history(2000)
    assert len(msgs) == 2001
    with pytest.raises(openai.BadRequestError) as e:  # the default server caps messages at 1000
        sdk.chat.completions.create(model=MODEL, messages=msgs, max_tokens=4)
    err = e.value.body
    assert err["code"] == "too_many_messages" and "2001 messages" in err["message"] and "1000" in err["message"]

    url, app = roomy
    big = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=120)
    r = big.chat.completions.create(model=MODEL, messages=msgs, max_tokens=4)  # fitted in linear time
    max_length = big.models.retrieve(MODEL).model_extra["emollm"]["max_length"]
    assert 0 < r.usage.prompt_tokens <= max_length
    # the newest turns are kept: the same request with only the recent history gives the same prompt
    recent = big.chat.completions.create(model=MODEL, messages=[msgs[0], msgs[1], *msgs[-81:]], max_tokens=4)
    assert recent.usage.prompt_tokens == r.usage.prompt_tokens
    assert recent.choices[0].message.content == r.choices[0].message.content
    # another request is still served
    ok = sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=3)
    assert ok.choices[0].finish_reason in ("stop", "length")


def test_compute_time_bound_is_a_clear_error(tiny_ckpt: Path, feature_cache: Path) -> None:
    from emollm.inference.chat import open_predictor
    from emollm.inference.server import BackgroundServer, ServeSettings, create_app

    pred = open_predictor(tiny_ckpt, feature_cache, device="cpu")
    app = create_app(pred, ServeSettings(model_id=MODEL, max_request_seconds=1e-6))
    with BackgroundServer(app) as url:
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0)
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model=MODEL, messages=_history(10), max_tokens=8)
        assert e.value.body["code"] == "compute_time_exceeded" and "--max-request-seconds" in e.value.body["message"]
        assert httpx.get(url + "/health").json()["cancelled"] == {"timeout": 1}


def test_generation_stops_when_the_client_disconnects(roomy) -> None:
    url, app = roomy
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Tell me everything."}], "max_tokens": 1500}
    before = dict(app.state.cancelled)
    with httpx.Client(base_url=url, timeout=60) as c:  # streaming: close after the first content chunk
        with c.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as resp:
            for line in resp.iter_lines():
                if line.startswith("data: ") and '"content": ""' not in line:
                    break
    h = _wait_idle(url, app)
    assert h["cancelled"].get("disconnected", 0) == before.get("disconnected", 0) + 1
    with pytest.raises(httpx.ReadTimeout):  # non-streaming: the client gives up while the model works
        httpx.post(url + "/v1/chat/completions", json=body, timeout=0.3)
    h = _wait_idle(url, app)
    assert h["cancelled"].get("disconnected", 0) == before.get("disconnected", 0) + 2
    r = httpx.post(url + "/v1/chat/completions", json={**body, "max_tokens": 4}, timeout=60)
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] <= 4


# ------------------------------------------------------------------------------------------ item 2


def test_files_paginate_and_models_retrieve(sdk, server) -> None:
    url, _ = server
    ids = []
    for i in range(3):
        f = sdk.files.create(
            file=(f"tone{i}.wav", base64.b64decode(_wav_b64(0.3, 6 + i)), "audio/wav"), purpose="user_data"
        )
        ids.append(f.id)
    listed = [f.id for f in sdk.files.list(limit=2)]  # the SDK follows has_more/after to the end
    assert set(ids) <= set(listed) and len(listed) == len(set(listed))
    page = httpx.get(url + "/v1/files", params={"limit": 1}).json()
    assert page["has_more"] is True and len(page["data"]) == 1
    rest = httpx.get(url + "/v1/files", params={"limit": 100, "after": page["data"][0]["id"]}).json()
    assert rest["has_more"] is False and page["data"][0]["id"] not in [d["id"] for d in rest["data"]]
    for fid in ids:
        sdk.files.delete(fid)

    m = sdk.models.retrieve(MODEL)
    assert m.id == MODEL and m.model_extra["emollm"]["labels"]
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("gpt-4o")


# ------------------------------------------------------------------------------------------ item 3


def test_logprobs(sdk) -> None:
    msgs = [{"role": "user", "content": "How does she feel?"}]
    r = sdk.chat.completions.create(model=MODEL, messages=msgs, max_tokens=8, logprobs=True, top_logprobs=3)
    content = r.choices[0].logprobs.content
    n_answer = r.usage.completion_tokens - (1 if r.choices[0].finish_reason == "stop" else 0)
    assert len(content) == n_answer > 0
    for e in content:
        assert e.logprob <= 0 and len(e.top_logprobs) == 3
        tops = [t.logprob for t in e.top_logprobs]
        assert tops == sorted(tops, reverse=True)
        assert e.logprob == pytest.approx(tops[0]) and e.token == e.top_logprobs[0].token  # greedy: the argmax
    lab = sdk.chat.completions.create(
        model=MODEL, messages=msgs, logprobs=True, top_logprobs=6, extra_body={"emollm": {"task": "label"}}
    )
    (only,) = lab.choices[0].logprobs.content
    assert only.token == lab.choices[0].message.content and len(only.top_logprobs) == 6
    assert sum(np.exp(t.logprob) for t in only.top_logprobs) == pytest.approx(1.0, abs=1e-4)
    plain = sdk.chat.completions.create(model=MODEL, messages=msgs, max_tokens=8)
    assert plain.choices[0].logprobs is None


def test_stop_strings_non_streamed_and_streamed(sdk) -> None:
    msgs = [{"role": "user", "content": "Why is he upset?"}]
    full = sdk.chat.completions.create(model=MODEL, messages=msgs, max_tokens=24).choices[0].message.content
    assert len(full) > 6
    stop = full[4:6]
    cut = full[: full.find(stop)]
    r = sdk.chat.completions.create(model=MODEL, messages=msgs, max_tokens=24, stop=[stop])
    assert r.choices[0].message.content == cut and r.choices[0].finish_reason == "stop"
    stream = sdk.chat.completions.create(model=MODEL, messages=msgs, max_tokens=24, stop=stop, stream=True)
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text == cut


def test_response_format_json(sdk, server) -> None:
    labels = sdk.models.retrieve(MODEL).model_extra["emollm"]["labels"]
    msgs = [{"role": "user", "content": "How does she feel?"}]
    r = sdk.chat.completions.create(model=MODEL, messages=msgs, max_tokens=12, response_format={"type": "json_object"})
    ans = json.loads(r.choices[0].message.content)
    assert set(ans) == {"label", "explanation"} and ans["label"] in labels and isinstance(ans["explanation"], str)
    schema = {
        "name": "emotion",
        "schema": {
            "type": "object",
            "properties": {"label": {"type": "string", "enum": labels}, "explanation": {"type": "string"}},
            "required": ["label", "explanation"],
        },
    }
    r = sdk.chat.completions.create(
        model=MODEL, messages=msgs, max_tokens=12, response_format={"type": "json_schema", "json_schema": schema}
    )
    assert json.loads(r.choices[0].message.content)["label"] in labels
    stream = sdk.chat.completions.create(
        model=MODEL, messages=msgs, max_tokens=12, response_format={"type": "json_object"}, stream=True
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert json.loads(streamed) == ans
    bad = {"name": "x", "schema": {"type": "object", "properties": {"valence": {"type": "number"}}}}
    with pytest.raises(openai.BadRequestError) as e:
        sdk.chat.completions.create(
            model=MODEL, messages=msgs, response_format={"type": "json_schema", "json_schema": bad}
        )
    assert e.value.body["code"] == "unsupported_schema" and "valence" in e.value.body["message"]


def test_tools_and_unknown_fields_are_refused_but_emollm_extras_work(sdk) -> None:
    msgs = [{"role": "user", "content": "How does she feel?"}]
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}
    with pytest.raises(openai.BadRequestError) as e:
        sdk.chat.completions.create(model=MODEL, messages=msgs, tools=[tool], tool_choice="required")
    assert e.value.body["code"] == "unsupported_parameter" and "tools" in e.value.body["message"]
    for field, value in [("frequency_penalty", 0.5), ("logit_bias", {"1": 5}), ("n", 2), ("tool_choice", "required")]:
        with pytest.raises(openai.BadRequestError) as e:
            sdk.chat.completions.create(model=MODEL, messages=msgs, **{field: value})
        assert e.value.body["param"] == field, field
    with pytest.raises(openai.BadRequestError) as e:
        sdk.chat.completions.create(model=MODEL, messages=msgs, extra_body={"temprature": 0.2})
    assert e.value.body["code"] == "unknown_parameter" and e.value.body["param"] == "temprature"
    harmless = {"tools": [], "tool_choice": "none", "parallel_tool_calls": False, "frequency_penalty": 0.0}
    r = sdk.chat.completions.create(model=MODEL, messages=msgs, max_tokens=2, user="u1", **harmless)
    assert r.choices[0].message.content is not None  # values that ask for nothing are fine
    extras = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "top_k": 5, "seed": 3}
    with_sub = [{"role": "user", "content": "How does she feel?", "subtitle": "I lost it."}]
    r = sdk.chat.completions.create(model=MODEL, messages=with_sub, max_tokens=4, extra_body=extras)
    assert r.choices[0].message.content is not None


# ------------------------------------------------------------------------------------------ item 4


def test_strict_validation_every_error_has_a_code(server, sdk) -> None:
    url, _ = server
    user = [{"role": "user", "content": "hi"}]
    cases = [
        ({"messages": user, "max_tokens": 0}, "max_tokens"),
        ({"messages": user, "max_tokens": "10"}, "max_tokens"),
        ({"messages": user, "stream": "yes"}, "stream"),
        ({"messages": [{"role": "user", "content": None}]}, "messages.0.content"),
        ({"messages": user, "temperature": "0.5"}, "temperature"),
        ({"messages": user, "max_completion_tokens": -1}, "max_completion_tokens"),
        ({"messages": user, "wat": 1}, "wat"),
        ({"messages": [{"role": "user", "content": "x", "tool_calls": []}]}, "messages.0.tool_calls"),
    ]
    with httpx.Client(base_url=url, timeout=60) as c:
        for body, param in cases:
            r = c.post("/v1/chat/completions", json=body)
            err = r.json()["error"]
            assert r.status_code == 400 and err["param"] == param and err["code"], (body, err)
        for path in ("/v1/nothing", "/v1/files/file-000000000000000000000000"):
            assert c.get(path).json()["error"]["code"]
        assert c.get("/v1/chat/completions").json()["error"]["code"] == "method_not_allowed"
    audio = {"type": "input_audio", "input_audio": {"data": _wav_b64(), "format": "aiff"}}
    with pytest.raises(openai.BadRequestError) as e:  # a 400 the SDK maps, not a bare APIStatusError
        sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": [audio]}])
    assert e.value.body["code"] == "unsupported_audio_format" and "aiff" in e.value.body["message"]
    ok = sdk.chat.completions.create(model=MODEL, messages=user, max_tokens=1)
    assert ok.usage.completion_tokens == 1


def test_openset_answer_is_read_into_words(sdk) -> None:
    r = sdk.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Which emotion words fit?"}],
        max_tokens=8,
        extra_body={"emollm": {"task": "openset"}},
    )
    ext = r.model_extra["emollm"]
    assert ext["task"] == "openset" and isinstance(ext["openset"], list)
    assert all(isinstance(w, str) and w for w in ext["openset"])


def test_the_server_still_serves_after_every_test_above(sdk, server, roomy) -> None:
    """Runs last on the module's one server: after the long histories, refused fields, bad values and
    disconnects above, a plain request is answered in full, streamed and not, and /health is ok."""
    url, _ = server
    msgs = [{"role": "user", "content": "How does she feel?"}]
    r = sdk.chat.completions.create(model=MODEL, messages=msgs, max_tokens=4)
    assert r.choices[0].message.content and r.usage.completion_tokens > 0
    parts = [c.choices[0].delta.content or "" for c in sdk.chat.completions.create(
        model=MODEL, messages=msgs, max_tokens=4, stream=True) if c.choices]  # fmt: skip
    assert "".join(parts)
    assert httpx.get(url + "/health").json()["status"] == "ok"
    # ... and so does the roomy server after the 2,001-message history and the disconnects
    big = openai.OpenAI(base_url=roomy[0] + "/v1", api_key="x", max_retries=0, timeout=120)
    assert big.chat.completions.create(model=MODEL, messages=msgs, max_tokens=4).usage.completion_tokens > 0
    assert httpx.get(roomy[0] + "/health").json()["status"] == "ok"
