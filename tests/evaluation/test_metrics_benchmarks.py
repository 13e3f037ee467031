"""Scores of the zero-shot benchmarks (DFEW/MAFW, MER2025, EmoBench-M, MME-Emotion) on tiny files, checked by hand.

pytest tests/evaluation/test_metrics_benchmarks.py
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from chat_stub import ChatStub

from emollm.evaluation.judge import ENV_BASE_URL
from emollm.evaluation.metrics.dfer import uar_war
from emollm.evaluation.metrics.emobench import read_emobench_answer
from emollm.evaluation.metrics.mer2025 import write_track1_csv, write_track2_npz
from emollm.evaluation.metrics.mme_emotion import parse_step_scores, recognition_reasoning
from emollm.evaluation.score import score

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks"


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


# ----------------------------------------------------------------------------------------------
# DFEW / MAFW


def test_uar_war_by_hand() -> None:
    gold = ["happy", "happy", "sad", "sad", "sad", "angry"]
    pred = ["happy", "sad", "sad", "sad", None, "fear"]
    m = uar_war(gold, pred)
    # recalls: happy 1/2, sad 2/3, angry 0/1; 'fear' has no gold sample, so it is not averaged in
    assert m["uar"] == pytest.approx((1 / 2 + 2 / 3 + 0) / 3)
    assert m["war"] == pytest.approx(3 / 6) and m["n_unparsed"] == 1


def test_uar_war_per_fold_and_mean(tmp_path: Path) -> None:
    gold = _csv(
        tmp_path / "g.csv",
        ["name", "discrete", "fold"],
        [["a", "happy", 1], ["b", "sad", 1], ["c", "sad", 2], ["d", "angry", 2], ["e", "angry", 2]],
    )
    pred = _csv(
        tmp_path / "p.csv",
        ["name", "discrete"],
        [["a", "happy"], ["b", "happy"], ["c", "sad"], ["d", "sad"], ["e", "angry"]],
    )
    r = score("uar_war", gold, pred, label_space="dfew7", bootstrap=50)
    # fold 1: happy 1/1, sad 0/1 -> UAR 0.5, WAR 0.5; fold 2: sad 1/1, angry 1/2 -> UAR 0.75, WAR 2/3
    assert r["folds"]["1"] == {"uar": 0.5, "war": 0.5, "n": 2}
    assert r["folds"]["2"]["uar"] == pytest.approx(0.75) and r["folds"]["2"]["war"] == pytest.approx(2 / 3)
    assert r["score"] == pytest.approx((0.5 + 0.75) / 2) == r["fold_mean"]["uar"]
    assert r["fold_mean"]["war"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert r["uar"] == pytest.approx((1 + 1 / 2 + 1 / 2) / 3)  # pooled over folds: happy 1, sad 1/2, angry 1/2
    assert 0 <= r["bootstrap"]["low"] <= r["bootstrap"]["high"] <= 1


def test_uar_war_mafw_labels_published_rejects_unknown(tmp_path: Path) -> None:
    gold = _csv(tmp_path / "g.csv", ["name", "discrete"], [["a", "helplessness"], ["b", "anxiety"]])
    pred = _csv(tmp_path / "p.csv", ["name", "discrete"], [["a", "helpless"], ["b", "anxiety"]])
    with pytest.raises(ValueError, match=r"p\.csv: row 2, column discrete.*'helpless'"):
        score("uar_war", gold, pred, label_space="mafw11")
    r = score("uar_war", gold, pred, label_space="mafw11", mode="clean")  # clean reads the synonym
    assert r["uar"] == 1.0 and r["war"] == 1.0


# ----------------------------------------------------------------------------------------------
# MER2025


def test_mer2025_semi_waf_and_candidates(tmp_path: Path) -> None:
    gold = FIX / "mer2025" / "track1_test.csv"
    cands = FIX / "mer2025" / "track_all_candidates.csv"
    preds = {
        f"sample_0001000{i}": lab for i, lab in enumerate(["happy", "sad", "sad", "surprise", "neutral", "happy"], 1)
    }
    sub = write_track1_csv(preds, cands, tmp_path / "track1.csv")
    assert sub.read_text().splitlines()[:2] == ["name,discrete", "sample_00010001,happy"]
    # gold happy, sad, angry, surprise(d) vs pred happy, sad, sad, surprise: per-class F1 happy 1, sad 2/3, angry 0,
    # surprise 1; weights 1/4 each -> WAF = (1 + 2/3 + 0 + 1) / 4
    with pytest.raises(ValueError, match="gold label 'surprised'"):
        score("mer2025_semi", gold, sub, candidates=cands)  # published: the gold cell must be canonical
    r = score("mer2025_semi", gold, sub, candidates=cands, mode="clean")
    assert r["score"] == pytest.approx((1 + 2 / 3 + 0 + 1) / 4) and r["n_extra_pred"] == 2
    short = _csv(tmp_path / "short.csv", ["name", "discrete"], [["sample_00010001", "happy"]])
    with pytest.raises(ValueError, match="5 candidate name"):
        score("mer2025_semi", gold, short, candidates=cands, mode="clean")
    with pytest.raises(ValueError, match="not among"):
        write_track1_csv({**preds, "sample_00010001": "joy"}, cands, tmp_path / "bad.csv")


def test_mer2025_fg_levels_by_hand_csv_and_npz(conformance: Path, tmp_path: Path) -> None:
    wheel = conformance / "emotion_wheel"
    gold = _csv(tmp_path / "gold.csv", ["name", "openset"], [["a", "['happy']"], ["b", "['angry', 'sad']"]])
    pred_rows = {"a": ["happy"], "b": ["sad"]}
    pred = _csv(tmp_path / "pred.csv", ["name", "openset"], [[k, str(v)] for k, v in pred_rows.items()])
    r = score("mer2025_fg", gold, pred, wheel=wheel)
    # every wheel, both levels: a: P = R = 1; b: P = 1 (sad hit), R = 1/2 -> P 1, R 3/4, F = 2*0.75/1.75 = 6/7
    assert r["L1"]["F"] == pytest.approx(6 / 7) and r["L2"]["F"] == pytest.approx(6 / 7)
    assert r["score"] == pytest.approx(6 / 7) and r["printed"] == pytest.approx([6 / 7, 6 / 7, 6 / 7])
    cands = _csv(tmp_path / "cands.csv", ["name"], [["a"], ["b"]])
    npz = write_track2_npz(pred_rows, cands, tmp_path / "team-openset.npz")
    z = np.load(npz)
    assert list(z["filenames"]) == ["a", "b"] and list(z["fileitems"]) == ["['happy']", "['sad']"]
    assert score("mer2025_fg", gold, npz, wheel=wheel, candidates=cands)["score"] == pytest.approx(r["score"])
    with pytest.raises(ValueError, match="-openset.npz"):
        write_track2_npz(pred_rows, cands, tmp_path / "team.npz")


# ----------------------------------------------------------------------------------------------
# EmoBench-M


@pytest.mark.parametrize(
    ("reply", "label"),
    [
        ("{'emotion': 'Negative'}", "negative"),
        ('Sure! {"emotion": "positive"}', "positive"),
        ("{'emotion label': 'happy', 'intent label': 'wishing'}", "happy"),
        ("positive.", "positive"),
        ("I think it is mostly neutral, not negative.", "neutral"),
        ("no idea", None),
        ("", None),
    ],
)
def test_read_emobench_answer(reply: str, label: str | None) -> None:
    assert read_emobench_answer(reply, ["neutral", "negative", "positive"]) == label


def test_emobench_official_drops_unparsed_clean_counts_them(tmp_path: Path) -> None:
    gold = _csv(
        tmp_path / "g.csv",
        ["name", "discrete", "candidates"],
        [
            ["a", "positive", "neutral|negative|positive"],
            ["b", "negative", ""],
            ["c", "neutral", ""],
            ["d", "negative", ""],
        ],
    )
    pred = _csv(
        tmp_path / "p.csv",
        ["name", "discrete"],
        [["a", "{'emotion': 'positive'}"], ["b", "negative"], ["c", ""], ["d", "I'd say positive"]],
    )
    r = score("emobench", gold, pred)
    # read: positive, negative, (unparsed), positive -> official on 3: 2/3 right; clean on 4: 2/4
    assert r["official"]["n"] == 3 and r["official"]["accuracy"] == pytest.approx(2 / 3)
    assert r["clean"]["accuracy"] == 0.5 and r["n_unparsed"] == 1 and r["score"] == pytest.approx(2 / 3)
    # official weighted F1 over gold {positive: 1, negative: 2}: positive P 1/2 R 1 F 2/3; negative P 1 R 1/2 F 2/3
    assert r["official"]["f1"] == pytest.approx(2 / 3)
    assert score("emobench", gold, pred, mode="clean")["score"] == 0.5


# ----------------------------------------------------------------------------------------------
# MME-Emotion


def test_parse_step_scores_official_rules() -> None:
    assert parse_step_scores("<score>Step 1: 1/1, Step 2: 0/1, Step 3: 2/3</score>") == pytest.approx([1, 0, 2 / 3])
    assert parse_step_scores("<score>Step 1: 0/0</score>") == [0.0]
    assert parse_step_scores("no block") is None
    assert parse_step_scores("<score>Step 1: 1/1,\nStep 2: 1/1</score>") is None  # official regex: one line
    assert parse_step_scores("<score>Step 1: 1/1,\nStep 2: 1/1</score>", multiline=True) == [1, 1]
    assert recognition_reasoning([1.0, 0.0, 2 / 3]) == pytest.approx((2 / 3, 0.5))
    assert recognition_reasoning([1.0]) == (1.0, 0.0)


def _mme_files(tmp_path: Path) -> tuple[Path, Path]:
    names = ["ML-ER/MAFW/video/03419.mp4", "ML-ER/MAFW/video/00343.mp4"]
    gold = _csv(
        tmp_path / "gold.csv",
        ["name", "openset"],
        [[names[0], "['anger', 'disgust']"], [names[1], "['fear', 'surprise']"]],
    )
    pred = _csv(
        tmp_path / "pred.csv",
        ["name", "openset", "text"],
        [
            [names[0], "['disgust']", "CASE_A: his brows are lowered and he turns away; he feels disgust."],
            [names[1], "['happiness']", "CASE_B: she smiles; happiness."],
        ],
    )
    return gold, pred


def test_mme_emotion_judge_free_recognition(tmp_path: Path) -> None:
    gold, pred = _mme_files(tmp_path)
    r = score("mme_emotion_rec", gold, pred, task="ML-ER")
    assert r["score"] == pytest.approx((1 / 2 + 0) / 2) and r["judge"] == "none" and r["cot"] is None


def _judge_reply(messages: list[dict]) -> str:
    prompt = messages[0]["content"]
    assert prompt.startswith("You are an expert in affective computing")  # the system text leads the prompt
    if "extract several key steps" in prompt:
        if "CASE_A" in prompt:
            return "<step>Step 1: Brows lowered. Step 2: Turns away. Step 3: The predicted emotion is disgust.</step>"
        return "<step>Step 1: The predicted emotion is happiness.</step>"
    assert "Emotion labels:" in prompt  # the ML-ER scoring prompt, C/K on the last step
    if "Emotion labels: 'anger,disgust'" in prompt:
        assert "Turns away" in prompt and "displeasure" in prompt  # steps and the audio clue reach the judge
        return "<score>Step 1: 1/1, Step 2: 0/1, Step 3: 1/2</score>"
    return "I cannot rate this."  # unreadable: skipped (published) or 0 (clean)


def test_mme_emotion_judge_protocol_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gold, pred = _mme_files(tmp_path)
    judge = tmp_path / "judge.yaml"
    judge.write_text("backend: openai\nmodel: gpt-4o-2024-11-20\nmax_retries: 0\n")
    with ChatStub(_judge_reply) as stub:
        monkeypatch.setenv(ENV_BASE_URL, stub.url)
        r = score("mme_emotion", gold, pred, task="ML-ER", judge=judge, clues=FIX / "mme_emotion")
        assert len(stub.requests) == 4 and all(b["temperature"] == 0 for b in stub.requests)
    # sample A: steps 1, 0, 1/2 -> Rec 1/2, Rea 1/2; sample B unreadable -> skipped (official rule)
    assert r["recognition"] == 0.5 and r["reasoning"] == 0.5 and r["cot"] == 0.5 == r["score"]
    assert r["n_scored"] == 1 and r["n_unparsed"] == 1 and r["judge"]["calls"] == 4
    assert re.fullmatch(r"[0-9a-f]{64}", r["judge"]["prompt_hashes"]["ML-ER.score"])
    # the server is gone: a rescore (clean mode: unreadable -> 0) is answered from the cache
    c = score("mme_emotion", gold, pred, task="ML-ER", judge=judge, clues=FIX / "mme_emotion", mode="clean")
    assert c["judge"]["calls"] == 0 and c["judge"]["cache_hits"] == 4
    assert c["recognition"] == 0.25 and c["reasoning"] == 0.25 and c["n_scored"] == 2
    cached = [json.loads(x) for f in (tmp_path / "judge_cache").glob("*.jsonl") for x in f.read_text().splitlines()]
    assert {x["call"] for x in cached} == {"mme.extract", "mme.score"}


def test_mme_emotion_missing_clue_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gold = _csv(tmp_path / "gold.csv", ["name", "openset"], [["ML-ER/MAFW/video/99999.mp4", "['fear']"]])
    pred = _csv(tmp_path / "pred.csv", ["name", "openset"], [["ML-ER/MAFW/video/99999.mp4", "['fear']"]])
    judge = tmp_path / "judge.yaml"
    judge.write_text("backend: openai\nmodel: m\n")
    with pytest.raises(ValueError, match="no audio clue for video_id 'MAFW/video/99999.mp4'"):
        score("mme_emotion", gold, pred, task="ML-ER", judge=judge, clues=FIX / "mme_emotion")


def test_mme_emotion_judge_sees_frames_at_one_fps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from emollm.media.video_write import write_video

    gold, pred = _mme_files(tmp_path)
    videos = tmp_path / "clips"
    frames = np.stack([np.full((24, 32, 3), 20 * i, np.uint8) for i in range(12)])
    write_video(videos / "MAFW" / "video" / "03419.mp4", frames, fps=4)  # 3 s: frames 0, 4, 8 at 1 fps
    seen: list[list[dict]] = []

    def reply(messages: list[dict]) -> str:
        if messages[0]["role"] == "system":  # the official scoring request: system + text + images
            seen.append(messages)
            return "<score>Step 1: 1/1, Step 2: 1/1, Step 3: 2/2</score>"
        return _judge_reply(messages)

    judge = tmp_path / "judge.yaml"
    judge.write_text("backend: openai\nmodel: gpt-4o-2024-11-20\nmax_retries: 0\n")
    kw = {"task": "ML-ER", "judge": judge, "clues": FIX / "mme_emotion", "frames": True, "videos": videos}
    with ChatStub(reply) as stub:
        monkeypatch.setenv(ENV_BASE_URL, stub.url)
        r = score("mme_emotion", gold, pred, **kw)
    assert len(seen) == 1  # sample B has no clip: judged from text, counted
    parts = seen[0][1]["content"]
    assert parts[0]["type"] == "text" and "Emotion labels: 'anger,disgust'" in parts[0]["text"]
    assert [p["type"] for p in parts[1:]] == ["image_url"] * 3
    assert parts[1]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    assert seen[0][0]["content"].startswith("You are an expert in affective computing")
    assert r["judge"]["frames_attached"] and r["judge"]["n_without_frames"] == 1
    assert r["recognition"] == 1.0 and r["reasoning"] == 1.0 and r["n_unparsed"] == 1
    again = score("mme_emotion", gold, pred, **kw)  # server gone: every call from the cache
    assert again["judge"]["calls"] == 0 and again["cot"] == r["cot"]


def test_emobench_joint_emotion_intent(tmp_path: Path) -> None:
    gold = _csv(
        tmp_path / "g.csv",
        ["name", "emotion", "intent"],
        [["a", "happy", "encouraging"], ["b", "sad", "questioning"], ["c", "anger", "neutral"]],
    )
    pred = _csv(
        tmp_path / "p.csv",
        ["name", "text"],
        [
            ["a", "{'emotion label': 'happy', 'intent label': 'encouraging'}"],
            ["b", "{'emotion label': 'sad', 'intent label': 'neutral'}"],
            ["c", "I cannot tell."],
        ],
    )
    r = score("emobench_joint", gold, pred)
    # the released example: a right on both, b wrong intent; c unreadable -> dropped (official), wrong (clean)
    assert r["official"]["n"] == 2 and r["score"] == 0.5 and r["clean"]["accuracy"] == pytest.approx(1 / 3)
