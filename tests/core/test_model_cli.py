"""The model-level commands (``emollm doctor | ls | validate | export``), run through the real entry
point ``emollm.cli.main`` (so user errors give ``error: ...`` and exit code 2, as in a shell).

    pytest tests/core/test_model_cli.py
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import pytest
import torch

from emollm.cli import main

REPO = Path(__file__).resolve().parents[2]


def emollm(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """Run ``emollm ARGS`` in-process through the console-script entry point: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["emollm", *args])
    monkeypatch.setenv("COLUMNS", "200")  # rich tables: no folding inside version strings
    with pytest.raises(SystemExit) as e:
        main()
    out = capsys.readouterr()
    code = e.value.code
    return (0 if code is None else int(code)), out.out, out.err


# -- doctor ----------------------------------------------------------------------------------------


def test_doctor_prints_versions_device_and_what_is_missing(tmp_path: Path, monkeypatch, capsys) -> None:
    import transformers

    weights = tmp_path / "weights"
    (weights / "Llama-2-7b-chat-hf").mkdir(parents=True)
    (weights / "Llama-2-7b-chat-hf" / "config.json").write_text("{}")
    monkeypatch.setenv("EMOLLM_WEIGHTS", str(weights))
    code, out, err = emollm(["doctor"], monkeypatch, capsys)
    assert code == 0, err
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip("│┃ ").split("│")]
        if len(cells) == 3 and cells[0]:
            rows[cells[0]] = cells[1:]
    assert rows["python"] == ["ok", platform.python_version()]
    assert rows["torch"] == ["ok", torch.__version__]
    assert rows["transformers"] == ["ok", transformers.__version__]
    status, device = rows["device"]
    assert status == "ok" and (device.startswith("cpu (") or device.startswith("cuda x"))
    # weights present under EMOLLM_WEIGHTS are found; absent ones say where they were looked for
    assert rows["emotion-llama llm"][0] == "ok"
    missing = [v for k, v in rows.items() if k.startswith("emotion-llama ") and k != "emotion-llama llm"]
    assert missing and all(s == "missing" and str(weights) in d and "EMOLLM_WEIGHTS" in d for s, d in missing)
    assert rows["EMOLLM_WEIGHTS"] == ["info", str(weights)]


# -- ls --------------------------------------------------------------------------------------------


def _names(out: str) -> list[str]:
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def test_ls_lists_every_registry(monkeypatch, capsys) -> None:
    from emollm.data.importers import IMPORTERS
    from emollm.encoders import ENCODERS
    from emollm.labels import LABEL_SPACES
    from emollm.model.presets import PRESETS
    from emollm.model.projectors import PROJECTORS

    for what, registry in (
        ("presets", PRESETS),
        ("encoders", ENCODERS),
        ("projectors", PROJECTORS),
        ("labels", LABEL_SPACES),
        ("importers", IMPORTERS),
    ):
        code, out, err = emollm(["ls", what], monkeypatch, capsys)
        assert code == 0, err
        assert _names(out) == list(registry.names()), what
    code, out, _ = emollm(["ls", "presets"], monkeypatch, capsys)
    assert "invalid" not in out and "tiny-fast" in out and "llm=" in out
    code, out, _ = emollm(["ls", "labels"], monkeypatch, capsys)
    assert any(line.startswith("mer6") and "worried" in line for line in out.splitlines())


@pytest.mark.parametrize(
    ("what", "folder"),
    [
        ("tasks", "eval/tasks"),
        ("suites", "eval/suites"),
        ("recipes", "data_recipes"),
        ("mixtures", "data_recipes/mixtures"),
    ],
)
def test_ls_lists_shipped_files(what: str, folder: str, monkeypatch, capsys) -> None:
    code, out, err = emollm(["ls", what], monkeypatch, capsys)
    assert code == 0, err
    expected = sorted(p.stem for p in (REPO / folder).glob("*.yaml"))
    assert expected and _names(out) == expected


