"""The ``openai`` backend: ask any OpenAI-compatible endpoint (GPT-4o-style APIs, vLLM, SGLang, ``emollm serve``).

``emollm eval --backend openai --base-url URL --model NAME`` and ``emollm predict --backend openai`` run
every task, suite, variant, ablation and noise condition against an endpoint instead of a local model.
Each condition's conversation comes from the prompt contract exactly as for a local model and is sent
as OpenAI chat messages, with media as content parts:

| part | what is sent |
|---|---|
| ``video: frames`` | ``n_frames`` uniformly chosen frames as JPEG ``image_url`` data URLs (GPT-4o style) |
| ``video: video_url`` | the clip itself as a ``video_url`` data URL (vLLM with Qwen2.5-VL/Omni, ``emollm serve``) |
| ``audio: input_audio`` | the sound track as 16 kHz WAV in an ``input_audio`` part |

Profiles set those defaults: ``openai`` (frames, no audio: chat models that take no audio), ``vllm``
(video_url + input_audio), ``emollm`` (video_url + input_audio; the subtitle goes in emollm's
``subtitle`` extension and decoding is plain greedy, so an ``emollm serve`` model answers exactly as
in-process). Noise conditions send the corrupted media (blurred frames as images, babbled audio as WAV),
so under noise a ``video_url`` profile sends frames instead; a dropped modality sends no part.

Label tasks are answered by generation and read by the shared answer reader (the endpoint cannot be
asked for constrained label scores); with ``logprobs: N`` the request asks for the top-N alternatives
of every token and the label probabilities come from them (``label_probs``), else a record has none. Requests run ``concurrency`` at a time; 429 and 5xx answers are
retried with exponential backoff by the ``openai`` client (``max_retries``), then fail with an error
naming the endpoint and the status. Every reply is cached under ``cache_dir`` keyed by the exact request
(URL, model, messages with media, decoding), so a rerun, a resumed run or a rescore sends nothing; token
counts and the cost (``price_*_per_mtok``) are logged per run.

    ep = EndpointConfig(base_url="http://127.0.0.1:8000/v1", model="mini", profile="emollm")
    rp = RemotePredictor(ep, contract)
    feats = rp.prepare(samples, root, ["video", "audio"], noise=None)   # per sample: content parts
    texts = rp.generate_conversations(rp.conversations(samples, feats, "emotion"), feats, max_new_tokens=32)
    rp.usage                                                            # requests, cached, tokens, cost
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
import re
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from pydantic import Field

from emollm.config import Strict
from emollm.data.contract import PromptContract
from emollm.data.conversation import Conversation, Media
from emollm.data.sample import Sample
from emollm.io import atomic_write_json
from emollm.labels import LabelSpace, label_space
from emollm.log import get_logger

log = get_logger(__name__)

Profile = Literal["openai", "vllm", "emollm"]
ENDPOINT_MODALITIES: dict[str, str] = {"video": "frames", "audio": "audio"}
"""An endpoint's modalities (by name) and the input kind each is made from (for ablation groups)."""
_PROFILE_PARTS: dict[str, tuple[str, str]] = {
    "openai": ("frames", "none"),
    "vllm": ("video_url", "input_audio"),
    "emollm": ("video_url", "input_audio"),
}


