"""Processor: placeholder expansion, answer-only loss mask, train/inference prompt identity."""

from __future__ import annotations

import pytest

from emollm.data.conversation import Conversation, Media, Message
from emollm.data.processor import IGNORE_INDEX, Processor
from emollm.model.llm import add_placeholder_tokens, placeholder_token
from emollm.model.tiny import tiny_llama, tiny_tokenizer


def _proc(kind: str, tokens: dict[str, int], system: str | None = None) -> Processor:
    tok = tiny_tokenizer(kind)
    llm = tiny_llama(32, 64, 1, 2, 2, len(tok), 0)
    add_placeholder_tokens(llm, tok, list(tokens))
    return Processor(tok, tokens, system_prompt=system, max_length=256)


def _conv(answer: str = "worried", mods: tuple[str, ...] = ("audio", "face")) -> Conversation:
    parts = [Media(m) for m in mods] + [" The person in video says: I hope it works. Which emotion is it?"]
    return Conversation([Message("user", parts), Message("assistant", [answer])], sample_id="s1")


@pytest.mark.parametrize("kind", ["bpe-chatml", "sp-llama2"])
def test_placeholders_expand_to_exact_counts(kind: str) -> None:
    p = _proc(kind, {"audio": 3, "face": 5})
    enc = p.encode(_conv())
    assert enc.input_ids.count(p.placeholder_ids["audio"]) == 3
    assert enc.input_ids.count(p.placeholder_ids["face"]) == 5
    assert enc.modality_counts == {"audio": 1, "face": 1}
    # placeholders are contiguous runs
    i = enc.input_ids.index(p.placeholder_ids["face"])
    assert enc.input_ids[i : i + 5] == [p.placeholder_ids["face"]] * 5


@pytest.mark.parametrize("kind", ["bpe-chatml", "sp-llama2"])
def test_loss_mask_covers_exactly_answer_and_end_of_turn(kind: str) -> None:
    p = _proc(kind, {"audio": 2, "face": 2})
    enc = p.encode(_conv("worried"))
    answer = [t for t, lab in zip(enc.input_ids, enc.labels, strict=True) if lab != IGNORE_INDEX]
    assert answer == enc.input_ids[enc.answer_start :][: len(answer)]
    assert p.tok.decode(answer, skip_special_tokens=True).strip() == "worried"
    assert answer[-1] in p.stop_ids  # the model learns to stop
    # nothing before the answer is trained on, and placeholders never are
    assert all(lab == IGNORE_INDEX for lab in enc.labels[: enc.answer_start])
    # labels equal ids where they apply
    assert all(lab in (IGNORE_INDEX, t) for t, lab in zip(enc.input_ids, enc.labels, strict=True))


@pytest.mark.parametrize("kind", ["bpe-chatml", "sp-llama2"])
def test_training_and_inference_prompts_are_identical_up_to_answer(kind: str) -> None:
    p = _proc(kind, {"audio": 2, "face": 3}, system="You are an expert.")
    conv = _conv("surprise")
    train = p.encode(conv)
    infer = p.encode(conv.prompt(), generation=True)
    assert train.answer_start == len(infer.input_ids)
    assert train.input_ids[: train.answer_start] == infer.input_ids


def test_multi_turn_masks_every_assistant_turn() -> None:
    p = _proc("bpe-chatml", {"audio": 1})
    conv = Conversation(
        [
            Message("user", [Media("audio"), " How does she feel?"]),
            Message("assistant", ["happy"]),
            Message("user", ["Why?"]),
            Message("assistant", ["She laughs loudly."]),
        ]
    )
    enc = p.encode(conv)
    runs, cur = [], []
    for t, lab in zip(enc.input_ids, enc.labels, strict=True):
        if lab != IGNORE_INDEX:
            cur.append(t)
        elif cur:
            runs.append(cur)
            cur = []
    if cur:
        runs.append(cur)
    assert [p.tok.decode(r, skip_special_tokens=True).strip() for r in runs] == ["happy", "She laughs loudly."]
    # the second turn's inference prompt is the training prefix
    infer = p.encode(Conversation(conv.messages[:3]), generation=True)
    assert enc.input_ids[: len(infer.input_ids)] == infer.input_ids


def test_missing_modality_has_no_placeholder() -> None:
    p = _proc("bpe-chatml", {"audio": 2, "face": 2})
    enc = p.encode(_conv(mods=("audio",)))
    assert p.placeholder_ids["face"] not in enc.input_ids
    assert enc.modality_counts == {"audio": 1}


def test_unknown_modality_and_bad_roles_raise() -> None:
    p = _proc("bpe-chatml", {"audio": 2})
    with pytest.raises(ValueError, match="'face'"):
        p.encode(_conv(mods=("face",)))
    with pytest.raises(ValueError, match="ending with an assistant"):
        p.encode(_conv().prompt())
    with pytest.raises(ValueError, match="ending with a user"):
        p.encode(_conv(), generation=True)


def test_left_padding_for_generation() -> None:
    p = _proc("bpe-chatml", {"audio": 1})
    a = p.encode(Conversation([Message("user", [Media("audio"), " hi"])]), generation=True)
    b = p.encode(
        Conversation([Message("user", [Media("audio"), " a much longer question about the person"])]), generation=True
    )
    batch = p.collate([a, b], padding_side="left")
    assert batch["input_ids"].shape[1] == len(b)
    pad = len(b) - len(a)
    assert batch["attention_mask"][0, :pad].sum() == 0 and batch["attention_mask"][0, pad:].all()
    assert batch["input_ids"][0, pad:].tolist() == a.input_ids


def test_prompt_longer_than_max_length_raises_and_answer_truncates() -> None:
    p = _proc("bpe-chatml", {"audio": 1})
    p.max_length = 20
    with pytest.raises(ValueError, match="max_length=20"):
        p.encode(_conv(mods=("audio",)))
    p.max_length = 40
    enc = p.encode(Conversation([Message("user", ["hi"]), Message("assistant", ["word " * 60])]))
    assert len(enc) == 40 and enc.truncated


def test_placeholder_tokens_are_single_special_tokens() -> None:
    p = _proc("sp-llama2", {"face_clip": 1})
    ids = p.tok("x " + placeholder_token("face_clip") + " y", add_special_tokens=False)["input_ids"]
    assert ids.count(p.placeholder_ids["face_clip"]) == 1
