"""Reading free-text answers: labels (clean and published), open-vocabulary words, sentiment; never a default."""

from __future__ import annotations

import pytest

from emollm.answers import (
    original_rule_labels,
    read_label,
    read_label_cell,
    read_labels,
    read_openset,
    sentiment_of_words,
)
from emollm.labels import label_space

MER6 = label_space("mer6")


@pytest.mark.parametrize(
    ("text", "label", "rule"),
    [
        ("happy", "happy", "exact"),
        ("Happiness.", "happy", "exact"),
        ("  *Worry*  ", "worried", "exact"),
        ("生气", "angry", "exact"),
        ("I think she is mostly angry, not sad.", "angry", "mention"),
        ("The person seems surprised and then sad", "surprise", "mention"),
    ],
)
def test_clean_reading_exact_then_earliest_mention(text: str, label: str, rule: str) -> None:
    r = read_label(text, MER6)
    assert (r.label, r.rule) == (label, rule)
    assert not r.forced_neutral


@pytest.mark.parametrize("text", ["", "   ", None, "R wordKY to doubt\x15", "bored", "[[[", "the emotion is unclear"])
def test_unreadable_answers_stay_unparsed(text: str | None) -> None:
    r = read_label(text, MER6)
    assert r.label is None and r.rule is None


def test_published_reading_is_the_last_space_token_exactly() -> None:
    assert read_label("The emotion is happy", MER6, "published").label == "happy"
    # the original splits on " " and compares exactly: punctuation, case and synonyms do not read
    for text in ("The emotion is happy.", "Happy", "happiness", "happy\n", "angry, I think"):
        r = read_label(text, MER6, "published")
        assert r.label is None and r.forced_neutral, text
    assert read_label("neutral", MER6, "published") == read_label("neutral", MER6, "published")
    with pytest.raises(ValueError, match="unknown reading mode"):
        read_label("happy", MER6, "fuzzy")  # type: ignore[arg-type]


def test_read_labels_counts_every_outcome() -> None:
    texts = ["happy", "I feel sad today", "gibberish", "", "Anger!"]
    labels, counts = read_labels(texts, MER6)
    assert labels == ["happy", "sad", None, None, "angry"]
    assert counts == {
        "n": 5, "n_unparsed": 2, "n_exact": 2, "n_mention": 1, "n_last_word": 0, "n_forced_neutral": 0,
    }  # fmt: skip
    labels, counts = read_labels(texts, MER6, "published")
    assert labels == ["happy", None, None, None, None]
    assert counts["n_unparsed"] == 4 and counts["n_forced_neutral"] == 4 and counts["n_last_word"] == 1


def test_original_rule_forces_neutral_for_comparison_only() -> None:
    assert original_rule_labels(["It is sad", "sad.", "xyz"], MER6.labels) == ["sad", "neutral", "neutral"]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("The character's emotional state is happy, anxious and tired.", ["happy", "anxious", "tired"]),
        ("['Angry', 'frustrated']", ["angry", "frustrated"]),
        ("[sad; lonely / hurt]", ["sad", "lonely", "hurt"]),
        ("Emotions: calm or content", ["calm", "content"]),
        ("happy, happy, sad", ["happy", "sad"]),
        ("", []),
        ("???", []),
    ],
)
def test_openset_lists(text: str, words: list[str]) -> None:
    assert read_openset(text) == words


def test_openset_prose_uses_the_lexicon_or_gives_nothing() -> None:
    prose = "He raises his voice because he is angry, yet his eyes look sad."
    assert read_openset(prose) == []  # not list-shaped, no lexicon: nothing is invented
    assert read_openset(prose, "clean", MER6.mentions) == ["angry", "sad"]


def test_sentiment_votes_and_ties_are_unreadable() -> None:
    assert sentiment_of_words(["happy", "relieved", "sad"]) == "positive"
    assert sentiment_of_words(["Angry", "worried"]) == "negative"
    assert sentiment_of_words(["neutral"]) == "neutral"
    assert sentiment_of_words(["happy", "sad"]) is None
    assert sentiment_of_words(["surprise"]) is None
    assert sentiment_of_words([]) is None


def test_label_cells_of_prediction_files() -> None:
    assert read_label_cell("happy", MER6) == "happy" and read_label_cell("", MER6) is None
    with pytest.raises(ValueError, match="'Happy' is not one of neutral, angry"):
        read_label_cell("Happy", MER6, "published")
    assert read_label_cell("Happy", MER6, "clean") == "happy"
    assert read_label_cell("Happiness", MER6, "clean") == "happy"
    assert read_label_cell("bored", MER6, "clean") is None
    with pytest.raises(ValueError, match="unknown reading mode 'fuzzy'"):
        read_label_cell("happy", MER6, "fuzzy")  # type: ignore[arg-type]
