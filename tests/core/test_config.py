"""emollm/config.py: YAML -> typed configs, errors that name the key, dotted overrides, saved resolved configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from emollm.config import (
    ConfigError,
    EncoderConfig,
    LoRAConfig,
    ModalityConfig,
    ModelConfig,
    apply_overrides,
    dump_config,
    load_config,
    validate,
)
from emollm.model.presets import model_config, preset_dict
from emollm.training.config import RunConfig, load_run_config


def _write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def test_yaml_loads_into_typed_configs(tmp_path: Path) -> None:
    data = preset_dict("tiny-fast")
    data["lora"] = {"r": 16, "alpha": 32.5, "targets": ["q_proj", "o_proj"]}
    data["modalities"]["audio"]["encoder"]["options"] = {"layer": 1, "pooling": "segments", "tokens": 3}
    path = _write_yaml(tmp_path / "model.yaml", data)
    cfg = load_config(ModelConfig, path)
    assert isinstance(cfg.lora, LoRAConfig) and (cfg.lora.r, cfg.lora.alpha) == (16, 32.5)
    assert cfg.lora.targets == ["q_proj", "o_proj"] and cfg.lora.dropout == 0.05  # a default fills the gap
    assert list(cfg.modalities) == ["audio", "face"]  # order kept: it is the prompt order
    audio = cfg.modalities["audio"]
    assert isinstance(audio, ModalityConfig) and isinstance(audio.encoder, EncoderConfig)
    # encoder options are validated by the encoder's own schema, which also fills its defaults
    assert audio.encoder.options == {
        "layer": 1,
        "pooling": "segments",
        "tokens": 3,
        "max_seconds": 30.0,
        "normalize_waveform": True,
    }
    assert audio.projector.name == "linear" and cfg.llm.source == "tiny"


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(ModelConfig, tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("llm: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_config(ModelConfig, bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"list\.yaml: expected a mapping at the top level, got list"):
        load_config(ModelConfig, listy)


@pytest.mark.parametrize(
    ("section", "key", "suggestion"),
    [
        (("lora",), "rr", "r"),
        ((), "max_lenght", "max_length"),
        (("modalities", "audio", "encoder"), "nam", "name"),
        (("llm", "tiny"), "hidden_sise", "hidden_size"),
    ],
)
def test_unknown_key_names_it_and_suggests_a_close_match(
    tmp_path: Path, section: tuple[str, ...], key: str, suggestion: str
) -> None:
    data = preset_dict("tiny-fast")
    node = data
    for s in section:
        node = node.setdefault(s, {})
    node[key] = 1
    path = _write_yaml(tmp_path / "typo.yaml", data)
    dotted = ".".join((*section, key))
    with pytest.raises(ConfigError) as ei:
        load_config(ModelConfig, path)
    msg = str(ei.value)
    assert str(path) in msg
    assert f"unknown key '{dotted}' (did you mean '{suggestion}'?)" in msg


def test_unknown_key_without_a_close_match_has_no_suggestion() -> None:
    with pytest.raises(ConfigError) as ei:
        model_config("tiny-fast", overrides=["lora.zzzzzz=1"])
    assert "unknown key 'lora.zzzzzz'" in str(ei.value) and "did you mean" not in str(ei.value)


@pytest.mark.parametrize(
    ("override", "field", "detail"),
    [
        ("lora.r=lots", "lora.r", "valid integer"),
        ("lora.r=0", "lora.r", "greater than 0"),
        ("llm.dtype=fp8", "llm.dtype", "'float32'"),
        ("max_length=[1]", "max_length", "valid integer"),
        ("modalities.audio.projector.name=mlp", "modalities.audio.projector.name", "known: linear, mlp2x_gelu"),
        ("label_space=mer7", "label_space", "did you mean 'mer6'"),
        ("modalities.audio.encoder.options.layr=1", "modalities.audio.encoder", "unknown key 'layr'"),
    ],
)
def test_wrong_value_names_the_field(override: str, field: str, detail: str) -> None:
    with pytest.raises(ConfigError) as ei:
        model_config("tiny-fast", overrides=[override])
    msg = str(ei.value)
    assert f"{field}:" in msg and detail in msg, msg


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as ei:
        validate(ModelConfig, {**preset_dict("tiny-fast"), "max_length": "long", "lora": {"alpha": "x"}}, "m.yaml")
    msg = str(ei.value)
    assert msg.startswith("m.yaml: invalid configuration") and "lora.alpha:" in msg and "max_length:" in msg


def test_apply_overrides_sets_nested_values_parsed_as_yaml() -> None:
    data = {"a": {"b": {"c": 1}}, "x": "keep"}
    out = apply_overrides(data, ["a.b.c=2.5", "a.b.d=[1, 2]", "a.new.deep=true", "s=hello", "n=null", "e="])
    assert out is data
    assert data == {
        "a": {"b": {"c": 2.5, "d": [1, 2]}, "new": {"deep": True}},
        "x": "keep",
        "s": "hello",
        "n": None,
        "e": "",
    }


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("a.b", "must look like dotted.key=value"),
        ("=3", "must look like dotted.key=value"),
        ("x.y=1", "override x.y: 'x' is a str, not a mapping"),
        ("a.b=[unclosed", "value is not valid YAML"),
    ],
)
def test_bad_override_fails_clearly(override: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("[", r"\[")):
        apply_overrides({"a": {}, "x": "str"}, [override])


def test_run_config_overrides_reach_stages_by_index_and_the_merged_preset() -> None:
    base = load_run_config("train/tiny.yaml")
    assert base.stages[0].epochs == 1.0 and base.model.lora.r == 4  # r from the tiny-fast preset
    cfg = load_run_config(
        "train/tiny.yaml",
        ["stages.0.epochs=2", "stages.1.lr_lora=5.0e-5", "model.lora.r=16", "data.features.mode=live", "seed=7"],
    )
    assert isinstance(cfg, RunConfig)
    assert cfg.stages[0].epochs == 2.0 and cfg.stages[1].epochs == base.stages[1].epochs
    assert cfg.stages[1].lr_lora == 5.0e-5 and cfg.stages[0].lr_lora == base.stages[0].lr_lora
    assert cfg.model.lora.r == 16 and cfg.model.lora.alpha == base.model.lora.alpha  # rest of the preset kept
    assert list(cfg.model.modalities) == ["audio", "face"]
    assert (cfg.data.features.mode, cfg.seed) == ("live", 7)
    assert cfg.stages[0].name == "stage1_coarse" and cfg.stages[0].max_steps == 4  # untouched file values


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("stages.5.epochs=2", "override 'stages.5.epochs=2': there are only 2 stages"),
        ("stages.0.epochz=2", "unknown key 'stages.0.epochz' (did you mean 'epochs'?)"),
        ("stages.0.epochs=-1", "stages.0.epochs: Input should be greater than 0"),
        ("model.lora.rr=3", "unknown key 'model.lora.rr' (did you mean 'r'?)"),
        ("seed.x=1", "override seed.x: 'seed' is a int, not a mapping"),
        ("stages.first.epochs=1", "'stages' is a list, not a mapping"),
        ("preset=huge", "unknown preset 'huge'"),
    ],
)
def test_bad_run_override_fails_clearly(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as ei:
        load_run_config("train/tiny.yaml", [override])
    assert message in str(ei.value)


def test_overrides_do_not_leak_between_loads() -> None:
    load_run_config("train/tiny.yaml", ["stages.0.epochs=3", "model.lora.r=32"])
    again = load_run_config("train/tiny.yaml")
    assert again.stages[0].epochs == 1.0 and again.model.lora.r == 4
    assert model_config("tiny-fast").lora.r == 4


def test_dump_config_round_trips(tmp_path: Path) -> None:
    cfg = model_config("tiny", overrides=["lora.r=6", "modalities.face.projector.name=mlp2x_gelu"])
    dump_config(cfg, tmp_path / "model.yaml")
    back = load_config(ModelConfig, tmp_path / "model.yaml")
    assert back == cfg and back.modalities["face"].projector.name == "mlp2x_gelu"
    assert list(back.modalities) == list(cfg.modalities)


def test_resolved_configs_are_saved_beside_a_checkpoint(tmp_path: Path) -> None:
    from emollm.model.checkpoint import MODEL_YAML, is_checkpoint, read_model_config, write_checkpoint
    from emollm.model.resolve import model_config_for

    run = load_run_config("train/tiny.yaml", ["stages.0.epochs=2", "model.lora.r=5", "model.max_length=300"])
    out = write_checkpoint(tmp_path / "ckpt", {}, run.model, run_config=run, source="test")
    assert is_checkpoint(out) and (out / MODEL_YAML).is_file() and (out / "config.yaml").is_file()
    # model.yaml is the resolved model (preset + file + overrides), enough to rebuild the system
    assert read_model_config(out) == run.model and model_config_for(str(out)) == run.model
    assert read_model_config(out, ["lora.r=9"]).lora.r == 9
    # config.yaml is the resolved run recipe: it loads back to the same config (its preset re-merges identically)
    saved = yaml.safe_load((out / "config.yaml").read_text())
    assert saved["stages"][0]["epochs"] == 2.0 and saved["model"]["lora"]["r"] == 5
    assert load_run_config(out / "config.yaml") == run
