"""A released native model folder named directly (``--backend native --checkpoint FOLDER``): resolved
from its config.json, loaded with its own weights (the same answers as the model that was saved), and
evaluated zero-shot with all its modalities; ``--backend native`` refuses emollm's own stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from emollm.config import NativeTinyConfig
from emollm.model.native.families import FAMILIES
from emollm.model.resolve import load_system, model_config_for, resolve_model


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2.5-Omni thinker saved as a released model folder would be laid out."""
    out = tmp_path_factory.mktemp("Qwen2.5-Omni-tiny")
    model, tok = FAMILIES.get("qwen2.5-omni").tiny(NativeTinyConfig(seed=3))
    model.save_pretrained(out)
    tok.save_pretrained(out)
    pre = {"feature_size": 128, "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2}
    (out / "preprocessor_config.json").write_text(json.dumps(pre))
    return out


def test_a_native_folder_resolves_and_loads_its_own_weights(folder: Path) -> None:
    m = resolve_model(folder)
    assert m.kind == "native" and m.path == folder
    cfg = model_config_for(folder)
    assert cfg.llm.family == "qwen2.5-omni" and cfg.llm.source == "hf" and not cfg.lora.enabled
    assert set(cfg.modalities) == {"video", "audio"}
    s = load_system(folder, device="cpu")
    assert s.trained and s.model.count_parameters()["trainable"] == 0
    ref, _ = FAMILIES.get("qwen2.5-omni").tiny(NativeTinyConfig(seed=3))
    got = dict(s.model.llm.named_parameters())
    for n, p in ref.named_parameters():
        assert torch.equal(got[n].float(), p.float()), n
    # overrides reach the media settings
    cfg2 = model_config_for(resolve_model(folder), ["modalities.audio.encoder.options.seconds=2"])
    assert cfg2.modalities["audio"].encoder.options["seconds"] == 2


def test_eval_backend_native_on_a_folder(folder: Path, synthmer_small: Path, tmp_path: Path) -> None:
    from emollm.cli import app

    out = tmp_path / "eval"
    args = ["eval", "--backend", "native", "--checkpoint", str(folder), "--tasks", "synthmer"]
    args += ["--root", f"synthmer={synthmer_small}", "--out", str(out), "--features", str(tmp_path / "f")]
    r = CliRunner().invoke(app, [*args, "--limit", "4", "--quiet", "--device", "cpu"])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "results.json").read_text())
    task = res["tasks"]["synthmer"]
    assert 0.0 <= task["headline"]["value"] <= 1.0 and task["answers"]["n"] == 4
    # a released model is asked with every modality it has (a preset's random projectors get none)
    assert sorted(task["conditions"]["base"]["modalities"]) == ["audio", "video"]
    assert res["checkpoint"]["kind"] == "native" and res["checkpoint"]["identity"].startswith("native:")


def test_backend_native_refuses_the_emollm_stack(tmp_path: Path) -> None:
    from emollm.cli import app

    r = CliRunner().invoke(app, ["eval", "--backend", "native", "--checkpoint", "tiny-fast", "--tasks", "synthmer"])
    assert r.exit_code != 0 and "use --backend local" in r.output + str(r.exception)
    man = tmp_path / "none"
    r = CliRunner().invoke(
        app, ["predict", "--backend", "native", "--checkpoint", "tiny-fast", "--folder", str(man), "--out", str(man)]
    )
    assert r.exit_code != 0 and "use --backend local" in r.output + str(r.exception)


def test_a_folder_of_another_model_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(FileNotFoundError, match="nor a native model folder"):
        resolve_model(tmp_path, "--checkpoint")
