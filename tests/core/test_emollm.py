"""EmoLLM: feature scatter and count checks, answer-only training, generation, label scoring."""

from __future__ import annotations

import pytest
import torch

from emollm.data.conversation import Conversation, Media, Message
from emollm.testing import random_features


def _conv(mods: list[str], answer: str | None = None, text: str = " Which emotion?") -> Conversation:
    msgs = [Message("user", [*(Media(m) for m in mods), text])]
    if answer is not None:
        msgs.append(Message("assistant", [answer]))
    return Conversation(msgs, sample_id="x")


def test_count_mismatch_names_both_numbers(tiny_system) -> None:
    s = tiny_system
    enc = s.processor.encode(_conv(["audio"], "happy"))
    batch = s.processor.collate([enc])
    feats = random_features(s, {"audio": 2})  # two items, one placeholder run
    with pytest.raises(ValueError, match=r"'audio'.*1 placeholder tokens but 2 feature tokens"):
        s.model(batch["input_ids"], batch["attention_mask"], batch["labels"], features=feats)
    with pytest.raises(ValueError, match=r"'audio'.*1 placeholder tokens but 0"):
        s.model(batch["input_ids"], batch["attention_mask"], batch["labels"], features={})
    with pytest.raises(ValueError, match="unknown modalities"):
        s.model(
            batch["input_ids"],
            batch["attention_mask"],
            features={**random_features(s, {"audio": 1}), "smell": torch.zeros(1, 1, 3)},
        )


def test_features_land_exactly_on_placeholders(tiny_system) -> None:
    s = tiny_system
    mods = ["frame", "face", "face_clip", "audio", "frame_cls"]
    enc = s.processor.encode(_conv(mods, "sad"))
    ids = torch.tensor([enc.input_ids])
    feats = random_features(s, dict.fromkeys(mods, 1))
    emb = s.model.embed(ids, feats)
    plain = s.model.llm.get_input_embeddings()(ids)
    for m in mods:
        pos = (ids[0] == s.processor.placeholder_ids[m]).nonzero().squeeze(-1)
        want = s.model.projectors[m](feats[m])[0]
        assert torch.allclose(emb[0, pos], want, atol=1e-6)
    text = torch.ones_like(ids[0], dtype=torch.bool)
    for pid in s.processor.placeholder_ids.values():
        text &= ids[0] != pid
    assert torch.equal(emb[0, text], plain[0, text])
    # the published Emotion-LLaMA-style layout: 256/4-grouped frame patches etc. in config order
    n = [int((ids[0] == s.processor.placeholder_ids[m]).sum()) for m in mods]
    assert n == [s.encoders[m].tokens_per_item for m in mods]


def test_train_and_inference_prompts_embed_identically(tiny_system) -> None:
    s = tiny_system
    mods = ["audio", "face", "frame"]
    conv = _conv(mods, "angry", " The person in video says: leave me alone. [emotion] Which label?")
    feats = random_features(s, dict.fromkeys(mods, 1), seed=3)
    train = s.processor.encode(conv)
    infer = s.processor.encode(conv.prompt(), generation=True)
    e_train = s.model.embed(torch.tensor([train.input_ids]), feats)[0, : train.answer_start]
    e_infer = s.model.embed(torch.tensor([infer.input_ids]), feats)[0]
    assert e_train.shape == e_infer.shape
    assert torch.equal(e_train, e_infer)


def test_loss_is_answer_only(tiny_system) -> None:
    s = tiny_system
    enc = s.processor.encode(_conv(["audio"], "neutral"))
    b = s.processor.collate([enc])
    feats = random_features(s, {"audio": 1})
    out = s.model(b["input_ids"], b["attention_mask"], b["labels"], features=feats)
    logits = out.logits[0, :-1].float()
    tgt = b["labels"][0, 1:]
    keep = tgt != -100
    manual = torch.nn.functional.cross_entropy(logits[keep], tgt[keep])
    assert torch.allclose(out.loss, manual, atol=1e-5)
    assert int(keep.sum()) == sum(1 for x in enc.labels if x != -100)


def test_train_step_changes_only_trainable_parameters(fresh_tiny_fast) -> None:
    s = fresh_tiny_fast
    before = {n: p.detach().clone() for n, p in s.model.named_parameters()}
    enc_before = {n: p.detach().clone() for e in s.encoders.values() for n, p in e.named_parameters()}
    trainable = {n for n, p in s.model.named_parameters() if p.requires_grad}
    assert trainable and all(("lora_" in n) or n.startswith("projectors.") for n in trainable)
    opt = torch.optim.AdamW([p for p in s.model.parameters() if p.requires_grad], lr=1e-2)
    encs = [s.processor.encode(_conv(["audio", "face"], a)) for a in ("happy", "sad")]
    b = s.processor.collate(encs)
    feats = random_features(s, {"audio": 2, "face": 2})
    s.model.train()
    out = s.model(b["input_ids"], b["attention_mask"], b["labels"], features=feats)
    out.loss.backward()
    opt.step()
    for n, p in s.model.named_parameters():
        changed = not torch.equal(p.detach(), before[n])
        if n in trainable:
            if "lora_A" not in n:  # lora_A gets no gradient while lora_B is still zero
                assert changed, n
        else:
            assert not changed, n
    for e in s.encoders.values():
        for n, p in e.named_parameters():
            assert torch.equal(p, enc_before[n]) and not p.requires_grad