class EndpointConfig(Strict):
    """An OpenAI-compatible endpoint and how to talk to it."""

    base_url: str = Field(pattern=r"^https?://")
    """The API root, e.g. ``http://127.0.0.1:8000/v1`` or ``https://api.openai.com/v1``."""
    model: str = Field(min_length=1)
    """The model name the endpoint serves."""
    api_key_env: str | None = None
    """Environment variable holding the API key (None: no key; local servers take any)."""
    profile: Profile = "openai"
    """Defaults for the media parts: openai (frames), vllm (video_url + input_audio), emollm (as vllm, greedy)."""
    video: Literal["frames", "video_url", "none"] | None = None
    """How a clip is sent (None: the profile's default)."""
    audio: Literal["input_audio", "none"] | None = None
    """How the sound is sent (None: the profile's default)."""
    n_frames: int = Field(8, ge=1, le=64)
    """Frames per clip for ``video: frames``."""
    frame_max_side: int = Field(448, ge=32, le=4096)
    """Frames are downscaled so their longer side is at most this (JPEG quality 90)."""
    contract: str | None = None
    """A prompt contract to ask with (a ``prompt_contract.yaml`` or a checkpoint folder); None: the default."""
    concurrency: int = Field(4, ge=1, le=256)
    """Requests in flight at once."""
    max_retries: int = Field(3, ge=0, le=20)
    """Retries of 429 / 5xx / connection errors (exponential backoff, Retry-After honoured)."""
    timeout_s: float = Field(300.0, gt=0)
    temperature: float = Field(0.0, ge=0, le=2)
    """0: greedy (the published zero-shot protocols)."""
    cache_dir: str = "runs/cache/endpoint"
    """Reply cache (one JSON file per exact request)."""
    price_input_per_mtok: float = Field(0.0, ge=0)
    """Cost of a million prompt tokens (for the cost log; 0: not priced)."""
    price_output_per_mtok: float = Field(0.0, ge=0)
    logprobs: int = Field(0, ge=0, le=20)
    """Label tasks: ask for this many ``top_logprobs`` per token (0: don't ask). Where the endpoint returns
    them, label probabilities come from the first answer token's alternatives (see ``label_probs``)."""

    @property
    def video_part(self) -> str:
        return self.video or _PROFILE_PARTS[self.profile][0]

    @property
    def audio_part(self) -> str:
        return self.audio or _PROFILE_PARTS[self.profile][1]

    @property
    def identity(self) -> str:
        return f"endpoint:{self.model}@{self.base_url.rstrip('/')}"

    @property
    def name(self) -> str:
        return re.sub(r"[^A-Za-z0-9_.-]+", "_", self.model).strip("_") or "endpoint"


class EndpointError(RuntimeError):
    """An endpoint that kept failing (after retries) or answered something unusable."""


@dataclass
class RemoteInputs:
    """One sample's media as OpenAI content parts, keyed by modality (``features`` mirrors SampleFeatures)."""

    sample_id: str
    features: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)
    subtitle: str | None = None


@dataclass
class Usage:
    requests: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retried: int = 0

    def cost(self, ep: EndpointConfig) -> float:
        return (self.prompt_tokens * ep.price_input_per_mtok + self.completion_tokens * ep.price_output_per_mtok) / 1e6

    def as_dict(self, ep: EndpointConfig) -> dict[str, Any]:
        return {
            "endpoint": ep.base_url,
            "model": ep.model,
            "requests_sent": self.requests,
            "answered_from_cache": self.cached,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": round(self.cost(ep), 6),
            "price_per_mtok": {"input": ep.price_input_per_mtok, "output": ep.price_output_per_mtok},
        }


def load_endpoint_contract(ep: EndpointConfig) -> PromptContract:
    from emollm.data.contract import default_contract

    if ep.contract is None:
        return default_contract(label_space("mer6"))
    return PromptContract.load(ep.contract)


# ------------------------------------------------------------------------------------------ media parts


