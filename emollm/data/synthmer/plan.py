"""The per-clip plan of a SynthMER generation: every random choice, drawn before any pixel is drawn.

``make_plan(cfg)`` returns one ``ClipPlan`` per clip (train, then val, then test; names
``synth_000000``...). Labels are balanced within each split (counts differ by at most one, the
classes that get one extra chosen at random). Train and val speakers come from the seen part of the
roster; test speakers from the whole roster, so ``unseen_test_speakers`` of them are new at test time.
Labels and speakers are drawn split by split from one generator, so growing a split changes that
split and the later ones only. Given its label and speaker, clip ``i``'s cues, duration, peak,
valence and subtitle come from ``default_rng([seed, 1, i])`` and its rendering nuisance from
``default_rng([seed, 2, i])``: a clip whose (label, speaker) did not change is identical.

    plan = make_plan(SynthMERConfig.tiny())
    plan[0].name, plan[0].label, plan[0].cues   # "synth_000000", "surprise", {"face": "surprise", ...}
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emollm.data.synthmer.config import SynthMERConfig
from emollm.data.synthmer.cues import LABELS, MODALITIES, CueModel
from emollm.data.synthmer.speakers import Speaker, make_roster
from emollm.data.synthmer.text import sample_sentence

SPLITS: tuple[str, ...] = ("train", "val", "test")

VALENCE: dict[str, tuple[float, float, float]] = {
    "neutral": (0.0, -1.0, 1.0),
    "angry": (-3.0, -5.0, -1.0),
    "happy": (3.0, 1.0, 5.0),
    "sad": (-3.0, -5.0, -1.0),
    "worried": (-2.0, -4.0, -0.5),
    "surprise": (1.5, -1.0, 4.0),
}
"""label -> (mean, low, high): valence ~ N(mean, 0.8) clipped to [low, high] (a subrange of [-5, 5])."""


@dataclass(frozen=True)
class ClipPlan:
    index: int
    name: str
    split: str
    label: str
    speaker: Speaker
    cues: dict[str, str]
    """modality (face, audio, text) -> the emotion that modality expresses."""
    n_frames: int
    peak_index: int
    peak_value: float
    valence: float
    subtitle: str
    text_kind: str
    """explicit | implicit | sarcastic (see ``text.POOLS``)."""
    variant: int
    """Chooses among phrasing variants of the descriptions."""

    def media_rng(self, seed: int) -> np.random.Generator:
        """The generator for this clip's rendering nuisance (head jitter, noise, syllable timing)."""
        return np.random.default_rng([seed, 2, self.index])


def _balanced_labels(n: int, rng: np.random.Generator) -> list[str]:
    reps = np.resize(rng.permutation(len(LABELS)), n)
    return [LABELS[int(i)] for i in rng.permutation(reps)]


def make_plan(cfg: SynthMERConfig) -> list[ClipPlan]:
    model = CueModel(cfg.reliability)
    roster = make_roster(cfg.seed, cfg.n_speakers)
    seen = roster[: cfg.n_speakers - cfg.unseen_test_speakers]
    master = np.random.default_rng([cfg.seed, 0])
    counts = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}
    lo_frames = max(3, round(cfg.min_seconds * cfg.fps))
    hi_frames = max(lo_frames, round(cfg.max_seconds * cfg.fps))
    plan: list[ClipPlan] = []
    for split in SPLITS:
        labels = _balanced_labels(counts[split], master)
        pool = roster if split == "test" else seen
        speakers = master.integers(0, len(pool), counts[split])
        for label, spk in zip(labels, speakers, strict=True):
            i = len(plan)
            rng = np.random.default_rng([cfg.seed, 1, i])
            cue_idx = model.sample(LABELS.index(label), rng)
            cues = {m: LABELS[cue_idx[m]] for m in MODALITIES}
            n_frames = int(rng.integers(lo_frames, hi_frames + 1))
            peak = int(round(rng.uniform(0.3, 0.7) * (n_frames - 1)))
            mean, low, high = VALENCE[label]
            subtitle, kind = sample_sentence(cues["text"], rng)
            plan.append(
                ClipPlan(
                    index=i,
                    name=f"synth_{i:06d}",
                    split=split,
                    label=label,
                    speaker=pool[int(spk)],
                    cues=cues,
                    n_frames=n_frames,
                    peak_index=peak,
                    peak_value=round(float(rng.uniform(cfg.peak_min, cfg.peak_max)), 3),
                    valence=round(float(np.clip(rng.normal(mean, 0.8), low, high)), 2),
                    subtitle=subtitle,
                    text_kind=kind,
                    variant=int(rng.integers(0, 1 << 16)),
                )
            )
    return plan
