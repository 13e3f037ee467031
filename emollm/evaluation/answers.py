"""Reading free-text model answers: one label, a list of open-vocabulary words, or a sentiment.

Nothing unreadable ever becomes a label: a reader returns ``None`` (the "unparsed" bucket, written as an
empty cell and counted as wrong by every metric, see ``emollm.evaluation.metrics.classification.UNPARSED``).

    space = label_space("mer6")
    read_label("Happiness.", space)                  # Reading(label='happy', rule='exact')
    read_label("I think she is angry, not sad", space)  # Reading(label='angry', rule='mention')
    read_label("R wordKY to doubt", space)           # Reading(label=None, rule=None)
    read_label("The emotion is happy.", space, "published")  # Reading(None, 'last_word', forced_neutral=True)
    read_openset("The character's emotional state is happy, anxious and tired.")  # ['happy', 'anxious', 'tired']
    sentiment_of_words(["happy", "relieved"])         # 'positive'

Label reading modes:

- ``clean`` (PR-MER parsing, mer_eval.md §5.2): the whole answer normalised through the label space
  (case, punctuation, synonyms and word forms: "Happiness." -> happy) first; otherwise the label
  mentioned earliest in the text (``LabelSpace.find_in_text``); otherwise unparsed.
- ``published``: Emotion-LLaMA's ``eval_emotion.py`` rule: the last space-separated token
  (``answer.split(" ")[-1]``, exact and case-sensitive) must be one of the label strings. The original
  then maps every other token to ``neutral``; here it stays unparsed and ``forced_neutral`` records
  that the original would have counted it as ``neutral``.

Open-vocabulary answers (``read_openset``): MER-UniBench extracts the words with an LLM (Qwen2.5,
sampled); this reader is a deterministic stand-in. A lead-in such as "The character's emotional
state is" is dropped, then a list-shaped answer (items of at most three words separated by commas,
semicolons, slashes, "and"/"or") gives its items; any other answer gives the emotion words a lexicon
finds in it (the label space's labels and synonyms, or an emotion-wheel lexicon). No word: an empty
list (unparsed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from emollm.labels import LabelSpace

ReadingMode = Literal["clean", "published"]
READING_MODES: tuple[str, ...] = ("clean", "published")


@dataclass(frozen=True)
class Reading:
    """What a label reader made of one answer."""

    label: str | None
    """Canonical label, or None (unparsed)."""
    rule: str | None
    """exact | mention | last_word, or None when unparsed."""
    forced_neutral: bool = False
    """published mode: the original rule would have mapped this answer to 'neutral'."""


def read_label(text: str | None, space: LabelSpace, mode: ReadingMode = "clean") -> Reading:
    """One label from a free-text answer (see the module docstring for the two modes)."""
    if mode == "published":
        token = (text or "").split(" ")[-1]
        if token in space.labels:
            return Reading(token, "last_word")
        return Reading(None, None, forced_neutral=True)
    if mode != "clean":
        raise ValueError(f"unknown reading mode {mode!r}; known: {', '.join(READING_MODES)}")
    if not text or not text.strip():
        return Reading(None, None)
    exact = space.normalize(text)
    if exact is not None:
        return Reading(exact, "exact")
    found = space.find_in_text(text)
    return Reading(found, "mention") if found is not None else Reading(None, None)


def read_labels(
    texts: Sequence[str | None], space: LabelSpace, mode: ReadingMode = "clean"
) -> tuple[list[str | None], dict[str, int]]:
    """Labels of many answers and counts: n, n_unparsed, n_exact, n_mention, n_last_word, n_forced_neutral."""
    out: list[str | None] = []
    counts = {"n": len(texts), "n_unparsed": 0, "n_exact": 0, "n_mention": 0, "n_last_word": 0, "n_forced_neutral": 0}
    for t in texts:
        r = read_label(t, space, mode)
        out.append(r.label)
        if r.label is None:
            counts["n_unparsed"] += 1
        else:
            counts[f"n_{r.rule}"] += 1
        counts["n_forced_neutral"] += int(r.forced_neutral)
    return out, counts


def original_rule_labels(texts: Sequence[str | None], labels: Sequence[str], fallback: str = "neutral") -> list[str]:
    """Labels exactly as Emotion-LLaMA's scorer assigns them (last token, else ``fallback``): for comparison only."""
    allowed = set(labels)
    out = []
    for t in texts:
        tok = (t or "").split(" ")[-1]
        out.append(tok if tok in allowed else fallback)
    return out


