"""The OpenAI chat-completions schema as emollm serves it: strict request models, message parsing into
user turns with media references, decoding options, and the response pieces (completion, chunk, usage,
logprobs, JSON answers, errors).

Nothing here runs a model or touches the network; ``emollm.inference.server`` wires it to routes.

    req = ChatRequest.model_validate(body)                 # strict: "10" is not an int, stream: "yes" is refused
    check_supported(req)                                   # tools, audio output, n > 1... -> ApiError 400
    gen = decoding_options(req, cap=512)                   # GenerationOptions from the request
    prepared = parse_messages(req, max_messages=1000)      # system text + user turns (+ the answers between)

Validation is strict (pydantic ``strict=True``, ``extra="forbid"``): unknown fields are a 400 naming the
field, except the extensions emollm's own clients send (top-level ``repetition_penalty``,
``no_repeat_ngram_size``, ``top_k``, ``seed``, ``emollm``; per message ``subtitle`` and ``task``). Every
error is ``{"error": {"message", "type", "code", "param"}}`` with a non-null ``code``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from emollm.config import Strict
from emollm.inference.chat import ChatInputError, Reply, normalize_task
from emollm.inference.generation import GenerationOptions, cut_at_stop
from emollm.inference.media_input import (
    AUDIO_FORMATS,
    MediaInputError,
    MediaWorkspace,
    UploadStore,
    b64decode_strict,
    check_media,
    is_data_url,
    is_file_id,
    mime_suffix,
    parse_data_url,
    resolve_in_root,
)

# ------------------------------------------------------------------------------------------ errors

_DEFAULT_CODES = {
    400: "invalid_request",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    500: "internal_error",
    503: "server_busy",
}


class ApiError(Exception):
    """An error answered as OpenAI-style JSON with ``status``."""

    def __init__(
        self,
        status: int,
        message: str,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.param = status, message, param
        self.type = type or type_for(status)
        self.code = code or default_code(status)


def default_code(status: int) -> str:
    return _DEFAULT_CODES.get(status, "server_error" if status >= 500 else "invalid_request")


def type_for(status: int) -> str:
    if status == 404:
        return "not_found_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def error_body(message: str, type: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "code": code or "error", "param": param}}


# ------------------------------------------------------------------------------------------ request schema


class _StrictModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class EmollmOptions(Strict):
    """The ``emollm`` extension of a chat completion request."""

    model_config = ConfigDict(strict=True, extra="forbid", use_attribute_docstrings=True)
    task: str | None = None
    """label | explain | openset (default: the server's default task)."""
    probs: bool = False
    """Return label probabilities (task label: of the answer; other tasks: eval-style, of the latest clip)."""
    subtitle: str | None = None
    """Subtitle of the clip in the first user message that carries media."""
    include_subtitle: bool | None = None


class ChatMessage(_StrictModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]]
    """Text, or a list of content parts (text, image_url, video_url, audio_url, input_audio, file)."""
    name: str | None = None
    """OpenAI's participant name (accepted, not used)."""
    subtitle: str | None = None
    """emollm extension: the subtitle of the clip attached in this message."""
    task: str | None = None
    """emollm extension (user messages): the task this turn was asked with, so a replayed history
    rebuilds the same prompts (default: the request's ``emollm.task``)."""


class StreamOptions(_StrictModel):
    include_usage: bool = False


class ResponseFormat(_StrictModel):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


JSON_ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"label": {"type": "string"}, "explanation": {"type": "string"}},
    "required": ["label", "explanation"],
    "additionalProperties": False,
}
"""What a ``response_format`` JSON answer holds: the emotion label and the explanation it came from."""

