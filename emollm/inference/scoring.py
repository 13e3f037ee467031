"""Constrained classification: score every candidate label as the answer, batched.

    cands = candidate_token_ids(processor, conv, ["happy", "sad", ...])   # answer tokens + end of turn
    logp = model.score_labels(ids, att, feats, cands)                      # [B, C] log-likelihoods
    probs = logp.softmax(-1)

The candidate tokens are exactly what training puts under the loss mask for that answer, so the
label a model was trained to give is the label it scores highest.
"""

from __future__ import annotations

from emollm.data.conversation import Conversation
from emollm.data.processor import IGNORE_INDEX, Processor


def candidate_token_ids(processor: Processor, conv: Conversation, candidates: list[str]) -> list[list[int]]:
    """Token ids of each candidate answer (through its end-of-turn token) after ``conv``'s prompt."""
    prompt_conv = conv.prompt() if conv.answer is not None else conv
    prompt = processor.encode(prompt_conv, generation=True)
    out: list[list[int]] = []
    for c in candidates:
        full = processor.encode(prompt_conv.with_answer(c))
        n = len(prompt.input_ids)
        if full.input_ids[:n] != prompt.input_ids or full.answer_start != n:
            raise RuntimeError(f"candidate {c!r}: training and inference prompts differ (template problem)")
        ids = [t for t, lab in zip(full.input_ids[n:], full.labels[n:], strict=True) if lab != IGNORE_INDEX]
        if not ids:
            raise ValueError(f"candidate {c!r} encodes to no tokens")
        out.append(ids)
    if len({tuple(x) for x in out}) != len(out):
        raise ValueError(f"candidates {candidates} do not all encode to distinct token sequences")
    return out