# ----------------------------------------------------------------------------------------------
# open-vocabulary words

_LEAD_IN = re.compile(
    r"^.*?\b(?:emotional states?|emotions?|feelings?|moods?)\b[^:]*?\b(?:is|are|include|includes|would be|seems?"
    r" to be|appears? to be)\b\s*:?\s*|^.*?:\s*",
    re.IGNORECASE | re.DOTALL,
)
_SPLIT = re.compile(r"\s*(?:,|;|/|\band\b|\bor\b|\n|、|，)\s*", re.IGNORECASE)
_WORD = re.compile(r"^[a-z]+(?:[ '-][a-z]+){0,2}$")
_STOP = {"a", "an", "the", "very", "quite", "slightly", "somewhat", "mostly", "possibly", "maybe", "also", "feeling"}


def _strip_item(item: str) -> str:
    w = item.strip().strip("[](){}\"'`*.!?").strip().lower()
    words = [x for x in w.split() if x not in _STOP]
    return " ".join(words)


def read_openset(text: str | None, lexicon: Callable[[str], list[str]] | None = None) -> list[str]:
    """Open-vocabulary emotion words of an answer, lower-case, de-duplicated in order ([] when none).

    ``lexicon``: ``text -> words`` used when the answer is not a list (e.g. ``EmotionLexicon.find`` or
    ``LabelSpace.mentions``); None reads list-shaped answers only.
    """
    if not text or not text.strip():
        return []
    body = text.strip()
    m = _LEAD_IN.match(body)
    if m and m.end() < len(body):
        body = body[m.end() :]
    body = body.strip().rstrip(".!")
    items = [_strip_item(x) for x in _SPLIT.split(body)]
    items = [x for x in items if x]
    if items and all(_WORD.match(x) for x in items):
        return list(dict.fromkeys(items))
    if lexicon is None:
        return []
    return list(dict.fromkeys(w.lower() for w in lexicon(text)))


# ----------------------------------------------------------------------------------------------
# sentiment of emotion words

POLARITY: dict[str, str] = {
    # MER / MERR / MELD / IEMOCAP / DFEW labels and their common forms
    "happy": "positive", "happiness": "positive", "joy": "positive", "joyful": "positive", "excited": "positive",
    "glad": "positive", "pleased": "positive", "relieved": "positive", "content": "positive", "love": "positive",
    "grateful": "positive", "proud": "positive", "hopeful": "positive", "amused": "positive", "cheerful": "positive",
    "satisfied": "positive", "delighted": "positive", "calm": "neutral", "neutral": "neutral", "peaceful": "neutral",
    "angry": "negative", "anger": "negative", "mad": "negative", "annoyed": "negative", "frustrated": "negative",
    "irritated": "negative", "furious": "negative", "sad": "negative", "sadness": "negative", "unhappy": "negative",
    "disappointed": "negative", "lonely": "negative", "hurt": "negative", "depressed": "negative",
    "worried": "negative", "worry": "negative", "anxious": "negative", "anxiety": "negative", "nervous": "negative",
    "fear": "negative", "fearful": "negative", "afraid": "negative", "scared": "negative", "disgust": "negative",
    "disgusted": "negative", "contempt": "negative", "doubt": "negative", "doubtful": "negative",
    "helpless": "negative", "guilty": "negative", "ashamed": "negative", "embarrassed": "negative",
    "tired": "negative", "bored": "negative", "confused": "negative", "upset": "negative", "positive": "positive",
    "negative": "negative",
}  # fmt: skip
"""Fixed polarity of common emotion words; 'surprise' is deliberately absent (it can be either)."""


def sentiment_of_words(words: Sequence[str]) -> str | None:
    """positive / negative / neutral by majority over the words with a known polarity; None when none or tied.

    A tie between positive and negative is unreadable (None), not neutral; neutral wins only when it is
    the strict majority.
    """
    votes = {"positive": 0, "negative": 0, "neutral": 0}
    for w in words:
        p = POLARITY.get(w.strip().lower())
        if p is not None:
            votes[p] += 1
    best = max(votes.values())
    if best == 0:
        return None
    top = [k for k, v in votes.items() if v == best]
    return top[0] if len(top) == 1 else None
