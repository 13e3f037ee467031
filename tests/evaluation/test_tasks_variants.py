"""Prompt-robustness variants: label orders, separators, casing, word forms, role line, and the base prompt."""

from __future__ import annotations

from pathlib import Path

import pytest

from emollm.config import ConfigError
from emollm.data.contract import default_contract
from emollm.evaluation.variants import PromptVariant, load_variants, render_instruction, render_labels
from emollm.labels import label_space

MER6 = label_space("mer6")


def test_shipped_variant_file_covers_every_family() -> None:
    vf = load_variants("pr_mer")
    fams = {v.family for v in vf.variants}
    assert {"P", "O", "S", "L", "R", "T"} <= fams
    assert len([v for v in vf.variants if v.family == "P"]) >= 5
    for v in vf.variants:  # every variant renders on the MER space (forms map back)
        render_labels(MER6, v)
    assert [v.id for v in vf.select(families=["O"])][:1] == ["O_rev"]
    assert [v.id for v in vf.select(only=["T_nosub", "P1"])] == ["T_nosub", "P1"]
    with pytest.raises(KeyError, match="no variant 'P9'"):
        vf.select(only=["P9"])


def test_orders_are_permutations_and_shuffles_are_seeded() -> None:
    canon = list(MER6.labels)
    assert render_labels(MER6, PromptVariant(id="b")).order == canon
    assert render_labels(MER6, PromptVariant(id="r", order="reversed")).order == canon[::-1]
    a = render_labels(MER6, PromptVariant(id="s", order="shuffled", seed=3))
    b = render_labels(MER6, PromptVariant(id="s", order="shuffled", seed=3))
    c = render_labels(MER6, PromptVariant(id="s", order="shuffled", seed=4))
    assert a.order == b.order and sorted(a.order) == sorted(canon) and a.order != c.order
    assert a.candidates == canon  # the answer vocabulary does not move with the prompt order
    with pytest.raises(ValueError, match="not a permutation"):
        render_labels(MER6, PromptVariant(id="x", order=["happy", "sad"]))


def test_separators_formats_and_casing_change_only_the_text() -> None:
    assert render_labels(MER6, PromptVariant(id="p", separator=" | ")).text.startswith("neutral | angry | happy")
    assert render_labels(MER6, PromptVariant(id="j", format="json")).text.startswith('["neutral", "angry"')
    assert "\n- worried\n" in render_labels(MER6, PromptVariant(id="bl", format="bullets")).text
    caps = render_labels(MER6, PromptVariant(id="c", casing="capitalized"))
    assert caps.text.startswith("Neutral, Angry") and caps.candidates == list(MER6.labels)


def test_word_forms_are_scored_and_mapped_back() -> None:
    v = PromptVariant(id="L", forms={"happy": "happiness", "Angry": "anger"})
    r = render_labels(MER6, v)
    assert "happiness" in r.text and "anger" in r.text
    assert r.candidates[:3] == ["neutral", "anger", "happiness"]
    assert r.to_canonical["happiness"] == "happy" and r.to_canonical["sad"] == "sad"
    with pytest.raises(ValueError, match="does not map back"):
        render_labels(MER6, PromptVariant(id="bad", forms={"happy": "gleeful"}))
    with pytest.raises(ValueError, match="not a label of mer6"):
        render_labels(MER6, PromptVariant(id="bad", forms={"joy": "joy"}))


def test_base_instruction_equals_the_training_prompt() -> None:
    recipe = default_contract(MER6)
    pool0 = "Please determine which emotion label in the video represents: {labels}."
    base = render_instruction(pool0, render_labels(MER6, PromptVariant(id="b")).text, "emotion")
    assert base == recipe.instruction("emotion", 0)
    role = render_instruction(pool0, "a, b", "emotion", role="You are an expert.")
    assert role == "[emotion] You are an expert. Please determine which emotion label in the video represents: a, b."


def test_variant_file_errors(tmp_path: Path) -> None:
    p = tmp_path / "v.yaml"
    p.write_text("name: v\nvariants:\n  - {id: base}\n")
    with pytest.raises(ConfigError, match="reserved"):
        load_variants(str(p))
    p.write_text("name: v\nvariants:\n  - {id: a, family: Q}\n")
    with pytest.raises(ConfigError, match="family"):
        load_variants(str(p))
    p.write_text("name: v\nvariants:\n  - {id: a}\n  - {id: a}\n")
    with pytest.raises(ConfigError, match="duplicate"):
        load_variants(str(p))
