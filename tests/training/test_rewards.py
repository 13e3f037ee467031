"""RL rewards on hand-made completions: well-formed, malformed and samples lacking the gold field."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from emollm.config import ConfigError
from emollm.data.sample import Sample
from emollm.evaluation.metrics.wheel import WHEELS, EmotionWheel
from emollm.labels import label_space
from emollm.training.rewards import (
    RewardContext,
    RewardStack,
    check_reward_specs,
    length_penalty,
)

SPACE = label_space("mer6")


def _s(**kw) -> Sample:
    return Sample(id=kw.pop("id", "s1"), **kw)


def _ctx(fmt: str = "think_answer") -> RewardContext:
    return RewardContext(SPACE, fmt)


def _one(name: str, options: dict | None = None, **kw):
    stack = RewardStack.build([{"name": name, "options": options or {}}], SPACE, **kw)
    return stack.items[0][2]


@pytest.fixture
def wheel() -> EmotionWheel:
    """A hand-made wheel: happy/joyful/glad -> 'happy' cluster, sad/unhappy -> 'sad', angry -> 'angry';
    'neutral' is a known form on no wheel (dropped, as in the real resources)."""
    forms = {w: [w] for w in ("happy", "joyful", "glad", "sad", "unhappy", "angry", "neutral", "calm")}
    raw = {"happy": ["happy"], "joyful": ["happy"], "glad": ["happy"], "sad": ["sad"], "unhappy": ["sad"]}
    raw.update({"angry": ["angry"], "neutral": ["neutral"], "calm": ["calm"]})
    level = {"happy": "happy", "sad": "sad", "angry": "angry"}
    maps = {w: {"level1": dict(level), "level2": dict(level)} for w in WHEELS}
    maps["wheel5"]["level1"] = {"happy": "positive", "sad": "negative", "angry": "negative"}
    return EmotionWheel(
        version="hand",
        folder=Path("."),
        format_mapping=forms,
        raw_mapping=raw,
        wheel_maps=maps,
        roots={w: ["happy", "sad", "angry"] for w in WHEELS},
        level2_words={w: [] for w in WHEELS},
    )


def test_format_per_answer_format() -> None:
    f = _one("format")
    s = _s(label="happy")
    assert f("<think>smiles</think><answer>happy</answer>", s, _ctx()) == 1.0
    assert f("  <think>a\nb</think>\n<answer>happy</answer>\n", s, _ctx()) == 1.0
    assert f("<think>smiles</think><answer>happy</answer> trailing", s, _ctx()) == 0.0  # fullmatch
    assert f("<answer>happy</answer>", s, _ctx()) == 0.0
    assert f("", s, _ctx()) == 0.0
    assert f("Happiness.", s, _ctx("label")) == 1.0
    assert f("bored", s, _ctx("label")) == 0.0
    assert f("happy, tired", s, _ctx("list")) == 1.0
    assert f("   ", s, _ctx("text")) == 0.0


def test_label_exact_synonyms_mention_and_missing_gold() -> None:
    s = _s(label="happy")
    exact, syn, men = _one("label", {"match": "exact"}), _one("label"), _one("label", {"match": "mention"})
    ok = "<think>she smiles</think><answer>happy</answer>"
    assert exact(ok, s, _ctx()) == syn(ok, s, _ctx()) == 1.0
    assert exact("<think>x</think><answer>Happiness</answer>", s, _ctx()) == 0.0  # R1-Omni: case-sensitive
    assert syn("<think>x</think><answer>Happiness.</answer>", s, _ctx()) == 1.0
    assert syn("<think>x</think><answer>sad</answer>", s, _ctx()) == 0.0
    assert syn("<think>x</think><answer>I think she is happy</answer>", s, _ctx()) == 0.0
    assert men("<think>x</think><answer>I think she is happy</answer>", s, _ctx()) == 1.0
    assert syn("happy", s, _ctx()) == 0.0  # malformed think_answer: a real 0
    assert syn("glad", s, _ctx("label")) == 1.0
    assert syn(ok, _s(label=None), _ctx()) is None  # no gold: reported, not 0


def test_wheel_f1_with_length_penalties(wheel: EmotionWheel) -> None:
    s = _s(openset=["happy", "sad"])
    r = _one("wheel_f1", {"wheel": "unused"}, wheel=wheel)
    assert r("<think>t</think><answer>joyful, unhappy</answer>", s, _ctx()) == pytest.approx(1.0)
    # one of two gold clusters hit: P=1, R=1/2 on wheels 1-4; wheel 5: 'happy' and 'sad' clusters differ too
    assert r("<think>t</think><answer>glad</answer>", s, _ctx()) == pytest.approx(2 / 3)
    assert r("<think>t</think><answer>calm</answer>", s, _ctx()) == 0.0
    assert r("no tags", s, _ctx()) == 0.0
    assert r("<think>t</think><answer>happy</answer>", _s(openset=None), _ctx()) is None
    assert r("<think>t</think><answer>happy</answer>", _s(openset=["neutral"]), _ctx()) is None  # maps to nothing
    p2 = _one("wheel_f1", {"wheel": "unused", "penalty": "p2"}, wheel=wheel)
    four = "<think>t</think><answer>happy, sad, angry, calm</answer>"
    base = r(four, s, _ctx())
    assert p2(four, s, _ctx()) == pytest.approx(base * 2 / 4)
    assert length_penalty("p1", 4, 2) == pytest.approx(1 / 3)
    assert length_penalty("p3", 4, 2) == pytest.approx(math.log(2) / math.log(4))
    assert length_penalty("p2", 1, 2) == 1.0  # only when over-long
    by_label = _one("wheel_f1", {"wheel": "unused", "gold": "label"}, wheel=wheel)
    assert by_label("<think>t</think><answer>glad</answer>", _s(label="happy"), _ctx()) == pytest.approx(1.0)


def test_hitrate(wheel: EmotionWheel) -> None:
    r = _one("hitrate", {"wheel": "unused"}, wheel=wheel)
    assert r("<think>t</think><answer>joyful, tired</answer>", _s(label="happy"), _ctx()) == 1.0
    # 'sad' and 'angry' share wheel 5's 'negative' cluster: a hit on that wheel only
    assert r("<think>t</think><answer>angry</answer>", _s(label="sad"), _ctx()) == pytest.approx(1 / 5)
    assert r("<think>t</think><answer>angry</answer>", _s(label="neutral"), _ctx()) is None
    assert r("<think>t</think><answer>angry</answer>", _s(label=None), _ctx()) is None


def test_valence_sign_and_distance() -> None:
    r = _one("valence", {"scale": 10.0})
    assert r("<think>t</think><answer>2.0</answer>", _s(valence=2.0), _ctx()) == pytest.approx(1.0)
    assert r("<think>t</think><answer>-3</answer>", _s(valence=2.0), _ctx()) == pytest.approx(0.25)
    assert r("<think>t</think><answer>happy</answer>", _s(valence=2.0), _ctx()) == pytest.approx(1.0)  # word +2
    assert r("<think>t</think><answer>sad</answer>", _s(valence=1.0), _ctx()) == pytest.approx(0.5 * 0.7)
    assert r("<think>t</think><answer>no idea</answer>", _s(valence=1.0), _ctx()) == 0.0
    assert r("garbage", _s(valence=1.0), _ctx()) == 0.0
    assert r("<think>t</think><answer>1</answer>", _s(valence=None), _ctx()) is None


def test_consistency_of_reasoning_and_answer() -> None:
    r = _one("consistency")
    s = _s()
    assert r("<think>She looks happy and glad.</think><answer>happy</answer>", s, _ctx()) == 1.0
    assert r("<think>She seems sad, maybe angry.</think><answer>sad</answer>", s, _ctx()) == pytest.approx(0.5)
    assert r("<think>She seems sad.</think><answer>happy</answer>", s, _ctx()) == 0.0
    assert r("<think>No emotion words.</think><answer>happy</answer>", s, _ctx()) == 0.0
    assert r("happy", s, _ctx()) == 0.0
    assert r("happy", s, _ctx("label")) is None  # no think part in this task: reported


class _Backend:
    """A deterministic judge backend: 8 out of 10, and an unreadable reply for reasoning saying 'broken'."""

    identity = "hand-judge"

    def __init__(self) -> None:
        self.calls = 0

    def complete(self, prompt: str) -> str:
        self.calls += 1
        if "broken" in prompt:
            return "I cannot rate this."
        return "8"


def test_judge_reward_is_cached_and_unreadable_replies_are_reported(tmp_path) -> None:
    be = _Backend()
    r = _one("judge", {"model": "m", "cache_dir": str(tmp_path / "cache"), "language": "en"}, backend=be)
    s = _s(fine="She smiles broadly, so she is happy.")
    good = "<think>a wide smile</think><answer>happy</answer>"
    v = r(good, s, _ctx())
    assert v == pytest.approx(7 / 9)
    assert r(good, s, _ctx()) == v and be.calls == 1  # second time from the cache
    assert r("<think>broken</think><answer>happy</answer>", s, _ctx()) is None
    assert r(good, _s(), _ctx()) is None  # no gold description
    r.close()
    assert list((tmp_path / "cache").glob("*.jsonl"))


def test_stack_weights_missing_and_bad_specs() -> None:
    stack = RewardStack.build([{"name": "label", "weight": 1.0}, {"name": "format", "weight": 0.5}], SPACE)
    comps = ["<think>t</think><answer>happy</answer>", "<think>t</think><answer>sad</answer>", "broken"]
    samples = [_s(id="a", label="happy"), _s(id="b", label=None), _s(id="c", label="sad")]
    out = stack.score(comps, samples, ["think_answer"] * 3)
    assert out.total.tolist() == [1.5, 0.5, 0.0]  # b: only format scored it
    assert np.isnan(out.components["label"][1]) and out.missing == {"label": ["b"]}
    assert stack.missing_total["label"] == 1
    assert out.means()["label"] == pytest.approx(0.5)
    only_label = RewardStack.build([{"name": "label"}], SPACE)
    assert np.isnan(only_label.score(["x"], [_s(label=None)], ["label"]).total[0])  # nothing scored it
    assert stack.coverage(samples) == {"label": 1, "format": 0}
    with pytest.raises(ConfigError, match="did you mean 'label'"):
        RewardStack.build([{"name": "lable"}], SPACE)
    with pytest.raises(ConfigError, match="unknown option"):
        check_reward_specs([{"name": "label", "options": {"mach": "exact"}}], "stages[1].rl.rewards")
    with pytest.raises(ConfigError, match="emotion-wheel resources not found"):
        RewardStack.build([{"name": "wheel_f1", "options": {"wheel": "/nonexistent"}}], SPACE)


def test_think_answer_tasks_in_the_contract() -> None:
    from emollm.data.contract import PromptContract, split_think_answer
    from emollm.data.instructions import load_mixture

    c = PromptContract.from_mixture(load_mixture("data_recipes/mixtures/rl_emotion_think.yaml"), SPACE)
    t = c.task("emotion_think")
    assert t.answer_format == "think_answer" and t.target == "label"
    assert "<answer>" in c.instruction("emotion_think") and "neutral, angry" in c.instruction("emotion_think")
    s = _s(label="sad", fine="Her voice trembles and she looks down. ")
    assert c.target(s, "emotion_think") == "<think>Her voice trembles and she looks down.</think><answer>sad</answer>"
    assert split_think_answer(c.target(s, "emotion_think")) == ("Her voice trembles and she looks down.", "sad")
    bare = _s(label="sad")  # no reasoning: SFT cannot teach the format from it, RL can still ask it
    assert c.target(bare, "emotion_think") is None and c.gold(bare, "emotion_think") == "sad"
    assert c.available_tasks(bare) == [] and c.available_tasks(bare, gold_only=True) == ["emotion_think"]
    assert split_think_answer("<think>a</think><answer>b</answer> extra") is None
