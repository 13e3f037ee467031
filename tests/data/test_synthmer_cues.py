"""SynthMER's generative model: exact ceilings, their Monte-Carlo check against what the generator
actually sampled, and the subtitles' intended reliabilities (annotations-only generation)."""

from __future__ import annotations

import csv
import itertools
import json
import math
from collections import Counter

import numpy as np
import pytest

from emollm.data.synthmer import LABELS, MODALITIES, CueModel, SynthMERConfig, generate_synthmer
from emollm.data.synthmer.cues import modality_key
from emollm.data.synthmer.text import POOLS, base_of
from emollm.labels import label_space

MER6 = label_space("mer6")
N = 4000


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, list[dict[str, str]]]:
    """A moderately large annotation-only generation: its JSON summary and per-clip rows."""
    root = tmp_path_factory.mktemp("synthmer_big")
    cfg = SynthMERConfig(n_train=N - 800, n_val=400, n_test=400, write_media=False, seed=3)
    generate_synthmer(root, cfg, progress=False)
    info = json.loads((root / "SYNTHMER.json").read_text())
    labels = {}
    for s in ("train", "val", "test"):
        for line in (root / f"{s}_NCEV.txt").read_text().splitlines():
            name, _, label, _ = line.split(" ")
            labels[name] = label
    subs = {r["name"]: r["sentence"] for r in csv.DictReader(open(root / "transcription_en_all.csv", encoding="utf-8"))}
    rows = []
    for r in csv.DictReader(open(root / "synthmer_meta.csv", encoding="utf-8")):
        rows.append({**r, "label": labels[r["name"]], "sentence": subs[r["name"]]})
    return info, rows


def test_default_ceilings_in_the_intended_ranges() -> None:
    c = CueModel(SynthMERConfig().reliability).ceilings()
    for m in MODALITIES:
        assert 0.45 <= c[m] <= 0.70, (m, c[m])
    assert 0.85 <= c["face+audio+text"] <= 0.95
    assert c["face+audio+text"] > max(c[m] for m in MODALITIES) + 0.15, "fusion must clearly help"
    for a, b in itertools.combinations(MODALITIES, 2):  # every pair beats both of its members
        assert c[modality_key([a, b])] > max(c[a], c[b]) + 0.05
    assert c["chance"] == pytest.approx(1 / 6, abs=1e-6)


def test_ceiling_matches_brute_force_posterior() -> None:
    model = CueModel({"face": 0.5, "audio": 0.3, "text": 0.7})
    mats = {m: model.matrix(m) for m in MODALITIES}
    for mat in mats.values():
        assert np.allclose(mat.sum(1), 1.0) and (mat >= 0).all()
    # sum over cue tuples of P(cues) * max posterior == ceiling
    total = 0.0
    for combo in itertools.product(range(6), repeat=3):
        cues = dict(zip(MODALITIES, combo, strict=True))
        p_cues = sum(np.prod([mats[m][y, cues[m]] for m in MODALITIES]) / 6 for y in range(6))
        if p_cues > 0:
            total += p_cues * model.posterior(cues).max()
        else:
            with pytest.raises(ValueError, match="probability 0"):
                model.posterior(cues)
    assert model.ceiling(MODALITIES) == pytest.approx(total, abs=1e-12)
    assert CueModel({"face": 1.0, "audio": 0.0, "text": 0.0}).ceiling(["face"]) == pytest.approx(1.0)


