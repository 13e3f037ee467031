"""The one "preset or checkpoint?" resolver (emollm/model/resolve.py): what each name resolves to, and
the same clear error for an unknown name wherever it is typed.

Run: ``python -m pytest -q tests/core/test_resolve.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from emollm.model.checkpoint import MODEL_YAML, WEIGHTS
from emollm.model.resolve import ModelSpec, model_config_for, resolve_model
from emollm.paths import resource_root


def test_each_kind_of_name(tmp_path: Path) -> None:
    ck = tmp_path / "run" / "final"
    ck.mkdir(parents=True)
    (ck / WEIGHTS).write_bytes(b"")
    (ck / MODEL_YAML).write_text("llm: {source: tiny}\n")
    assert resolve_model(ck) == ModelSpec(str(ck), "checkpoint", ck)
    assert resolve_model("tiny-fast") == ModelSpec("tiny-fast", "preset")
    recipe = resource_root() / "train" / "tiny.yaml"
    assert resolve_model(recipe, recipes=True).kind == "recipe"
    assert model_config_for(ck).llm.source == "tiny"  # read from model.yaml, no weights loaded


def test_unknown_names_fail_the_same_way_everywhere(tmp_path: Path) -> None:
    with pytest.raises(
        KeyError, match=r"--checkpoint 'minii' is neither a checkpoint folder nor a preset \(did you mean 'mini'\?\)"
    ):
        resolve_model("minii", "--checkpoint")
    with pytest.raises(
        FileNotFoundError, match=r"is not an emollm checkpoint \(no trainable.safetensors \+ model.yaml\)"
    ):
        resolve_model(tmp_path, "--checkpoint")  # an existing folder that is no checkpoint
    with pytest.raises(KeyError, match="a run recipe"):
        resolve_model("nope.yaml", recipes=True)
