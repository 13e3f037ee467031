"""Prompt-robustness statistics on hand-made matrices and Fleiss' kappa on a published worked example."""

from __future__ import annotations

import json
import math

import pytest

from emollm.evaluation.robustness import (
    UNPARSED,
    VariantPredictions,
    agreement,
    bootstrap_intervals,
    entropy_sensitivity,
    fleiss_kappa,
    flip_rate,
    flip_rates,
    order_bias,
    parse_failure_rates,
    rating_counts,
    robustness_report,
    summarize_scores,
    variant_scores,
)

# Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters, 5 categories; P̄ = 0.378,
# P_e = 0.213, κ = 0.210 (the same table as Fleiss 1971's illustration format).
WIKI_COUNTS = [
    [0, 0, 0, 0, 14],
    [0, 2, 6, 4, 2],
    [0, 0, 3, 5, 6],
    [0, 3, 9, 2, 0],
    [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0],
    [3, 2, 6, 3, 0],
    [2, 5, 3, 2, 2],
    [6, 5, 2, 1, 0],
    [0, 2, 2, 3, 7],
]

LABELS = ("a", "b", "c")
PREDS = {
    "base": ["a", "b", "c", "a"],
    "v1": ["a", "b", "a", UNPARSED],
    "v2": ["a", "c", "c", None],  # None is also read as unparsed
}


@pytest.fixture
def vp() -> VariantPredictions:
    preds = dict(PREDS)
    preds["v2"] = ["a", "c", "c", "a"]
    return VariantPredictions.from_mapping(preds, LABELS, base="base")


def test_fleiss_kappa_wikipedia_example() -> None:
    assert fleiss_kappa(WIKI_COUNTS) == pytest.approx(0.20993, abs=5e-5)
    assert fleiss_kappa([[3, 0], [0, 3], [3, 0]]) == pytest.approx(1.0)  # perfect agreement
    assert math.isnan(fleiss_kappa([[3, 0], [3, 0]]))  # one category only: undefined
    with pytest.raises(ValueError, match="same number of ratings"):
        fleiss_kappa([[2, 1], [1, 1]])


def test_agreement_entropy_flips_parse_failures(vp: VariantPredictions) -> None:
    assert rating_counts(vp).tolist() == [[3, 0, 0, 0], [0, 2, 1, 0], [1, 0, 2, 0], [2, 0, 0, 1]]
    assert agreement(vp) == pytest.approx((1 + 3 * (2 / 3)) / 4)
    h = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3)) / math.log(4)  # C+1 = 4 categories
    assert entropy_sensitivity(vp) == pytest.approx(3 * h / 4)
    assert flip_rates(vp) == {"v1": 0.5, "v2": 0.25}
    assert flip_rate(vp) == pytest.approx(0.375)
    assert flip_rates(vp, base="v2") == {"base": 0.25, "v1": 0.75}
    assert parse_failure_rates(vp) == {"base": 0.0, "v1": 0.25, "v2": 0.0}
    same = VariantPredictions.from_mapping({"x": ["a", "b"], "y": ["a", "b"]}, LABELS)
    assert agreement(same) == 1.0 and entropy_sensitivity(same) == 0.0 and flip_rate(same) == 0.0


def test_none_is_unparsed_and_bad_labels_are_named() -> None:
    vp = VariantPredictions.from_mapping(PREDS, LABELS)
    assert vp.row("v2")[3] == UNPARSED
    with pytest.raises(ValueError, match=r"variant 'v1', sample 2: prediction 'happy'"):
        VariantPredictions.from_mapping({"v0": ["a", "a", "a"], "v1": ["a", "b", "happy"]}, LABELS)
    with pytest.raises(ValueError, match="lengths differ"):
        VariantPredictions.from_mapping({"v0": ["a"], "v1": ["a", "b"]}, LABELS)
    with pytest.raises(ValueError, match="gold label 'z' of sample 1"):
        variant_scores(vp, ["a", "z", "c", "a"])


