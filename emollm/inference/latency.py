"""Measure how fast a first answer about a fresh clip arrives once the model is loaded (for docs/INFERENCE.md).

    python -m emollm.inference.latency --model mini --video runs/data/synthmer/raw/video/synth_000600.mp4
    python -m emollm.inference.latency --model runs/mini/final --video clip.mp4 --subtitle "..." --repeat 3

Prints one JSON object: the load time, then per fresh clip (features computed live, nothing cached) the
time to encode the media, the time to the first streamed text and to the whole explanation, and the
time of a constrained label answer. Timings are wall-clock on this machine; nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any


class _FirstChunk:
    """Streaming callback that notes when the first text arrived (seconds after ``start``)."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.after: float | None = None

    def __call__(self, _text: str) -> None:
        if self.after is None:
            self.after = time.perf_counter() - self.start


def measure(model: str, videos: list[Path], subtitle: str | None, max_new_tokens: int) -> dict[str, Any]:
    import torch

    from emollm.inference.chat import ChatSession, open_predictor

    t0 = time.perf_counter()
    pred = open_predictor(model, cache_dir=None, device="auto")  # live features: every clip is fresh
    out: dict[str, Any] = {
        "model": model,
        "device": str(pred.system.model.device),
        "torch_threads": torch.get_num_threads(),
        "load_s": round(time.perf_counter() - t0, 2),
        "clips": [],
    }
    for video in videos:
        chat = ChatSession(pred, max_new_tokens=max_new_tokens)
        chat.attach("video", video)
        chat.set_subtitle(subtitle)
        t = time.perf_counter()
        turn = chat.prepare_turn()
        t_feat = time.perf_counter() - t
        t = time.perf_counter()
        first = _FirstChunk(t)
        reply = chat.ask(turn=turn, on_text=first)
        t_gen = time.perf_counter() - t
        label_chat = ChatSession(pred)
        label_chat.attach("video", video)
        label_chat.set_subtitle(subtitle)
        t = time.perf_counter()
        lab = label_chat.ask(task="label")
        t_label = time.perf_counter() - t
        out["clips"].append(
            {
                "clip": Path(video).name,
                "features_s": round(t_feat, 3),
                "first_text_s": round(t_feat + (first.after if first.after is not None else t_gen), 3),
                "explanation_s": round(t_feat + t_gen, 3),
                "new_tokens": reply.completion_tokens,
                "label_s": round(t_label, 3),
                "label": lab.label,
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="mini", help="preset name or checkpoint folder")
    ap.add_argument("--video", type=Path, nargs="+", required=True, help="clip(s); each is measured fresh")
    ap.add_argument("--subtitle", default=None)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(json.dumps(measure(args.model, args.video, args.subtitle, args.max_new_tokens), indent=2))


if __name__ == "__main__":
    main()