def test_ceilings_agree_with_monte_carlo_of_the_generated_cues(big: tuple[dict, list[dict[str, str]]]) -> None:
    info, rows = big
    model = CueModel(info["reliability"])
    idx = {y: i for i, y in enumerate(LABELS)}
    for k in range(1, 4):
        for mods in itertools.combinations(MODALITIES, k):
            key = modality_key(mods)
            # the Bayes rule from the model, applied to the cues the generator sampled
            acc = np.mean([model.bayes_label({m: idx[r[f"{m}_cue"]] for m in mods}) == idx[r["label"]] for r in rows])
            p = info["ceilings"][key]
            se = math.sqrt(p * (1 - p) / len(rows))
            assert abs(acc - p) < 4 * se + 1e-3, f"{key}: Monte-Carlo accuracy {acc:.4f} vs ceiling {p:.4f}"
    # a plug-in classifier that learns P(label | cue) from the data alone reaches each single-modality ceiling
    for m in MODALITIES:
        joint = Counter((r[f"{m}_cue"], r["label"]) for r in rows)
        best = sum(max(joint[(c, y)] for y in LABELS) for c in LABELS) / len(rows)
        assert abs(best - info["ceilings"][m]) < 0.035, (m, best, info["ceilings"][m])


def test_cue_frequencies_match_the_matrices(big: tuple[dict, list[dict[str, str]]]) -> None:
    info, rows = big
    for m in MODALITIES:
        mat = np.array(info["cue_given_label"][m])
        for i, y in enumerate(LABELS):
            ry = [r for r in rows if r["label"] == y]
            freq = np.array([sum(r[f"{m}_cue"] == c for r in ry) for c in LABELS]) / len(ry)
            se = np.sqrt(mat[i] * (1 - mat[i]) / len(ry))
            assert np.all(np.abs(freq - mat[i]) < 4.5 * se + 0.01), (m, y, freq.round(3), mat[i])


def test_subtitles_carry_the_intended_signal(big: tuple[dict, list[dict[str, str]]]) -> None:
    info, rows = big
    r_text = info["reliability"]["text"]
    # every subtitle comes from the pool of the recorded text cue (so the cue is recoverable exactly)
    kinds = Counter()
    for r in rows:
        _, cue, kind = base_of(r["sentence"])
        assert cue == r["text_cue"], r
        kinds[(cue, kind)] += 1
    # the words express the true label about r_text of the time, and are neutral content most of the rest
    agree = np.mean([r["text_cue"] == r["label"] for r in rows])
    assert abs(agree - r_text) < 0.03
    emotional = [r for r in rows if r["label"] != "neutral"]
    neutral_words = np.mean([r["text_cue"] == "neutral" for r in emotional])
    assert 0.35 < neutral_words < 0.5, neutral_words
    misleading = np.mean([r["text_cue"] not in ("neutral", r["label"]) for r in emotional])
    assert 0.03 < misleading < 0.12, misleading
    # explicit sentences name their emotion; implicit ones name none; sarcasm uses no or other labels' words
    for cue, pools in POOLS.items():
        for kind, sentences in pools.items():
            for s in sentences:
                said = MER6.mentions(s)
                if kind == "explicit":
                    assert said == [cue], (cue, s, said)
                elif kind == "implicit":
                    assert said == [], (cue, s, said)
                else:
                    assert cue not in said, (cue, s, said)
    assert kinds[("angry", "sarcastic")] > 0 and kinds[("happy", "explicit")] > 0
    # a keyword reader (label words, else neutral) is far from the text ceiling on emotional clips
    kw = np.mean([(MER6.find_in_text(r["sentence"]) or "neutral") == r["label"] for r in rows])
    assert kw < info["ceilings"]["text"]


def test_speakers_and_balance(big: tuple[dict, list[dict[str, str]]]) -> None:
    info, rows = big
    unseen = {k for k, v in info["speakers"].items() if v["held_out"]}
    assert len(unseen) == info["config"]["unseen_test_speakers"]
    assert all(r["split"] == "test" for r in rows if r["speaker"] in unseen)
    assert {r["speaker"] for r in rows if r["split"] == "test"} & unseen
    genders = Counter(r["gender"] for r in rows)
    assert abs(genders["F"] - genders["M"]) < 0.1 * len(rows)
    for s in ("train", "val", "test"):
        counts = info["counts"][s]["labels"]
        assert max(counts.values()) - min(counts.values()) <= 1
