"""EmoBench-M's scenarios end to end: per-sample prompts and candidates, every scenario's task, the
classification / joint / generation scores by hand, the laughter judge and BERTScore.

The fixtures under tests/fixtures/benchmarks/emobench_m/benchmark_json follow the released LLaVA-style
JSON; FGMSA, RAVDSS_song, funny and smile are written in the style of the released instructions (the
data itself is on Google Drive), MC-EIU's instruction is the one of the repository's output example.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python -m pytest tests/evaluation/test_emobench_m.py -q
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from chat_stub import ChatStub

from emollm.config import ConfigError
from emollm.data.contract import default_contract
from emollm.evaluation.judge import ENV_BASE_URL
from emollm.evaluation.metrics.generation import (
    BERTSCORE_MISSING,
    brevity_penalty,
    lcs_length,
    modified_precision,
    parse_laughter_score,
    rouge_l,
    rouge_tokens,
    sentence_bleu,
)
from emollm.evaluation.runner import EvalOptions, EvalOutcome, RecordStore, run_eval
from emollm.evaluation.score import score
from emollm.evaluation.scoring import candidate_space
from emollm.evaluation.tasks import load_task, task_files
from emollm.labels import label_space

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "benchmarks" / "emobench_m"
SCENARIOS = {
    "FGMSA": "emobench_m_fgmsa",
    "MC-EIU": "emobench_m_mc_eiu",
    "MELD": "emobench_m_meld",
    "MOSEI": "emobench_m_mosei",
    "MOSI": "emobench_m_mosi",
    "MUSTARD": "emobench_m_mustard",
    "RAVDSS_song": "emobench_m_ravdss_song",
    "RAVDSS_speech": "emobench_m_ravdss_speech",
    "SIMS": "emobench_m_sims",
    "ch-simsv2s": "emobench_m_ch_simsv2s",
    "funny": "emobench_m_funny",
    "mer2023": "emobench_m_mer2023",
    "smile": "emobench_m_smile",
}
RUN_TASKS = ["emobench_m_fgmsa", "emobench_m_ravdss_song", "emobench_m_funny", "emobench_m_mc_eiu", "emobench_m_smile"]


def _csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _released(name: str) -> list[dict]:
    return json.loads((FIX / "benchmark_json" / f"{name}.json").read_text())


# ----------------------------------------------------------------------------------------------
# every scenario has a task


def test_every_scenario_has_a_task() -> None:
    files = task_files()
    for scenario, name in SCENARIOS.items():
        assert name in files, scenario
        task = load_task(name)
        assert task.benchmark == "EmoBench-M" and task.data.split == scenario
    assert load_task("emobench_m_mc_eiu").kind == "joint" and load_task("emobench_m_smile").kind == "explanation"
    assert load_task("emobench_m_fgmsa").prompt.per_sample


# ----------------------------------------------------------------------------------------------
# one eval run over the fixtures: constrained scoring for the label scenarios, generation for the others


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EvalOutcome]:
    work = tmp_path_factory.mktemp("emobench_m")
    shutil.copytree(FIX, work / "emobench_m")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(work)
        opts = EvalOptions(
            checkpoint="tiny-fast", tasks=RUN_TASKS, roots={"emobench_m": str(work / "emobench_m")},
            out=str(work / "out"), features=str(work / "features"), progress=False, method="score_labels",
        )  # fmt: skip
        out = run_eval(opts)
        assert out.complete and out.results is not None
        yield out


def test_each_sample_is_scored_over_its_own_candidates(run: EvalOutcome) -> None:
    store = RecordStore(run.out_dir / "records", run.results["checkpoint"]["identity"])  # type: ignore[index]
    by_task: dict[str, list[dict]] = {}
    for rec in store.records.values():
        by_task.setdefault(rec["task"], []).append(rec)
    for task, scenario in (("emobench_m_fgmsa", "FGMSA"), ("emobench_m_ravdss_song", "RAVDSS_song")):
        released = {f"{scenario}/{r['id']}": r["conversations"][0]["value"] for r in _released(scenario)}
        for rec in by_task[task]:
            assert rec["method"] == "score_labels"
            listed = released[rec["sample_id"]].split("final answer: ")[1].split(".")[0].split(", ")
            assert list(rec["probs"]) == listed  # the candidates, in the instruction's order
            assert rec["answer"] in listed
    assert {r["method"] for r in by_task["emobench_m_mc_eiu"] + by_task["emobench_m_smile"]} == {"generate"}


def test_scores_and_gold_files(run: EvalOutcome) -> None:
    t = run.results["tasks"]  # type: ignore[index]
    for name in ("emobench_m_fgmsa", "emobench_m_ravdss_song", "emobench_m_funny"):
        eb = t[name]["metrics"]["emobench"]
        assert t[name]["headline"]["name"] == "emobench.score" and eb["n"] == 4 and eb["n_unparsed"] == 0
        assert eb["official"] == eb["clean"]  # constrained answers are always a candidate
    assert t["emobench_m_fgmsa"]["data"]["label_space"] == "fgmsa5"
    assert t["emobench_m_mc_eiu"]["metrics"]["emobench_joint"]["n"] == 3
    smile = t["emobench_m_smile"]
    assert smile["headline"]["name"] == "emobench_generation.score"
    assert smile["metrics"]["bertscore"] == {"skipped": "needs --root bertscore_model"}
    assert smile["metrics"]["emobench_laughter"] == {"skipped": "needs --root emobench_judge"}
    with open(run.out_dir / "gold" / "emobench_m_fgmsa.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows[3] == {
        "name": "FGMSA/3",
        "discrete": "strong negative",
        "valence": "",
        "candidates": "weak negative|strong negative|neutral|strong positive|weak positive",
    }
    with open(run.out_dir / "gold" / "emobench_m_smile.csv", newline="") as f:
        ref = list(csv.DictReader(f))[0]["reasons"]
    assert ref.startswith("The audience laughed because Raj")  # the reference as written (BLEU is case-sensitive)


def test_hand_checked_scenario_scores(run: EvalOutcome) -> None:
    """Known replies scored against the gold files the run wrote (EmoBench-M_eval.py's rules)."""
    gold = run.out_dir / "gold"
    tmp = run.out_dir / "hand"
    tmp.mkdir(exist_ok=True)
    # FGMSA gold: strong positive, weak negative, neutral, strong negative
    p = _csv(
        tmp / "fgmsa.csv",
        ["name", "discrete"],
        [["FGMSA/0", "{'emotion': 'strong positive'}"], ["FGMSA/1", "{'emotion': 'weak positive'}"],
         ["FGMSA/2", ""], ["FGMSA/3", "Strong Negative"]],
    )  # fmt: skip
    r = score("emobench", gold / "emobench_m_fgmsa.csv", p)
    # official: the empty reply is dropped -> 2 of 3 right; weighted F1 over gold sp, wn, sn = (1 + 0 + 1) / 3
    assert r["official"]["n"] == 3 and r["score"] == pytest.approx(2 / 3)
    assert r["official"]["f1"] == pytest.approx(2 / 3) and r["official"]["precision"] == pytest.approx(2 / 3)
    # clean: 4 samples, the empty one wrong -> 2/4; F1 (1 + 0 + 0 + 1) / 4
    assert r["clean"]["accuracy"] == 0.5 and r["clean"]["f1"] == pytest.approx(0.5)
    # RAVDSS_song gold: neutral, calm, angry, fearful
    p = _csv(
        tmp / "ravdss.csv",
        ["name", "discrete"],
        [["RAVDSS_song/0", "calm"], ["RAVDSS_song/1", "calm"], ["RAVDSS_song/2", "{'emotion': 'angry'}"],
         ["RAVDSS_song/3", "The singer sounds fearful."]],
    )  # fmt: skip
    r = score("emobench", gold / "emobench_m_ravdss_song.csv", p)
    # 3/4 right; F1 neutral 0, calm (P 1/2, R 1) 2/3, angry 1, fearful 1 -> (0 + 2/3 + 1 + 1) / 4 = 2/3
    assert r["score"] == 0.75 and r["official"]["f1"] == pytest.approx(2 / 3)
    assert r["official"]["precision"] == pytest.approx((0 + 0.5 + 1 + 1) / 4)
    # funny gold: true, false, true, false
    p = _csv(
        tmp / "funny.csv",
        ["name", "discrete"],
        [["funny/0", "true"], ["funny/1", "true"], ["funny/2", "false"], ["funny/3", "{'emotion': 'false'}"]],
    )
    r = score("emobench", gold / "emobench_m_funny.csv", p)
    assert r["score"] == 0.5 and r["official"]["f1"] == pytest.approx(0.5)  # both classes P = R = 1/2
    # MC-EIU gold: happy/acknowledging, surprise/questioning, sad/consoling
    p = _csv(
        tmp / "mceiu.csv",
        ["name", "text"],
        [["MC-EIU/0", "{'emotion label': 'happy', 'intent label': 'acknowledging'}"],
         ["MC-EIU/1", "{'emotion label': 'Surprise', 'intent label': 'agreeing'}"], ["MC-EIU/2", "I don't know"]],
    )  # fmt: skip
    r = score("emobench_joint", gold / "emobench_m_mc_eiu.csv", p)
    assert r["official"]["n"] == 2 and r["score"] == 0.5 and r["clean"]["accuracy"] == pytest.approx(1 / 3)


# ----------------------------------------------------------------------------------------------
# per-sample prompts


def _samples(scenario: str, space: str) -> list:
    """One scenario file imported directly (no media)."""
    from emollm.config import validate
    from emollm.data.importers import IMPORTERS, ImportContext
    from emollm.data.report import ImportReport

    spec = IMPORTERS.get("emobench_m")
    opts = validate(
        spec.options_model, {"video_root": None, "files": {scenario: f"benchmark_json/{scenario}.json"}}, "t"
    )
    ctx = ImportContext(FIX, FIX, label_space(space), ImportReport(), corpus="t", label_aliases={})
    return spec.load(opts, ctx)


def test_the_prompt_is_the_released_instruction() -> None:
    from emollm.evaluation.plan import sample_prompts

    task = load_task("emobench_m_funny")
    samples = _samples("funny", "true_false")
    prompts = sample_prompts(task, label_space("true_false"), samples)
    contract = default_contract(label_space("true_false"))
    for s in samples:
        sp = prompts[s.id]
        assert sp.candidates == ("true", "false") and not sp.subtitle_inside
        conv = contract.questions([s], [[]], "emotion", 0, True, sp.instruction)[0]
        assert conv.messages[-1].parts[-1] == s.meta["instruction"]  # subtitle sentence + instruction, as released
        no_text = contract.questions([s], [[]], "emotion", 0, False, sp.instruction)[0]
        assert "says:" not in no_text.messages[-1].parts[-1]  # the T ablation drops the subtitle


def test_per_sample_errors_name_the_sample() -> None:
    from emollm.evaluation.plan import sample_prompts

    task = load_task("emobench_m_fgmsa")
    samples = _samples("FGMSA", "fgmsa5")
    with pytest.raises(ConfigError, match=r"sample 'FGMSA/0': candidate 'weak negative' .* sentiment3"):
        sample_prompts(task, label_space("sentiment3"), samples)


def test_per_sample_tasks_refuse_prompt_variants(tmp_path: Path) -> None:
    from emollm.evaluation.plan import plan_task
    from emollm.evaluation.runner import checkpoint_info
    from emollm.evaluation.tasks import SuiteEntry, TaskData
    from emollm.labels import label_space as ls

    task = load_task("emobench_m_funny")
    samples = _samples("funny", "true_false")
    entry = SuiteEntry.model_validate({"task": "emobench_m_funny", "robustness": {"variants": "pr_mer"}})
    data = TaskData(None, samples, ls("true_false"), "test")  # type: ignore[arg-type]
    opts = EvalOptions(checkpoint="tiny-fast", tasks=["emobench_m_funny"])
    with pytest.raises(ConfigError, match="prompt-robustness variants rewrite the label list"):
        plan_task(task, entry, opts, checkpoint_info("tiny-fast"), data)


def test_generated_replies_are_read_against_the_sample_candidates() -> None:
    from emollm.answers import read_labels

    sub = candidate_space(label_space("meld7"), ["anger", "joy"])
    # 'sadness' is a MELD label but not one this sample was offered: the reply names 'joy' later
    assert read_labels(["Mostly sadness, maybe joy"], sub)[0] == ["joy"]
    assert read_labels(["{'emotion': 'happy'}"], sub)[0] == ["joy"]  # the space's aliases are kept
    assert read_labels(["{'emotion': 'sad'}"], sub)[0] == [None]


def test_importer_reads_mc_eiu_and_smile() -> None:
    mc = {s.id: s for s in _samples("MC-EIU", "sentiment3")}["MC-EIU/1"]
    assert (mc.meta["emotion"], mc.meta["intent"]) == ("surprise", "questioning")
    assert mc.meta["candidates"][:2] == ["happy", "surprise"] and len(mc.meta["candidates"]) == 7
    assert mc.meta["intent_candidates"][-1] == "neutral" and len(mc.meta["intent_candidates"]) == 8
    from emollm.data.importers.emobench_m import parse_joint_answer

    assert parse_joint_answer("Happy, encouraging") == ("happy", "encouraging")
    assert parse_joint_answer("sad_neutral") == ("sad", "neutral")
    assert parse_joint_answer("just happy") is None
    smile = _samples("smile", "sentiment3")[0]
    assert smile.meta["reference"].startswith("The audience laughed because Raj") and smile.label is None


# ----------------------------------------------------------------------------------------------
# BLEU and ROUGE-L by hand


def test_sentence_bleu_by_hand() -> None:
    ref = "the cat sat on the mat".split()
    hyp = "the cat sat on a mat".split()
    # p1 5/6 (the, cat, sat, on, mat), p2 3/5, p3 2/4, p4 1/3; equal lengths: BP 1
    assert modified_precision([ref], hyp, 1) == (5, 6) and modified_precision([ref], hyp, 4) == (1, 3)
    assert sentence_bleu([ref], hyp) == pytest.approx((5 / 6 * 3 / 5 * 2 / 4 * 1 / 3) ** 0.25)
    # a prefix of 5 tokens: every precision 1, BP = exp(1 - 6/5)
    assert sentence_bleu([ref], ref[:5]) == pytest.approx(math.exp(-0.2))
    assert brevity_penalty([ref, ref[:5]], 5) == 1.0  # the closest reference length
    assert sentence_bleu([ref], "dogs bark".split()) == 0.0  # no unigram match
    # no 4-gram match: nltk's method0 counts it as sys.float_info.min -> practically 0, not exactly
    assert 0 < sentence_bleu([ref], "the cat on the".split()) < 1e-70
    assert sentence_bleu([["The", "cat"]], ["the", "cat"]) < 1e-70  # case-sensitive, as ref.split()


def test_rouge_l_by_hand() -> None:
    assert rouge_tokens("The cat's mat, 2 times!") == ["the", "cat", "s", "mat", "2", "times"]
    assert lcs_length("a b c d e".split(), "a x c e".split()) == 3
    p, r, f = rouge_l("a b c d e", "a x c e")
    assert (p, r) == (3 / 4, 3 / 5) and f == pytest.approx(2 * 0.75 * 0.6 / 1.35)
    assert rouge_l("The cat sat on the mat.", "the cat, sat on a mat") == pytest.approx((5 / 6,) * 3)
    assert rouge_l("x", "") == (0.0, 0.0, 0.0)


def test_generation_metric_file_rules(tmp_path: Path) -> None:
    gold = _csv(tmp_path / "g.csv", ["names", "reasons"], [["a", "a b c d e"], ["b", "the cat sat on the mat"]])
    pred = _csv(tmp_path / "p.csv", ["names", "reasons"], [["a", "a x c e"], ["b", ""]])
    r = score("emobench_generation", gold, pred, stemmer="none")
    # published: the empty prediction is skipped (official) -> means over sample a only
    assert r["n"] == 1 and r["score"] == pytest.approx(2 / 3) and r["avg_rouge_l"] == pytest.approx(2 / 3)
    assert 0 < r["avg_bleu"] < 1e-200  # no bigram in common: nltk's sys.float_info.min for p2, p3, p4
    c = score("emobench_generation", gold, pred, stemmer="none", mode="clean")
    assert c["n"] == 2 and c["score"] == pytest.approx(1 / 3)
    alt = _csv(tmp_path / "alt.csv", ["name", "prediction"], [["a", "a x c e"], ["b", "the cat sat on the"]])
    g2 = _csv(tmp_path / "g2.csv", ["name", "reference"], [["a", "a b c d e"], ["b", "the cat sat on the mat"]])
    r2 = score("emobench_generation", g2, alt, stemmer="none")
    assert r2["avg_bleu"] == pytest.approx(math.exp(-0.2) / 2, rel=1e-9, abs=1e-60)
    assert r2["avg_rouge_l"] == pytest.approx((2 / 3 + 2 * 1 * (5 / 6) / (1 + 5 / 6)) / 2)
    try:
        import nltk  # noqa: F401
    except ImportError:
        assert "nltk not installed" in score("emobench_generation", g2, alt)["stemmer"]
        with pytest.raises(ValueError, match="stemmer: porter needs nltk"):
            score("emobench_generation", g2, alt, stemmer="porter")


# ----------------------------------------------------------------------------------------------
# BERTScore


def test_bertscore_without_a_model_names_what_is_missing(tmp_path: Path) -> None:
    gold = _csv(tmp_path / "g.csv", ["names", "reasons"], [["a", "x"]])
    with pytest.raises(ValueError, match="roberta-large") as e:
        score("bertscore", gold, gold)
    assert str(e.value) == BERTSCORE_MISSING
    with pytest.raises(FileNotFoundError, match="model folder"):
        score("bertscore", gold, gold, model=tmp_path / "nope")


def _tiny_bert(d: Path) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "the", "cat", "sat", "on", "mat", "a", "dog", "ran"]
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]"
    ).save_pretrained(d)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(words), hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32)  # fmt: skip
    BertModel(cfg).save_pretrained(d)
    return d


