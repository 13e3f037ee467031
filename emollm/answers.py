"""The one reader of model output: a label, a list of emotion words or a sentiment from what a model wrote.

Every job that turns text into labels goes through this module: ``emollm predict`` and ``emollm serve``
(open-vocabulary answers), ``emollm eval`` (every generated answer), ``emollm score`` (the list cells
of prediction and gold files, through ``emollm.evaluation.readers``) and the dataset importers (the
``openset`` columns of MER2024 / OV-MERD / custom CSVs). So the same answer gives the same words
everywhere. Run its tests with ``python -m pytest -q tests/test_answers.py tests/evaluation/test_answers.py``.

Nothing unreadable ever becomes a label: a reader returns ``None`` (the "unparsed" bucket, written as
an empty cell and counted as wrong by every metric) or an empty list. ::

    space = label_space("mer6")
    read_label("Happiness.", space)                        # Reading(label='happy', rule='exact')
    read_label("I think she is angry, not sad", space)     # Reading(label='angry', rule='mention')
    read_label("The emotion is happy.", space, "published")  # Reading(None, None, forced_neutral=True)
    read_openset("The character's emotional state is happy, anxious and tired.")  # ['happy', 'anxious', 'tired']
    read_openset("['Happy', 'sad']", "published")           # ['happy', 'sad']  (AffectGPT string_to_list)
    parse_emotion_list("[happy, sad]", "mer2024")           # ['happy, sad']    (the MER2024 quirk)
    read_sentiment("Positive", "published")                 # None (case-sensitive, as MER-UniBench)
    read_sentiment("Positive", "clean")                     # 'positive'
    sentiment_of_words(["happy", "relieved"])               # 'positive'

Modes (``ReadingMode``): ``published`` reproduces what the official scorer does with the same text,
character for character (its quirks included); ``clean`` is the lenient reading (case folding,
stripping, synonyms and word forms through the label space). Where ``published`` is deliberately more
lenient than the official code (it never crashes where the official code would), docs/METRICS.md
lists each case.

Labels (``read_label``):

- ``clean`` (PR-MER parsing, mer_eval.md §5.2): the whole answer normalised through the label space
  (case, punctuation, synonyms and word forms: "Happiness." -> happy) first; otherwise the label
  mentioned earliest in the text (``LabelSpace.find_in_text``); otherwise unparsed.
- ``published``: Emotion-LLaMA's ``eval_emotion.py`` rule: the last space-separated token
  (``answer.split(" ")[-1]``, exact and case-sensitive) must be one of the label strings. The original
  then maps every other token to ``neutral``; here it stays unparsed and ``forced_neutral`` records
  that the original would have counted it as ``neutral`` (``original_rule_labels`` gives the original).

List cells (``parse_emotion_list``; styles ``ListStyle``):

- ``mer2024``: MER2024 ``main-ov.py`` ``string_to_list``: ``text.split('[')[1].split(']')[0]`` (the text
  after the first ``[`` up to the next ``]``), split on quote characters only; tokens that are empty or
  ``,`` after strip() are dropped, tokens are *not* stripped, then lower-cased (as the scorer does). An
  unquoted ``[a, b]`` is the single word ``'a, b'``. An empty cell is ``[]``; a cell without ``[`` is an
  error (the official code raises IndexError).
- ``affectgpt``: AffectGPT / MER2025 ``string_to_list``: drop one leading ``[`` and one trailing ``]``,
  split on quotes and commas, strip, drop empty tokens. Words keep their case (the wheel mapper
  lower-cases). An empty cell is ``[]``.
- ``clean``: optional surrounding ``[...]`` (both or neither), items split on commas (also ``，`` and
  ``、``), each item stripped of spaces and quotes, lower-cased, duplicates and empty items dropped;
  nested or unbalanced brackets are an error (``ValueError``).

Free-text open-vocabulary answers (``read_openset``):

- ``clean`` (what predict, serve and eval use): a lead-in such as "The character's emotional state is"
  is dropped, then a list-shaped answer (items of at most three words separated by commas, semicolons,
  slashes, "and"/"or") gives its items; any other answer gives the emotion words a lexicon finds in it
  (``lexicon``: the label space's labels and synonyms, ``LabelSpace.mentions``, or an emotion-wheel
  lexicon). MER-UniBench extracts the words with an LLM (Qwen2.5, sampled); this is a deterministic
  stand-in.
- ``published``: the answer read as the official scorer reads the extractor's reply: the list style's
  ``string_to_list`` (default ``affectgpt``), then ``lower().strip()`` per word.

Sentiment (``read_sentiment``): ``published`` is MER-UniBench's ``evaluation-scoreonly.py``: the
stripped reply compared case-sensitively with ``positive`` / ``negative`` / ``neutral`` (anything else
is None, which the metric scores as 0); ``clean`` case-folds, strips punctuation and quotes, reads
``pos`` / ``neg``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from emollm.labels import LabelSpace

ReadingMode = Literal["clean", "published"]
READING_MODES: tuple[str, ...] = ("clean", "published")
ListStyle = Literal["clean", "affectgpt", "mer2024"]
LIST_STYLES: tuple[str, ...] = ("clean", "affectgpt", "mer2024")
SENTIMENTS: tuple[str, ...] = ("positive", "negative", "neutral")

MISSING_CELLS: frozenset[str] = frozenset(
    {
        "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
        "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
    }
)  # fmt: skip
"""Cell texts ``pandas.read_csv`` reads as missing by default (pandas 2/3 ``STR_NA_VALUES``; matched exactly,
not stripped). The official scorers read CSVs with pandas and turn a missing cell into an empty list."""


def _check_mode(mode: str) -> None:
    if mode not in READING_MODES:
        raise ValueError(f"unknown reading mode {mode!r}; known: {', '.join(READING_MODES)}")


# ----------------------------------------------------------------------------------------------
# one label


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
    _check_mode(mode)
    if mode == "published":
        token = (text or "").split(" ")[-1]
        if token in space.labels:
            return Reading(token, "last_word")
        return Reading(None, None, forced_neutral=True)
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


def read_label_cell(cell: str | None, space: LabelSpace, mode: ReadingMode = "published") -> str | None:
    """A prediction file's label cell (``name,discrete``) -> canonical label, or None (unparsed).

    Empty -> None in both modes. published: a non-empty cell must be a label string exactly (else
    ValueError, like the official scorer's ``emo2idx`` KeyError); clean: the cell is normalised through
    the label space (case, synonyms, word forms) and an unknown word is None.
    """
    _check_mode(mode)
    if not cell:
        return None
    if mode == "published":
        if cell in space.labels:
            return cell
        raise ValueError(
            f"predicted label {cell!r} is not one of {', '.join(space.labels)} (label space {space.name}); "
            "the published protocol rejects unknown labels; use mode clean to count it as unparsed"
        )
    return space.normalize(cell)


def original_rule_labels(texts: Sequence[str | None], labels: Sequence[str], fallback: str = "neutral") -> list[str]:
    """Labels exactly as Emotion-LLaMA's scorer assigns them (last token, else ``fallback``): for comparison only."""
    allowed = set(labels)
    out = []
    for t in texts:
        tok = (t or "").split(" ")[-1]
        out.append(tok if tok in allowed else fallback)
    return out


# ----------------------------------------------------------------------------------------------
# list cells

_QUOTES = re.compile(r"[\"']")
_QUOTES_COMMAS = re.compile(r"[\"',]")
_CLEAN_SEP = re.compile(r"[,，、]")


def _quote_tokens(text: str) -> Iterator[str]:
    """Split on quote characters; drop tokens that are empty or ',' after strip() (not stripped)."""
    for tok in _QUOTES.split(text):
        if tok.strip() not in ("", ","):
            yield tok


def parse_emotion_list(text: str | None, style: ListStyle = "clean") -> list[str]:
    """A list cell (``['a', 'b']``, ``[a, b]``, ``a, b``, ``[]``, empty) -> words; see the module docstring.

    Raises ValueError (a message without location; callers add file, row and column) when the text is
    not a list under ``style``.
    """
    if style not in LIST_STYLES:
        raise ValueError(f"unknown list style {style!r}; known: {', '.join(LIST_STYLES)}")
    if text is None or not text.strip():
        return []
    if style == "mer2024":
        if "[" not in text:
            raise ValueError(
                f"{text!r} is not a bracketed list; the published MER2024 rule reads the text after the first "
                "'[' up to the next ']' (write ['a', 'b'] or score with mode clean)"
            )
        body = text.split("[")[1].split("]")[0]
        return [tok.lower() for tok in _quote_tokens(body)]
    if style == "affectgpt":
        s = text.strip()  # lenient: the official code does not strip spaces around the brackets
        s = s.removeprefix("[").removesuffix("]")
        return [t.strip() for t in _QUOTES_COMMAS.split(s) if t.strip()]
    s = text.strip()
    opened, closed = s.startswith("["), s.endswith("]")
    if opened != closed:
        raise ValueError(f"{text!r}: unbalanced brackets (write ['a', 'b'], [a, b] or a, b)")
    if opened:
        s = s[1:-1]
    if "[" in s or "]" in s:
        raise ValueError(f"{text!r}: nested brackets are not a flat list of words")
    words: list[str] = []
    for item in _CLEAN_SEP.split(s):
        w = item.strip().strip("\"'").strip().lower()
        if w and w not in words:
            words.append(w)
    return words


def parse_grouping(text: str) -> list[list[str]]:
    """A cached GPT synonym grouping ``"[['a', 'b'], ['c']]"`` -> groups (MER2024 ``listlist_to_list``).

    Split on ``[`` and ``]``, drop chunks that are empty or ``,`` after strip(), split each chunk on quote
    characters the same way as ``parse_emotion_list(style='mer2024')``. Words are not lower-cased here (the
    published scorer does not either); ``openset.ov_gpt_scores`` decides per mode.
    """
    groups: list[list[str]] = []
    for chunk in re.split(r"[\[\]]", text):
        if chunk.strip() in ("", ","):
            continue
        words = list(_quote_tokens(chunk))
        if words:
            groups.append(words)
    return groups


# ----------------------------------------------------------------------------------------------
# open-vocabulary words of a free-text answer

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


def read_openset(
    text: str | None,
    mode: ReadingMode = "clean",
    lexicon: Callable[[str], list[str]] | None = None,
    *,
    style: ListStyle = "affectgpt",
) -> list[str]:
    """Open-vocabulary emotion words of an answer, lower-case, de-duplicated in order ([] when none).

    ``mode`` clean: ``lexicon`` (``text -> words``, e.g. ``LabelSpace.mentions`` or
    ``EmotionLexicon.find``) is used when the answer is not a list; None reads list-shaped answers only.
    ``mode`` published: ``parse_emotion_list(text, style)`` then ``lower().strip()`` per word, as the
    official scorer reads a list (``lexicon`` is not used).
    """
    _check_mode(mode)
    if mode == "published":
        words = [w.lower().strip() for w in parse_emotion_list(text, style)]
        return list(dict.fromkeys(w for w in words if w))
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
# sentiment


def read_sentiment(text: str | None, mode: ReadingMode = "published") -> str | None:
    """positive / negative / neutral from a reply or a prediction cell, or None (unreadable).

    published: ``text.strip()`` must equal one of the three words exactly (case-sensitive), as
    MER-UniBench's ``evaluation-scoreonly.py`` compares the extractor's reply; clean: case-folded,
    surrounding spaces, quotes and ``.``/``!`` stripped, ``pos``/``neg`` read as positive/negative.
    """
    _check_mode(mode)
    if text is None:
        return None
    if mode == "published":
        c = text.strip()
        return c if c in SENTIMENTS else None
    c = text.strip().casefold().strip(" .!\"'")
    c = {"pos": "positive", "neg": "negative"}.get(c, c)
    return c if c in SENTIMENTS else None


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
