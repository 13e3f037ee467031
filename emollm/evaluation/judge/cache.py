"""The judge's reply cache: every raw reply on disk, keyed by (sample id, call, sha256 of the rendered
prompt, judge id), so a rerun replays without building the backend.

    cache = ReplyCache("runs/judge-cache", judge_id)
    reply = cache.get(sample_id, call, prompt_hash)    # None when not cached
    cache.put(sample_id, call, prompt_hash, reply)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from emollm.io import JsonlAppender, read_jsonl, sha256_text


class ReplyCache:
    """Raw judge replies on disk, one JSONL per judge id: key (sample id, call, rendered-prompt hash)."""

    def __init__(self, root: str | os.PathLike[str], judge_id: str) -> None:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", judge_id)[:60]
        self.path = Path(root) / f"{slug}-{sha256_text(judge_id)[:12]}.jsonl"
        self.judge_id = judge_id
        self._replies: dict[tuple[str, str, str], str] = {}
        for rec in read_jsonl(self.path):
            if rec.get("judge_id") == judge_id:
                self._replies[(rec["sample_id"], rec["call"], rec["prompt_hash"])] = rec["reply"]
        self._writer: JsonlAppender | None = None

    def __len__(self) -> int:
        return len(self._replies)

    def get(self, sample_id: str, call: str, prompt_hash: str) -> str | None:
        return self._replies.get((sample_id, call, prompt_hash))

    def put(self, sample_id: str, call: str, prompt_hash: str, reply: str) -> None:
        if self._writer is None:
            self._writer = JsonlAppender(self.path)
        self._writer.write(
            {
                "sample_id": sample_id,
                "call": call,
                "prompt_hash": prompt_hash,
                "judge_id": self.judge_id,
                "reply": reply,
            }
        )
        self._replies[(sample_id, call, prompt_hash)] = reply

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
