"""ChatSession and `emollm chat`: multi-turn state, media at any turn, audio/image-only input,
streaming and cancellation, context trimming, the REPL and the one-shot CLI."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image
from typer.testing import CliRunner

from emollm.data.conversation import Media
from emollm.inference.chat import ChatInputError, ChatSession
from emollm.inference.commands import run_repl


@pytest.fixture(scope="module")
def wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("wav") / "voice.wav"
    t = np.arange(16000) / 16000
    sf.write(p, (0.3 * np.sin(2 * np.pi * 180 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32), 16000)
    return p


@pytest.fixture(scope="module")
def png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("png") / "face.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8)).save(p)
    return p


def test_media_at_a_later_turn_joins_the_conversation(predictor, test_samples, wav) -> None:
    man, samples = test_samples
    s = samples[0]
    chat = ChatSession(predictor, max_new_tokens=8)
    chat.attach_sample(s, man.root)
    first = chat.ask(task="label")
    chat.ask("Why?")
    chat.attach("audio", wav)
    third = chat.ask("And in this recording?", task="label", probs=True)
    conv, batch, feats = chat._inputs([*chat.turns, chat.prepare_turn("next?")])
    assert [m.role for m in conv.messages] == ["user", "assistant"] * 3 + ["user"]
    assert conv.messages[0].modalities == ["audio", "face"] and conv.messages[4].modalities == ["audio"]
    assert "[reason] Why?" in conv.messages[2].text and "The person in video says" in conv.messages[0].text
    assert feats["audio"].shape[0] == 2 and feats["face"].shape[0] == 1  # one row per attachment, turn order
    ph = predictor.system.processor.placeholder_ids
    per_item = {m: predictor.system.encoders[m].tokens_per_item for m in ph}
    assert int((batch["input_ids"] == ph["audio"]).sum()) == 2 * per_item["audio"]
    assert third.label in predictor.system.labels.labels and third.modalities == ["audio"]
    assert third.missing == {"face": "no video or image"}
    assert third.probs != first.probs  # another clip, in context
    chat.reset()
    assert chat.turns == [] and chat.pending == {}


def test_audio_only_and_image_only_input(predictor, wav, png) -> None:
    chat = ChatSession(predictor, max_new_tokens=4)
    chat.attach("audio", wav)
    r = chat.ask(task="label")
    assert r.modalities == ["audio"] and "face" in r.missing
    chat = ChatSession(predictor, max_new_tokens=4)
    chat.attach("image", png)
    chat.set_subtitle("I am fine")
    r = chat.ask()
    assert r.modalities == ["face"] and "audio" in r.missing and r.task == "explain"
    parts = chat.turns[0].message.parts
    assert parts[0] == Media("face") and "I am fine." in parts[1]


def test_probs_with_explain_are_the_eval_classification(predictor, test_samples) -> None:
    man, samples = test_samples
    s = samples[1]
    chat = ChatSession(predictor, max_new_tokens=4)
    chat.attach_sample(s, man.root)
    r = chat.ask("Tell me more", probs=True)
    assert r.label is None
    assert r.probs == pytest.approx(predictor.classify([s], man.root)[0].probs, abs=1e-5)


def test_streaming_can_be_cancelled(predictor, test_samples) -> None:
    man, samples = test_samples
    chat = ChatSession(predictor, max_new_tokens=32)
    chat.attach_sample(samples[2], man.root)
    stop = threading.Event()
    seen: list[str] = []

    def on_text(d: str) -> None:
        seen.append(d)
        stop.set()

    r = chat.ask(on_text=on_text, cancel=stop)
    assert r.finish_reason == "cancelled" and r.completion_tokens < 32
    assert "".join(seen) == r.text


def test_long_history_drops_middle_turns_keeps_the_clip(predictor, test_samples) -> None:
    man, samples = test_samples
    chat = ChatSession(predictor, max_new_tokens=4)
    chat.attach_sample(samples[0], man.root)
    chat.add_exchange(None, "sad")
    for i in range(30):
        chat.add_exchange(f"question {i} " + "tell me about the happy sad angry person " * 3, "neutral " * 20)
    r = chat.ask("Finally?", task="label")
    assert r.prompt_tokens <= predictor.system.processor.max_length
    conv, _, feats = chat._inputs([*chat.turns, chat.prepare_turn("again?")])
    assert conv.messages[0].modalities == ["audio", "face"] and "face" in feats
    assert len(conv.messages) < 2 * len(chat.turns) + 1
    with pytest.raises(ChatInputError, match="unknown task"):
        chat.ask(task="summarise")


def test_repl_commands(predictor, test_samples, wav) -> None:
    man, samples = test_samples
    out: list[str] = []
    chat = ChatSession(predictor, max_new_tokens=6)
    video = man.media_path(samples[0], "video")
    lines = [
        f"/video {video}",
        "/subtitle hello there",
        "/label",
        "/probs",
        "why do you think so?",
        "/audio /no/such/file.wav",
        "/bogus",
        "/task label",
        f"/audio {wav}",
        "",
        "/reset",
        "/quit",
        "never read",
    ]
    n = run_repl(chat, lines, out.append, stream=True)
    text = "".join(out)
    assert n == 3
    assert "[attached video" in text and "[subtitle: hello there]" in text and "[probabilities on]" in text
    assert "error: audio file not found" in text and "unknown command /bogus" in text
    assert "[probabilities] " in text and "[new conversation]" in text
    assert chat.turns == []


def test_cli_one_shot_and_piped_repl(tiny_ckpt, feature_cache, test_samples, predictor, tmp_path, monkeypatch) -> None:
    from emollm.cli import app

    man, samples = test_samples
    s = samples[3]
    video = man.media_path(s, "video")
    expect = predictor.classify([s], man.root)[0]
    common = ["--checkpoint", str(tiny_ckpt), "--cache-dir", str(feature_cache), "--device", "cpu"]
    args = ["chat", *common, "--video", str(video), "--subtitle", s.subtitle, "--task", "label", "--probs", "-p", ""]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert lines[0] == expect.label and lines[1].startswith(f"[probabilities] {expect.label} ")
    res = CliRunner().invoke(app, ["chat", *common, "--max-new-tokens", "4"], input=f"/video {video}\n/label\n/quit\n")
    assert res.exit_code == 0, res.output
    assert f"[attached video: {video}]" in res.output
    monkeypatch.chdir(tmp_path)  # no runs/ here: no default model
    res = CliRunner().invoke(app, ["chat", "--device", "cpu"])
    assert res.exit_code != 0 and "name a model" in str(res.exception)