# OpenAI request fields this server does not implement: (values that ask for nothing, why a value is refused)
_UNSUPPORTED: dict[str, tuple[tuple[Any, ...], str]] = {
    "tools": ((None, []), "tools / function calling are not supported by this model; use response_format json_schema"),
    "tool_choice": ((None, "none", "auto"), "tool_choice is not supported (no tools); use response_format json_schema"),
    "functions": ((None, []), "functions are not supported by this model; use response_format json_schema"),
    "function_call": ((None, "none", "auto"), "function_call is not supported (no functions)"),
    "audio": ((None,), "audio output is not supported; the model answers in text"),
    "modalities": ((None, ["text"]), "output modalities other than text are not supported"),
    "prediction": ((None,), "predicted outputs are not supported"),
    "logit_bias": ((None, {}), "logit_bias is not supported"),
    "frequency_penalty": ((None, 0), "frequency_penalty is not supported; use repetition_penalty (emollm extension)"),
    "presence_penalty": ((None, 0), "presence_penalty is not supported; use repetition_penalty (emollm extension)"),
    "reasoning_effort": ((None,), "reasoning_effort is not supported"),
    "web_search_options": ((None,), "web search is not supported"),
    "service_tier": ((None, "auto", "default"), "service_tier is not supported"),
}


class ChatRequest(_StrictModel):
    """OpenAI chat completion request (strict). Fields OpenAI defines but this server cannot honour are
    declared so that a non-default value gets a 400 that names them (``check_supported``)."""

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int | None = None
    stop: str | list[str] | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20)
    response_format: ResponseFormat | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    # emollm's own clients (emollm.inference.remote) send these
    seed: int | None = None
    top_k: int | None = Field(None, ge=0)
    repetition_penalty: float | None = Field(None, ge=1.0, le=2.0)
    no_repeat_ngram_size: int | None = Field(None, ge=0, le=32)
    emollm: EmollmOptions | None = None
    # declared only to be refused with a clear message
    tools: Any = None
    tool_choice: Any = None
    parallel_tool_calls: Any = None
    """Accepted and not used (meaningless without tools)."""
    functions: Any = None
    function_call: Any = None
    audio: Any = None
    modalities: Any = None
    prediction: Any = None
    logit_bias: Any = None
    frequency_penalty: Any = None
    presence_penalty: Any = None
    reasoning_effort: Any = None
    web_search_options: Any = None
    service_tier: Any = None


def check_supported(req: ChatRequest) -> None:
    """400 for what the request asks that this server does not do (rather than silently ignoring it)."""
    for name, (harmless, why) in _UNSUPPORTED.items():
        value = getattr(req, name)
        if value is not None and not any(value == h for h in harmless if h is not None):
            raise ApiError(400, f"{name}: {why}", code="unsupported_parameter", param=name)
    if req.n not in (None, 1):
        raise ApiError(400, "n: only n=1 is supported", code="unsupported_parameter", param="n")
    if req.top_logprobs is not None and not req.logprobs:
        raise ApiError(400, "top_logprobs needs logprobs: true", code="invalid_request", param="top_logprobs")
    rf = req.response_format
    if rf is not None and rf.type == "json_schema":
        check_json_schema(rf.json_schema)


def check_json_schema(spec: dict[str, Any] | None) -> None:
    """The JSON answer is ``{"label", "explanation"}``: a schema asking for anything else is refused."""
    where = "response_format.json_schema"
    if not isinstance(spec, dict) or not isinstance(spec.get("schema", {}), dict):
        raise ApiError(400, f"{where}: expected {{name, schema}}", code="invalid_request", param=where)
    schema = spec.get("schema") or {}
    if schema.get("type", "object") != "object":
        raise ApiError(400, f"{where}.schema: the answer is a JSON object", code="unsupported_schema", param=where)
    props = set((schema.get("properties") or {}).keys())
    required = set(schema.get("required") or [])
    known = set(JSON_ANSWER_SCHEMA["properties"])
    extra = sorted((props | required) - known)
    if extra:
        raise ApiError(
            400,
            f"{where}.schema: this model can fill only {sorted(known)} (label and explanation), not {extra}",
            code="unsupported_schema",
            param=where,
        )