def test_ls_unknown_listing_is_a_user_error(monkeypatch, capsys) -> None:
    code, out, err = emollm(["ls", "gadgets"], monkeypatch, capsys)
    assert code == 2
    assert err.startswith("error: unknown listing 'gadgets'") and "presets" in err


# -- validate --------------------------------------------------------------------------------------


def test_validate_accepts_a_shipped_recipe(monkeypatch, capsys) -> None:
    monkeypatch.chdir(REPO)
    code, out, err = emollm(["validate", "train/tiny.yaml"], monkeypatch, capsys)
    assert (code, err) == (0, "")
    assert out.strip() == "train/tiny.yaml: valid training recipe"


@pytest.mark.parametrize(
    ("edit", "key"),
    [
        ("learning_rate: 0.1\n", "learning_rate"),  # top level
        ("", "stages.0.max_step"),  # inside a stage (see below)
    ],
)
def test_validate_rejects_an_unknown_key_naming_it(edit: str, key: str, tmp_path: Path, monkeypatch, capsys) -> None:
    text = (REPO / "train" / "tiny.yaml").read_text()
    if key.startswith("stages."):
        text = text.replace("    max_steps: 4\n", "    max_step: 4\n", 1)
        assert "max_step: 4" in text
    bad = tmp_path / "train" / "bad.yaml"
    bad.parent.mkdir()
    bad.write_text(text + edit)
    monkeypatch.chdir(REPO)  # the recipe's mixtures resolve; only the bad key is wrong
    code, out, err = emollm(["validate", str(bad)], monkeypatch, capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and "bad.yaml" in err and key in err


def test_validate_rejects_a_file_it_cannot_classify(tmp_path: Path, monkeypatch, capsys) -> None:
    p = tmp_path / "misc.yaml"
    p.write_text("a: 1\n")
    code, _, err = emollm(["validate", str(p)], monkeypatch, capsys)
    assert code == 2 and "misc.yaml" in err and "kind of file" in err


# -- export ----------------------------------------------------------------------------------------


def test_export_writes_a_standalone_hf_folder(fresh_tiny_fast, tmp_path: Path, monkeypatch, capsys) -> None:
    from transformers import AutoModelForCausalLM

    from emollm.model.checkpoint import save_checkpoint
    from emollm.model.resolve import load_system

    s = fresh_tiny_fast
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():  # non-zero LoRA so that merging it changes the LLM
        for name, p in s.model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5)
    ck = save_checkpoint(s, tmp_path / "ck")
    out = tmp_path / "exported"
    code, stdout, err = emollm(["export", str(ck), "--out", str(out)], monkeypatch, capsys)
    assert code == 0, err
    assert f"exported to {out}" in stdout
    assert (out / "config.json").is_file() and (out / "model.yaml").is_file()

    llm = AutoModelForCausalLM.from_pretrained(out).eval()
    assert not any("lora" in k for k in llm.state_dict())  # merged, no adapter left
    source = load_system(ck)
    ids = torch.tensor([[5, 17, 42, 8, 99]])
    att = torch.ones_like(ids)
    with torch.no_grad():
        want = source.model(ids, att, features={}).logits  # the checkpoint: base + LoRA adapter
        with source.model.llm.disable_adapter():
            base = source.model(ids, att, features={}).logits
        got = llm(input_ids=ids, attention_mask=att).logits
    assert torch.allclose(got, want, atol=1e-4)
    assert not torch.allclose(got, base, atol=1e-3)  # the LoRA delta really is in the merged weights


def test_export_of_a_missing_checkpoint_is_a_user_error(tmp_path: Path, monkeypatch, capsys) -> None:
    code, _, err = emollm(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "x")], monkeypatch, capsys)
    assert code == 2 and err.startswith("error: ") and "nope" in err
    assert not (tmp_path / "x").exists()
