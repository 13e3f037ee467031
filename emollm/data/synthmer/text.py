"""SynthMER's subtitles: English sentences chosen by the emotion the words express (the text cue).

Each text cue has its own pool of base sentences (pools are disjoint, so a sentence identifies its
cue exactly). A pool mixes three kinds:

- ``explicit``: names the emotion with a label word or synonym ("I'm so worried about the exam.");
- ``implicit``: carries the emotion without naming it ("We won the final, can you believe it?");
- ``sarcastic`` (angry and sad pools only): surface words of another emotion, meaning of this one
  ("Oh wonderful, the train is late again. Just perfect."); a keyword reader is misled, a careful
  reader is not.

The ``neutral`` pool is emotionally flat content; most non-neutral clips say something neutral (see
``cues.CONFUSIONS["text"]``), which is what makes the words alone a weak cue. An optional discourse
lead-in ("Well, ", "So, ") adds variety without changing the cue.

    sentence, kind = sample_sentence("angry", np.random.default_rng(0))
    base_of(sentence)  # the pool sentence it came from, for analysis
"""

from __future__ import annotations

import numpy as np

POOLS: dict[str, dict[str, tuple[str, ...]]] = {
    "neutral": {
        "implicit": (
            "I took the bus to work this morning.",
            "The meeting has been moved to three o'clock.",
            "We need to buy some rice and a few eggs.",
            "My brother lives two streets away from here.",
            "The report is on the second shelf.",
            "I usually have tea after lunch.",
            "The train leaves at half past eight.",
            "She said the package will arrive on Tuesday.",
            "We talked about the schedule for next week.",
            "I have to call the bank before five.",
            "The office is on the fourth floor.",
            "He works in the sales department.",
            "Let me check the numbers again.",
            "The weather will be cloudy tomorrow.",
            "I read the first chapter yesterday.",
            "We can meet at the usual place.",
            "The store closes at nine on weekdays.",
            "I parked the car behind the building.",
            "My phone needs to be charged.",
            "They painted the kitchen last month.",
        ),
    },
    "angry": {
        "explicit": (
            "I'm so angry I can't even think straight.",
            "That makes me furious, every single time.",
            "I am really mad at you right now.",
            "You have no idea how angry this makes me.",
        ),
        "implicit": (
            "How many times do I have to tell you?",
            "Stop lying to me, I know what you did.",
            "You never listen to a word I say!",
            "Get out of my office, now.",
            "This is completely unacceptable.",
            "Don't you dare walk away from me.",
        ),
        "sarcastic": (
            "Oh wonderful, the train is late again. Just perfect.",
            "Great, thanks a lot for nothing, I'm so happy now.",
            "Oh sure, what a lovely surprise, you forgot again.",
        ),
    },
    "happy": {
        "explicit": (
            "I'm so happy for you, really.",
            "I'm so happy, this is the best day of my life.",
            "I'm really glad you could come tonight.",
            "What a joy it is to see everyone here.",
        ),
        "implicit": (
            "We won the final, can you believe it?",
            "She said yes, we're getting married!",
            "This is exactly what I always wanted, thank you!",
            "We finally got the house, it's ours!",
            "Everything went perfectly today.",
            "Let's celebrate tonight, dinner is on me!",
        ),
    },
    "sad": {
        "explicit": (
            "I feel so sad since she left.",
            "It makes me really unhappy to hear that.",
            "I've been sad all week and I don't know why.",
            "There's so much sorrow in this house now.",
        ),
        "implicit": (
            "He passed away last night.",
            "I miss her every single day.",
            "Nobody came to my birthday.",
            "I lost the job I loved.",
            "We had to give the dog away.",
            "I don't think things will ever be the same.",
        ),
        "sarcastic": (
            "Sure, best day ever, nobody even called.",
            "Oh, that's just lovely, I'm alone again and so happy about it.",
        ),
    },
    "worried": {
        "explicit": (
            "I'm really worried about the results.",
            "I can't stop worrying about my mother.",
            "This makes me so anxious, I can't sleep.",
            "I worry that something has gone wrong.",
        ),
        "implicit": (
            "What if they don't come back in time?",
            "He still hasn't called, it's been hours.",
            "I hope the doctor says it's nothing serious.",
            "Do you think we'll lose the house?",
            "The exam is tomorrow and I'm not ready.",
            "Where could she be at this hour?",
        ),
    },
    "surprise": {
        "explicit": (
            "Wow, I'm so surprised to see you here!",
            "What a surprise, I had no idea!",
            "I'm completely astonished, really.",
            "That's so surprising, I never expected it.",
        ),
        "implicit": (
            "Oh my, is that really you?",
            "Wait, you did what?",
            "No way, since when?",
            "You're kidding me, right now?",
            "Oh! I didn't see you come in.",
            "Really? All of them?",
        ),
    },
}

LEAD_INS: tuple[str, ...] = ("", "", "", "Well, ", "So, ", "Honestly, ", "You know, ", "Okay, ")
"""Discourse openers prepended at random; they never change the cue (empty most of the time)."""

KIND_WEIGHTS: dict[str, float] = {"explicit": 0.35, "implicit": 0.5, "sarcastic": 0.15}
"""How often each kind is drawn from a pool (renormalised over the kinds a pool has)."""


def _check_pools() -> None:
    seen: dict[str, str] = {}
    for cue, kinds in POOLS.items():
        for kind, sentences in kinds.items():
            if kind not in KIND_WEIGHTS and not (cue == "neutral" and kind == "implicit"):
                raise AssertionError(f"unknown sentence kind {kind!r} in pool {cue!r}")
            for s in sentences:
                if s in seen:
                    raise AssertionError(f"sentence {s!r} is in pools {seen[s]!r} and {cue!r}")
                seen[s] = cue


_check_pools()


def _with_lead_in(lead: str, base: str) -> str:
    if not lead:
        return base
    keep = base.startswith(("I ", "I'"))
    return lead + (base if keep else base[0].lower() + base[1:])


def sample_sentence(cue: str, rng: np.random.Generator) -> tuple[str, str]:
    """A subtitle expressing ``cue`` and its kind (``explicit``, ``implicit`` or ``sarcastic``)."""
    if cue not in POOLS:
        raise KeyError(f"no sentence pool for {cue!r}; known: {', '.join(POOLS)}")
    kinds = list(POOLS[cue])
    w = np.array([KIND_WEIGHTS[k] for k in kinds])
    kind = kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
    pool = POOLS[cue][kind]
    base = pool[int(rng.integers(len(pool)))]
    lead = LEAD_INS[int(rng.integers(len(LEAD_INS)))]
    return _with_lead_in(lead, base), kind


_BASE_TO_CUE: dict[str, tuple[str, str, str]] = {
    s.lower(): (s, cue, kind) for cue, kinds in POOLS.items() for kind, ss in kinds.items() for s in ss
}


def base_of(sentence: str) -> tuple[str, str, str]:
    """``(base sentence, cue, kind)`` of a generated subtitle; ValueError if it is not from the pools."""
    hit = _BASE_TO_CUE.get(sentence.lower())
    for lead in LEAD_INS:
        if hit is None and lead and sentence.startswith(lead):
            hit = _BASE_TO_CUE.get(sentence[len(lead) :].lower())
    if hit is None:
        raise ValueError(f"subtitle {sentence!r} is not a SynthMER pool sentence")
    return hit