def max_new_tokens(req: ChatRequest, cap: int) -> int:
    """``max_completion_tokens`` / ``max_tokens`` checked against 1..``cap`` (absent: ``cap``)."""
    value = req.max_completion_tokens if req.max_completion_tokens is not None else req.max_tokens
    param = "max_completion_tokens" if req.max_completion_tokens is not None else "max_tokens"
    if value is None:
        return cap
    if not 1 <= value <= cap:
        raise ApiError(
            400,
            f"{param} must be between 1 and {cap} on this server, got {value}",
            code="max_tokens_exceeded" if value > cap else "invalid_max_tokens",
            param=param,
        )
    return value


def stop_list(req: ChatRequest) -> list[str]:
    stops = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    if len(stops) > 4 or any(not s for s in stops):
        raise ApiError(400, "stop: up to 4 non-empty strings", code="invalid_request", param="stop")
    return stops


def decoding_options(req: ChatRequest, base: GenerationOptions, cap: int) -> GenerationOptions:
    """The request's decoding options over the server's defaults (``GenerationOptions``)."""
    changes: dict[str, Any] = {
        "max_new_tokens": max_new_tokens(req, cap),
        "temperature": req.temperature,
        "top_p": req.top_p,
        "top_k": req.top_k,
        "repetition_penalty": req.repetition_penalty,
        "no_repeat_ngram": req.no_repeat_ngram_size,
        "seed": req.seed,
        "stop": stop_list(req),
    }
    data = base.model_dump()
    data.update({k: v for k, v in changes.items() if v is not None})
    data["max_new_tokens"] = changes["max_new_tokens"]
    return GenerationOptions.model_validate(data)


def task_of(req: ChatRequest, default_task: str) -> str:
    opts = req.emollm or EmollmOptions()
    try:
        return normalize_task(opts.task) if opts.task else default_task
    except ChatInputError as e:
        raise ApiError(400, str(e), code="invalid_task", param="emollm.task") from None