def _data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def _jpeg(frame: Any, max_side: int) -> bytes:
    from PIL import Image

    img = Image.fromarray(frame)
    if max(img.size) > max_side:
        img.thumbnail((max_side, max_side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def _wav(wave: Any, rate: int = 16000) -> bytes:
    import soundfile as sf

    buf = io.BytesIO()
    sf.write(buf, wave, rate, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def media_parts(
    ep: EndpointConfig, sample: Sample, root: str | os.PathLike[str] | None, modalities: Sequence[str], noise: Any
) -> RemoteInputs:
    """The content parts of one sample for the endpoint (corrupted media under a noise spec)."""
    from emollm.encoders.base import MediaRequest
    from emollm.media.bundle import MediaBundle

    out = RemoteInputs(sample.id, subtitle=sample.subtitle)
    bundle = MediaBundle.from_sample(sample, root, noise=noise)
    if "video" in modalities:
        mode = ep.video_part
        if mode == "none":
            out.missing["video"] = "the endpoint is sent no video (video: none)"
        elif not bundle.available("frames"):
            out.missing["video"] = "no video or image"
        elif mode == "video_url" and noise is None and "video" in bundle.paths:
            p = bundle.paths["video"]
            mime = "video/webm" if p.suffix.lower() == ".webm" else "video/mp4"
            out.features["video"] = [{"type": "video_url", "video_url": {"url": _data_url(mime, p.read_bytes())}}]
        else:
            n = 1 if "video" not in bundle.paths else ep.n_frames
            frames = bundle.get(MediaRequest("frames", n_frames=n, selection="uniform"))
            out.features["video"] = [
                {"type": "image_url", "image_url": {"url": _data_url("image/jpeg", _jpeg(f, ep.frame_max_side))}}
                for f in frames
            ]
    if "audio" in modalities:
        if ep.audio_part == "none":
            out.missing["audio"] = "the endpoint is sent no audio (audio: none)"
        elif not bundle.available("audio"):
            out.missing["audio"] = "no audio track or audio file"
        elif (
            ep.video_part == "video_url"
            and "video" in out.features
            and out.features["video"][0]["type"] == "video_url"
            and "audio" not in bundle.paths
        ):
            pass  # the clip's own sound track travels inside the video
        else:
            wave = bundle.get(MediaRequest("audio", sample_rate=16000))
            data = base64.b64encode(_wav(wave)).decode()
            out.features["audio"] = [{"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}]
    return out


# ------------------------------------------------------------------------------------------ the predictor


class RemotePredictor:
    """The Predictor interface eval and predict use, answered by an endpoint. Thread-safe usage counts."""

    def __init__(self, ep: EndpointConfig, contract: PromptContract | None = None) -> None:
        from openai import OpenAI

        self.ep = ep
        self.contract = contract or load_endpoint_contract(ep)
        self.modalities = list(ENDPOINT_MODALITIES)
        key = os.environ.get(ep.api_key_env, "") if ep.api_key_env else "EMPTY"
        if ep.api_key_env and not key:
            raise EndpointError(f"--api-key-env {ep.api_key_env}: that environment variable is not set")
        self.client = OpenAI(base_url=ep.base_url, api_key=key, max_retries=ep.max_retries, timeout=ep.timeout_s)
        self.cache = Path(ep.cache_dir)
        self.usage = Usage()
        self._lock = threading.Lock()

    # -- building blocks shared with the local Predictor

    def prepare(
        self,
        samples: Sequence[Sample],
        root: str | os.PathLike[str] | None,
        modalities: Sequence[str],
        noise: Any = None,
    ) -> list[RemoteInputs]:
        return [media_parts(self.ep, s, root, modalities, noise) for s in samples]

    def conversations(
        self,
        samples: Sequence[Sample],
        feats: Sequence[RemoteInputs],
        task: str,
        prompt_index: int = 0,
        include_subtitle: bool | None = None,
        instruction: str | None = None,
        label_order: list[str] | None = None,
    ) -> list[Conversation]:
        mods = [[m for m in self.modalities if m in f.features] for f in feats]
        sub = include_subtitle if include_subtitle is not None else self.contract.include_subtitle()
        own = self.ep.profile == "emollm"  # the subtitle travels in emollm's message field, not the text
        convs = self.contract.questions(
            samples, mods, task, prompt_index, False if own else sub, instruction, label_order
        )
        for s, conv in zip(samples, convs, strict=True):
            conv.meta["subtitle"] = s.subtitle if (sub and own) else None
        return convs

    def request(
        self, conv: Conversation, feats: RemoteInputs, max_new_tokens: int, logprobs: bool = False
    ) -> dict[str, Any]:
        """The chat-completions request body of one conversation (``logprobs``: a label question)."""
        messages: list[dict[str, Any]] = []
        for msg in conv.messages:
            if msg.role != "user":
                messages.append({"role": msg.role, "content": msg.text})
                continue
            content: list[dict[str, Any]] = []
            for p in msg.parts:
                if isinstance(p, Media):
                    content.extend(feats.features[p.modality])
                elif p.strip():
                    content.append({"type": "text", "text": p.strip() if content else p})
            entry: dict[str, Any] = {"role": "user", "content": content}
            if conv.meta.get("subtitle"):
                entry["subtitle"] = conv.meta["subtitle"]
            messages.append(entry)
        body: dict[str, Any] = {"model": self.ep.model, "messages": messages, "max_tokens": max_new_tokens}
        body["temperature"] = self.ep.temperature
        if logprobs and self.ep.logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = self.ep.logprobs
        if self.ep.profile == "emollm":
            body["repetition_penalty"] = 1.0
            body["no_repeat_ngram_size"] = 0
        return body

    def _key(self, body: dict[str, Any]) -> str:
        blob = json.dumps({"base_url": self.ep.base_url.rstrip("/"), "body": body}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        import openai

        key = self._key(body)
        f = self.cache / key[:2] / f"{key}.json"
        if f.is_file():
            try:
                reply = json.loads(f.read_text())
                with self._lock:
                    self.usage.cached += 1
                return reply
            except (OSError, json.JSONDecodeError):
                log.warning("unreadable cached reply %s: asking again", f)
        own = ("model", "messages", "max_tokens", "temperature", "logprobs", "top_logprobs")
        extra = {k: v for k, v in body.items() if k not in own}
        extra_body = extra or None
        # emollm's per-message subtitle extension travels in the message dicts themselves
        try:
            r = self.client.chat.completions.create(
                model=body["model"],
                messages=body["messages"],
                max_tokens=body["max_tokens"],
                temperature=body["temperature"],
                extra_body=extra_body,
                **{k: body[k] for k in ("logprobs", "top_logprobs") if k in body},
            )
        except openai.APIStatusError as e:
            raise EndpointError(
                f"endpoint {self.ep.base_url} (model {self.ep.model!r}) answered HTTP {e.status_code} "
                f"after {self.ep.max_retries} retries: {_short(e.message)}"
            ) from None
        except openai.APIConnectionError as e:
            raise EndpointError(
                f"endpoint {self.ep.base_url} (model {self.ep.model!r}) cannot be reached after "
                f"{self.ep.max_retries} retries: {e}"
            ) from None
        if not r.choices:
            raise EndpointError(f"endpoint {self.ep.base_url} answered with no choices")
        ch = r.choices[0]
        reply = {
            "text": ch.message.content or "",
            "finish_reason": ch.finish_reason,
            "prompt_tokens": getattr(r.usage, "prompt_tokens", 0) if r.usage else 0,
            "completion_tokens": getattr(r.usage, "completion_tokens", 0) if r.usage else 0,
        }
        lp = getattr(ch, "logprobs", None)
        if lp is not None and getattr(lp, "content", None):
            reply["logprobs"] = [
                {
                    "token": t.token,
                    "logprob": t.logprob,
                    "top": [[a.token, a.logprob] for a in (t.top_logprobs or [])],
                }
                for t in lp.content[:_LOGPROB_POSITIONS]
            ]
        atomic_write_json(f, reply)
        with self._lock:
            self.usage.requests += 1
            self.usage.prompt_tokens += int(reply["prompt_tokens"] or 0)
            self.usage.completion_tokens += int(reply["completion_tokens"] or 0)
        return reply

    def replies(
        self, convs: list[Conversation], feats: list[RemoteInputs], max_new_tokens: int = 64, logprobs: bool = False
    ) -> list[dict[str, Any]]:
        """The endpoint's replies (``text``, token counts, ``logprobs`` when asked and given), in order."""
        bodies = [self.request(c, f, max_new_tokens, logprobs) for c, f in zip(convs, feats, strict=True)]
        if len(bodies) == 1 or self.ep.concurrency == 1:
            return [self._send(b) for b in bodies]
        with ThreadPoolExecutor(max_workers=min(self.ep.concurrency, len(bodies))) as ex:
            return list(ex.map(self._send, bodies))

    def generate_conversations(
        self, convs: list[Conversation], feats: list[RemoteInputs], max_new_tokens: int = 64, **_: Any
    ) -> list[str]:
        return [r["text"] for r in self.replies(convs, feats, max_new_tokens)]

    # -- the interface ``emollm predict`` uses (as the local Predictor's)

    @property
    def labels(self) -> LabelSpace:
        return label_space(self.contract.label_space)

    @property
    def source(self) -> str:
        return self.ep.identity

    def features(
        self, samples: Sequence[Sample], root: str | os.PathLike[str] | None, modalities: Sequence[str] | None
    ) -> list[RemoteInputs]:
        mods = [m for m in self.modalities if modalities is None or m in modalities]
        return self.prepare(samples, root, mods)

    def classify(
        self,
        samples: Sequence[Sample],
        root: str | os.PathLike[str] | None,
        prompt_index: int = 0,
        include_subtitle: bool | None = None,
        feats: list[RemoteInputs] | None = None,
        max_new_tokens: int = 32,
    ) -> list[RemoteLabel]:
        """Ask the label question; the answer is read by the answer reader (None: unparsed, never a default)."""
        from emollm.answers import read_label

        feats = feats if feats is not None else self.features(samples, root, None)
        task = self.contract.chat_task("label")
        convs = self.conversations(samples, feats, task, prompt_index, include_subtitle)
        space = self.labels
        out = []
        for s, f, r in zip(samples, feats, self.replies(convs, feats, max_new_tokens, logprobs=True), strict=True):
            label = read_label(r["text"], space).label
            probs = label_probs(r.get("logprobs"), list(space.labels), label)
            logp = {k: math.log(v) if v > 0 else -math.inf for k, v in probs.items()} if probs else None
            out.append(RemoteLabel(s.id, label, probs, logp, list(f.features), r["text"]))
        return out

    def generate(
        self,
        samples: Sequence[Sample],
        root: str | os.PathLike[str] | None,
        task: str | None = None,
        prompt_index: int = 0,
        include_subtitle: bool | None = None,
        feats: list[RemoteInputs] | None = None,
        max_new_tokens: int = 128,
    ) -> list[str]:
        feats = feats if feats is not None else self.features(samples, root, None)
        task = task or self.contract.chat_task("explain")
        convs = self.conversations(samples, feats, task, prompt_index, include_subtitle)
        return self.generate_conversations(convs, feats, max_new_tokens)

    def write_usage(self, out_dir: str | os.PathLike[str]) -> dict[str, Any]:
        """Add this process's usage to ``<out>/endpoint_usage.json`` (cumulative over resumed runs)."""
        f = Path(out_dir) / "endpoint_usage.json"
        now = self.usage.as_dict(self.ep)
        if f.is_file():
            try:
                old = json.loads(f.read_text())
                for k in ("requests_sent", "answered_from_cache", "prompt_tokens", "completion_tokens", "cost"):
                    now[k] = round(now[k] + old.get(k, 0), 6) if k == "cost" else now[k] + old.get(k, 0)
            except (OSError, json.JSONDecodeError):
                pass
        atomic_write_json(f, now)
        return now


@dataclass
class RemoteLabel:
    """A label answer from an endpoint: the read label (None: unparsed) and, given logprobs, probabilities."""

    sample_id: str
    label: str | None
    probs: dict[str, float] | None
    logp: dict[str, float] | None
    modalities: list[str]
    text: str


_LOGPROB_POSITIONS = 8
"""Token positions of an answer whose alternatives are kept in the cache (the label is read from the first)."""
_TOKEN_EDGE = re.compile(r"^[\s\"'*`(\[:]+|[\s\"'*`)\].,:;!]+$")


def label_probs(
    logprobs: list[dict[str, Any]] | None, labels: Sequence[str], answered: str | None = None
) -> dict[str, float] | None:
    """Label probabilities from the first answer token's ``top_logprobs``, renormalised over the labels.

    The first position whose token is more than space or punctuation is the answer's first word. Each
    alternative ``t`` there (case-folded, quotes and punctuation stripped) counts for the one label that
    starts with it (``"happ"`` -> happy); an alternative that starts several labels (``"s"``: sad,
    surprise) counts only when it is the token the endpoint generated, for the label the reader read.
    None when nothing was returned or no alternative names a label (the record then has no probabilities).
    """
    if not logprobs:
        return None
    pos = next((p for p in logprobs if _TOKEN_EDGE.sub("", p.get("token", ""))), None)
    if pos is None:
        return None
    low = {lab: lab.lower() for lab in labels}
    mass = dict.fromkeys(labels, 0.0)
    alts = pos.get("top") or [[pos.get("token", ""), pos.get("logprob", 0.0)]]
    for tok, lp in alts:
        t = _TOKEN_EDGE.sub("", str(tok)).lower()
        if not t:
            continue
        hits = [lab for lab, lo in low.items() if lo.startswith(t) or t.startswith(lo)]
        if len(hits) == 1:
            mass[hits[0]] += math.exp(float(lp))
        elif hits and tok == pos.get("token") and answered in hits:
            mass[answered] += math.exp(float(lp))
    total = sum(mass.values())
    if total <= 0:
        return None
    return {lab: m / total for lab, m in mass.items()}


def _short(text: str, n: int = 300) -> str:
    t = " ".join(str(text).split())
    return t if len(t) <= n else t[:n] + "..."


# One declaration per endpoint flag, shared by ``emollm eval`` and ``emollm predict``.
BackendOpt = Annotated[
    str,
    typer.Option(
        "--backend",
        help="local (a checkpoint or preset), native (the same, checked to be a native multimodal model, or a "
        "released Qwen2-Audio/Qwen2.5-Omni/Qwen2-VL folder) or openai (an OpenAI-compatible endpoint).",
    ),
]
BaseUrlOpt = Annotated[str | None, typer.Option("--base-url", help="openai: the endpoint's API root (…/v1).")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="openai: the model name the endpoint serves.")]
ApiKeyEnvOpt = Annotated[
    str | None, typer.Option("--api-key-env", help="openai: environment variable holding the API key.")
]
EndpointFileOpt = Annotated[
    Path | None, typer.Option("--endpoint", help="openai: an EndpointConfig YAML (media parts, prices, cache...).")
]
ProfileOpt = Annotated[
    str | None, typer.Option("--profile", help="openai: media-part defaults: openai, vllm or emollm.")
]
ConcurrencyOpt = Annotated[int | None, typer.Option("--concurrency", min=1, help="openai: requests in flight.")]
LogprobsOpt = Annotated[
    int | None,
    typer.Option("--logprobs", min=0, max=20, help="openai: top_logprobs per token for label probabilities (0: off)."),
]


def endpoint_from_options(
    file: str | os.PathLike[str] | None,
    base_url: str | None,
    model: str | None,
    api_key_env: str | None = None,
    profile: str | None = None,
    concurrency: int | None = None,
    logprobs: int | None = None,
) -> EndpointConfig:
    """An ``EndpointConfig`` from an optional YAML file and command-line values (which win)."""
    from emollm.config import load_config

    given = {
        "base_url": base_url,
        "model": model,
        "api_key_env": api_key_env,
        "profile": profile,
        "concurrency": concurrency,
        "logprobs": logprobs,
    }
    given = {k: v for k, v in given.items() if v is not None}
    if file is not None:
        ep = load_config(EndpointConfig, file)
        return EndpointConfig.model_validate({**ep.model_dump(), **given})
    missing = [f"--{k.replace('_', '-')}" for k in ("base_url", "model") if k not in given]
    if missing:
        raise ValueError(f"--backend openai needs {' and '.join(missing)} (or --endpoint FILE)")
    return EndpointConfig.model_validate(given)
