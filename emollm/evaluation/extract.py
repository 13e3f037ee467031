"""AffectGPT's producer step, pluggable: free-text answers -> open-vocabulary lists -> sentiment, by an LLM.

    ex = Extractor(ExtractorConfig(backend="openai", model="Qwen2.5-7B-Instruct", cache_dir="runs/x/extract"))
    ex.openset("clip1", "He frowns and raises his voice; he seems angry and a bit anxious.")  # ['angry', 'anxious']
    ex.sentiment("clip1", ["angry", "anxious"])                                              # 'negative'
    ex.describe()      # id, preset, official?, prompt hashes, calls, cache hits: goes into every report

    emollm score --metric wheel --gold ov.csv --pred answers.csv --wheel emotion_wheel --extractor extractor.yaml
    emollm eval -c CKPT --suite unibench --root ... --extractor extractor.yaml

The published MER-UniBench / OV-MER numbers were made this way (``prompts/extractors/affectgpt/``):
``reason_to_openset_qwen`` turns each answer into a list, ``openset_to_sentiment_qwen`` turns the list
into positive / negative / neutral, each one user message to Qwen2.5-7B-Instruct, replies cleaned by
``func_postprocess_qwen`` and lists parsed by ``string_to_list``. Without an extractor, emollm reads
answers with the deterministic readers (``answers.read_openset`` and the polarity table), the
judge-free default; the report names which one was used.

Presets (``preset``):

- ``affectgpt`` (official): temperature 0.7, top_p 0.8, repetition_penalty 1.05, max 512 new tokens, as
  published. Sampling makes repeats differ: set ``seed`` (sent to the endpoint / used for the local
  generator, per sample) and compare runs with ``emollm score --pred`` given several times.
- ``greedy`` (stable, **not** the published setting): temperature 0 through emollm's judge backends.

Backends are the judge backends' (``local``: a Hugging Face folder, a ``.gguf`` or ``smollm2``; ``openai``:
any OpenAI-compatible server at ``EMOLLM_JUDGE_BASE_URL`` or ``base_url``, key in ``EMOLLM_JUDGE_API_KEY``).
Every raw reply is cached (``cache_dir``) by (sample id, step, sha256 of the rendered prompt, extractor
id); the id names backend, model, preset, seed and decoding, so a rerun or a rescore sends nothing.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from emollm.answers import parse_emotion_list
from emollm.config import Strict, load_config
from emollm.io import atomic_write_text, sha256_text
from emollm.log import get_logger

log = get_logger(__name__)

PROMPTS_DIR = "prompts/extractors/affectgpt"
OFFICIAL_SAMPLING: dict[str, float | int] = {"temperature": 0.7, "top_p": 0.8, "repetition_penalty": 1.05}
SENTIMENTS = ("positive", "negative", "neutral")
OPENSET_METRICS = frozenset({"wheel", "hitrate", "ov", "mer2025_fg", "mme_emotion", "mme_emotion_rec"})
SENTIMENT_METRICS = frozenset({"sentiment"})


class ExtractorConfig(Strict):
    """Which LLM turns answers into labels, and how."""

    backend: Literal["local", "openai"] = "openai"
    model: str
    """openai: the model name the server knows; local: a Hugging Face folder, a .gguf file or ``smollm2``."""
    preset: Literal["affectgpt", "greedy"] = "affectgpt"
    """affectgpt: the published sampling (T 0.7, top_p 0.8, repetition 1.05); greedy: stable, non-official."""
    seed: int = 0
    """Sampling seed (affectgpt preset): the endpoint's ``seed``; locally the generator seed of each sample."""
    max_new_tokens: int = Field(512, gt=0)
    base_url: str | None = None
    """openai: the server (…/v1); default the ``EMOLLM_JUDGE_BASE_URL`` environment variable."""
    send_repetition_penalty: bool = True
    """openai + affectgpt: send ``repetition_penalty`` (vLLM / SGLang take it; the OpenAI API does not)."""
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(5, ge=0)
    """openai: retries on 429 / 5xx / transport errors (the client's own backoff)."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    device: str | None = None
    cache_dir: str | None = None
    """Folder for cached raw replies; None disables caching."""
    prompts_dir: str = PROMPTS_DIR

    @property
    def official(self) -> bool:
        return self.preset == "affectgpt"


def load_extractor_config(
    path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None = None
) -> ExtractorConfig:
    """An ``ExtractorConfig`` YAML; ``cache_dir`` is the default when the file sets none."""
    cfg = load_config(ExtractorConfig, Path(path))
    if cfg.cache_dir is None and cache_dir is not None:
        cfg = cfg.model_copy(update={"cache_dir": str(cache_dir)})
    return cfg


def postprocess_qwen(reply: str) -> str:
    """AffectGPT's ``func_postprocess_qwen``: strip Input/Output/输入/输出/翻译 prefixes, a colon, newlines."""
    r = reply.strip()
    for prefix in ("输入", "输出", "翻译", "让我们来翻译一下：", "output", "Output", "input", "Input"):
        if r.startswith(prefix):
            r = r[len(prefix) :]
    r = r.strip()
    for colon in (":", "："):
        if r.startswith(colon):
            r = r[len(colon) :]
    return r.strip().replace("\n", "").strip()


