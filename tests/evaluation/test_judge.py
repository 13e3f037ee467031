"""EMER judging: score parsing, the openai backend over real loopback HTTP, the local backend with a
tiny random LLaMA, the reply cache, and the judge-free scores (also on the conformance EMER v1 files)."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from emollm.evaluation.judge import (
    ENV_API_KEY,
    ENV_BASE_URL,
    DescriptionPair,
    Judge,
    JudgeConfig,
    JudgeError,
    chat_completions_url,
    load_judge_prompts,
    pair_descriptions,
    parse_judge_score,
    read_descriptions,
)
from emollm.evaluation.lexicon import EmotionLexicon
from emollm.evaluation.metrics.explanation import emotion_word_overlap, set_overlap, text_similarity
from emollm.paths import resource_root

# ----------------------------------------------------------------------------------------------
# score parsing


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("'预测分数'：7；'原因'：两段描述都提到了愤怒", 7.0),
        ("‘预测分数’: 8; ‘原因’: ...", 8.0),
        ("预测分数：7.5；原因：基本一致", 7.5),
        ("评分为6分", 6.0),
        ("Score: 7/10", 7.0),
        ("**Score:** 9", 9.0),
        ('{"Score": 4, "Reason": "little overlap"}', 4.0),
        ("I would give it a score of 8 out of 10.", 8.0),
        ("**7**", 7.0),
        ("5", 5.0),
        ("10分", 10.0),
        # list markers before the score: the value after the key wins, not the marker
        ("1. The reference mentions shouting.\n2. The prediction mentions a smile.\n3. Low.\n4. Score: 3", 3.0),
        ("1. 真实描述：生气\n2. 预测描述：高兴\n3. 重合较少\n4. '预测分数'：2；'原因'：情感相反", 2.0),
        # the quoted key of the requested format wins over chatter that mentions a score first
        ("Step 3: the clue score is 5 at most.\n'Score': 7; 'Reason': most cues match", 7.0),
        ("分数可能在5左右。'预测分数'：6；'原因'：部分一致", 6.0),
        # unreadable: never a number
        ("1. I cannot evaluate this.", None),
        ("The descriptions differ in 3 ways.", None),
        ("预测分数：11", None),
        ("Score: 0", None),
        ("", None),
        (None, None),
        ("underscore 5", None),
    ],
)
def test_parse_judge_score(reply: str | None, expected: float | None) -> None:
    assert parse_judge_score(reply) == expected


def test_prompts_ship_in_both_languages_with_placeholders() -> None:
    hashes = set()
    for lang in ("zh", "en"):
        p = load_judge_prompts("prompts/judges", lang)
        assert "{gold}" in p.clue.text and "{pred}" in p.clue.text and "{text}" in p.summary.text
        out = p.clue.render(gold="G-TEXT", pred="P-TEXT")
        assert "G-TEXT" in out and "P-TEXT" in out and "{" not in out
        hashes |= set(p.hashes().values())
    assert len(hashes) == 6  # six distinct templates
    with pytest.raises(FileNotFoundError, match="fr"):
        load_judge_prompts("prompts/judges", "fr")


def test_chat_completions_url() -> None:
    assert chat_completions_url("https://api.openai.com/v1") == "https://api.openai.com/v1/chat/completions"
    assert chat_completions_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000/v1/chat/completions"


# ----------------------------------------------------------------------------------------------
# a tiny OpenAI-compatible server on loopback

CLUE_REPLIES = {
    "CASE_OK": "'Score': 8; 'Reason': both mention anger.",
    "CASE_LIST": "1. The reference cites a loud voice.\n2. The prediction cites a smile.\n3. Small overlap.\n"
    "4. 'Score': 3; 'Reason': little overlap",
    "CASE_ZH": "'预测分数'：7；'原因'：线索基本一致",
    "CASE_BOLD": "Overall **6**",
    "CASE_GARBAGE": "1. I am sorry, I cannot help with that.",
}


class _Server:
    """Canned replies chosen by markers in the prompt; counts requests; can fail the first N calls."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.fail_first: dict[str, tuple[int, int]] = {}  # marker -> (remaining failures, status)
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                prompt = body["messages"][0]["content"]
                with outer.lock:
                    outer.requests.append(body)
                    outer.headers.append(dict(self.headers))
                    status = 200
                    for marker, (left, code) in outer.fail_first.items():
                        if marker in prompt and left > 0:
                            outer.fail_first[marker] = (left - 1, code)
                            status = code
                if self.path != "/v1/chat/completions":
                    status = 404
                if status != 200:
                    self._send(status, {"error": {"message": "try later"}})
                    return
                self._send(
                    200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": outer.reply(prompt)}}]}
                )

            def _send(self, status: int, obj: dict) -> None:
                data = json.dumps(obj, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @staticmethod
    def reply(prompt: str) -> str:
        if "Output:" in prompt:  # label summary (English prompt): the described text sits before "Output:"
            text = prompt.rsplit("Description:", 1)[1]
            return "angry, frustrated" if "GOLD" in text else ("sad" if "CASE_SAD" in text else "angry")
        if "Reference emotions" in prompt:
            pred = prompt.rsplit("Predicted emotions:", 1)[1]
            return "Score: 9/10" if "angry" in pred else "Score: 2/10"
        for marker, reply in CLUE_REPLIES.items():
            if marker in prompt:
                return reply
        return "no marker"


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    s = _Server()
    s.thread.start()
    monkeypatch.setenv(ENV_BASE_URL, s.url)  # a bare host: the backend adds /v1/chat/completions
    monkeypatch.setenv(ENV_API_KEY, "sk-test")
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def _pairs(markers: list[str]) -> list[DescriptionPair]:
    return [DescriptionPair(f"s{i}", f"GOLD: he shouts, furious. {m}", f"pred {m}") for i, m in enumerate(markers)]


def _cfg(tmp_path: Path, **kw: object) -> JudgeConfig:
    base = {"backend": "openai", "model": "judge-test", "language": "en", "cache_dir": str(tmp_path / "cache")}
    base.update({"backoff_s": 0.01, "max_retries": 2, "timeout_s": 10})
    base.update(kw)
    return JudgeConfig(**base)


def test_openai_clue_overlap_scores_unparsed_and_cache(server: _Server, tmp_path: Path) -> None:
    pairs = _pairs(list(CLUE_REPLIES))
    with Judge(_cfg(tmp_path)) as judge:
        rep = judge.clue_overlap(pairs)
    scores = {s.sample_id: s.score for s in rep.samples}
    assert scores == {"s0": 8.0, "s1": 3.0, "s2": 7.0, "s3": 6.0, "s4": None}
    assert rep.unparsed == ["s4"]
    assert rep.mean == pytest.approx((8 + 3 + 7 + 6) / 4)
    assert (rep.calls, rep.cache_hits, len(server.requests)) == (5, 0, 5)
    # the request is what the protocol asks for
    body = server.requests[0]
    assert body["model"] == "judge-test" and body["temperature"] == 0 and len(body["messages"]) == 1
    assert server.headers[0]["Authorization"] == "Bearer sk-test"
    d = rep.to_dict()
    assert d["unparsed"] == {"count": 1, "ids": ["s4"]} and d["judge_id"].startswith("openai:judge-test")
    assert d["prompt_hashes"]["clue_overlap"] == load_judge_prompts("prompts/judges", "en").clue.hash
    assert d["samples"][4]["replies"]["clue"] == CLUE_REPLIES["CASE_GARBAGE"]

    # second run: replayed from disk, zero HTTP calls, same numbers
    with Judge(_cfg(tmp_path)) as judge2:
        rep2 = judge2.clue_overlap(pairs)
    assert len(server.requests) == 5
    assert (rep2.calls, rep2.cache_hits) == (0, 5)
    assert [s.score for s in rep2.samples] == [s.score for s in rep.samples]

    # a changed prompt template (new hash) misses the cache
    alt = tmp_path / "prompts"
    shutil.copytree(resource_root() / "prompts" / "judges", alt)
    (alt / "clue_overlap.en.txt").write_text(
        (alt / "clue_overlap.en.txt").read_text(encoding="utf-8") + "Be strict.\n", encoding="utf-8"
    )
    with Judge(_cfg(tmp_path, prompts_dir=str(alt))) as judge3:
        rep3 = judge3.clue_overlap(pairs)
    assert rep3.prompt_hashes["clue_overlap"] != rep.prompt_hashes["clue_overlap"]
    assert (rep3.calls, rep3.cache_hits, len(server.requests)) == (5, 0, 10)

    # another judge model is another cache
    with Judge(_cfg(tmp_path, model="other-judge")) as judge4:
        judge4.clue_overlap(pairs[:1])
    assert len(server.requests) == 11


def test_cached_replay_needs_no_server(server: _Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pairs = _pairs(["CASE_OK", "CASE_ZH"])
    with Judge(_cfg(tmp_path)) as judge:
        first = judge.clue_overlap(pairs)
    monkeypatch.delenv(ENV_BASE_URL)
    with Judge(_cfg(tmp_path)) as judge:
        again = judge.clue_overlap(pairs)  # all cached: the backend is never built
        assert [s.score for s in again.samples] == [s.score for s in first.samples]
        with pytest.raises(JudgeError, match=ENV_BASE_URL):
            judge.clue_overlap(_pairs(["CASE_OK", "CASE_ZH", "CASE_BOLD"]))  # one miss needs the server


def test_openai_label_overlap_two_calls(server: _Server, tmp_path: Path) -> None:
    pairs = [
        DescriptionPair("a", "GOLD he yells", "he yells"),
        DescriptionPair("b", "GOLD he yells", "CASE_SAD he cries"),
    ]
    with Judge(_cfg(tmp_path)) as judge:
        rep = judge.label_overlap(pairs)
    assert [s.score for s in rep.samples] == [9.0, 2.0]
    assert rep.samples[1].replies["summary.gold"] == "angry, frustrated"
    assert rep.samples[1].replies["summary.pred"] == "sad"
    assert rep.calls == 6 and len(server.requests) == 6
    label_prompt = server.requests[2]["messages"][0]["content"]
    assert "angry, frustrated" in label_prompt  # the second call compares the summaries


def test_openai_retries_then_succeeds_and_gives_up(server: _Server, tmp_path: Path) -> None:
    server.fail_first["CASE_OK"] = (2, 503)
    with Judge(_cfg(tmp_path, cache_dir=None)) as judge:
        rep = judge.clue_overlap(_pairs(["CASE_OK"]))
    assert rep.samples[0].score == 8.0 and len(server.requests) == 3
    server.fail_first["CASE_ZH"] = (5, 500)
    with Judge(_cfg(tmp_path, cache_dir=None)) as judge, pytest.raises(JudgeError, match="after 3 attempts"):
        judge.clue_overlap(_pairs(["CASE_ZH"]))
    server.fail_first["CASE_BOLD"] = (1, 400)  # a client error is not retried
    with Judge(_cfg(tmp_path, cache_dir=None)) as judge, pytest.raises(JudgeError, match="HTTP 400"):
        judge.clue_overlap(_pairs(["CASE_BOLD"]))


def test_openai_unreachable_server_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(ENV_BASE_URL, f"http://127.0.0.1:{port}/v1")
    with Judge(_cfg(tmp_path, max_retries=1)) as judge, pytest.raises(JudgeError, match="ConnectError"):
        judge.clue_overlap(_pairs(["CASE_OK"]))


# ----------------------------------------------------------------------------------------------
# local backend: a tiny random LLaMA saved to a folder


@pytest.fixture(scope="module")
def tiny_llm_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from emollm.model.tiny import tiny_llama, tiny_tokenizer

    folder = tmp_path_factory.mktemp("tiny-judge")
    tok = tiny_tokenizer("bpe-chatml", 512)
    model = tiny_llama(32, 64, 2, 4, 2, len(tok), seed=0)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_local_backend_garbage_goes_to_unparsed(tiny_llm_folder: Path, tmp_path: Path) -> None:
    cfg = JudgeConfig(
        backend="local",
        model=str(tiny_llm_folder),
        language="zh",
        max_new_tokens=6,
        cache_dir=str(tmp_path),
        device="cpu",
    )
    pairs = pair_descriptions({"a": "他很生气。", "b": "她很高兴。"}, {"a": "他在大喊，很生气。", "b": "她在笑。"})
    with Judge(cfg) as judge:
        assert judge.judge_id.startswith("local:tiny-judge") and "greedy" in judge.judge_id
        clue = judge.clue_overlap(pairs)
        label = judge.label_overlap(pairs)
    assert clue.unparsed == ["a", "b"] and clue.mean is None
    assert label.unparsed == ["a", "b"]
    assert all(isinstance(s.replies["clue"], str) for s in clue.samples)
    assert clue.calls == 2
    # greedy decoding is deterministic and the replay comes from the cache
    with Judge(cfg) as judge:
        again = judge.clue_overlap(pairs)
    assert again.calls == 0 and [s.replies for s in again.samples] == [s.replies for s in clue.samples]


def test_local_backend_bad_folder(tmp_path: Path) -> None:
    with pytest.raises(JudgeError, match="config.json"):
        Judge(JudgeConfig(backend="local", model=str(tmp_path)))


# ----------------------------------------------------------------------------------------------
# judge-free scores


ZH_EXTRA = {"担忧": "worried", "难过": "sad", "惊奇": "surprise"}


def test_text_similarity_identity_unrelated_and_determinism() -> None:
    pairs = [
        DescriptionPair(
            "same", "He shouts loudly and frowns; he is angry.", "He shouts loudly and frowns; he is angry."
        ),
        DescriptionPair(
            "other", "He shouts loudly and frowns; he is angry.", "A quiet garden with yellow tulips at noon."
        ),
        DescriptionPair("zh", "他怒吼，语速很快，推测他很生气。", "他怒吼，语速很快，推测他很生气。"),
        DescriptionPair("zh2", "他怒吼，语速很快，推测他很生气。", "天空中飘着白云。"),
        DescriptionPair("empty", "他很生气。", ""),
    ]
    rep = text_similarity(pairs)
    s = rep.per_sample
    assert s["same"] == pytest.approx(1.0) and s["zh"] == pytest.approx(1.0)
    assert s["other"] < 0.1 and s["zh2"] < 0.1 and s["empty"] == 0.0
    assert text_similarity(pairs).per_sample == s
    assert 0.0 <= rep.mean <= 1.0


def test_emotion_word_overlap_hand_made(tmp_path: Path) -> None:
    lex = EmotionLexicon.from_label_space("mer6", extra=ZH_EXTRA)
    assert lex.find("He is ANGRY, then sad. Anger again.") == ["angry", "sad"]
    assert lex.find("推测他的情感状态为难过、不舍和担忧。") == ["sad", "worried"]
    pairs = [
        DescriptionPair("a", "He is angry and a bit sad.", "She looks sad."),
        DescriptionPair("b", "推测他的情感状态为生气。", "他很愤怒，也有些担忧。"),
        DescriptionPair("c", "He stares at the wall.", "He is happy."),
        DescriptionPair("d", "She is happy.", "No idea."),
    ]
    rep = emotion_word_overlap(pairs, lex)
    by = {r["sample_id"]: r for r in rep.per_sample}
    assert (by["a"]["precision"], by["a"]["recall"], by["a"]["jaccard"]) == (1.0, 0.5, 0.5)
    assert by["a"]["f1"] == pytest.approx(2 / 3)
    assert by["b"]["gold_words"] == ["angry"] and by["b"]["pred_words"] == ["angry", "worried"]
    assert (by["b"]["precision"], by["b"]["recall"]) == (0.5, 1.0)
    assert by["d"]["f1"] == 0.0
    assert rep.no_gold_words == ["c"]  # left out of the means
    assert rep.mean("recall") == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert rep.to_dict()["no_gold_words"]["count"] == 1

    words = tmp_path / "words.txt"
    words.write_text("# word<TAB>class\nfurious\tanger\nrage\tanger\non edge\tfear\n伤心\tsadness\n", encoding="utf-8")
    wl = EmotionLexicon.from_file(words)
    assert wl.find("Full of rage, he is furious and on edge; 她很伤心") == ["anger", "fear", "sadness"]
    assert set_overlap(set(), {"x"}) == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "jaccard": 0.0}
    with pytest.raises(ValueError, match="unknown label"):
        EmotionLexicon.from_label_space("mer6", extra={"惊恐": "terror"})


def test_emotion_word_overlap_through_the_wheel(conformance: Path) -> None:
    lex = EmotionLexicon.from_wheel(conformance / "emotion_wheel", "affectgpt2025", wheel=1, level=1)
    assert lex.find("He is furious and angry, not neutral.") == ["mad"]  # same cluster; neutral is dropped
    rep = emotion_word_overlap([DescriptionPair("x", "He is furious.", "He is angry and happy.")], lex)
    assert rep.per_sample[0]["precision"] == 0.5 and rep.per_sample[0]["recall"] == 1.0


def test_read_and_pair_descriptions(tmp_path: Path) -> None:
    p = tmp_path / "pred.csv"
    p.write_text("names,chi_reasons\ns1,他很生气\ns2,\n", encoding="utf-8")
    pred = read_descriptions(p)
    assert pred == {"s1": "他很生气", "s2": ""}
    paired = pair_descriptions({"s1": "生气", "s2": "高兴", "s3": "悲伤"}, pred)
    assert [x.sample_id for x in paired.pairs] == ["s1", "s2"] and paired.missing == ["s3"]
    bad = tmp_path / "bad.csv"
    bad.write_text("names,chi_reasons\ns1,a\ns1,b\n", encoding="utf-8")
    with pytest.raises(ValueError, match="row 3: duplicate id 's1'"):
        read_descriptions(bad)
    with pytest.raises(ValueError, match="no text column"):
        read_descriptions(bad, text_column="english")
    with pytest.raises(ValueError, match="'s1' is empty"):
        pair_descriptions({"s1": " "}, {"s1": "x"})


def test_conformance_emer_v1_judge_free(conformance: Path) -> None:
    emer = conformance / "emer"
    gold = read_descriptions(emer / "baseline_results-v1" / "gt.csv")
    gold_v1 = read_descriptions(emer / "dataset-v1" / "gt-chi.csv")
    assert len(gold) == len(gold_v1) == 100 and list(gold) == list(gold_v1)
    pred = read_descriptions(emer / "baseline_results-v1" / "videochat-text.csv")
    pairs = pair_descriptions(gold, pred)
    assert len(pairs) == 100 and pairs.missing == []

    sim = text_similarity(pairs)
    assert 0.0 < sim.mean < 1.0 and all(0.0 <= v <= 1.0 for v in sim.per_sample.values())
    assert all(v == pytest.approx(1.0) for v in text_similarity(pair_descriptions(gold, gold)).per_sample.values())

    lex = EmotionLexicon.from_label_space("mer6", extra=ZH_EXTRA)
    rep = emotion_word_overlap(pairs, lex)
    d = rep.to_dict(with_samples=False)
    assert d["n"] == 100 and d["n_scored"] >= 90  # nearly every gold reason ends with named emotions
    for k in ("precision", "recall", "f1", "jaccard"):
        assert 0.0 <= d[k] < 1.0
    self_rep = emotion_word_overlap(pair_descriptions(gold, gold), lex)
    assert self_rep.mean("f1") == 1.0
