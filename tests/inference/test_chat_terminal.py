"""``emollm chat`` in a real terminal: a pseudo-terminal, a real process, Ctrl-C typed as ^C (SIGINT from
the line discipline). Ctrl-C during a streamed answer stops it and keeps the session; ``/save`` and
``/set`` work; ``/audio`` checks its file when given; Ctrl-C twice at the prompt leaves with status 0.

    python -m pytest -q tests/inference/test_chat_terminal.py
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import sys
from pathlib import Path

import pytest

if sys.platform == "win32":  # pragma: no cover
    pytest.skip("needs a POSIX pseudo-terminal", allow_module_level=True)

GUARD_S = 300.0
"""Only a hang guard: no assertion depends on how fast anything runs."""


class Terminal:
    """A child process on a pseudo-terminal: type keys, wait for text."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # child: session leader with the pty as its controlling terminal
            try:
                os.chdir(cwd)
                os.execvpe(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self.out = ""
        self.pos = 0

    def type(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def _read(self, guard: float) -> bool:
        r, _, _ = select.select([self.fd], [], [], guard)
        if not r:
            raise AssertionError(f"no output for {guard:.0f} s; the terminal shows:\n{self.out[-3000:]}")
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        if not data:
            return False
        self.out += data.decode("utf-8", "replace")
        return True

    def expect(self, text: str) -> str:
        """Wait until ``text`` appears after the previous match; returns what came before it."""
        while True:
            i = self.out.find(text, self.pos)
            if i >= 0:
                before, self.pos = self.out[self.pos : i], i + len(text)
                return before
            if not self._read(GUARD_S):
                raise AssertionError(f"the program ended before {text!r}; the terminal shows:\n{self.out[-3000:]}")

    def wait_for_more(self, n: int) -> None:
        """Wait until at least ``n`` characters arrived after the previous match."""
        while len(self.out) - self.pos < n:
            if not self._read(GUARD_S):
                raise AssertionError(f"the program ended; the terminal shows:\n{self.out[-3000:]}")

    def wait(self) -> int:
        while self._read(GUARD_S):
            pass
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


@pytest.fixture()
def terminal_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
        TERM="dumb",
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        EMOLLM_LOG_LEVEL="ERROR",
    )
    return env


def test_ctrl_c_stops_the_answer_and_keeps_the_session(tiny_ckpt, feature_cache, terminal_env, tmp_path) -> None:
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00not really a wave file" * 4)
    argv = [sys.executable, "-m", "emollm", "chat", "-c", str(tiny_ckpt), "--cache-dir", str(feature_cache)]
    # a long answer (the random tiny model rarely ends a turn), so ^C arrives while it streams
    argv += ["--device", "cpu", "--max-new-tokens", "2000"]
    t = Terminal(argv, terminal_env, tmp_path)
    t.expect("/bye to leave")
    t.expect("you> ")
    t.type("How does she feel?\r")
    t.expect("How does she feel?")
    t.wait_for_more(12)  # the answer is streaming
    t.type("\x03")
    t.expect("[answer stopped (Ctrl-C); the conversation is kept]")
    t.expect("you> ")

    t.type(f"/save {tmp_path / 'one.json'}\r")
    t.expect("[saved 1 turns to ")
    saved = json.loads((tmp_path / "one.json").read_text())
    partial = saved["turns"][0]["answer"]
    assert saved["model"] == str(tiny_ckpt) and "How does she feel?" in saved["turns"][0]["user"]
    assert partial and len(partial) < 2000  # the answer was cut, and the cut part is in the history

    t.type("/set temperature 0.5\r")
    t.expect("[temperature: 0.5]")
    t.type("/set max_tokens 6\r")
    t.expect("[max_tokens: 6]")
    t.type("/set system Answer in one word.\r")
    t.expect("[system: Answer in one word.]")
    t.type("/set top_p 7\r")
    t.expect("error: /set top_p 7: ")
    t.expect("you> ")
    t.type("/set\r")
    listing = t.expect("you> ")
    assert re.search(r"temperature\s+0\.5", listing) and re.search(r"max_tokens\s+6", listing)
    t.type("/audio /no/such/voice.wav\r")
    t.expect("error: audio file not found: /no/such/voice.wav")
    t.type(f"/audio {bad}\r")
    t.expect(f"error: {bad}: cannot decode the audio")
    t.type("And now?\r")  # the session goes on: a second answer, 6 tokens, not stopped
    answer = t.expect("you> ")
    assert "[answer stopped" not in answer
    t.type(f"/save {tmp_path / 'two.json'}\r")
    t.expect("[saved 2 turns to ")
    t.expect("you> ")  # back at the prompt (a Ctrl-C while a command still runs interrupts that command)
    saved = json.loads((tmp_path / "two.json").read_text())
    assert all(x["user"].endswith(q) for x, q in zip(saved["turns"], ("How does she feel?", "And now?"), strict=True))
    assert saved["turns"][0]["answer"] == partial and saved["system"] == "Answer in one word."
    assert saved["generation"]["temperature"] == 0.5 and saved["generation"]["max_new_tokens"] == 6

    t.type("\x03")
    t.expect("[Ctrl-C again, /bye or Ctrl-D to leave]")
    t.expect("you> ")  # input() is reading again: the second Ctrl-C is the REPL's, not a stray interrupt
    t.type("\x03")
    assert t.wait() == 0
