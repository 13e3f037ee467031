"""SynthMER's generative model of *which emotion each modality expresses*, and its exact ceilings.

Each clip has a true label ``y`` (MER 6-way, uniform prior). Given ``y``, every modality independently
draws the emotion it actually expresses (its *cue*)::

    P(cue_m = c | y) = r_m * [c == y] + (1 - r_m) * Q_m[y, c]

``r_m`` is the modality's reliability (a config knob) and ``Q_m`` a fixed, structured confusion
distribution (row ``y``, zero on the diagonal): the face mixes up sad and worried, the voice mixes up
happy and surprise, the words are most often emotionally neutral. Because the three cues are
conditionally independent given ``y`` and their confusions are complementary, fusing them beats any
single modality by a wide margin.

The renderers (face, voice, subtitle) depend on a clip's cues and on label-independent nuisances only,
so a modality's cue is a sufficient statistic of what that modality reveals about ``y``. The *ceiling*
of a set of modalities is therefore the Bayes-optimal accuracy of a classifier that reads their cues
perfectly, computed exactly by enumerating all cue combinations::

    ceiling(S) = sum over cue tuples c_S of max_y  P(y) * prod_{m in S} P(c_m | y)

    m = CueModel(reliability={"face": 0.65, "audio": 0.6, "text": 0.5})
    m.matrix("face")            # float64[6, 6], rows = true label, columns = expressed cue
    m.sample(2, rng)            # {"face": 2, "audio": 5, "text": 0} (label indices)
    m.ceilings()                # {"face": 0.65, ..., "face+audio+text": 0.889}
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from emollm.labels import label_space

LABELS: tuple[str, ...] = label_space("mer6").labels
"""``neutral, angry, happy, sad, worried, surprise`` (MER2023 order)."""
MODALITIES: tuple[str, ...] = ("face", "audio", "text")

# Q_m[y] = where modality m's cue goes when it does not express the true label y (rows sum to 1).
CONFUSIONS: dict[str, dict[str, dict[str, float]]] = {
    # the face masks anger as neutral, cannot tell sad from worried, reads surprise as happy or worried
    "face": {
        "neutral": {"angry": 0.4, "sad": 0.3, "happy": 0.15, "surprise": 0.15},
        "angry": {"neutral": 0.8, "worried": 0.2},
        "happy": {"neutral": 0.7, "surprise": 0.3},
        "sad": {"worried": 0.85, "neutral": 0.15},
        "worried": {"sad": 0.85, "surprise": 0.15},
        "surprise": {"happy": 0.5, "worried": 0.5},
    },
    # the voice confuses high-arousal emotions with each other and low-arousal ones with each other
    "audio": {
        "neutral": {"sad": 0.8, "worried": 0.2},
        "angry": {"surprise": 0.6, "happy": 0.4},
        "happy": {"surprise": 0.9, "neutral": 0.1},
        "sad": {"neutral": 0.8, "worried": 0.2},
        "worried": {"neutral": 0.5, "surprise": 0.5},
        "surprise": {"happy": 0.9, "angry": 0.1},
    },
    # the words are mostly neutral content; a neutral speaker may still use emotional words
    "text": {
        "neutral": {"happy": 0.25, "worried": 0.25, "sad": 0.25, "angry": 0.25},
        "angry": {"neutral": 0.8, "happy": 0.2},
        "happy": {"neutral": 0.9, "surprise": 0.1},
        "sad": {"neutral": 0.9, "worried": 0.1},
        "worried": {"neutral": 0.8, "sad": 0.2},
        "surprise": {"neutral": 0.8, "happy": 0.2},
    },
}


def _check_confusions() -> None:
    for m, rows in CONFUSIONS.items():
        if set(rows) != set(LABELS):
            raise AssertionError(f"CONFUSIONS[{m!r}] must have one row per label")
        for y, row in rows.items():
            if y in row or set(row) - set(LABELS) or abs(sum(row.values()) - 1.0) > 1e-9:
                raise AssertionError(f"CONFUSIONS[{m!r}][{y!r}] must sum to 1 over other labels")


_check_confusions()


def modality_key(mods: Sequence[str]) -> str:
    """Canonical name of a modality subset, in MODALITIES order: ``face+text``."""
    return "+".join(m for m in MODALITIES if m in mods)


class CueModel:
    """The per-modality cue distributions for given reliabilities (and an optional label prior)."""

    def __init__(self, reliability: Mapping[str, float], prior: Sequence[float] | None = None) -> None:
        missing = [m for m in MODALITIES if m not in reliability]
        if missing:
            raise ValueError(f"reliability is missing modalities {missing}; expected {list(MODALITIES)}")
        self.prior = np.full(len(LABELS), 1.0 / len(LABELS)) if prior is None else np.asarray(prior, float)
        if self.prior.shape != (len(LABELS),) or abs(self.prior.sum() - 1) > 1e-9 or (self.prior < 0).any():
            raise ValueError(f"prior must be {len(LABELS)} non-negative numbers summing to 1, got {prior}")
        self._mats: dict[str, np.ndarray] = {}
        for m in MODALITIES:
            r = float(reliability[m])
            if not 0.0 <= r <= 1.0:
                raise ValueError(f"reliability of {m!r} must be in [0, 1], got {r}")
            mat = np.eye(len(LABELS)) * r
            for y, row in CONFUSIONS[m].items():
                for c, p in row.items():
                    mat[LABELS.index(y), LABELS.index(c)] += (1.0 - r) * p
            self._mats[m] = mat
        self._cum = {m: np.cumsum(mat, axis=1) for m, mat in self._mats.items()}

    def matrix(self, modality: str) -> np.ndarray:
        """``float64[6, 6]``: P(cue = column | label = row)."""
        return self._mats[modality].copy()

    def sample(self, label: int, rng: np.random.Generator) -> dict[str, int]:
        """Draw one cue per modality (label indices) for a clip whose true label index is ``label``."""
        out = {}
        for m in MODALITIES:
            cum = self._cum[m][label]
            out[m] = min(int(np.searchsorted(cum, rng.random() * cum[-1], side="right")), len(LABELS) - 1)
        return out

    def posterior(self, cues: Mapping[str, int]) -> np.ndarray:
        """``float64[6]``: P(label | the given modalities' cues)."""
        p = self.prior.copy()
        for m, c in cues.items():
            p = p * self._mats[m][:, c]
        total = p.sum()
        if total <= 0:
            named = {m: LABELS[c] for m, c in cues.items()}
            raise ValueError(f"cue combination {named} has probability 0 under this model")
        return p / total

    def bayes_label(self, cues: Mapping[str, int]) -> int:
        """The Bayes-optimal label index given some modalities' cues (ties: lowest index)."""
        return int(np.argmax(self.posterior(cues)))

    def ceiling(self, mods: Sequence[str]) -> float:
        """Exact Bayes-optimal accuracy from the cues of ``mods`` (the chance rate for no modality)."""
        if not mods:
            return float(self.prior.max())
        mats = [self._mats[m] for m in mods]
        total = 0.0
        for combo in itertools.product(range(len(LABELS)), repeat=len(mats)):
            joint = self.prior.copy()
            for mat, c in zip(mats, combo, strict=True):
                joint = joint * mat[:, c]
            total += float(joint.max())
        return total

    def ceilings(self) -> dict[str, float]:
        """Ceiling of every non-empty modality subset plus ``chance``, keyed like ``face+audio``."""
        out = {"chance": round(self.ceiling(()), 6)}
        for k in range(1, len(MODALITIES) + 1):
            for mods in itertools.combinations(MODALITIES, k):
                out[modality_key(mods)] = round(self.ceiling(mods), 6)
        return out
