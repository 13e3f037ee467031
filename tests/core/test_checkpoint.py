"""Checkpoints: trainable-only save/load with identical logits; export; toy training ranks the label."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from emollm.data.conversation import Conversation, Media, Message
from emollm.inference.scoring import candidate_token_ids
from emollm.model.checkpoint import export_merged, load_checkpoint, save_checkpoint
from emollm.model.resolve import load_system
from emollm.testing import random_features


def _conv(answer: str | None = None) -> Conversation:
    msgs = [Message("user", [Media("audio"), Media("face"), " Which emotion?"])]
    if answer is not None:
        msgs.append(Message("assistant", [answer]))
    return Conversation(msgs, sample_id="x")


def _train(system, steps: int = 30, answer: str = "surprise") -> None:
    opt = torch.optim.AdamW([p for p in system.model.parameters() if p.requires_grad], lr=2e-2)
    enc = system.processor.encode(_conv(answer))
    b = system.processor.collate([enc, enc])
    feats = random_features(system, {"audio": 2, "face": 2})
    system.model.train()
    for _ in range(steps):
        opt.zero_grad()
        system.model(b["input_ids"], b["attention_mask"], b["labels"], features=feats).loss.backward()
        opt.step()
    system.model.eval()


def _logits(system) -> torch.Tensor:
    enc = system.processor.encode(_conv("happy"))
    b = system.processor.collate([enc])
    feats = random_features(system, {"audio": 1, "face": 1}, seed=7)
    with torch.no_grad():
        return system.model(b["input_ids"], b["attention_mask"], features=feats).logits


def test_save_load_gives_identical_logits(fresh_tiny_fast, tmp_path) -> None:
    s = fresh_tiny_fast
    _train(s, steps=3)
    ref = _logits(s)
    ck = save_checkpoint(s, tmp_path / "ck", extra={"step": 3})
    state = load_file(str(ck / "trainable.safetensors"))
    assert state and all(k.startswith(("projectors.", "lora.")) for k in state)
    assert not any("embed_tokens" in k or "encoders" in k for k in state)  # no frozen weights
    man = json.loads((ck / "manifest.json").read_text())
    assert man["step"] == 3 and man["versions"]["torch"]
    s2 = load_checkpoint(ck)
    assert torch.equal(ref, _logits(s2))
    s3 = load_system(ck)  # the generic entry point
    assert torch.equal(ref, _logits(s3))


def test_score_labels_ranks_the_trained_label_first(fresh_tiny_fast) -> None:
    s = fresh_tiny_fast
    _train(s, steps=40, answer="surprise")
    conv = _conv()
    enc = s.processor.encode(conv, generation=True)
    b = s.processor.collate([enc], padding_side="left")
    labels = list(s.labels.labels)
    cands = candidate_token_ids(s.processor, conv, labels)
    feats = random_features(s, {"audio": 1, "face": 1})
    logp = s.model.score_labels(b["input_ids"], b["attention_mask"], feats, cands)
    assert labels[int(logp[0].argmax())] == "surprise"
    probs = logp.softmax(-1)
    assert probs[0, labels.index("surprise")] > 0.5


def test_load_rejects_mismatched_checkpoint(fresh_tiny_fast, tmp_path) -> None:
    from emollm.model.checkpoint import load_trainable_state_dict

    ck = save_checkpoint(fresh_tiny_fast, tmp_path / "ck")
    state = load_file(str(ck / "trainable.safetensors"))
    k = next(k for k in state if k.endswith("net.0.weight") or k.endswith("net.weight"))
    bad = {**state, k: torch.zeros(3, 3)}
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        load_trainable_state_dict(fresh_tiny_fast, bad)
    with pytest.raises(ValueError, match="projector tensor .* missing"):
        load_trainable_state_dict(fresh_tiny_fast, {kk: v for kk, v in state.items() if kk != k})
    lora_key = next(kk for kk in state if kk.startswith("lora."))
    with pytest.raises(ValueError, match="LoRA weights do not match"):
        load_trainable_state_dict(fresh_tiny_fast, {kk: v for kk, v in state.items() if kk != lora_key})
    with pytest.raises(FileNotFoundError, match="not an emollm checkpoint"):
        load_checkpoint(tmp_path)


def test_export_merged_is_standalone(fresh_tiny_fast, tmp_path) -> None:
    s = fresh_tiny_fast
    _train(s, steps=3)
    ref = _logits(s)
    out = export_merged(s, tmp_path / "export")
    assert (out / "config.json").is_file() and (out / "trainable.safetensors").is_file()
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(out)  # plain transformers can load the merged LLM
    s2 = load_system(out)
    assert torch.allclose(ref, _logits(s2), atol=1e-4)
