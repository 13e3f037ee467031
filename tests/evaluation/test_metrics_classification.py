"""Classification metrics: the unparsed bucket, sklearn agreement, and Emotion-LLaMA's MER2023 confusion matrix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.metrics import f1_score

from emollm.evaluation.metrics.classification import (
    UNPARSED,
    classification_metrics,
    expand_confusion,
    metrics_from_confusion,
    read_pred_label,
)
from emollm.labels import label_space


def test_unparsed_counts_wrong_and_is_reported() -> None:
    gold = ["happy", "sad", "sad", "angry"]
    pred = ["happy", None, "sad", "angry"]
    m = classification_metrics(gold, pred)
    assert m["n_unparsed"] == 1 and m["unparsed_rate"] == 0.25
    assert m["accuracy"] == 0.75
    # the unparsed answer is a false negative for 'sad' and a false positive for nothing
    assert m["per_class"]["sad"] == {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    assert m["labels"] == ["angry", "happy", "sad"]  # never a label of its own
    assert m["confusion_matrix"]["columns"] == ["angry", "happy", "sad", UNPARSED]
    assert m["confusion_matrix"]["matrix"][2] == [0, 0, 1, 1]
    # never mapped to a label: differs from mapping the unparsed answer to 'happy' (Emotion-LLaMA maps to neutral)
    mapped = classification_metrics(gold, ["happy", "happy", "sad", "angry"])
    assert m["weighted_f1"] != mapped["weighted_f1"]
    assert m["weighted_f1"] == pytest.approx((1 * 1 + 2 * (2 / 3) + 1 * 1) / 4)


def test_matches_sklearn_weighted_and_macro() -> None:
    gold = ["neutral", "angry", "happy", "sad", "worried", "surprise", "sad", "happy", "angry"]
    pred = ["neutral", "angry", "sad", "sad", "neutral", "surprise", "happy", "happy", "worried"]
    m = classification_metrics(gold, pred)
    assert m["waf"] == f1_score(gold, pred, average="weighted")
    assert m["macro_f1"] == pytest.approx(f1_score(gold, pred, average="macro", zero_division=0))
    assert m["war"] == m["accuracy"] == pytest.approx(5 / 9)
    assert m["uar"] == m["macro_recall"]


def test_explicit_label_set_and_errors() -> None:
    m = classification_metrics(["a", "b"], ["a", "a"], labels=["a", "b", "c"])
    assert m["per_class"]["c"]["support"] == 0 and m["macro_f1"] == pytest.approx((2 / 3 + 0 + 0) / 3)
    with pytest.raises(ValueError, match="not in the label set"):
        classification_metrics(["a", "z"], ["a", "a"], labels=["a", "b"])
    with pytest.raises(ValueError, match="2 labels but predictions have 1"):
        classification_metrics(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no samples"):
        classification_metrics([], [])


def test_confusion_matrix_round_trip() -> None:
    gold, pred = expand_confusion([[2, 1], [0, 3]], ["x", "y"])
    assert gold == ["x", "x", "x", "y", "y", "y"] and pred == ["x", "x", "y", "y", "y", "y"]
    assert metrics_from_confusion([[2, 1], [0, 3]], ["x", "y"])["confusion_matrix"]["matrix"] == [[2, 1], [0, 3]]
    with pytest.raises(ValueError, match="does not match 3 labels"):
        expand_confusion([[1, 2], [3, 4]], ["a", "b", "c"])
    with pytest.raises(ValueError, match="non-negative integers"):
        expand_confusion([[1, -2], [3, 4]], ["a", "b"])


def test_prediction_cells_per_mode() -> None:
    space = label_space("mer6")
    assert read_pred_label("", space, "published", "f: row 2") is None
    assert read_pred_label("happy", space, "published", "f: row 2") == "happy"
    with pytest.raises(ValueError, match="f: row 7.*'Happiness'.*mode clean"):
        read_pred_label("Happiness", space, "published", "f: row 7")
    assert read_pred_label("Happiness.", space, "clean", "f: row 7") == "happy"
    assert read_pred_label("bored", space, "clean", "f: row 7") is None


def test_emotion_llama_mer2023_confusion_matrix(conformance: Path) -> None:
    data = json.loads((conformance / "mer2023" / "emotion_llama_confusion.json").read_text())
    m = metrics_from_confusion(data["confusion_matrix"], data["label_order"])
    exp = data["expected"]
    assert m["n"] == 834
    assert m["accuracy"] == pytest.approx(exp["accuracy"], abs=1e-12)
    assert m["weighted_precision"] == pytest.approx(exp["weighted_precision"], abs=1e-12)
    assert m["weighted_recall"] == pytest.approx(exp["weighted_recall"], abs=1e-12)
    assert m["weighted_f1"] == pytest.approx(exp["weighted_f1"], abs=1e-12)
    derived = data["derived_not_reported_by_authors"]
    assert m["macro_f1"] == pytest.approx(derived["macro_f1"], abs=1e-12)
    assert m["uar"] == pytest.approx(derived["macro_recall_UAR"], abs=1e-12)
    for lab, f1 in derived["per_class_f1"].items():
        assert m["per_class"][lab]["f1"] == pytest.approx(f1, abs=1e-12)
    assert {lab: v["support"] for lab, v in m["per_class"].items()} == data["row_sums_gold_support"]
