"""The OpenAI-compatible server over real HTTP on loopback: media parts, streaming, uploads, media-root
paths, multi-turn history, concurrency, and malformed requests answered with JSON 4xx errors while the
server keeps serving."""

from __future__ import annotations

import base64
import io
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from emollm.inference.chat import ChatSession
from emollm.inference.generation import GenerationOptions

MODEL = "tiny-test"


def _b64(p: Path) -> str:
    return base64.b64encode(p.read_bytes()).decode()


def _video_part(p: Path) -> dict:
    return {"type": "video_url", "video_url": {"url": f"data:video/mp4;base64,{_b64(p)}"}}


def _body(content, **kw) -> dict:
    return {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": 16, **kw}


def _sse(resp: httpx.Response) -> list[dict | str]:
    events: list[dict | str] = []
    for block in resp.text.split("\n\n"):
        if not block.strip():
            continue
        assert block.startswith("data: "), block
        data = block[len("data: ") :]
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


@pytest.fixture(scope="module")
def client(server):
    url, _ = server
    with httpx.Client(base_url=url, timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def clip(test_samples):
    man, samples = test_samples
    return samples[2], man.media_path(samples[2], "video")


def test_health_models_and_page(client) -> None:
    assert client.get("/health").json()["status"] == "ok"
    models = client.get("/v1/models").json()
    assert models["object"] == "list" and models["data"][0]["id"] == MODEL
    assert models["data"][0]["emollm"]["labels"] == ["neutral", "angry", "happy", "sad", "worried", "surprise"]
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/v1/chat/completions" in page.text and "http://" not in page.text and "https://" not in page.text


def test_video_data_url_and_streaming_match(client, clip) -> None:
    s, video = clip
    body = _body([_video_part(video), {"type": "text", "text": "How does she feel?"}], emollm={"subtitle": s.subtitle})
    r = client.post("/v1/chat/completions", json=body)
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["object"] == "chat.completion" and j["model"] == MODEL and j["id"].startswith("chatcmpl-")
    answer = j["choices"][0]["message"]["content"]
    assert j["choices"][0]["finish_reason"] in ("stop", "length") and answer
    assert j["usage"]["completion_tokens"] <= 16 and j["usage"]["total_tokens"] > j["usage"]["prompt_tokens"] > 0
    assert j["emollm"]["task"] == "explain" and j["emollm"]["modalities"] == ["audio", "face"]

    r = client.post("/v1/chat/completions", json={**body, "stream": True, "stream_options": {"include_usage": True}})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _sse(r)
    assert events[-1] == "[DONE]"
    chunks = [e for e in events[:-1] if isinstance(e, dict)]
    assert all(c["object"] == "chat.completion.chunk" and c["id"] == chunks[0]["id"] for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == answer
    final = [c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert len(final) == 1 and final[0]["emollm"]["task"] == "explain"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == j["usage"]

    lab = client.post("/v1/chat/completions", json={**body, "stream": True, "emollm": {"task": "label"}})
    events = _sse(lab)
    label = "".join(c["choices"][0]["delta"].get("content", "") for c in events[:-1] if c["choices"])
    probs = [c["emollm"]["probs"] for c in events[:-1] if "emollm" in c][0]
    assert label == max(probs, key=probs.get) and sum(probs.values()) == pytest.approx(1.0, abs=1e-5)


def test_history_in_messages_equals_a_chat_session(client, clip, predictor) -> None:
    s, video = clip
    first = client.post("/v1/chat/completions", json=_body([_video_part(video)], emollm={"task": "label"}))
    label = first.json()["choices"][0]["message"]["content"]
    messages = [
        {"role": "user", "content": [_video_part(video)], "task": "label"},
        {"role": "assistant", "content": label},
        {"role": "user", "content": "Why?"},
    ]
    r = client.post("/v1/chat/completions", json={"model": MODEL, "messages": messages, "max_tokens": 16})
    assert r.status_code == 200, r.text
    chat = ChatSession(predictor, task="label")
    chat.attach("video", video)
    assert chat.ask().text == label
    gen = GenerationOptions(max_new_tokens=16).generate_kwargs()  # the server's decoding defaults
    assert chat.ask("Why?", task="explain", **gen).text == r.json()["choices"][0]["message"]["content"]


def test_audio_and_image_parts(client, tmp_path) -> None:
    buf = io.BytesIO()
    sf.write(buf, (0.2 * np.sin(np.arange(8000) / 8)).astype(np.float32), 16000, format="WAV")
    audio = {"type": "input_audio", "input_audio": {"data": base64.b64encode(buf.getvalue()).decode(), "format": "wav"}}
    r = client.post("/v1/chat/completions", json=_body([audio], emollm={"task": "label", "probs": True}))
    assert r.status_code == 200, r.text
    assert r.json()["emollm"]["modalities"] == ["audio"] and "face" in r.json()["emollm"]["missing"]
    png = io.BytesIO()
    Image.fromarray(np.full((64, 64, 3), 90, np.uint8)).save(png, format="PNG")
    image = {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()},
    }
    r = client.post("/v1/chat/completions", json=_body([image, {"type": "text", "text": "Feelings?"}]))
    assert r.status_code == 200 and r.json()["emollm"]["modalities"] == ["face"]


def test_uploads_and_media_root_paths(client, clip, media_root) -> None:
    _, video = clip
    up = client.post("/v1/files", files={"file": ("my clip.mp4", video.read_bytes(), "video/mp4")})
    assert up.status_code == 200, up.text
    fid = up.json()["id"]
    assert up.json()["object"] == "file" and up.json()["emollm_kind"] == "video"
    assert fid in [f["id"] for f in client.get("/v1/files").json()["data"]]
    by_part = client.post("/v1/chat/completions", json=_body([{"type": "file", "file": {"file_id": fid}}]))
    by_url = client.post("/v1/chat/completions", json=_body([{"type": "video_url", "video_url": {"url": fid}}]))
    inline = client.post("/v1/chat/completions", json=_body([_video_part(video)]))
    answers = {x.json()["choices"][0]["message"]["content"] for x in (by_part, by_url, inline)}
    assert len(answers) == 1
    assert client.delete(f"/v1/files/{fid}").json()["deleted"] is True
    gone = client.post("/v1/chat/completions", json=_body([{"type": "file", "file": {"file_id": fid}}]))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "file_not_found"

    for path in ("clips/a.mp4", str(media_root / "clips" / "a.mp4"), f"file://{media_root}/clips/a.mp4"):
        r = client.post("/v1/chat/completions", json=_body([{"type": "video_url", "video_url": {"url": path}}]))
        assert r.status_code == 200, (path, r.text)


def test_concurrent_requests_do_not_interfere(client, server, test_samples) -> None:
    man, samples = test_samples
    videos = [man.media_path(s, "video") for s in samples[3:7]]
    bodies = [_body([_video_part(v)], stream=i % 2 == 1) for i, v in enumerate(videos)]

    def send(body: dict) -> str:
        r = client.post("/v1/chat/completions", json=body)
        assert r.status_code == 200, r.text
        if body["stream"]:
            return "".join(c["choices"][0]["delta"].get("content", "") for c in _sse(r)[:-1] if c["choices"])
        return r.json()["choices"][0]["message"]["content"]

    sequential = [send(b) for b in bodies]
    with ThreadPoolExecutor(4) as pool:
        parallel = list(pool.map(send, bodies * 2))
    assert parallel == sequential * 2
    _, app = server
    requests_dir = app.state.store.root.parent / "requests"
    assert not any(requests_dir.iterdir())  # every per-request temp folder was removed


def _bad_requests(clip_path: Path) -> list[tuple[str, dict, int, str]]:
    vid = _video_part(clip_path)
    junk = "data:video/mp4;base64," + base64.b64encode(b"definitely not a video" * 20).decode()

    def url(u: str) -> list[dict]:
        return [{"type": "video_url", "video_url": {"url": u}}]

    return [
        ("bad base64", _body(url("data:video/mp4;base64,@@notbase64@@")), 400, "invalid_base64"),
        ("unsupported media type", _body(url("data:application/pdf;base64,AAAA")), 400, "unsupported_media_type"),
        ("audio mime in a video part", _body(url("data:audio/wav;base64,AAAA")), 400, "unsupported_media_type"),
        ("undecodable video", _body(url(junk)), 400, "invalid_media"),
        ("dot-dot escape", _body(url("../outside/secret.mp4")), 403, "path_outside_media_root"),
        ("absolute path outside", _body(url("/etc/passwd")), 403, "path_outside_media_root"),
        ("symlink escape", _body(url("escape.mp4")), 403, "path_outside_media_root"),
        ("missing file", _body(url("clips/none.mp4")), 400, "media_not_found"),
        ("too long", _body([{"type": "audio_url", "audio_url": {"url": "long.wav"}}]), 400, "media_too_long"),
        ("remote url", _body(url("https://example.com/a.mp4")), 400, "unsupported_url"),
        ("unknown part", _body([{"type": "hologram", "hologram": {}}]), 400, "unsupported_content_part"),
        ("two videos", _body([vid, vid]), 400, None),
        ("unknown model", {**_body("hi"), "model": "gpt-4o"}, 404, "model_not_found"),
        ("no messages", {"model": MODEL, "messages": []}, 400, "invalid_request"),
        ("bad role", {"model": MODEL, "messages": [{"role": "robot", "content": "x"}]}, 400, "invalid_request"),
        ("ends with assistant", {"messages": [{"role": "assistant", "content": "x"}]}, 400, None),
        ("max_tokens", _body("hi", max_tokens=100000), 400, "max_tokens_exceeded"),
        ("emollm typo", _body("hi", emollm={"taks": "label"}), 400, "unknown_parameter"),
        ("unknown task", _body("hi", emollm={"task": "poetry"}), 400, "invalid_task"),
        ("n > 1", _body("hi", n=2), 400, "unsupported_parameter"),
    ]


def test_malformed_requests_get_json_errors_and_the_server_survives(client, clip) -> None:
    _, video = clip
    for name, body, status, code in _bad_requests(video):
        r = client.post("/v1/chat/completions", json=body)
        assert r.status_code == status, (name, r.status_code, r.text)
        err = r.json()["error"]
        assert err["message"] and err["type"], name
        if code is not None:
            assert err["code"] == code, (name, err)
    r = client.post("/v1/chat/completions", content=b'{"messages": [', headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    big = json.dumps(_body([_video_part(video)], emollm={"subtitle": "x" * 2_000_000})).encode()
    r = client.post("/v1/chat/completions", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"

    def chunked():  # no Content-Length: the streamed body is counted
        yield b'{"messages": [{"role": "user", "content": "'
        for _ in range(40):
            yield b"y" * 50_000
        yield b'"}]}'

    r = client.post("/v1/chat/completions", content=chunked(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["error"]["code"] == "request_too_large"
    assert client.get("/v1/nothing").json()["error"]["type"] == "not_found_error"
    assert client.get("/v1/chat/completions").status_code == 405
    r = client.post("/v1/files", data={"purpose": "x"}, files={"other": ("a.txt", b"x", "text/plain")})
    assert r.status_code == 400 and r.json()["error"]["param"] == "file"
    r = client.post("/v1/files", files={"file": ("notes.txt", b"hello", "text/plain")})
    assert r.status_code == 400 and r.json()["error"]["code"] == "unsupported_media_type"
    r = client.post("/v1/files", files={"file": ("broken.mp4", b"garbage" * 100, "video/mp4")})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_media"
    assert client.get("/v1/files/file-000000000000000000000000").status_code == 404

    assert client.get("/health").json()["status"] == "ok"
    ok = client.post("/v1/chat/completions", json=_body([_video_part(video)], emollm={"task": "label"}))
    assert ok.status_code == 200 and ok.json()["emollm"]["label"]


def test_system_message_and_prompt_too_long(client, clip) -> None:
    _, video = clip
    plain = client.post("/v1/chat/completions", json=_body([_video_part(video)]))
    sys_msg = {"role": "system", "content": "You read emotions. Answer briefly."}
    body = {"model": MODEL, "messages": [sys_msg, {"role": "user", "content": [_video_part(video)]}], "max_tokens": 8}
    with_sys = client.post("/v1/chat/completions", json=body)
    assert with_sys.status_code == 200
    assert with_sys.json()["usage"]["prompt_tokens"] > plain.json()["usage"]["prompt_tokens"]
    late = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}, sys_msg]}
    assert client.post("/v1/chat/completions", json=late).status_code == 400
    long = _body("why " * 2000, stream=True)  # past the tiny model's max_length: refused before any streaming
    r = client.post("/v1/chat/completions", json=long)
    assert r.status_code == 400 and "max_length" in r.json()["error"]["message"]
