"""Verifiable emotion rewards for RL stages: a registry by name, composed with weights in the recipe.

    rewards:                               # in an `rl` stage of train/*.yaml
      - {name: format, weight: 0.5}
      - {name: label, weight: 1.0, options: {match: synonyms}}
      - {name: wheel_f1, weight: 1.0, options: {wheel: /data/emotion_wheel, penalty: p2}}

    stack = RewardStack.build(specs, space)                   # checks every name and option up front
    out = stack.score(completions, samples, answer_formats)   # per component [N] (NaN = not scored), total
    out.total, out.components["label"], out.missing["label"]  # missing: sample ids lacking the gold field

Each reward is a small function of (completion, sample, context) returning a score in [0, 1], or
``None`` when the sample lacks the gold field the reward needs (or a judge could not be read): that
completion is *reported* (counted per component, logged with the first sample ids), never scored 0. A
malformed completion is a real score (0), not a missing one. The total is the weighted sum over the
components that scored it; a completion no component could score has total NaN and is left out of the
loss.

- ``format``: the task's answer format. ``think_answer``: ``<think>…</think><answer>…</answer>``
  fullmatch (R1-Omni); ``label``: the whole answer is one label (synonyms allowed); ``list``: at least
  one emotion word; ``text``: not empty.
- ``label`` (needs ``label``): the answer (inside ``<answer>`` for think_answer) is the gold label.
  ``match: exact`` is R1-Omni's case-sensitive string equality; ``synonyms`` (default) normalises
  through the label space (``Happiness.`` = ``happy``); ``mention`` also accepts the earliest label
  mentioned in a longer answer.
- ``wheel_f1`` (needs ``openset``, or ``label`` with ``gold: label``): the emotion-wheel F-score of the
  answer's words against the gold words (M3 mapping, mean over the 5 wheels at ``level``), times an
  optional AffectGPT-R1 length penalty when the answer lists more distinct words than the gold
  (``p1`` 1/(n_pred-n_gt+1), ``p2`` n_gt/n_pred, ``p3`` log n_gt / log n_pred). Gold words that map to
  nothing on every wheel make the sample unscorable (reported).
- ``hitrate`` (needs ``label``): MER-UniBench's hit rate for one sample: the fraction of the 5 level-1
  wheels on which the gold label's cluster is among the answer words' clusters (``neutral`` maps to
  nothing: reported).
- ``valence`` (needs ``valence``): 0.5 for the right sign (positive / negative / zero within
  ``neutral_band``) + 0.5 (1 - |pred - gold| / ``scale``, floored at 0). The predicted valence is the
  first number in the answer, else the sentiment of its emotion words (+-``word_value``).
- ``consistency``: the emotion labels the ``<think>`` part mentions agree with the answer: Jaccard
  overlap of the two label sets (0 when either is empty or the completion is malformed). A task whose
  format has no think part is reported.
- ``judge`` (needs ``fine`` or ``coarse``): an LLM judge (``emollm.evaluation.judge``, local or
  OpenAI-compatible backend) rates the reasoning against the gold description with the EMER clue
  prompt (1-10, scaled to [0, 1]); replies are cached on disk by (sample, prompt) so repeated
  completions cost nothing; unreadable replies are reported.

Register a new reward with ``@REWARDS.register("name")`` on a class with ``needs`` and ``__call__``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from emollm.config import ConfigError, Strict
from emollm.data.contract import split_think_answer
from emollm.data.sample import Sample
from emollm.labels import LabelSpace
from emollm.log import get_logger
from emollm.registry import Registry

log = get_logger(__name__)

REWARDS: Registry[type[Any]] = Registry("reward")
"""Reward classes by name: ``Options`` (a pydantic model), ``needs`` (Sample fields), ``__call__``."""


class RewardSpec(Strict):
    """One component of an RL stage's reward."""

    name: str
    """A registered reward: format, label, wheel_f1, hitrate, valence, consistency, judge."""
    weight: float = 1.0
    """Multiplies the component's [0, 1] score in the total."""
    options: dict[str, Any] = Field(default_factory=dict)
    """The reward's own options (see emollm.training.rewards)."""


