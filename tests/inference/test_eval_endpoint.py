"""``emollm eval --backend openai`` on loopback: against ``emollm serve`` serving a model it gives the same
answers and headline score as evaluating that model in-process with ``--method generate``; a rerun with
the server stopped is answered from the reply cache; a killed endpoint run resumes; 429 and 500 answers
are retried, then fail with an error naming the endpoint and the status."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from emollm.evaluation.runner import EvalOptions, run_eval
from emollm.inference.remote import EndpointConfig, EndpointError
from emollm.io import read_jsonl
from emollm.paths import resource_root

LIMIT = 6


def _opts(out: Path, synthmer: Path, **kw: Any) -> EvalOptions:
    base: dict[str, Any] = {
        "tasks": ["synthmer_generate"],
        "roots": {"synthmer": str(synthmer)},
        "out": str(out),
        "limit": LIMIT,
        "modalities": "all",
        "batch_size": 2,
        "progress": False,
    }
    base.update(kw)
    return EvalOptions.model_validate(base)


def _texts(out: Path) -> dict[str, str]:
    recs = [r for f in sorted((out / "records").glob("*.jsonl")) for r in read_jsonl(f)]
    return {r["sample_id"]: r["text"] for r in recs}


def _endpoint(url: str, cache: Path, **kw: Any) -> EndpointConfig:
    return EndpointConfig(base_url=f"{url}/v1", model="tiny-test", profile="emollm", cache_dir=str(cache), **kw)


@pytest.fixture(scope="module")
def local_run(tmp_path_factory: pytest.TempPathFactory, tiny_ckpt: Path, synthmer_small: Path, feature_cache: Path):
    out = tmp_path_factory.mktemp("endpoint") / "local"
    res = run_eval(_opts(out, synthmer_small, checkpoint=str(tiny_ckpt), features=str(feature_cache)))
    assert res.complete and res.results is not None
    return out, res.results


def test_endpoint_run_matches_in_process_and_then_runs_from_cache(
    predictor, local_run, synthmer_small: Path, tmp_path: Path
) -> None:
    from emollm.inference.server import BackgroundServer, ServeSettings, create_app

    local_out, local_res = local_run
    cache = tmp_path / "cache"
    app = create_app(predictor, ServeSettings(model_id="tiny-test", max_new_tokens=32))
    with BackgroundServer(app) as url:
        ep = _endpoint(url, cache)
        remote = run_eval(_opts(tmp_path / "remote", synthmer_small, backend="openai", endpoint=ep))
    assert remote.complete and remote.results is not None
    want = _texts(local_out)
    assert len(want) == LIMIT and _texts(tmp_path / "remote") == want
    task = "synthmer_generate"
    a, b = local_res["tasks"][task]["headline"], remote.results["tasks"][task]["headline"]
    assert a["name"] == b["name"] and a["value"] == pytest.approx(b["value"])
    assert remote.results["checkpoint"]["kind"] == "endpoint"
    used = json.loads((tmp_path / "remote" / "endpoint_usage.json").read_text())
    assert used["requests_sent"] == LIMIT and used["answered_from_cache"] == 0 and used["prompt_tokens"] > 0

    # the server is stopped now: every answer comes from the cache, nothing is sent
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/v1/models", timeout=2)
    again = run_eval(
        _opts(tmp_path / "again", synthmer_small, backend="openai", endpoint=ep.model_copy(update={"max_retries": 0}))
    )
    assert again.complete and _texts(tmp_path / "again") == want
    used = json.loads((tmp_path / "again" / "endpoint_usage.json").read_text())
    assert used["requests_sent"] == 0 and used["answered_from_cache"] == LIMIT
    # ... and a cache miss against the stopped endpoint fails naming it
    miss = ep.model_copy(update={"max_retries": 0, "cache_dir": str(tmp_path / "empty_cache")})
    with pytest.raises(EndpointError, match=rf"endpoint {url}/v1 \(model 'tiny-test'\) cannot be reached"):
        run_eval(_opts(tmp_path / "dead", synthmer_small, backend="openai", endpoint=miss))


@pytest.mark.slow
def test_killed_endpoint_run_resumes(server, local_run, synthmer_small: Path, tmp_path: Path) -> None:
    url, _ = server
    out = tmp_path / "killed"
    cmd = [
        sys.executable, "-m", "emollm", "eval", "--backend", "openai", "--base-url", f"{url}/v1",
        "--model", "tiny-test", "--profile", "emollm", "--tasks", "synthmer_generate", "--limit", str(LIMIT),
        "--root", f"synthmer={synthmer_small}", "--out", str(out), "--batch-size", "1",
        "--modalities", "all", "--quiet",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "EMOLLM_LOG_LEVEL": "WARNING", "PYTHONPATH": str(resource_root())}
    records = out / "records" / "shard-0-of-1.jsonl"
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            if records.exists() and len(read_jsonl(records)) >= 2:
                break
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"eval ended (rc {proc.returncode}) before it could be killed: {err[-2000:]}")
            time.sleep(0.02)
        else:
            pytest.fail("no records within 240 s")
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    before = read_jsonl(records)
    assert 2 <= len(before) < LIMIT
    ep = EndpointConfig(
        base_url=f"{url}/v1", model="tiny-test", profile="emollm", cache_dir=str(tmp_path / "runs/cache/endpoint")
    )
    resumed = run_eval(_opts(out, synthmer_small, backend="openai", endpoint=ep, batch_size=1))
    assert resumed.complete and resumed.results is not None
    assert resumed.results["run"]["reused"] == len(before)
    after = read_jsonl(records)
    assert len(after) == LIMIT and len({r["sample_id"] for r in after}) == LIMIT
    assert _texts(out) == _texts(local_run[0])


class _Flaky(BaseHTTPRequestHandler):
    """Answers ``plan`` statuses in turn (then 200 with a fixed completion); counts requests."""

    plan: list[int] = []
    seen: list[int] = []

    def do_POST(self) -> None:  # noqa: N802
        n = int(self.headers.get("content-length", 0))
        self.rfile.read(n)
        status = self.plan.pop(0) if self.plan else 200
        self.seen.append(status)
        if status == 200:
            body = {
                "id": "x", "object": "chat.completion", "created": 0, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "happy"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
            }  # fmt: skip
        else:
            body = {
                "error": {"message": f"status {status} from the test endpoint", "type": "server_error", "code": "x"}
            }
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        if status == 429:
            self.send_header("retry-after-ms", "10")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[str]:
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


def test_429_and_500_are_retried_then_fail_naming_endpoint(flaky: str, synthmer_small: Path, tmp_path: Path) -> None:
    _Flaky.plan, _Flaky.seen = [429, 500], []
    ep = EndpointConfig(
        base_url=f"{flaky}/v1", model="m", max_retries=2, cache_dir=str(tmp_path / "c"), video="none", audio="none"
    )
    res = run_eval(_opts(tmp_path / "ok", synthmer_small, backend="openai", endpoint=ep, limit=1))
    assert res.complete and _Flaky.seen == [429, 500, 200]
    assert set(_texts(tmp_path / "ok").values()) == {"happy"}

    _Flaky.plan, _Flaky.seen = [500, 500, 500, 500], []
    ep = ep.model_copy(update={"cache_dir": str(tmp_path / "c2")})
    with pytest.raises(EndpointError, match=rf"endpoint {flaky}/v1 \(model 'm'\) answered HTTP 500 after 2 retries"):
        run_eval(_opts(tmp_path / "bad", synthmer_small, backend="openai", endpoint=ep, limit=1))
    assert _Flaky.seen == [500, 500, 500]
