"""``emollm serve`` as a real process: it says when the model is untrained, keeps its log free of the
known-harmless library warnings, and SIGTERM during a long streamed answer shuts it down cleanly
(no hang on "Waiting for background tasks"). Also ``quiet_known_warnings`` on its own, in a fresh
interpreter, against a control run without it (issue 13 items 1, 5, 9)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
HARMLESS = ("past_key_values", "kernels-community", "with `inputs_embeds`", "is_gradient_checkpointing")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", PYTHONWARNINGS="default")
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_untrained_note_quiet_log_and_clean_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    cmd = [sys.executable, "-m", "emollm", "serve", "--preset", "tiny-fast", "--port", str(port), "--no-cache"]
    cmd += ["--device", "cpu", "--max-new-tokens", "1500"]
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(1200):
            if proc.poll() is not None:
                raise AssertionError(f"serve exited early:\n{log.read_text()}")
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        models = httpx.get(url + "/v1/models").json()["data"][0]["emollm"]
        assert models["trained"] is False and "make demo" in models["note"]
        user = [{"role": "user", "content": "How does she feel?"}]
        lab = httpx.post(url + "/v1/chat/completions", json={"messages": user, "emollm": {"task": "label"}}, timeout=60)
        assert lab.status_code == 200, lab.text
        ex = httpx.post(url + "/v1/chat/completions", json={"messages": user, "max_tokens": 8}, timeout=60)
        assert ex.status_code == 200, ex.text

        started = threading.Event()
        result: dict[str, object] = {}

        def long_stream() -> None:
            body = {
                "messages": [{"role": "user", "content": "Tell me everything."}],
                "max_tokens": 1500,
                "stream": True,
            }
            try:
                with httpx.stream("POST", url + "/v1/chat/completions", json=body, timeout=120) as r:
                    for line in r.iter_lines():
                        if line.startswith("data: ") and '"content": ""' not in line:
                            started.set()
                        result["last"] = line
            except httpx.HTTPError as e:  # the server closing the stream is fine
                result["error"] = repr(e)
            started.set()

        th = threading.Thread(target=long_stream, daemon=True)
        th.start()
        assert started.wait(120)
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=90)  # a hang on "Waiting for background tasks" fails here
        th.join(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert rc in (0, -signal.SIGTERM, 128 + signal.SIGTERM), text
    assert "untrained" in text and "make demo" in text
    found = [w for w in HARMLESS if w in text]
    assert not found, f"known-harmless warnings in the server log: {found}\n{text}"


_PROBE = textwrap.dedent(
    """
    import sys, warnings
    warnings.simplefilter("default")
    if sys.argv[1] == "quiet":
        from emollm.log import quiet_known_warnings
        quiet_known_warnings()
    import torch
    from emollm.data.conversation import Conversation, Message
    from emollm.model.resolve import load_system
    assert "emollm.inference.chat" not in sys.modules  # importing chat would quiet the control run
    system = load_system("tiny-fast")
    proc, model = system.processor, system.model.eval()
    enc = proc.encode(Conversation([Message("user", ["How does she feel?"])]), generation=True)
    batch = proc.collate([enc], padding_side="left")
    with torch.no_grad():
        cands = [proc.tok(w, add_special_tokens=False)["input_ids"] + [proc.stop_ids[0]] for w in ("sad", "happy")]
        model.score_labels(batch["input_ids"], batch["attention_mask"], {}, cands)
        model.generate(batch["input_ids"], batch["attention_mask"], {}, max_new_tokens=4,
                       repetition_penalty=1.15, no_repeat_ngram_size=4)
    print("probe done")
    """
)


@pytest.mark.parametrize("mode", ["control", "quiet"])
def test_quiet_known_warnings_captures_none(tmp_path: Path, mode: str) -> None:
    script = tmp_path / "probe.py"
    script.write_text(_PROBE)
    r = subprocess.run(
        [sys.executable, str(script), mode], env=_env(), cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert r.returncode == 0 and "probe done" in r.stdout, r.stderr
    found = [w for w in HARMLESS if w in r.stderr]
    if mode == "control":  # the probe does trigger them: the quiet run below is a real test
        assert found, r.stderr
    else:
        assert not found, r.stderr


def _wait_health(proc: subprocess.Popen, url: str, log: Path) -> None:
    for _ in range(1200):
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early:\n{log.read_text()}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError(f"serve did not start:\n{log.read_text()}")


def test_serve_without_a_model_uses_the_newest_trained_checkpoint(tiny_ckpt: Path, tmp_path: Path) -> None:
    import shutil

    from emollm.model import resolve

    if not hasattr(resolve, "default_model_spec"):
        pytest.skip("emollm.model.resolve.default_model_spec arrives with the chat/CLI change")
    cmd = [sys.executable, "-m", "emollm", "serve", "--no-cache", "--device", "cpu"]
    empty = tmp_path / "empty"
    empty.mkdir()
    r = subprocess.run([*cmd, "--port", str(_free_port())], cwd=empty, env=_env(), capture_output=True, text=True)
    assert r.returncode != 0 and "make demo" in r.stdout + r.stderr
    work = tmp_path / "work"
    shutil.copytree(tiny_ckpt, work / "runs" / "demo" / "final")
    port = _free_port()
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([*cmd, "--port", str(port)], cwd=work, env=_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_health(proc, f"http://127.0.0.1:{port}", log)
        card = httpx.get(f"http://127.0.0.1:{port}/v1/models").json()["data"][0]
        assert card["emollm"]["trained"] is True and card["emollm"]["note"] is None
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert str(Path("runs") / "demo" / "final") in log.read_text()