@dataclass
class RewardContext:
    """What a reward sees besides the completion and the sample."""

    space: LabelSpace
    answer_format: str
    """The asked task's answer format (label, text, list, think_answer)."""


def answer_part(completion: str, answer_format: str) -> str | None:
    """The answer of a completion: inside ``<answer>`` for think_answer (None if malformed), else all of it."""
    if answer_format == "think_answer":
        parts = split_think_answer(completion)
        return parts[1] if parts else None
    return completion.strip()


def _words(text: str | None) -> list[str]:
    from emollm.answers import read_openset

    return list(dict.fromkeys(w.lower() for w in read_openset(text))) if text else []


class _Reward:
    needs: ClassVar[tuple[str, ...]] = ()
    """Sample fields of which at least one must be present (else the sample is reported)."""

    class Options(Strict):
        pass

    def __init__(self, options: dict[str, Any], where: str) -> None:
        from emollm.config import validate

        self.opts = validate(self.Options, options, where)

    def has_gold(self, sample: Sample) -> bool:
        return not self.needs or any(getattr(sample, f) not in (None, "", []) for f in self.needs)

    def __call__(self, completion: str, sample: Sample, ctx: RewardContext) -> float | None:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:
        pass


@REWARDS.register("format")
class FormatReward(_Reward):
    def __call__(self, completion: str, sample: Sample, ctx: RewardContext) -> float | None:
        fmt = ctx.answer_format
        if fmt == "think_answer":
            return 1.0 if split_think_answer(completion) else 0.0
        if fmt == "label":
            return 1.0 if ctx.space.normalize(completion) is not None else 0.0
        if fmt == "list":
            return 1.0 if _words(completion) else 0.0
        return 1.0 if completion.strip() else 0.0


@REWARDS.register("label")
class LabelReward(_Reward):
    needs = ("label",)

    class Options(Strict):
        match: Literal["exact", "synonyms", "mention"] = "synonyms"

    def __call__(self, completion: str, sample: Sample, ctx: RewardContext) -> float | None:
        if not sample.label:
            return None
        ans = answer_part(completion, ctx.answer_format)
        if ans is None:
            return 0.0
        if self.opts.match == "exact":
            return 1.0 if ans.strip() == sample.label else 0.0
        got = ctx.space.normalize(ans)
        if got is None and self.opts.match == "mention":
            got = ctx.space.find_in_text(ans)
        return 1.0 if got == sample.label else 0.0


def length_penalty(kind: str, n_pred: int, n_gt: int) -> float:
    """AffectGPT-R1's penalties, applied only when the answer lists more distinct words than the gold."""
    if kind == "none" or n_pred <= n_gt or n_gt <= 0:
        return 1.0
    if kind == "p1":
        return 1.0 / (n_pred - n_gt + 1)
    if kind == "p2":
        return n_gt / n_pred
    if kind == "p3":
        return math.log(n_gt) / math.log(n_pred) if n_gt > 1 else 1.0 / math.log(n_pred + 1)
    raise ValueError(f"unknown length penalty {kind!r}")


class _WheelReward(_Reward):
    class Options(Strict):
        wheel: str
        """Folder with the emotion-wheel resources (format.csv, synonym.xlsx, wheel1..5.xlsx)."""
        version: Literal["affectgpt2025", "mer2026"] = "affectgpt2025"
        verify: bool = True
        """Check the pinned sha256 of every resource file."""

    def __init__(self, options: dict[str, Any], where: str, wheel: Any = None) -> None:
        super().__init__(options, where)
        if wheel is None:
            from emollm.evaluation.metrics.wheel import load_wheel

            try:
                wheel = load_wheel(self.opts.wheel, self.opts.version, verify=self.opts.verify)
            except (FileNotFoundError, ValueError) as e:
                raise ConfigError(f"{where}: {e}") from None
        self.wheel = wheel