def _client_base(cfg: ExtractorConfig) -> str:
    from emollm.evaluation.judge.backends import ENV_BASE_URL

    base = (cfg.base_url or os.environ.get(ENV_BASE_URL, "")).strip().rstrip("/")
    if not base:
        raise ValueError(f"the openai extractor needs a server: set base_url or {ENV_BASE_URL}")
    return base if base.endswith("/v1") else base + "/v1"


def _with_base_url(cfg: ExtractorConfig, build: Any) -> Any:
    """Build a judge backend, pointing the openai one at ``cfg.base_url`` when set (env restored after)."""
    from emollm.evaluation.judge.backends import ENV_BASE_URL

    if cfg.backend != "openai" or not cfg.base_url:
        return build()
    old = os.environ.get(ENV_BASE_URL)
    os.environ[ENV_BASE_URL] = cfg.base_url
    try:
        return build()
    finally:
        if old is None:
            os.environ.pop(ENV_BASE_URL, None)
        else:
            os.environ[ENV_BASE_URL] = old


class _SamplingOpenAI:
    """The published sampling against an OpenAI-compatible server (the openai client retries 429/5xx)."""

    def __init__(self, cfg: ExtractorConfig) -> None:
        from openai import OpenAI

        from emollm.evaluation.judge.backends import ENV_API_KEY

        self.cfg = cfg
        self.base = _client_base(cfg)
        key = os.environ.get(ENV_API_KEY, "").strip() or "EMPTY"
        self.client = OpenAI(base_url=self.base, api_key=key, timeout=cfg.timeout_s, max_retries=cfg.max_retries)

    def complete(self, prompt: str) -> str:
        import openai

        extra = (
            {"repetition_penalty": OFFICIAL_SAMPLING["repetition_penalty"]} if self.cfg.send_repetition_penalty else {}
        )
        try:
            r = self.client.chat.completions.create(
                model=self.cfg.model,
                messages=[{"role": "user", "content": prompt}],
                temperature=OFFICIAL_SAMPLING["temperature"],
                top_p=OFFICIAL_SAMPLING["top_p"],
                max_tokens=self.cfg.max_new_tokens,
                seed=self.cfg.seed,
                extra_body=extra or None,
            )
        except openai.APIStatusError as e:
            raise RuntimeError(f"extractor endpoint {self.base} answered HTTP {e.status_code}: {e.message}") from None
        except openai.APIConnectionError as e:
            raise RuntimeError(f"extractor endpoint {self.base} unreachable: {e}") from None
        return r.choices[0].message.content or ""

    def close(self) -> None:
        self.client.close()


class _SamplingLocal:
    """The published sampling with a local causal LM (loaded as the local judge loads it)."""

    def __init__(self, cfg: ExtractorConfig) -> None:
        from emollm.evaluation.judge.backends import JudgeConfig, LocalBackend

        jc = JudgeConfig(backend="local", model=cfg.model, dtype=cfg.dtype, device=cfg.device)
        self.cfg = cfg
        self.local = LocalBackend(jc)

    def complete(self, prompt: str, seed: int = 0) -> str:
        import torch
        from transformers import GenerationConfig

        tok, model = self.local.tokenizer, self.local.model
        enc = tok.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.local.device)
        eos = model.generation_config.eos_token_id or tok.eos_token_id
        gen = GenerationConfig(
            do_sample=True,
            temperature=OFFICIAL_SAMPLING["temperature"],
            top_p=OFFICIAL_SAMPLING["top_p"],
            repetition_penalty=OFFICIAL_SAMPLING["repetition_penalty"],
            max_new_tokens=self.cfg.max_new_tokens,
            eos_token_id=eos,
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else eos,
        )
        torch.manual_seed(seed)
        with torch.no_grad():
            out = model.generate(**enc, generation_config=gen)
        return tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


