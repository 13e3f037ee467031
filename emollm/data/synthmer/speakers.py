"""SynthMER's synthetic speakers: an id, a gender, a drawn look and a voice, all fixed by the seed.

Speakers alternate F, M, F, M... so gender is balanced; women have long hair 80% of the time, men
15%. The last ``unseen`` speakers of the roster appear only in the test split (see ``generate``).

    roster = make_roster(seed=0, n=12)
    roster[0].id, roster[0].gender   # ("spk01", "F")
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from emollm.data.synthmer.face import Look
from emollm.data.synthmer.voice import Voice


@dataclass(frozen=True)
class Speaker:
    id: str
    gender: str
    """"F" or "M"."""
    look: Look
    voice: Voice

    @property
    def noun(self) -> str:
        return "woman" if self.gender == "F" else "man"

    @property
    def subject(self) -> str:
        return "she" if self.gender == "F" else "he"

    @property
    def possessive(self) -> str:
        return "her" if self.gender == "F" else "his"


def make_roster(seed: int, n: int) -> list[Speaker]:
    """``n`` speakers; speaker ``i`` depends only on ``(seed, i)``."""
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, 7, i])
        gender = "F" if i % 2 == 0 else "M"
        look = Look.sample(rng, long_hair=bool(rng.random() < (0.8 if gender == "F" else 0.15)))
        out.append(Speaker(id=f"spk{i + 1:02d}", gender=gender, look=look, voice=Voice.sample(rng, gender)))
    return out