@REWARDS.register("wheel_f1")
class WheelF1Reward(_WheelReward):
    needs = ("openset",)

    class Options(_WheelReward.Options):
        level: Literal["level1", "level2"] = "level1"
        penalty: Literal["none", "p1", "p2", "p3"] = "none"
        gold: Literal["openset", "label"] = "openset"
        """The gold words: the sample's openset list, or its single label."""

    def __init__(self, options: dict[str, Any], where: str, wheel: Any = None) -> None:
        super().__init__(options, where, wheel)
        self.needs = (self.opts.gold,)  # type: ignore[misc]

    def __call__(self, completion: str, sample: Sample, ctx: RewardContext) -> float | None:
        from emollm.evaluation.metrics.wheel import WHEELS, fscore

        gold = sample.openset if self.opts.gold == "openset" else ([sample.label] if sample.label else None)
        if not gold:
            return None
        gold = list(dict.fromkeys(w.strip().lower() for w in gold if w.strip()))
        pred = _words(answer_part(completion, ctx.answer_format))
        fs = []
        for w in WHEELS:
            g = {m for x in gold if (m := self.wheel.m3(x, w, self.opts.level)) is not None}
            if not g:
                continue
            p = {m for x in pred if (m := self.wheel.m3(x, w, self.opts.level)) is not None}
            hit = len(g & p)
            fs.append(fscore(hit / len(p), hit / len(g)) if p else 0.0)
        if not fs:
            return None  # no gold word is on any wheel: unscorable, reported
        return float(np.mean(fs)) * length_penalty(self.opts.penalty, len(pred), len(gold))


@REWARDS.register("hitrate")
class HitRateReward(_WheelReward):
    needs = ("label",)

    def __call__(self, completion: str, sample: Sample, ctx: RewardContext) -> float | None:
        from emollm.evaluation.metrics.wheel import WHEELS

        if not sample.label:
            return None
        pred = _words(answer_part(completion, ctx.answer_format))
        hits = []
        for w in WHEELS:
            g = self.wheel.m3(sample.label, w, "level1")
            if g is None:
                continue
            hits.append(float(any(self.wheel.m3(x, w, "level1") == g for x in pred)))
        return float(np.mean(hits)) if hits else None


_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")


@REWARDS.register("valence")
class ValenceReward(_Reward):
    needs = ("valence",)

    class Options(Strict):
        scale: float = Field(10.0, gt=0)
        """Distance at which the distance part reaches 0 (MER2023 valence lies in [-5, 5])."""
        neutral_band: float = Field(0.0, ge=0)
        """|valence| <= band counts as sign 0."""
        word_value: float = Field(2.0, gt=0)
        """Valence given to a positive (negative) answer without a number."""

    def _sign(self, v: float) -> int:
        return 0 if abs(v) <= self.opts.neutral_band else (1 if v > 0 else -1)

    def __call__(self, completion: str, sample: Sample, ctx: RewardContext) -> float | None:
        from emollm.answers import sentiment_of_words

        if sample.valence is None:
            return None
        ans = answer_part(completion, ctx.answer_format)
        if ans is None:
            return 0.0
        m = _NUMBER.search(ans)
        if m:
            pred = float(m.group())
        else:
            words = _words(ans) or ([lab] if (lab := ctx.space.find_in_text(ans)) else [])
            s = sentiment_of_words(words)
            if s is None:
                return 0.0
            pred = {"positive": self.opts.word_value, "negative": -self.opts.word_value, "neutral": 0.0}[s]
        sign = 0.5 if self._sign(pred) == self._sign(sample.valence) else 0.0
        return sign + 0.5 * max(0.0, 1.0 - abs(pred - sample.valence) / self.opts.scale)