class Extractor:
    """Answers -> open-vocabulary lists -> sentiments through an LLM, cached; the backend is built lazily."""

    def __init__(self, cfg: ExtractorConfig) -> None:
        from emollm.evaluation.judge.cache import ReplyCache
        from emollm.evaluation.judge.judge import JudgePrompt
        from emollm.paths import resolve_resource

        self.cfg = cfg
        root = resolve_resource(cfg.prompts_dir, kind="extractor prompt folder")
        self.prompts = {
            step: JudgePrompt(step, (root / f"{step}.txt").read_text(encoding="utf-8"), ("reason",), str(root))
            for step in ("reason_to_openset", "openset_to_sentiment")
        }
        self.id = self._identity()
        self.cache = ReplyCache(cfg.cache_dir, self.id) if cfg.cache_dir else None
        self._backend: Any = None
        self.calls = 0
        self.cache_hits = 0

    def _identity(self) -> str:
        c = self.cfg
        if c.backend == "local":
            from emollm.evaluation.judge.backends import JudgeConfig, LocalBackend

            model = LocalBackend.identity_for(JudgeConfig(backend="local", model=c.model, dtype=c.dtype)).split("|")[0]
        else:
            model = f"openai:{c.model}"
        if c.preset == "greedy":
            return f"{model}|greedy|max_new_tokens={c.max_new_tokens}"
        rp = OFFICIAL_SAMPLING["repetition_penalty"] if c.backend == "local" or c.send_repetition_penalty else "unsent"
        return (
            f"{model}|affectgpt|temperature={OFFICIAL_SAMPLING['temperature']}|top_p={OFFICIAL_SAMPLING['top_p']}"
            f"|repetition_penalty={rp}|max_new_tokens={c.max_new_tokens}|seed={c.seed}"
        )

    def _complete(self, prompt: str, sample_seed: int) -> str:
        c = self.cfg
        if self._backend is None:
            log.info("building extractor backend %s", self.id)
            if c.preset == "greedy":
                from emollm.evaluation.judge.backends import JUDGE_BACKENDS, JudgeConfig

                jc = JudgeConfig(
                    backend=c.backend,
                    model=c.model,
                    max_new_tokens=c.max_new_tokens,
                    timeout_s=c.timeout_s,
                    max_retries=c.max_retries,
                    dtype=c.dtype,
                    device=c.device,
                )
                self._backend = _with_base_url(c, lambda: JUDGE_BACKENDS.get(c.backend)(jc))
            else:
                self._backend = _SamplingOpenAI(c) if c.backend == "openai" else _SamplingLocal(c)
        if isinstance(self._backend, _SamplingLocal):
            return self._backend.complete(prompt, sample_seed)
        return str(self._backend.complete(prompt))

    def ask(self, sample_id: str, step: str, reason: str) -> str:
        """One post-processed reply for ``step`` (reason_to_openset | openset_to_sentiment), cached."""
        prompt = self.prompts[step].render(reason=reason)
        key = sha256_text(prompt)
        if self.cache is not None:
            hit = self.cache.get(sample_id, step, key)
            if hit is not None:
                self.cache_hits += 1
                return postprocess_qwen(hit)
        seed = self.cfg.seed + int(sha256_text(sample_id)[:8], 16)
        reply = self._complete(prompt, seed)
        self.calls += 1
        if self.cache is not None:
            self.cache.put(sample_id, step, key, reply)
        return postprocess_qwen(reply)

    def openset(self, sample_id: str, text: str | None) -> list[str]:
        """The answer's open-vocabulary list (AffectGPT ``string_to_list``; lower-cased, no duplicates)."""
        reply = self.ask(sample_id, "reason_to_openset", (text or "").strip())
        words: list[str] = []
        for w in parse_emotion_list(reply, "affectgpt"):
            w = w.lower()
            if w not in words:
                words.append(w)
        return words

    def sentiment(self, sample_id: str, words: list[str]) -> str | None:
        """positive / negative / neutral for a word list, or None when the reply is none of them."""
        reply = self.ask(sample_id, "openset_to_sentiment", "[" + ", ".join(words) + "]")
        r = reply.strip().strip(".'\"[] ").lower()
        return r if r in SENTIMENTS else None

    def describe(self) -> dict[str, Any]:
        return {
            "kind": "llm",
            "id": self.id,
            "preset": self.cfg.preset,
            "official": self.cfg.official,
            "prompts": {k: p.hash for k, p in self.prompts.items()},
            "calls": self.calls,
            "cache_hits": self.cache_hits,
        }

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()
        close = getattr(self._backend, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> Extractor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


DETERMINISTIC = {"kind": "deterministic", "id": "list split, else lexicon", "official": False}
"""What reports say when no extractor is configured (emollm's judge-free readers)."""


# ----------------------------------------------------------------------------------------------
# emollm score --extractor: free-text prediction files -> the files the metrics read


def _free_text_rows(pred: Path, columns: tuple[str, ...]) -> list[tuple[str, str]]:
    from emollm.evaluation.readers import _read_rows

    rows = _read_rows(pred, ("name",))
    col = next((c for c in columns if c in rows.header), None)
    if col is None:
        raise ValueError(f"{pred}: no free-text column (looked for {', '.join(columns)}); header is {rows.header}")
    return [(rec["name"].strip(), rec[col]) for _, rec in rows.rows]


def extract_prediction_file(metric: str, pred: str | os.PathLike[str], extractor: Extractor, out_dir: Path) -> Path:
    """Run the producer step over a prediction file of free-text answers; returns the file the metric reads.

    Open-set metrics (wheel, hitrate, ov, mer2025_fg, mme_emotion): ``name,text`` (or an ``openset`` /
    ``discrete`` cell holding the answer) -> ``name,openset,text``. ``sentiment``: answer -> list ->
    sentiment -> ``name,discrete``. Other metrics do not read free text (an error).
    """
    p = Path(pred)
    rows = _free_text_rows(p, ("text", "openset", "discrete"))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if metric in OPENSET_METRICS:
        w.writerow(["name", "openset", "text"])
        for name, text in rows:
            w.writerow([name, str(extractor.openset(name, text)), text])
    elif metric in SENTIMENT_METRICS:
        w.writerow(["name", "discrete"])
        for name, text in rows:
            w.writerow([name, extractor.sentiment(name, extractor.openset(name, text)) or ""])
    else:
        raise ValueError(
            f"metric {metric!r} does not read free text; --extractor works with "
            f"{', '.join(sorted(OPENSET_METRICS | SENTIMENT_METRICS))}"
        )
    dst = out_dir / f"{p.stem}.extracted.csv"
    atomic_write_text(dst, buf.getvalue())
    return dst


# ----------------------------------------------------------------------------------------------
# emollm eval: the answers of one task read by the extractor (or the deterministic readers)


def answer_words(
    recs: list[dict[str, Any]], ids: list[str], lexicon: Any, extractor: str | None, out: Path
) -> tuple[list[list[str]], dict[str, Any]]:
    """Open-vocabulary words of each answer and a description of who read them (for the report)."""
    from emollm.answers import read_openset

    if extractor is None:
        return [read_openset(r.get("text"), "clean", lexicon) for r in recs], dict(DETERMINISTIC)
    with Extractor(load_extractor_config(extractor, out / "extract_cache")) as ex:
        words = [ex.openset(sid, r.get("text")) for sid, r in zip(ids, recs, strict=True)]
        return words, ex.describe()


def answer_sentiments(
    recs: list[dict[str, Any]], ids: list[str], lexicon: Any, extractor: str | None, out: Path
) -> tuple[list[list[str]], list[str | None], dict[str, Any]]:
    """Words and positive / negative / neutral per answer (polarity table, or the LLM's two steps)."""
    from emollm.answers import read_openset, sentiment_of_words

    if extractor is None:
        words = [read_openset(r.get("text"), "clean", lexicon) for r in recs]
        info = {**DETERMINISTIC, "sentiment": "polarity table"}
        return words, [sentiment_of_words(w) for w in words], info
    with Extractor(load_extractor_config(extractor, out / "extract_cache")) as ex:
        words = [ex.openset(sid, r.get("text")) for sid, r in zip(ids, recs, strict=True)]
        preds = [ex.sentiment(sid, w) for sid, w in zip(ids, words, strict=True)]
        return words, preds, ex.describe()