def test_bertscore_greedy_matching_by_hand(tmp_path: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    model_dir = _tiny_bert(tmp_path / "bert")
    gold = _csv(tmp_path / "g.csv", ["names", "reasons"], [["a", "the cat sat on the mat"], ["b", "the cat"]])
    pred = _csv(tmp_path / "p.csv", ["names", "reasons"], [["a", "the cat sat on the mat"], ["b", "a dog ran"]])
    r = score("bertscore", gold, pred, model=model_dir)
    tok, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()

    def emb(text: str) -> torch.Tensor:
        with torch.no_grad():
            hs = model(**tok(text, return_tensors="pt"), output_hidden_states=True).hidden_states[2][0, 1:-1]
        return hs / hs.norm(dim=-1, keepdim=True)

    sim = emb("a dog ran") @ emb("the cat").T  # 3 x 2 cosine similarities, CLS/SEP left out
    p, rc = float(sim.max(1).values.mean()), float(sim.max(0).values.mean())
    assert r["avg_bert_precision"] == pytest.approx((1 + p) / 2, abs=1e-6)
    assert r["avg_bert_recall"] == pytest.approx((1 + rc) / 2, abs=1e-6)
    assert r["score"] == pytest.approx((1 + 2 * p * rc / (p + rc)) / 2, abs=1e-6)


# ----------------------------------------------------------------------------------------------
# the laughter-reasoning judge


def _laughter_reply(messages: list[dict]) -> str:
    prompt = messages[-1]["content"]
    assert prompt.startswith("You need to evaluate the quality of a model-generated reasoning")
    logical = "**Logical Judgment Dimension:**" in prompt
    if "Generated Reason: The audience laughed because of the iPod" in prompt:
        return "Logical Judgment Dimension: 4" if logical else "Multimodal Content Association Dimension: 3"
    assert "Reference Reason: The audience laughed because Sheldon" in prompt
    return "Logical Judgment Dimension: 2" if logical else "I would rather not score this."


def test_laughter_judge_protocol_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_laughter_score("x\nLogical Judgment Dimension: 5", "logical") == 5
    assert parse_laughter_score("Multimodal Content Association Dimension:3", "multimodal") == 3
    assert parse_laughter_score("no score", "logical") is None
    gold = _csv(
        tmp_path / "g.csv",
        ["names", "reasons"],
        [["a", "The audience laughed because Raj sells a smashed iPod."],
         ["b", "The audience laughed because Sheldon offers a test."]],
    )  # fmt: skip
    pred = _csv(
        tmp_path / "p.csv",
        ["names", "reasons"],
        [["a", "The audience laughed because of the iPod."], ["b", "The audience laughed because of Sheldon."]],
    )
    judge = tmp_path / "judge.yaml"
    judge.write_text("backend: openai\nmodel: Qwen/Qwen2.5-72B-Instruct\nmax_retries: 0\n")
    with ChatStub(_laughter_reply) as stub:
        monkeypatch.setenv(ENV_BASE_URL, stub.url)
        r = score("emobench_laughter", gold, pred, judge=judge)
        assert len(stub.requests) == 4  # two calls (one per dimension) per sample, as the official script
    # published: the unreadable multimodal reply scores 0 -> logical (4+2)/2 = 3, multimodal (3+0)/2 = 1.5
    assert (r["avg_logical"], r["avg_multimodal"], r["avg_total"]) == (3.0, 1.5, 4.5)
    assert r["score"] == pytest.approx(0.45) and r["n_unparsed"] == {"logical": 0, "multimodal": 1}
    c = score("emobench_laughter", gold, pred, judge=judge, mode="clean")  # the server is gone: all cached
    assert c["judge"]["calls"] == 0 and c["judge"]["cache_hits"] == 4
    assert c["avg_multimodal"] == 3.0 and c["score"] == pytest.approx(0.6)  # clean: unreadable left out


# ----------------------------------------------------------------------------------------------
# generated replies through the whole report: records with known replies, scored without a model


REPLIES = {
    "funny/0": "{'emotion': 'true'}",
    "funny/1": "True",
    "funny/2": "I would say false.",
    "funny/3": "{'emotion': 'false'}",
    "MC-EIU/0": "{'emotion label': 'happy', 'intent label': 'acknowledging'}",
    "MC-EIU/1": "{'emotion label': 'surprise', 'intent label': 'agreeing'}",
    "MC-EIU/2": "Hard to tell.",
    "smile/0": "The audience laughed because Raj pretended a smashed iPod could be sold.",
    "smile/1": "",
}


def test_generated_replies_scored_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from emollm.evaluation.plan import RECORD_FORMAT, build_plan, run_info
    from emollm.io import JsonlAppender

    shutil.copytree(FIX, tmp_path / "emobench_m")
    monkeypatch.chdir(tmp_path)
    opts = EvalOptions(
        checkpoint="tiny-fast", tasks=["emobench_m_funny", "emobench_m_mc_eiu", "emobench_m_smile"],
        roots={"emobench_m": str(tmp_path / "emobench_m")}, out=str(tmp_path / "out"), progress=False, merge=True,
    )  # fmt: skip
    ckpt = run_info(opts)
    plan = build_plan(opts, ckpt)
    w = JsonlAppender(tmp_path / "out" / "records" / "shard-0-of-1.jsonl")
    for tp, c, s in plan.unique_units():
        w.write({"format": RECORD_FORMAT, "task": tp.task.name, "variant": c.id, "prompt_id": c.prompt_id,
                 "sample_id": s.id, "method": "generate", "text": REPLIES[s.id], "modalities": [],
                 "checkpoint": ckpt.identity})  # fmt: skip
    w.close()
    out = run_eval(opts)  # --merge: every record is there, no model is loaded
    t = out.results["tasks"]  # type: ignore[index]
    # funny gold true, false, true, false; read true, true, false, false: 2/4, weighted F1 1/2
    eb = t["emobench_m_funny"]["metrics"]["emobench"]
    assert eb["score"] == 0.5 and eb["official"]["f1"] == pytest.approx(0.5) and eb["n_unparsed"] == 0
    # MC-EIU: one right, one wrong intent, one unreadable (dropped officially)
    j = t["emobench_m_mc_eiu"]["metrics"]["emobench_joint"]
    assert j["official"]["n"] == 2 and j["score"] == 0.5 and j["clean"]["accuracy"] == pytest.approx(1 / 3)
    # SMILE sample 0 (sample 1's empty reply is skipped, as the official scorer does):
    # ref  the audience laughed because raj sarcastically pretended a smashed ipod could be sold as slightly used (16)
    # pred the audience laughed because raj pretended a smashed ipod could be sold (12): LCS 12
    g = t["emobench_m_smile"]["metrics"]["emobench_generation"]
    p, r = 12 / 12, 12 / 16
    assert g["n"] == 1 and g["score"] == pytest.approx(2 * p * r / (p + r))
    # BLEU on whitespace tokens, case kept ('sold.' is not the reference's 'sold'): 12 tokens against 16,
    # p1 11/12, p2 9/11, p3 7/10, p4 5/9 (the n-grams across 'Raj pretended' and 'sold.' miss); BP exp(1 - 16/12)
    bleu = math.exp(1 - 16 / 12) * (11 / 12 * 9 / 11 * 7 / 10 * 5 / 9) ** 0.25
    assert g["avg_bleu"] == pytest.approx(bleu)
    assert t["emobench_m_smile"]["headline"] == {"name": "emobench_generation.score", "value": g["score"],
                                                 "mode": "published"}  # fmt: skip


def test_an_endpoint_is_asked_the_released_instruction(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--backend openai``: each request's user text is the sample's released instruction; replies are scored."""
    from emollm.inference.remote import EndpointConfig

    shutil.copytree(FIX, tmp_path / "emobench_m")
    monkeypatch.chdir(tmp_path)
    released = {r["conversations"][0]["value"].replace("<video>\n", ""): r["conversations"][1]["value"]
                for r in _released("funny")}  # fmt: skip

    def reply(messages: list[dict]) -> str:
        content = messages[-1]["content"]
        text = content if isinstance(content, str) else " ".join(p.get("text", "") for p in content)
        assert text.strip() in released, text
        return "{'emotion': '" + released[text.strip()].lower() + "'}"  # always right

    with ChatStub(reply) as stub:
        ep = EndpointConfig(base_url=stub.url, model="m", max_retries=0, cache_dir=str(tmp_path / "c"),
                            video="none", audio="none")  # fmt: skip
        opts = EvalOptions(tasks=["emobench_m_funny"], roots={"emobench_m": str(tmp_path / "emobench_m")},
                           out=str(tmp_path / "out"), progress=False, backend="openai", endpoint=ep)  # fmt: skip
        out = run_eval(opts)
        assert len(stub.requests) == 4
    eb = out.results["tasks"]["emobench_m_funny"]["metrics"]["emobench"]  # type: ignore[index]
    assert eb["score"] == 1.0 and eb["official"]["f1"] == 1.0