@REWARDS.register("consistency")
class ConsistencyReward(_Reward):
    def __call__(self, completion: str, sample: Sample, ctx: RewardContext) -> float | None:
        if ctx.answer_format != "think_answer":
            return None  # nothing to compare: the task has no think part
        parts = split_think_answer(completion)
        if parts is None:
            return 0.0
        think, ans = parts
        a = set(ctx.space.mentions(ans))
        t = set(ctx.space.mentions(think))
        if not a or not t:
            return 0.0
        return len(a & t) / len(a | t)


@REWARDS.register("judge")
class JudgeReward(_Reward):
    needs = ("fine", "coarse")

    class Options(Strict):
        backend: Literal["local", "openai"] = "openai"
        model: str
        language: Literal["zh", "en"] = "en"
        cache_dir: str = "runs/judge_cache/rl"
        """Replies are cached here by (sample id, rendered prompt); repeated completions cost nothing."""
        max_retries: int = Field(3, ge=0)

    def __init__(self, options: dict[str, Any], where: str, backend: Any = None) -> None:
        super().__init__(options, where)
        from emollm.evaluation.judge import Judge, JudgeConfig

        kw: dict[str, Any] = {
            "backend": self.opts.backend,
            "model": self.opts.model,
            "language": self.opts.language,
            "cache_dir": self.opts.cache_dir,
            "max_retries": self.opts.max_retries,
        }
        self.judge = Judge(JudgeConfig(**kw), backend=backend)
        self.failures = 0

    def __call__(self, completion: str, sample: Sample, ctx: RewardContext) -> float | None:
        from emollm.evaluation.judge import parse_judge_score

        gold = sample.fine or sample.coarse
        if not gold:
            return None
        parts = split_think_answer(completion) if ctx.answer_format == "think_answer" else None
        pred = parts[0] if parts else completion.strip()
        if not pred:
            return 0.0
        try:
            reply = self.judge.ask(sample.id, "rl.clue", self.judge.prompts.clue.render(gold=gold, pred=pred))
        except Exception as e:  # a failed call is reported, never a silent 0
            self.failures += 1
            if self.failures <= 3:
                log.warning("judge reward: the judge failed for sample %s: %s", sample.id, e)
            return None
        score = parse_judge_score(reply)
        return None if score is None else (score - 1.0) / 9.0

    def close(self) -> None:
        self.judge.close()


# ---------------------------------------------------------------------------------------------- composition


@dataclass
class RewardOutput:
    """Scores of N completions: per component [N] (NaN = not scored) and the weighted total [N]."""

    components: dict[str, np.ndarray]
    total: np.ndarray
    missing: dict[str, list[str]] = field(default_factory=dict)
    """Component -> ids of the samples it could not score (missing gold field / unreadable judge)."""

    def means(self) -> dict[str, float]:
        """Mean of every component over the completions it scored, and of the total."""
        out = {k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for k, v in self.components.items()}
        out["total"] = float(np.nanmean(self.total)) if np.isfinite(self.total).any() else float("nan")
        return out


