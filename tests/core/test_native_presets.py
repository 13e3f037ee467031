"""The full-size native presets: each published config builds on the ``meta`` device (no weights, no
memory) with the published parameter count, LoRA lists only language-model modules, and each preset
builds on a tiny folder laid out as its public repository (released key names; Qwen2.5-Omni as the
whole omni model, weights prefixed ``thinker.``, loaded into the thinker; Qwen2-VL's flat config).

    pytest tests/core/test_native_presets.py

Expected counts and where they come from (tolerance 1%):

- Qwen2-Audio-7B-Instruct: 8.4B, the Hugging Face model page's safetensors size (config arithmetic:
  8,397,094,912 = audio tower 637.0M + projector 5.2M + language model 7.755B, the
  Qwen-7B-sized LM with Qwen2-Audio's 156032-token vocabulary).
- Qwen2-VL-7B-Instruct: 8.29B, the model page's safetensors size (8,291,375,616 = vision 675.8M + LM).
- Qwen2.5-Omni-7B thinker: the released folder holds 10.7B with the talker and token2wav, which the
  thinker never loads; the thinker is Qwen2.5-7B (7.61B, the Qwen2.5-7B model card, embeddings untied)
  + the vision encoder (675M, the Qwen2.5-Omni technical report, arXiv 2503.20215) + the audio
  encoder (Whisper-large-v3's encoder, 637M, + a 1280 -> 3584 output projection): 8.93B.
- Qwen2.5-Omni-3B thinker: Qwen2.5-3B (3.09B, its model card, embeddings tied there) + the untied
  thinker head (151936 x 2048 = 311M) + vision 669M + audio 638M: 4.70B; the model page's 5.54B total
  less talker (385M) and token2wav (449M) gives the same 4.70B (a third-party per-module count of the
  released checkpoint).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from emollm.config import NativeTinyConfig
from emollm.model.native.build import load_native, lora_targets
from emollm.model.native.families import FAMILIES
from emollm.model.presets import NATIVE_FOLDERS, NATIVE_LORA, model_config

# preset -> (family, whole model, language model incl. embeddings and head, its layers); see the docstring
EXPECTED: dict[str, tuple[str, float, float, int]] = {
    "qwen2-audio-7b-instruct": ("qwen2-audio", 8.4e9, 7.755e9, 32),
    "qwen2-vl-7b-instruct": ("qwen2-vl", 8.29e9, 7.61e9, 28),
    "qwen2.5-omni-7b": ("qwen2.5-omni", 8.93e9, 7.61e9, 28),
    "qwen2.5-omni-3b": ("qwen2.5-omni", 4.70e9, 3.09e9 + 151936 * 2048, 36),
}
TOWERS = {"qwen2-audio": {"audio_tower": 637e6}, "qwen2-vl": {"visual": 675e6}}
TOWERS["qwen2.5-omni"] = {"audio_tower": 638e6, "visual": 675e6}


def _meta(preset: str) -> tuple[torch.nn.Module, object]:
    fam = FAMILIES.get(EXPECTED[preset][0])
    with torch.device("meta"):
        model = fam.hf_cls()(fam.full_size[preset]())
    return model, fam


def _count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_every_full_size_preset_has_a_published_config() -> None:
    assert set(NATIVE_FOLDERS) == set(EXPECTED)
    for preset, (family, *_rest) in EXPECTED.items():
        cfg = model_config(preset)
        assert cfg.llm.family == family and cfg.llm.source == "hf" and cfg.llm.dtype == "auto"
        assert preset in FAMILIES.get(family).full_size
        assert cfg.llm.path is not None and cfg.llm.path.endswith("/" + NATIVE_FOLDERS[preset])


# config.json of each release: text (hidden, layers, heads, kv heads, intermediate, vocab), tower width/depth
RELEASED = {
    "qwen2-audio-7b-instruct": ((4096, 32, 32, 32, 11008, 156032), {"audio": (1280, 32)}),
    "qwen2-vl-7b-instruct": ((3584, 28, 28, 4, 18944, 152064), {"vision": (1280, 32)}),
    "qwen2.5-omni-7b": ((3584, 28, 28, 4, 18944, 152064), {"audio": (1280, 32), "vision": (1280, 32)}),
    "qwen2.5-omni-3b": ((2048, 36, 16, 2, 11008, 151936), {"audio": (1280, 32), "vision": (1280, 32)}),
}


@pytest.mark.parametrize("preset", sorted(RELEASED))
def test_full_size_configs_hold_the_released_values(preset: str) -> None:
    cfg = FAMILIES.get(EXPECTED[preset][0]).full_size[preset]()
    t = cfg.text_config
    got = (t.hidden_size, t.num_hidden_layers, t.num_attention_heads, t.num_key_value_heads)
    assert got + (t.intermediate_size, t.vocab_size) == RELEASED[preset][0]
    for tower, (width, depth) in RELEASED[preset][1].items():
        c = getattr(cfg, f"{tower}_config")
        if tower == "audio":
            assert (c.d_model, c.encoder_layers, c.num_mel_bins) == (width, depth, 128)
        else:
            w = c.embed_dim if hasattr(c, "embed_dim") else c.hidden_size
            assert (w, c.depth, c.patch_size, c.temporal_patch_size, c.spatial_merge_size) == (width, depth, 14, 2, 2)
    if FAMILIES.get(EXPECTED[preset][0]).mrope:  # time, height, width sections of the 64-wide rotary half
        assert t.rope_parameters["mrope_section"] == [16, 24, 24]


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_full_size_model_on_meta_has_the_published_parameter_count(preset: str) -> None:
    family, total, lm, layers = EXPECTED[preset]
    model, fam = _meta(preset)
    assert next(model.parameters()).device.type == "meta"
    n = _count(model)
    assert abs(n - total) / total < 0.01, f"{preset}: {n:,} parameters, published {total:,.0f}"
    n_lm = _count(model.model.language_model) + model.lm_head.weight.numel()
    assert model.lm_head.weight is not model.model.language_model.embed_tokens.weight  # untied in all four
    assert abs(n_lm - lm) / lm < 0.01, f"{preset}: language model {n_lm:,}, published {lm:,.0f}"
    for tower, size in TOWERS[family].items():
        got = _count(model.model.get_submodule(tower))
        assert abs(got - size) / size < 0.01, f"{preset}: {tower} {got:,}"


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_lora_targets_are_the_language_model_layers_only(preset: str) -> None:
    _, _, _, layers = EXPECTED[preset]
    model, fam = _meta(preset)
    targets = list(model_config(preset).lora.targets)
    assert targets == NATIVE_LORA["targets"]
    found = lora_targets(model, fam, targets)
    assert len(found) == layers * len(targets)
    assert all(n.startswith("model.language_model.layers.") for n in found)
    assert not any(t in n.split(".") for n in found for t in fam.towers)
    # the towers do have modules of these names (Omni's audio attention, its vision MLP): the regex keeps them out
    all_named = [n for n, _ in model.named_modules() if n.rsplit(".", 1)[-1] in targets]
    if fam.name == "qwen2.5-omni":
        assert len(all_named) > len(found)


PREPROCESSOR = {  # the released preprocessor_config.json keys the native encoders read
    "qwen2-audio": {"feature_extractor_type": "WhisperFeatureExtractor", "feature_size": 128, "hop_length": 160},
    "qwen2-vl": {
        "image_processor_type": "Qwen2VLImageProcessor",
        "patch_size": 14,
        "temporal_patch_size": 2,
        "merge_size": 2,
        "image_mean": [0.48145466, 0.4578275, 0.40821073],
        "image_std": [0.26862954, 0.26130258, 0.27577711],
    },
}
PREPROCESSOR["qwen2.5-omni"] = {**PREPROCESSOR["qwen2-audio"], **PREPROCESSOR["qwen2-vl"]}


def _released_key(family: str, k: str) -> str:
    """transformers v5 parameter name -> the name in the released (transformers 4.x) safetensors."""
    if family == "qwen2.5-omni":  # thinker.model.*, thinker.audio_tower.*, thinker.visual.*, thinker.lm_head.*
        if k.startswith("model.language_model."):
            return "thinker.model." + k.removeprefix("model.language_model.")
        return "thinker." + k.removeprefix("model.")
    if (
        family == "qwen2-audio"
    ):  # language_model.model.*, language_model.lm_head.*, audio_tower.*, multi_modal_projector.*
        if k.startswith("model.language_model."):
            return "language_model.model." + k.removeprefix("model.language_model.")
        return "language_model.lm_head.weight" if k == "lm_head.weight" else k.removeprefix("model.")
    # qwen2-vl: model.* (the language model), visual.*, lm_head.*
    if k.startswith("model.language_model."):
        return "model." + k.removeprefix("model.language_model.")
    return k.removeprefix("model.") if k.startswith("model.visual.") else k


def _released_folder(family: str, out: Path, seed: int) -> torch.nn.Module:
    """A tiny random model of ``family`` written as its public Hugging Face repository is laid out:
    the released key names, Qwen2.5-Omni as the whole omni model (config of model_type qwen2_5_omni
    with a thinker_config; talker and token2wav tensors beside the thinker's), Qwen2-VL's flat legacy
    config.json, the chat template in chat_template.json beside the tokenizer, preprocessor_config.json."""
    from safetensors.torch import save_file

    ref, tok = FAMILIES.get(family).tiny(NativeTinyConfig(seed=seed))
    sd = {_released_key(family, k): v.contiguous().clone() for k, v in ref.state_dict().items()}
    cfg = ref.config.to_dict()
    if family == "qwen2.5-omni":
        from transformers import Qwen2_5OmniConfig

        sd["talker.codec_head.weight"] = torch.zeros(8, 4)
        sd["token2wav.code2wav_bigvgan_model.conv_post.weight"] = torch.zeros(1, 4, 7)
        cfg = Qwen2_5OmniConfig(thinker_config=cfg, enable_audio_output=True).to_dict()
    elif family == "qwen2-vl":
        text = cfg.pop("text_config")
        rope = text.pop("rope_parameters")
        cfg.update({k: v for k, v in text.items() if k not in ("model_type", "layer_types")})
        cfg["rope_theta"], cfg["rope_scaling"] = (
            rope["rope_theta"],
            {"type": "mrope", "mrope_section": rope["mrope_section"]},
        )
    save_file(sd, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(cfg))
    tok.save_pretrained(out)
    template = tok.chat_template
    for f in ("chat_template.jinja", "chat_template.json"):
        (out / f).unlink(missing_ok=True)
    tc = json.loads((out / "tokenizer_config.json").read_text())
    tc.pop("chat_template", None)
    (out / "tokenizer_config.json").write_text(json.dumps(tc))
    (out / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    (out / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR[family]))
    return ref


@pytest.mark.parametrize("preset", sorted(EXPECTED))
def test_full_size_preset_builds_on_a_folder_in_the_released_layout(preset: str, tmp_path: Path) -> None:
    """Each full-size preset, pointed at a tiny folder laid out as its public repository, builds with
    its own settings (media, LoRA on all seven LM linears, system prompt) and the folder's weights.
    Qwen2.5-Omni's folder is the whole omni model: transformers v5 loads it into the thinker as is (the
    thinker class's conversion mapping drops ``thinker.``; the config loader takes ``thinker_config``;
    talker/token2wav tensors are skipped), so ``load_native`` needs no extraction step."""
    from emollm.model.native.build import build_native

    family = EXPECTED[preset][0]
    ref = _released_folder(family, tmp_path, seed=5)
    if family == "qwen2.5-omni":
        assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "qwen2_5_omni"
    cfg = model_config(preset, overrides=[f"llm.path={tmp_path}", "llm.dtype=float32"])
    model, tok = load_native(cfg, "cpu")
    assert type(model).__name__ == FAMILIES.get(family).hf_class
    got = model.state_dict()
    assert set(got) == set(ref.state_dict())
    for k, v in ref.state_dict().items():
        assert torch.equal(got[k], v), k
    assert tok.chat_template  # from chat_template.json

    lm, processor, encoders = build_native(cfg, "cpu")
    tokens = {m: e.llm_tokens for m, e in encoders.items()}
    assert (
        tokens
        == {
            "qwen2.5-omni-7b": {"video": 576, "audio": 250},
            "qwen2.5-omni-3b": {"video": 576, "audio": 250},
            "qwen2-audio-7b-instruct": {"audio": 375},
            "qwen2-vl-7b-instruct": {"video": 1152},
        }[preset]
    )
    assert processor.system_prompt == cfg.system_prompt
    assert (cfg.system_prompt or "").startswith("You are Qwen") == (family == "qwen2.5-omni")
    adapted = {n.rsplit(".", 2)[0] for n, _ in lm.named_parameters() if "lora_A" in n}
    assert len(adapted) == 2 * 7  # two tiny layers x seven linears
    assert not any(t in a.split(".") for a in adapted for t in FAMILIES.get(family).towers)


def _rows(out: str) -> dict[str, list[str]]:
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) == 3 and cells[0]:
            rows[cells[0]] = cells[1:]
    return rows


def test_doctor_names_each_native_folder_and_where_it_looked(tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from emollm.cli import app

    weights = tmp_path / "weights"
    omni = weights / "Qwen2.5-Omni-3B"
    omni.mkdir(parents=True)
    (omni / "config.json").write_text("{}")
    (omni / "preprocessor_config.json").write_text("{}")
    (weights / "Qwen2-VL-7B-Instruct").mkdir()
    (weights / "Qwen2-VL-7B-Instruct" / "config.json").write_text("{}")  # no processor settings
    monkeypatch.setenv("EMOLLM_WEIGHTS", str(weights))
    r = CliRunner().invoke(app, ["doctor"], env={"COLUMNS": "250"})
    assert r.exit_code == 0, r.output
    rows = _rows(r.output)
    assert rows["qwen2.5-omni-3b (qwen2.5-omni)"] == ["ok", str(omni)]
    status, detail = rows["qwen2-vl-7b-instruct (qwen2-vl)"]
    assert status == "missing" and "preprocessor_config.json" in detail
    for item, folder in (
        ("qwen2.5-omni-7b (qwen2.5-omni)", "Qwen2.5-Omni-7B"),
        ("qwen2-audio-7b-instruct (qwen2-audio)", "Qwen2-Audio-7B-Instruct"),
    ):
        assert rows[item] == ["missing", f"{weights / folder} (no config.json; set EMOLLM_WEIGHTS)"]


def test_ls_presets_lists_the_native_presets_with_their_family() -> None:
    from typer.testing import CliRunner

    from emollm.cli import app

    r = CliRunner().invoke(app, ["ls", "presets"])
    assert r.exit_code == 0, r.output
    lines = {line.split()[0]: line for line in r.output.splitlines() if line.strip()}
    for preset, (family, *_rest) in EXPECTED.items():
        assert f"family={family} " in lines[preset] and NATIVE_FOLDERS[preset] in lines[preset]
    for tiny in ("tiny-qwen2-audio", "tiny-qwen2.5-omni", "tiny-qwen2-vl"):
        assert "family=qwen2" in lines[tiny] and "llm=tiny:random" in lines[tiny]
    assert "family=causal" in lines["mini"]
