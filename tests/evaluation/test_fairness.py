"""Group fairness: a metric per metadata group, the max gap, small groups, missing metadata."""

from __future__ import annotations

import pytest

from emollm.evaluation.fairness import groups_from_metadata, metric_by_group

GOLD = ["happy", "sad", "happy", "angry", "sad", "happy"]
PRED = ["happy", "sad", "sad", "angry", None, "happy"]  # None: an unreadable answer
META = [{"gender": "f"}, {"gender": "f"}, {"gender": "m"}, {"gender": "m"}, {"gender": "m"}, {"gender": "x"}]


def test_accuracy_per_group_and_gap() -> None:
    groups = groups_from_metadata(META, "gender")
    rep = metric_by_group(GOLD, PRED, groups, metric="accuracy", column="gender")
    assert {g: (v.n, v.value) for g, v in rep.per_group.items()} == {"f": (2, 1.0), "m": (3, 1 / 3), "x": (1, 1.0)}
    assert rep.overall == pytest.approx(4 / 6)
    assert rep.gap == pytest.approx(2 / 3) and rep.worst_group == "m" and rep.best_group in ("f", "x")
    # groups below min_group_size are reported but not in the gap
    small = metric_by_group(GOLD, PRED, groups, metric="accuracy", min_group_size=2)
    assert small.per_group["x"].in_gap is False and small.gap == pytest.approx(2 / 3) and small.best_group == "f"
    d = small.to_dict()
    assert d["per_group"]["x"] == {"n": 1, "value": 1.0, "in_gap": False}


def test_waf_with_labels_counts_unparsed_as_miss() -> None:
    # None (unreadable) becomes the classification module's UNPARSED stand-in: a miss, never a label
    gold = [g for g in GOLD]
    pred = ["<unparsed>" if p is None else p for p in PRED]
    rep = metric_by_group(
        gold, pred, groups_from_metadata(META, "gender"), metric="waf", labels=["happy", "sad", "angry"]
    )
    # group m: gold happy, angry, sad; pred sad, angry, <unparsed> -> F1 angry 1, happy 0, sad 0 -> WAF 1/3
    assert rep.per_group["m"].value == pytest.approx(1 / 3)


def test_lower_is_better_metric_and_callable() -> None:
    y = [0.0, 1.0, 0.5, -0.5]
    p = [0.0, 0.0, 0.5, 0.5]
    rep = metric_by_group(y, p, ["a", "a", "b", "b"], metric="mse")
    assert rep.per_group["a"].value == pytest.approx(0.5) and rep.per_group["b"].value == pytest.approx(0.5)
    rep = metric_by_group(y, p, ["a", "b", "b", "b"], metric="mae")
    assert rep.worst_group == "b" and rep.best_group == "a" and rep.higher_is_better is False

    def hits(t: list[float], q: list[float]) -> float:
        return sum(a == b for a, b in zip(t, q, strict=True)) / len(t)

    assert metric_by_group(y, p, ["a", "a", "b", "b"], metric=hits).metric == "hits"


def test_missing_metadata_is_an_error_or_a_named_group() -> None:
    meta = [{"gender": "f"}, {"speaker": "s1"}, {"gender": ""}]
    with pytest.raises(ValueError, match="row 1: metadata has no value for 'gender'"):
        groups_from_metadata(meta, "gender")
    assert groups_from_metadata(meta, "gender", missing="(unknown)") == ["f", "(unknown)", "(unknown)"]
    with pytest.raises(ValueError, match="lengths differ"):
        metric_by_group(GOLD, PRED[:2], ["f"] * 6)
    with pytest.raises(ValueError, match="unknown fairness metric"):
        metric_by_group(GOLD, PRED, ["f"] * 6, metric="auc")
