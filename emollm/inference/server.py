"""An OpenAI-compatible HTTP server for emotion chat over clips (FastAPI app factory + uvicorn runner).

    emollm serve --checkpoint runs/mini/final --port 8000 --media-root /data/clips
    curl localhost:8000/v1/chat/completions -H 'content-type: application/json' -d '{
      "model": "final", "messages": [{"role": "user", "content": [
        {"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AAAA..."}},
        {"type": "text", "text": "How does this person feel, and why?"}]}],
      "stream": true, "emollm": {"task": "explain", "probs": true, "subtitle": "I can't believe it."}}'

Library use (tests, notebooks)::

    app = create_app(predictor, ServeSettings(model_id="tiny"))
    with BackgroundServer(app) as url:          # uvicorn in a thread on a free loopback port
        httpx.get(url + "/health")

Endpoints: ``POST /v1/chat/completions`` (``stream: true`` -> server-sent events in the OpenAI chunk
format ending with ``data: [DONE]``), ``GET /v1/models``, ``POST /v1/files`` (multipart upload -> an id
usable in later messages), ``GET /v1/files``, ``GET|DELETE /v1/files/{id}``, ``GET /health`` and the web
demo at ``/``. Media in messages: base64 data URLs (``image_url``, ``video_url``, ``audio_url`` parts),
``input_audio`` parts, uploaded file ids (``{"type": "file", "file": {"file_id": ...}}`` or an id as a
part's url) and server-side paths inside ``--media-root``. docs/INFERENCE.md has the full schema,
including the ``emollm`` request/response extension.

Safety: the body size is capped (``Content-Length`` and streamed bytes), media are probed (decodable,
duration <= ``max_seconds``), ``max_tokens`` is capped, every request decodes its media into its own
temporary folder, and one worker thread runs all model work, so concurrent requests queue (503 past
``max_queue``) and never share state. Every error is JSON ``{"error": {"message", "type", "code",
"param"}}`` with a 4xx/5xx status, and the server keeps serving.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from emollm.config import Strict
from emollm.inference.chat import TASKS, ChatInputError, ChatSession, Reply, normalize_task
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
from emollm.log import get_logger

log = get_logger(__name__)
T = TypeVar("T")
WEB_DIR = Path(__file__).resolve().parent / "web"


class ServeSettings(Strict):
    model_id: str
    """The id clients send as ``model`` (``GET /v1/models`` lists it)."""
    media_root: Path | None = None
    """Server-side media paths are accepted only inside this folder (None: disabled)."""
    max_body_mb: float = Field(64.0, gt=0)
    max_seconds: float = Field(120.0, gt=0)
    """Longest accepted clip (probed duration)."""
    max_new_tokens: int = Field(512, ge=1)
    """Cap (and default) for ``max_tokens`` / ``max_completion_tokens``."""
    max_queue: int = Field(16, ge=1)
    """Requests waiting for the model beyond this get 503."""
    max_uploads: int = Field(64, ge=1)
    """Uploaded files kept (oldest deleted first)."""
    default_task: str = "explain"
    work_dir: Path | None = None
    """Folder for uploads and per-request temp files (default: a fresh temp folder, removed on exit)."""


# ------------------------------------------------------------------------------------------ errors


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type, code, param


def error_body(message: str, type: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "code": code, "param": param}}


def _type_for(status: int) -> str:
    if status == 404:
        return "not_found_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


# ------------------------------------------------------------------------------------------ request schema


class EmollmOptions(Strict):
    """The ``emollm`` extension of a chat completion request."""

    task: str | None = None
    """label | explain | openset (default: the server's default task)."""
    probs: bool = False
    """Return label probabilities (task label: of the answer; other tasks: eval-style, of the latest clip)."""
    subtitle: str | None = None
    """Subtitle of the clip in the first user message that carries media."""
    include_subtitle: bool | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[dict[str, Any]] | None = None
    subtitle: str | None = None
    """emollm extension: the subtitle of the clip attached in this message."""
    task: str | None = None
    """emollm extension (user messages): the task this turn was asked with, so a replayed history
    rebuilds the same prompts (default: the request's ``emollm.task``)."""


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")
    include_usage: bool = False


class ChatRequest(BaseModel):
    """OpenAI chat completion request; other OpenAI fields are accepted and ignored (see docs)."""

    model_config = ConfigDict(extra="ignore")
    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    seed: int | None = None
    n: int | None = None
    stop: str | list[str] | None = None
    emollm: EmollmOptions | None = None


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
            raise ApiError(400, f"{where}.input_audio: expected {{data, format}}", code="invalid_content_part")
        fmt = str(inner.get("format", "wav")).lower()
        if fmt not in AUDIO_FORMATS:
            raise MediaInputError(
                f"{where}.input_audio.format: unsupported audio format {fmt!r}; accepted: {', '.join(AUDIO_FORMATS)}",
                code="unsupported_media_type",
                status=415,
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


def parse_messages(req: ChatRequest) -> Prepared:
    """Messages -> optional system text and user turns (each with its media and the answer that followed)."""
    system: str | None = None
    turns: list[UserTurn] = []
    last_role: str | None = None
    for i, msg in enumerate(req.messages):
        where = f"messages[{i}]"
        parts: list[str | MediaRef]
        if msg.content is None:
            parts = []
        elif isinstance(msg.content, str):
            parts = [msg.content]
        else:
            parts = []
            for j, p in enumerate(msg.content):
                parts.append(_parse_part(p, f"{where}.content[{j}]"))
        text = "".join(p for p in parts if isinstance(p, str)).strip() or None
        media = [p for p in parts if isinstance(p, MediaRef)]
        if msg.role in ("system", "developer"):
            if turns or media:
                raise ApiError(400, f"{where}: a system message must come first and hold text only", param=where)
            system = "\n".join(x for x in (system, text) if x) or None
        elif msg.role == "assistant":
            if last_role != "user" or media:
                raise ApiError(
                    400, f"{where}: an assistant message must follow a user message and hold text only", param=where
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
                    raise ApiError(400, f"{where}: more than one {m.kind or 'file'} in one user turn", param=where)
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
        raise ApiError(400, "messages: the last message must be a user message", param="messages")
    opts = req.emollm
    if opts is not None and opts.subtitle is not None:
        first = next((t for t in turns if t.media), turns[0])
        if first.subtitle is None:
            first.subtitle = opts.subtitle
    return Prepared(system, turns)


def materialize(prepared: Prepared, ws: MediaWorkspace, store: UploadStore, settings: ServeSettings) -> None:
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
                        status=415,
                    )
                p = up.path
            else:
                p = resolve_in_root(m.path or "", settings.media_root, m.where)
                if not m.kind:
                    raise ApiError(400, f"{m.where}: unknown media kind", code="invalid_content_part")
                kind = m.kind
            if kind in turn.paths:
                raise ApiError(400, f"{m.where}: more than one {kind} in one user turn", param=m.where)
            check_media(p, kind, settings.max_seconds, where=m.where)
            turn.paths[kind] = p


# ------------------------------------------------------------------------------------------ model worker


class ModelWorker:
    """Runs all model work one job at a time on a dedicated thread; refuses jobs past ``max_queue``."""

    def __init__(self, max_queue: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emollm-model")
        self._lock = threading.Lock()
        self.pending = 0
        self.max_queue = max_queue

    def submit(self, fn: Callable[..., T], *args: Any, **kw: Any) -> Future[T]:
        with self._lock:
            if self.pending >= self.max_queue:
                raise ApiError(503, "the server is busy; retry later", type="server_error", code="server_busy")
            self.pending += 1
        fut = self._pool.submit(fn, *args, **kw)
        fut.add_done_callback(self._done)
        return fut

    def _done(self, _: Future[Any]) -> None:
        with self._lock:
            self.pending -= 1

    async def run(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        return await asyncio.wrap_future(self.submit(fn, *args, **kw))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------------------------------ body limit


class BodyLimit:
    """ASGI middleware: 413 when ``Content-Length`` or the streamed body exceeds ``max_bytes``.

    The rest of an oversized body is read and discarded (up to ``drain_bytes``) before the 413 goes
    out: a server that answers and closes while the client is still sending makes the client see a
    connection reset instead of the JSON error.
    """

    def __init__(self, app: Any, max_bytes: int, drain_bytes: int = 256 * 2**20) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes

    def _error(self) -> ApiError:
        mb = self.max_bytes / 2**20
        return ApiError(413, f"request body larger than {mb:g} MiB (--max-body-mb)", code="request_too_large")

    async def _drain(self, receive: Callable[..., Any], more: bool) -> bool:
        """Discard the rest of the body; False when it is too large to wait for."""
        n = 0
        while more:
            msg = await receive()
            if msg["type"] != "http.request":
                return False
            n += len(msg.get("body", b""))
            more = bool(msg.get("more_body"))
            if n > self.drain_bytes:
                return False
        return True

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cl = dict(scope.get("headers") or []).get(b"content-length")
        if cl is not None and cl.isdigit() and int(cl) > self.max_bytes:
            drained = int(cl) <= self.drain_bytes and await self._drain(receive, True)
            e = self._error()
            body = json.dumps(error_body(e.message, e.type, e.code)).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            if not drained:
                headers.append((b"connection", b"close"))
            await send({"type": "http.response.start", "status": 413, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        seen = 0

        async def limited() -> dict[str, Any]:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.max_bytes:
                    await self._drain(receive, bool(msg.get("more_body")))
                    # an HTTPException passes FastAPI's body parsing unchanged (anything else becomes a 400)
                    raise StarletteHTTPException(413, self._error().message)
            return msg

        await self.app(scope, limited, send)


# ------------------------------------------------------------------------------------------ app


def _completion_ext(reply: Reply, want_probs: bool, labels: Any = None) -> dict[str, Any]:
    """The ``emollm`` extension of a reply; ``labels`` (the model's LabelSpace) lets the open-set reader find
    label words in a non-list answer, exactly as ``emollm predict`` and ``emollm eval`` read it."""
    from emollm.answers import read_openset

    ext: dict[str, Any] = {"task": reply.task, "modalities": reply.modalities, "missing": reply.missing}
    if reply.label is not None:
        ext["label"] = reply.label
    if want_probs and reply.probs is not None:
        ext["probs"] = reply.probs
    if reply.task == "openset":
        ext["openset"] = read_openset(reply.text, "clean", labels.mentions if labels is not None else None)
    return ext


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
    }


def _sse(obj: Any) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n"


def create_app(predictor: Any, settings: ServeSettings) -> FastAPI:
    """The FastAPI app serving ``predictor`` (one loaded model) under ``settings``."""
    owns_work_dir = settings.work_dir is None
    work = Path(tempfile.mkdtemp(prefix="emollm-serve-")) if owns_work_dir else Path(settings.work_dir)  # type: ignore[arg-type]
    work.mkdir(parents=True, exist_ok=True)
    store = UploadStore(work / "uploads", settings.max_uploads)
    worker = ModelWorker(settings.max_queue)
    default_task = normalize_task(settings.default_task)
    created = int(time.time())

    @asynccontextmanager
    async def lifespan(_: Any) -> AsyncIterator[None]:
        yield
        worker.shutdown()
        if owns_work_dir:
            shutil.rmtree(work, ignore_errors=True)

    app = FastAPI(title="emollm", version="1", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.settings = settings
    app.state.worker = worker
    app.state.store = store
    app.add_middleware(BodyLimit, max_bytes=int(settings.max_body_mb * 2**20))

    def err(status: int, message: str, type: str | None = None, code: str | None = None, param: str | None = None):
        return JSONResponse(error_body(message, type or _type_for(status), code, param), status_code=status)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, e: ApiError) -> Any:
        return err(e.status, e.message, e.type, e.code, e.param)

    @app.exception_handler(MediaInputError)
    async def _media_error(_: Request, e: MediaInputError) -> Any:
        return err(e.status, e.message, None, e.code, e.param)

    @app.exception_handler(ChatInputError)
    async def _chat_error(_: Request, e: ChatInputError) -> Any:
        return err(400, str(e), None, e.code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, e: RequestValidationError) -> Any:
        errs = e.errors()
        first = errs[0] if errs else {"loc": (), "msg": "invalid request", "type": ""}
        if first.get("type") == "json_invalid":
            return err(
                400, f"invalid JSON body: {first.get('ctx', {}).get('error', first['msg'])}", code="invalid_json"
            )
        loc = ".".join(str(x) for x in first["loc"] if x != "body")
        return err(400, f"{loc or 'body'}: {first['msg']}", code="invalid_request", param=loc or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> Any:
        codes = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
        return err(e.status_code, str(e.detail), None, codes.get(e.status_code))

    @app.exception_handler(Exception)
    async def _internal(_: Request, e: Exception) -> Any:
        log.exception("internal error: %s", e)
        return err(500, f"internal error: {type(e).__name__}: {e}", "server_error", "internal_error")

    # -------------------------------------------------------------------------------- routes

    @app.get("/", include_in_schema=False)
    async def index() -> Any:
        return HTMLResponse((WEB_DIR / "index.html").read_text(encoding="utf-8"))

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Any:
        return Response(status_code=204)

    @app.get("/health")
    async def health() -> Any:
        return {"status": "ok", "model": settings.model_id, "queue": worker.pending}

    @app.get("/v1/models")
    async def models() -> Any:
        sysm = predictor.system
        card = {
            "id": settings.model_id,
            "object": "model",
            "created": created,
            "owned_by": "emollm",
            "emollm": {
                "modalities": list(sysm.modalities),
                "labels": list(sysm.labels.labels),
                "label_space": sysm.labels.name,
                "tasks": list(TASKS),
                "max_new_tokens": settings.max_new_tokens,
                "max_seconds": settings.max_seconds,
            },
        }
        return {"object": "list", "data": [card]}

    @app.post("/v1/files")
    async def upload(request: Request) -> Any:
        ctype = request.headers.get("content-type", "")
        if not ctype.startswith("multipart/form-data"):
            raise ApiError(400, "upload with multipart/form-data (fields: file, purpose)", code="invalid_request")
        form = await request.form(max_files=1, max_fields=8)
        f = form.get("file")
        if not isinstance(f, UploadFile):
            raise ApiError(400, "multipart field 'file' (a file) is required", code="invalid_request", param="file")
        name = f.filename or "upload"
        fid, kind, path = store.reserve(name, f.content_type)
        try:
            with open(path, "xb") as out:
                while chunk := await f.read(1 << 20):
                    out.write(chunk)
            await run_in_threadpool(check_media, path, kind, settings.max_seconds, name)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        purpose = form.get("purpose")
        rec = store.commit(fid, kind, path, name, purpose if isinstance(purpose, str) and purpose else "user_data")
        return rec.describe()

    @app.get("/v1/files")
    async def list_files() -> Any:
        return {"object": "list", "data": [f.describe() for f in store.list()]}

    @app.get("/v1/files/{fid}")
    async def get_file(fid: str) -> Any:
        return store.get(fid).describe()

    @app.delete("/v1/files/{fid}")
    async def delete_file(fid: str) -> Any:
        f = store.delete(fid)
        return {"id": f.id, "object": "file", "deleted": True}

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatRequest) -> Any:
        if req.model is not None and req.model != settings.model_id:
            raise ApiError(
                404,
                f"model {req.model!r} does not exist; this server serves {settings.model_id!r}",
                code="model_not_found",
                param="model",
            )
        if req.n not in (None, 1):
            raise ApiError(400, "n > 1 is not supported", code="unsupported_parameter", param="n")
        if req.stop:
            raise ApiError(400, "stop sequences are not supported", code="unsupported_parameter", param="stop")
        opts = req.emollm or EmollmOptions()
        try:
            task = normalize_task(opts.task) if opts.task else default_task
        except ChatInputError as e:
            raise ApiError(400, str(e), code="invalid_task", param="emollm.task") from None
        max_new = req.max_completion_tokens or req.max_tokens or settings.max_new_tokens
        if not 1 <= max_new <= settings.max_new_tokens:
            raise ApiError(
                400,
                f"max_tokens must be between 1 and {settings.max_new_tokens} on this server, got {max_new}",
                code="max_tokens_exceeded",
                param="max_tokens",
            )
        gen: dict[str, Any] = {"max_new_tokens": max_new}
        if req.temperature:
            gen.update(do_sample=True, temperature=req.temperature)
            if req.top_p is not None:
                gen["top_p"] = req.top_p
        prepared = parse_messages(req)
        ws = MediaWorkspace(work / "requests")
        try:
            await run_in_threadpool(materialize, prepared, ws, store, settings)
            session, turn = await worker.run(_build_session, predictor, prepared, task, opts)
        finally:
            ws.close()  # features are computed; the decoded files are no longer needed
        cid = "chatcmpl-" + uuid.uuid4().hex
        now = int(time.time())
        seed = req.seed

        def answer(on_text: Callable[[str], None] | None = None, cancel: threading.Event | None = None) -> Reply:
            if seed is not None and gen.get("do_sample"):
                import torch

                torch.manual_seed(seed)
            return session.ask(turn=turn, probs=opts.probs, on_text=on_text, cancel=cancel, **gen)

        if not req.stream:
            reply = await worker.run(answer)
            return {
                "id": cid,
                "object": "chat.completion",
                "created": now,
                "model": settings.model_id,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply.text},
                        "finish_reason": reply.finish_reason if reply.finish_reason != "cancelled" else "stop",
                    }
                ],
                "usage": _usage(reply),
                "emollm": _completion_ext(reply, opts.probs or reply.task == "label", predictor.system.labels),
            }

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        cancel = threading.Event()

        def push(kind: str, text: str = "") -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, text))

        fut = worker.submit(answer, lambda d: push("delta", d), cancel)
        fut.add_done_callback(lambda _: push("done"))
        include_usage = bool(req.stream_options and req.stream_options.include_usage)

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
            c = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": now,
                "model": settings.model_id,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            c.update(extra)
            return c

        async def events() -> AsyncIterator[str]:
            try:
                yield _sse(chunk({"role": "assistant", "content": ""}))
                while True:
                    kind, text = await queue.get()
                    if kind == "done":
                        break
                    yield _sse(chunk({"content": text}))
                try:
                    reply = fut.result()
                except Exception as e:  # noqa: BLE001 - headers are sent: report in-band, like OpenAI
                    log.exception("streaming generation failed")
                    code = getattr(e, "code", None) or "internal_error"
                    yield _sse(error_body(f"{type(e).__name__}: {e}", "server_error", code))
                    yield "data: [DONE]\n\n"
                    return
                finish = reply.finish_reason if reply.finish_reason != "cancelled" else "stop"
                yield _sse(
                    chunk(
                        {},
                        finish,
                        emollm=_completion_ext(reply, opts.probs or reply.task == "label", predictor.system.labels),
                    )
                )
                if include_usage:
                    u = chunk({}, None, usage=_usage(reply))
                    u["choices"] = []
                    yield _sse(u)
                yield "data: [DONE]\n\n"
            finally:
                cancel.set()  # no-op when finished; stops generation when the client went away

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    return app