def test_generate_with_features(tiny_system) -> None:
    s = tiny_system
    encs = [
        s.processor.encode(_conv(["audio"], None, " short?"), generation=True),
        s.processor.encode(_conv(["audio", "face"], None, " a longer question here?"), generation=True),
    ]
    b = s.processor.collate(encs, padding_side="left")
    feats = random_features(s, {"audio": 2, "face": 1})
    out = s.model.generate(b["input_ids"], b["attention_mask"], feats, max_new_tokens=5, min_new_tokens=5)
    assert out.shape == (2, 5)
    pids = set(s.processor.placeholder_ids.values())
    assert not (set(out.flatten().tolist()) & pids)
    # left padding must not change a sample's continuation
    alone = s.model.generate(
        torch.tensor([encs[0].input_ids]),
        torch.ones(1, len(encs[0]), dtype=torch.long),
        {"audio": feats["audio"][:1]},
        max_new_tokens=5,
        min_new_tokens=5,
    )
    assert torch.equal(alone[0], out[0])


def test_score_labels_shared_prefix_matches_full(tiny_system) -> None:
    s = tiny_system
    labels = list(s.labels.labels)
    convs = [_conv(["audio"], None, " q?"), _conv(["audio", "face"], None, " another, longer question?")]
    encs = [s.processor.encode(c, generation=True) for c in convs]
    b = s.processor.collate(encs, padding_side="left")
    feats = random_features(s, {"audio": 2, "face": 1}, seed=1)
    from emollm.inference.scoring import candidate_token_ids

    cands = candidate_token_ids(s.processor, convs[0], labels)
    a = s.model.score_labels(b["input_ids"], b["attention_mask"], feats, cands, share_prefix=True)
    f = s.model.score_labels(b["input_ids"], b["attention_mask"], feats, cands, share_prefix=False)
    assert a.shape == (2, len(labels))
    assert torch.allclose(a, f, atol=1e-4)
    # and equals the training loss of the full sequence for one candidate
    full = s.processor.encode(convs[0].with_answer(labels[2]))
    fb = s.processor.collate([full])
    out = s.model(fb["input_ids"], fb["attention_mask"], fb["labels"], features={"audio": feats["audio"][:1]})
    n = sum(1 for x in full.labels if x != -100)
    assert torch.allclose(-out.loss * n, a[0, 2], atol=1e-4)


def test_answer_loss_on_kept_positions_equals_full_logits(tiny_system) -> None:
    from emollm.training.data import answer_loss, answer_positions

    s = tiny_system
    encs = [s.processor.encode(_conv(["audio"], a)) for a in ("happy", "a much longer answer about surprise")]
    b = s.processor.collate(encs)
    feats = random_features(s, {"audio": 2})
    full = s.model(b["input_ids"], b["attention_mask"], features=feats).logits
    kept = s.model(
        b["input_ids"], b["attention_mask"], features=feats, logits_to_keep=answer_positions(b["labels"])
    ).logits
    assert kept.numel() < full.numel()
    assert torch.allclose(answer_loss(full, b["labels"]), answer_loss(kept, b["labels"]), atol=1e-6)
    # per-sample mean: both samples weigh the same whatever their answer length
    l0 = answer_loss(full[:1], b["labels"][:1])
    l1 = answer_loss(full[1:], b["labels"][1:])
    assert torch.allclose(answer_loss(full, b["labels"]), (l0 + l1) / 2, atol=1e-6)


def test_lm_head_gets_contiguous_input(tiny_system) -> None:
    """Scoring and generation hand the head ``hidden[:, -1:]`` slices; EmoLLM's pre-hook makes them
    contiguous (a strided slice sends CPU ``linear`` through a copy of the whole vocabulary weight)."""
    s = tiny_system
    seen: list[bool] = []
    head = s.model.llm.get_output_embeddings()
    handle = head.register_forward_hook(lambda mod, args, out: seen.append(args[0].is_contiguous()))
    try:
        encs = [s.processor.encode(_conv(["audio"], text=t), generation=True) for t in (" Hi?", " How do they feel?")]
        b = s.processor.collate(encs, padding_side="left")
        cands = [[5, 6], [7]]
        s.model.score_labels(b["input_ids"], b["attention_mask"], random_features(s, {"audio": 2}), cands)
    finally:
        handle.remove()
    assert seen and all(seen)