class RewardStack:
    """The weighted reward of an RL stage (see the module docstring)."""

    def __init__(self, items: list[tuple[str, float, _Reward]], space: LabelSpace) -> None:
        self.items = items
        self.space = space
        self.missing_total: dict[str, int] = {n: 0 for n, _, _ in items}

    @classmethod
    def build(
        cls, specs: Sequence[RewardSpec | dict[str, Any]], space: LabelSpace, where: str = "rewards", **kw: Any
    ) -> RewardStack:
        """Every reward built and its options checked; ``kw`` (``wheel=``, ``backend=``) goes to those accepting it."""
        import inspect

        items = []
        seen: set[str] = set()
        for i, raw in enumerate(specs):
            spec = raw if isinstance(raw, RewardSpec) else RewardSpec.model_validate(raw)
            if spec.name not in REWARDS:
                from emollm.registry import close_match

                raise ConfigError(
                    f"{where}[{i}]: unknown reward {spec.name!r}{close_match(spec.name, REWARDS.names())}; "
                    f"known: {', '.join(REWARDS.names())}"
                )
            if spec.name in seen:
                raise ConfigError(f"{where}[{i}]: reward {spec.name!r} is listed twice")
            seen.add(spec.name)
            klass = REWARDS.get(spec.name)
            params = inspect.signature(klass.__init__).parameters
            extra = {k: v for k, v in kw.items() if k in params}
            items.append((spec.name, spec.weight, klass(spec.options, f"{where}[{i}] ({spec.name}).options", **extra)))
        if not items:
            raise ConfigError(f"{where}: an RL stage needs at least one reward")
        return cls(items, space)

    @property
    def names(self) -> list[str]:
        return [n for n, _, _ in self.items]

    def coverage(self, samples: Sequence[Sample]) -> dict[str, int]:
        """Per component: how many of ``samples`` lack the gold field it needs (checked before training)."""
        return {n: sum(not r.has_gold(s) for s in samples) for n, _, r in self.items}

    def score(
        self, completions: Sequence[str], samples: Sequence[Sample], answer_formats: Sequence[str]
    ) -> RewardOutput:
        n = len(completions)
        if not (len(samples) == len(answer_formats) == n):
            raise ValueError(f"{n} completions, {len(samples)} samples, {len(answer_formats)} answer formats")
        comps: dict[str, np.ndarray] = {}
        missing: dict[str, list[str]] = {}
        total = np.zeros(n)
        scored = np.zeros(n, dtype=bool)
        for name, w, fn in self.items:
            vals = np.full(n, np.nan)
            for i, (c, s, f) in enumerate(zip(completions, samples, answer_formats, strict=True)):
                v = fn(c, s, RewardContext(self.space, f))
                if v is None:
                    missing.setdefault(name, []).append(s.id)
                    continue
                if not math.isfinite(v):
                    raise ValueError(f"reward {name!r} returned {v} for sample {s.id!r}")
                vals[i] = v
            ok = np.isfinite(vals)
            total[ok] += w * vals[ok]
            scored |= ok
            comps[name] = vals
        total[~scored] = np.nan
        for name, ids in missing.items():
            before = self.missing_total[name]
            self.missing_total[name] += len(ids)
            if before == 0:
                log.warning(
                    "reward %r could not score %d completion(s) (first samples: %s): the sample lacks the "
                    "field it needs (%s) or the judge could not be read; they are reported as "
                    "reward/%s/missing, not scored 0",
                    name,
                    len(ids),
                    ", ".join(dict.fromkeys(ids[:3])),
                    "/".join(dict(self.items_by_name())[name].needs) or "a think part",
                    name,
                )
        return RewardOutput(comps, total, missing)

    def items_by_name(self) -> list[tuple[str, _Reward]]:
        return [(n, r) for n, _, r in self.items]

    def close(self) -> None:
        for _, _, r in self.items:
            r.close()


def check_reward_specs(specs: Sequence[dict[str, Any]], where: str) -> None:
    """Names and option keys of reward specs, checked before any work (building comes at stage start)."""
    from emollm.registry import close_match

    for i, raw in enumerate(specs):
        try:
            spec = RewardSpec.model_validate(raw)
        except ValueError as e:
            raise ConfigError(f"{where}[{i}]: {e}") from None
        if spec.name not in REWARDS:
            raise ConfigError(
                f"{where}[{i}]: unknown reward {spec.name!r}{close_match(spec.name, REWARDS.names())}; "
                f"known: {', '.join(REWARDS.names())}"
            )
        klass = REWARDS.get(spec.name)
        unknown = sorted(set(spec.options) - set(klass.Options.model_fields))
        if unknown:
            raise ConfigError(
                f"{where}[{i}] ({spec.name}): unknown option(s) {unknown}; known: {', '.join(klass.Options.model_fields) or 'none'}"
            )


RewardFn = Callable[[str, Sample, RewardContext], float | None]
__all__ = [
    "REWARDS",
    "RewardContext",
    "RewardOutput",
    "RewardSpec",
    "RewardStack",
    "answer_part",
    "length_penalty",
]