def test_scores_and_summary(vp: VariantPredictions) -> None:
    gold = ["a", "b", "c", "b"]
    acc = variant_scores(vp, gold, "accuracy")
    assert acc == {"base": 0.75, "v1": 0.5, "v2": 0.5}
    # unparsed counts as a miss for WAF, never as a label
    waf = variant_scores(VariantPredictions.from_mapping({"k": ["a", UNPARSED]}, ("a", "b")), ["a", "b"], "waf")
    assert waf == {"k": 0.5}
    s = summarize_scores({"p0": 0.5, "p1": 0.7, "p2": 0.6})
    assert (s.mean, s.worst, s.best, s.worst_variant, s.best_variant) == pytest.approx((0.6, 0.5, 0.7, "p0", "p1"))
    assert s.std == pytest.approx(0.1) and s.spread == pytest.approx(0.2) and s.cv == pytest.approx(0.1 / 0.6)
    one = summarize_scores({"only": 0.4})
    assert one.std is None and one.cv is None and one.spread == 0.0


def test_order_bias_first_and_last_position() -> None:
    gold = ["a", "a", "b", "c"]
    vp = VariantPredictions.from_mapping({"O_canon": ["a"] * 4, "O_rev": ["c"] * 4}, LABELS)
    ob = order_bias(vp, gold, {"O_canon": ["a", "b", "c"], "O_rev": ["c", "b", "a"]})
    # canonical: a +0.5, b −0.25, c −0.25; reversed: c +0.75, b −0.25, a −0.5
    assert ob.per_variant == {"O_canon": [0.5, -0.25, -0.25], "O_rev": [0.75, -0.25, -0.5]}
    assert ob.first == pytest.approx(0.625) and ob.last == pytest.approx(-0.375)
    assert ob.per_position == pytest.approx([0.625, -0.25, -0.375])
    with pytest.raises(ValueError, match="permutation"):
        order_bias(vp, gold, {"O_canon": ["a", "b"]})


def test_report_families_and_bootstrap(vp: VariantPredictions) -> None:
    gold = ["a", "b", "c", "b"]
    rep = robustness_report(
        vp,
        gold,
        score="accuracy",
        families={"P": ["base", "v1"], "O": ["v2"]},
        orders={"v2": ["c", "b", "a"]},
        n_boot=40,
        seed=3,
    )
    json.dumps(rep)  # JSON-ready
    assert rep["base_score"] == 0.75
    assert rep["overall"]["summary"]["worst"] == 0.5 and rep["overall"]["flip_rate"] == pytest.approx(0.375)
    assert rep["families"]["P"]["flip_rate"] == 0.5 and rep["families"]["O"]["flip_rate"] == 0.25
    assert rep["families"]["O"]["fleiss_kappa"] is None  # one variant: no raters to compare
    assert rep["overall"]["parse_fail"]["v1"] == 0.25
    boot = rep["bootstrap"]
    assert boot["mean"][0] <= boot["mean"][1] and set(boot["diff_vs_base"]) == {"v1", "v2"}
    again = bootstrap_intervals(vp, gold, "accuracy", n_boot=40, seed=3)
    assert again["mean"] == boot["mean"] and again["worst"] == boot["worst"]
    label_free = robustness_report(vp)
    assert "scores" not in label_free["overall"] and label_free["overall"]["agreement"] == pytest.approx(0.75)


def test_kappa_of_variant_predictions_by_hand(vp: VariantPredictions) -> None:
    # counts [[3,0,0,0],[0,2,1,0],[1,0,2,0],[2,0,0,1]], n = 3 raters:
    # P_i = 1, 1/3, 1/3, 1/3 -> P̄ = 1/2; p_j = 6/12, 2/12, 3/12, 1/12 -> P_e = 50/144
    # κ = (72/144 − 50/144) / (1 − 50/144) = 22/94
    assert fleiss_kappa(rating_counts(vp)) == pytest.approx(22 / 94)
