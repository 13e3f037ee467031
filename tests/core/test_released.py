"""Emotion-LLaMA released .pth checkpoints load into the emotion-llama layout (tiny sizes)."""

from __future__ import annotations

import pytest
import torch

from emollm.model.lora import lora_state_dict
from emollm.model.presets import model_config
from emollm.model.released import PROJECTOR_MAP, load_released_checkpoint
from emollm.model.system import build_system


def _released_state(system, peft_style: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    state = {}
    for old, mod in PROJECTOR_MAP.items():
        for k, v in system.model.projectors[mod].net.state_dict().items():
            state[f"{old}.{k}"] = torch.randn(v.shape, generator=g)
    for k, v in lora_state_dict(system.model.llm).items():
        name = k.removesuffix(".weight")
        key = f"llama_model.{name}" + (".default.weight" if peft_style == "new" else ".weight")
        state[key] = torch.randn(v.shape, generator=g)
    state["attention.fc1.weight"] = torch.zeros(2, 2)  # the original's unused fusion head
    return state


@pytest.mark.parametrize("peft_style", ["old", "new"])
def test_released_checkpoint_loads_both_peft_key_styles(tmp_path, peft_style: str) -> None:
    system = build_system(model_config("tiny"))  # same modality layout as emotion-llama
    state = _released_state(system, peft_style)
    path = tmp_path / "Emotion_LLaMA.pth"
    torch.save({"model": state, "optimizer": None, "epoch": 29}, path)
    skipped = load_released_checkpoint(system, path)
    assert skipped == ["attention.fc1.weight"]
    w = system.model.projectors["audio"].net.weight
    assert torch.equal(w, state["feats_llama_proj3.weight"])
    assert torch.equal(system.model.projectors["frame"].net.weight, state["llama_proj.weight"])
    lora = lora_state_dict(system.model.llm)
    k = next(iter(lora))
    src = f"llama_model.{k.removesuffix('.weight')}" + (".default.weight" if peft_style == "new" else ".weight")
    assert torch.equal(lora[k], state[src])


def test_released_checkpoint_errors_name_the_problem(tmp_path) -> None:
    system = build_system(model_config("tiny"))
    state = _released_state(system, "old")
    bad = dict(state)
    bad["llama_proj.weight"] = torch.zeros(3, 3)
    torch.save({"model": bad}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="projector tensor 'frame.net.weight' has shape"):
        load_released_checkpoint(system, tmp_path / "bad.pth")
    extra = dict(state, **{"mystery.weight": torch.zeros(1)})
    torch.save({"model": extra}, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match="'mystery.weight' has no emollm counterpart"):
        load_released_checkpoint(system, tmp_path / "extra.pth")
    fast = build_system(model_config("tiny-fast"))
    with pytest.raises(ValueError, match="need modalities"):
        load_released_checkpoint(fast, tmp_path / "extra.pth")


def test_emotion_llama_preset_layout() -> None:
    cfg = model_config("emotion-llama")
    assert list(cfg.modalities) == ["frame", "face", "face_clip", "audio", "frame_cls"]
    assert (cfg.lora.r, cfg.lora.alpha, cfg.lora.dropout, cfg.lora.targets) == (64, 16, 0.05, ["q_proj", "v_proj"])
    assert cfg.modalities["frame"].encoder.options["view"] == "patches4"
    assert cfg.modalities["frame_cls"].encoder.options["view"] == "cls"
    assert cfg.llm.path.endswith("Llama-2-7b-chat-hf")