def _build_session(predictor: Any, prepared: Prepared, task: str, opts: EmollmOptions) -> tuple[ChatSession, Any]:
    """Replay the request's history into a fresh session and encode the new turn's media (model thread)."""
    session = ChatSession(predictor, task=task, include_subtitle=opts.include_subtitle, system=prepared.system)
    for i, t in enumerate(prepared.turns):
        for kind, p in t.paths.items():
            session.attach(kind, p)
        if t.subtitle is not None:
            session.set_subtitle(t.subtitle)
        if i < len(prepared.turns) - 1:
            session.add_exchange(t.text, t.answer or "", t.task)
    last = prepared.turns[-1]
    return session, session.prepare_turn(last.text, last.task)


# ------------------------------------------------------------------------------------------ running


class BackgroundServer:
    """uvicorn serving ``app`` in a daemon thread on a free loopback port: ``with BackgroundServer(app) as url``."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.app, self.host, self.port, self.log_level = app, host, port, log_level
        self.url = ""

    def __enter__(self) -> str:
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level=self.log_level, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        self.url = f"http://{self.host}:{self.port}"
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def serve(predictor: Any, settings: ServeSettings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the server in the foreground (Ctrl-C stops it)."""
    import uvicorn

    app = create_app(predictor, settings)
    log.info("serving %s on http://%s:%d (web demo at /)", settings.model_id, host, port)
    uvicorn.run(app, host=host, port=port, log_level="info", timeout_keep_alive=30)