def validation_error(errors: list[dict[str, Any]]) -> ApiError:
    """A FastAPI/pydantic validation error list -> one ApiError naming the first bad field."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    if first.get("type") == "json_invalid":
        return ApiError(
            400, f"invalid JSON body: {first.get('ctx', {}).get('error', first['msg'])}", code="invalid_json"
        )
    loc_parts = [str(x) for x in first.get("loc", ()) if x != "body"]
    # union members show up as an extra loc entry ("content.str"); keep the field path readable
    loc = ".".join(p for p in loc_parts if p not in ("str", "list[dict[str,any]]", "list[str]", "function-after"))
    if first.get("type") == "extra_forbidden":
        return ApiError(
            400,
            f"{loc}: unknown field (not part of the OpenAI chat completion request or emollm's extensions)",
            code="unknown_parameter",
            param=loc or None,
        )
    if first.get("type") == "missing":
        return ApiError(400, f"{loc}: field required", code="missing_parameter", param=loc or None)
    got = first.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {json.dumps(got)[:60]})"
    return ApiError(400, f"{loc or 'body'}: {first['msg']}{shown}", code="invalid_request", param=loc or None)


# ------------------------------------------------------------------------------------------ messages


@dataclass
class MediaRef:
    kind: str
    where: str
    data: bytes | None = None
    suffix: str | None = None
    upload: str | None = None
    path: str | None = None


@dataclass
class UserTurn:
    text: str | None
    media: dict[str, MediaRef] = field(default_factory=dict)
    subtitle: str | None = None
    task: str | None = None
    answer: str | None = None
    paths: dict[str, Path] = field(default_factory=dict)


@dataclass
class Prepared:
    system: str | None
    turns: list[UserTurn]


_URL_PARTS = {"image_url": "image", "video_url": "video", "audio_url": "audio"}


def _media_from_url(kind: str, url: Any, where: str) -> MediaRef:
    if not isinstance(url, str) or not url:
        raise ApiError(400, f"{where}: expected a non-empty string url", code="invalid_content_part", param=where)
    if is_data_url(url):
        mime, data = parse_data_url(url, where)
        kind, suffix = mime_suffix(kind, mime, where)
        return MediaRef(kind, where, data=data, suffix=suffix)
    if is_file_id(url):
        return MediaRef(kind, where, upload=url)
    if url.lower().startswith(("http://", "https://", "ftp://")):
        raise ApiError(
            400,
            f"{where}: remote URLs are not fetched; send a base64 data URL, upload with POST /v1/files, "
            "or name a file under the server's --media-root",
            code="unsupported_url",
            param=where,
        )
    return MediaRef(kind, where, path=url)


def _parse_part(part: dict[str, Any], where: str) -> str | MediaRef:
    typ = part.get("type")
    if typ == "text":
        text = part.get("text")
        if not isinstance(text, str):
            raise ApiError(400, f"{where}.text: expected a string", code="invalid_content_part", param=where)
        return text
    if typ in _URL_PARTS:
        inner = part.get(typ)
        url = inner.get("url") if isinstance(inner, dict) else inner
        return _media_from_url(_URL_PARTS[typ], url, f"{where}.{typ}.url")
    if typ == "input_audio":
        inner = part.get("input_audio")
        if not isinstance(inner, dict) or not isinstance(inner.get("data"), str):
            raise ApiError(
                400, f"{where}.input_audio: expected {{data, format}}", code="invalid_content_part", param=where
            )
        fmt = str(inner.get("format", "wav")).lower()
        if fmt not in AUDIO_FORMATS:
            raise ApiError(
                400,
                f"{where}.input_audio.format: unsupported audio format {fmt!r}; accepted: {', '.join(AUDIO_FORMATS)}",
                code="unsupported_audio_format",
                param=f"{where}.input_audio.format",
            )
        data = inner["data"]
        if is_data_url(data):
            return _media_from_url("audio", data, f"{where}.input_audio.data")
        return MediaRef(
            "audio", where, data=b64decode_strict(data, f"{where}.input_audio.data"), suffix=AUDIO_FORMATS[fmt]
        )
    if typ == "file":
        inner = part.get("file")
        if not isinstance(inner, dict):
            raise ApiError(400, f"{where}.file: expected an object", code="invalid_content_part", param=where)
        if isinstance(inner.get("file_id"), str):
            return MediaRef("", where, upload=inner["file_id"])
        if isinstance(inner.get("file_data"), str):
            return _media_from_url_any(inner["file_data"], f"{where}.file.file_data")
        raise ApiError(400, f"{where}.file: expected file_id or file_data", code="invalid_content_part", param=where)
    raise ApiError(
        400,
        f"{where}: unsupported content part type {typ!r}; expected text, image_url, video_url, audio_url, "
        "input_audio or file",
        code="unsupported_content_part",
        param=where,
    )


def _media_from_url_any(url: str, where: str) -> MediaRef:
    if not is_data_url(url):
        raise ApiError(400, f"{where}: expected a base64 data URL", code="invalid_content_part", param=where)
    mime, data = parse_data_url(url, where)
    kind, suffix = mime_suffix(None, mime, where)
    return MediaRef(kind, where, data=data, suffix=suffix)


def parse_messages(req: ChatRequest, max_messages: int | None = None) -> Prepared:
    """Messages -> optional system text and user turns (each with its media and the answer that followed)."""
    if max_messages is not None and len(req.messages) > max_messages:
        raise ApiError(
            400,
            f"messages: {len(req.messages)} messages, more than this server accepts ({max_messages}, "
            "--max-messages); old turns beyond the model's context are dropped anyway, so send only the recent ones",
            code="too_many_messages",
            param="messages",
        )
    system: str | None = None
    turns: list[UserTurn] = []
    last_role: str | None = None
    for i, msg in enumerate(req.messages):
        where = f"messages[{i}]"
        parts: list[str | MediaRef]
        if isinstance(msg.content, str):
            parts = [msg.content]
        else:
            parts = []
            for j, p in enumerate(msg.content):
                parts.append(_parse_part(p, f"{where}.content[{j}]"))
        text = "".join(p for p in parts if isinstance(p, str)).strip() or None
        media = [p for p in parts if isinstance(p, MediaRef)]
        if msg.role in ("system", "developer"):
            if turns or media:
                raise ApiError(
                    400,
                    f"{where}: a system message must come first and hold text only",
                    code="invalid_message_order",
                    param=where,
                )
            system = "\n".join(x for x in (system, text) if x) or None
        elif msg.role == "assistant":
            if last_role != "user" or media:
                raise ApiError(
                    400,
                    f"{where}: an assistant message must follow a user message and hold text only",
                    code="invalid_message_order",
                    param=where,
                )
            turns[-1].answer = text or ""
        else:
            if last_role == "user":  # consecutive user messages form one turn
                turn = turns[-1]
                turn.text = "\n".join(x for x in (turn.text, text) if x) or None
            else:
                turn = UserTurn(text)
                turns.append(turn)
            for m in media:
                key = m.kind or f"upload:{m.upload}"
                if key in turn.media:
                    raise ApiError(
                        400,
                        f"{where}: more than one {m.kind or 'file'} in one user turn",
                        code="too_many_media",
                        param=where,
                    )
                turn.media[key] = m
            if msg.subtitle is not None:
                turn.subtitle = msg.subtitle
            if msg.task is not None:
                try:
                    turn.task = normalize_task(msg.task)
                except ChatInputError as e:
                    raise ApiError(400, f"{where}.task: {e}", code="invalid_task", param=f"{where}.task") from None
        last_role = "user" if msg.role == "user" else ("assistant" if msg.role == "assistant" else last_role)
    if not turns or last_role != "user":
        raise ApiError(
            400, "messages: the last message must be a user message", code="invalid_message_order", param="messages"
        )
    opts = req.emollm
    if opts is not None and opts.subtitle is not None:
        first = next((t for t in turns if t.media), turns[0])
        if first.subtitle is None:
            first.subtitle = opts.subtitle
    return Prepared(system, turns)


def materialize(
    prepared: Prepared, ws: MediaWorkspace, store: UploadStore, media_root: Path | None, max_seconds: float
) -> None:
    """Write/resolve every media reference to a local file and probe it (runs in a thread pool)."""
    for turn in prepared.turns:
        for m in turn.media.values():
            if m.data is not None:
                p = ws.write(m.kind, m.data, m.suffix or "")
                kind = m.kind
            elif m.upload is not None:
                up = store.get(m.upload, m.where)
                kind = m.kind or up.kind
                if m.kind and m.kind != up.kind and not (m.kind == "audio" and up.kind == "video"):
                    raise MediaInputError(
                        f"{m.where}: upload {m.upload} is {up.kind}, not {m.kind}",
                        code="unsupported_media_type",
                        status=400,
                    )
                p = up.path
            else:
                p = resolve_in_root(m.path or "", media_root, m.where)
                if not m.kind:
                    raise ApiError(400, f"{m.where}: unknown media kind", code="invalid_content_part", param=m.where)
                kind = m.kind
            if kind in turn.paths:
                raise ApiError(400, f"{m.where}: more than one {kind} in one user turn", code="too_many_media")
            check_media(p, kind, max_seconds, where=m.where)
            turn.paths[kind] = p


# ------------------------------------------------------------------------------------------ responses


def completion_ext(reply: Reply, want_probs: bool, labels: Any = None) -> dict[str, Any]:
    """The ``emollm`` object of a response: task, modalities, label, probabilities, open-set words.

    ``labels`` (the model's ``LabelSpace``) lets the open-set reader find label words in a non-list
    answer, exactly as ``emollm predict`` and ``emollm eval`` read it."""
    from emollm.answers import read_openset

    ext: dict[str, Any] = {"task": reply.task, "modalities": reply.modalities, "missing": reply.missing}
    if reply.label is not None:
        ext["label"] = reply.label
    if want_probs and reply.probs is not None:
        ext["probs"] = reply.probs
    if reply.task == "openset":
        ext["openset"] = read_openset(reply.text, "clean", labels.mentions if labels is not None else None)
    return ext


def read_label_from(text: str, space: Any) -> str | None:
    """The label an explanation names, read by the answer reader (None: it names none)."""
    from emollm.answers import read_label

    return read_label(text, space).label


def json_answer(reply: Reply, space: Any) -> str:
    """``{"label", "explanation"}`` for ``response_format`` json_object/json_schema: the label the
    explanation names (answer reader), else the constrained choice over the label space."""
    explanation = "" if reply.task == "label" else cut_text(reply.text)
    label = read_label_from(explanation, space) if explanation else None
    if label is None:
        label = reply.label or (max(reply.probs, key=reply.probs.get) if reply.probs else None)  # type: ignore[arg-type]
    return json.dumps({"label": label or "", "explanation": explanation}, ensure_ascii=False)


def cut_text(text: str) -> str:
    return text.strip()


def usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def sse(obj: Any) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def _token_entry(tokenizer: Any, tid: int, logprob: float) -> dict[str, Any]:
    text = tokenizer.decode([tid])
    lp = logprob if math.isfinite(logprob) else -9999.0
    return {"token": text, "logprob": lp, "bytes": list(text.encode("utf-8"))}


def logprobs_content(
    tokenizer: Any, steps: list[tuple[int, Any]], top: int, stop_ids: list[int] | tuple[int, ...] = ()
) -> list[dict[str, Any]]:
    """OpenAI ``logprobs.content`` from ``(chosen id, log-softmax row)`` per generated token (the end-of-turn
    token is not part of the answer and is left out)."""
    out: list[dict[str, Any]] = []
    for tid, row in steps:
        if tid in stop_ids:
            break
        entry = _token_entry(tokenizer, tid, float(row[tid]))
        entry["top_logprobs"] = []
        if top:
            vals, idx = row.topk(top)
            entry["top_logprobs"] = [
                _token_entry(tokenizer, int(i), float(v)) for v, i in zip(vals.tolist(), idx.tolist(), strict=True)
            ]
        out.append(entry)
    return out


def label_logprobs(label: str, probs: dict[str, float], top: int) -> list[dict[str, Any]]:
    """``logprobs.content`` of a constrained label answer: one entry, the label and its rivals."""

    def entry(lab: str, p: float) -> dict[str, Any]:
        return {"token": lab, "logprob": math.log(p) if p > 0 else -9999.0, "bytes": list(lab.encode("utf-8"))}

    first = entry(label, probs.get(label, 0.0))
    ranked = sorted(probs.items(), key=lambda kv: -kv[1])[:top]
    first["top_logprobs"] = [entry(lab, p) for lab, p in ranked]
    return [first]


class StopFilter:
    """Holds back streamed text that could be the start of a stop string; ``feed`` returns what is
    safe to emit and whether a stop string was reached (the text before it is the whole answer)."""

    def __init__(self, stops: list[str]) -> None:
        self.stops = stops
        self.text = ""
        self.emitted = 0
        self.hit = False
        self.hold = max((len(s) for s in stops), default=1) - 1

    def feed(self, delta: str) -> str:
        if self.hit:
            return ""
        self.text += delta
        if not self.stops:
            out, self.emitted = self.text[self.emitted :], len(self.text)
            return out
        cut, found = cut_at_stop(self.text, self.stops)
        if found:
            self.hit = True
            out = cut[self.emitted :]
            self.emitted = len(cut)
            return out
        safe = max(self.emitted, len(self.text) - self.hold)
        out, self.emitted = self.text[self.emitted : safe], safe
        return out

    def flush(self) -> str:
        if self.hit:
            return ""
        out, self.emitted = self.text[self.emitted :], len(self.text)
        return out
