"""An OpenAI-compatible HTTP server for emotion chat over clips: the routes and the app factory.

    emollm serve --checkpoint runs/mini/final --port 8000 --media-root /data/clips
    curl localhost:8000/v1/chat/completions -H 'content-type: application/json' -d '{
      "model": "final", "messages": [{"role": "user", "content": [
        {"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AAAA..."}},
        {"type": "text", "text": "How does this person feel, and why?"}]}],
      "stream": true, "emollm": {"task": "explain", "probs": true, "subtitle": "I can't believe it."}}'

Library use (tests, notebooks)::

    app = create_app(predictor, ServeSettings(model_id="tiny"))
    with BackgroundServer(app) as url:          # uvicorn in a thread on a free loopback port
        openai.OpenAI(base_url=url + "/v1", api_key="x").models.list()

Endpoints: ``POST /v1/chat/completions`` (``stream: true`` -> server-sent events in the OpenAI chunk
format ending with ``data: [DONE]``; ``logprobs``/``top_logprobs``, ``stop``, ``response_format``
json_object / json_schema for a ``{"label", "explanation"}`` answer), ``GET /v1/models``,
``GET /v1/models/{id}``, ``POST /v1/files`` (multipart upload -> an id usable in later messages),
``GET /v1/files`` (paginated: ``limit``, ``after``, ``has_more``), ``GET|DELETE /v1/files/{id}``,
``GET /health`` and the web demo at ``/``. docs/INFERENCE.md has the full schema, including the
``emollm`` request/response extension.

The pieces live apart: ``openai_api`` (request schema, strict validation, message parsing, response
pieces), ``asgi`` (body-size middleware, the one model worker and its queue, cancellation on client
disconnect / compute-time bound / shutdown, uvicorn runners), and this module (routes).

Safety: the body size is capped, media are probed, ``max_tokens`` and the message count are capped,
each request's model time is bounded (``max_request_seconds``), a generation stops when its client
disconnects, every request decodes its media into its own temporary folder, and one worker thread
runs all model work so concurrent requests queue (503 past ``max_queue``). Every error is JSON
``{"error": {"message", "type", "code", "param"}}`` with a 4xx/5xx status and a non-null code.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import torch
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from transformers import LogitsProcessor, LogitsProcessorList

from emollm.config import Strict
from emollm.inference.asgi import (
    BackgroundServer,
    BodyLimit,
    CancelToken,
    JobCancelled,
    ModelWorker,
    run_job,
    run_server,
)
from emollm.inference.chat import TASKS, ChatInputError, ChatSession, Reply, normalize_task
from emollm.inference.generation import GenerationOptions, cut_at_stop
from emollm.inference.media_input import MediaInputError, MediaWorkspace, UploadStore, check_media
from emollm.inference.openai_api import (
    ApiError,
    ChatRequest,
    EmollmOptions,
    Prepared,
    StopFilter,
    check_supported,
    completion_ext,
    decoding_options,
    default_code,
    error_body,
    json_answer,
    label_logprobs,
    logprobs_content,
    materialize,
    parse_messages,
    sse,
    task_of,
    type_for,
    usage,
    validation_error,
)
from emollm.log import get_logger, quiet_known_warnings

__all__ = ["ApiError", "BackgroundServer", "ServeSettings", "create_app", "serve"]

log = get_logger(__name__)
WEB_DIR = Path(__file__).resolve().parent / "web"


class ServeSettings(Strict):
    model_id: str
    """The id clients send as ``model`` (``GET /v1/models`` lists it)."""
    media_root: Path | None = None
    """Server-side media paths are accepted only inside this folder (None: disabled)."""
    max_body_mb: float = Field(64.0, gt=0)
    max_seconds: float = Field(120.0, gt=0)
    """Longest accepted clip (probed duration)."""
    max_new_tokens: int = Field(512, ge=1, le=4096)
    """Cap (and default) for ``max_tokens`` / ``max_completion_tokens`` (at most GenerationOptions' 4096)."""
    max_queue: int = Field(16, ge=1)
    """Requests waiting for the model beyond this get 503."""
    max_uploads: int = Field(64, ge=1)
    """Uploaded files kept (oldest deleted first)."""
    max_messages: int = Field(1000, ge=1)
    """Most messages in one request (more: 400). Old turns past the model's context are dropped anyway."""
    max_request_seconds: float = Field(120.0, gt=0)
    """Model time one request may use (replaying its history plus generating); past it: 400."""
    default_task: str = "explain"
    generation: GenerationOptions = Field(default_factory=GenerationOptions)
    """Decoding defaults (repetition penalty, no-repeat n-gram...) a request's fields override."""
    work_dir: Path | None = None
    """Folder for uploads and per-request temp files (default: a fresh temp folder, removed on exit)."""


class _LogprobRecorder(LogitsProcessor):
    """Keeps the log-softmax of every step's scores (after the penalties, before sampling warpers) and
    the token chosen at the previous step (batch row 0)."""

    def __init__(self) -> None:
        self.rows: list[torch.Tensor] = []
        self.chosen: list[int] = []

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self.rows and input_ids.shape[1] > 0:
            self.chosen.append(int(input_ids[0, -1]))
        self.rows.append(scores[0].float().log_softmax(-1).cpu())
        return scores

    def steps(self, tokenizer: Any, text: str, greedy: bool) -> list[tuple[int, torch.Tensor]]:
        chosen = list(self.chosen)
        if len(chosen) < len(self.rows):  # the last step's token is never seen as input: recover it
            last = self.rows[len(chosen)]
            if greedy:
                chosen.append(int(last.argmax()))
            else:
                known = tokenizer.decode(chosen, skip_special_tokens=True)
                tail = (
                    tokenizer(text[len(known) :], add_special_tokens=False)["input_ids"]
                    if text.startswith(known)
                    else []
                )
                if len(tail) == 1:
                    chosen.append(int(tail[0]))
        return list(zip(chosen, self.rows, strict=False))


def create_app(predictor: Any, settings: ServeSettings) -> FastAPI:
    """The FastAPI app serving ``predictor`` (one loaded model) under ``settings``."""
    owns_work_dir = settings.work_dir is None
    work = Path(tempfile.mkdtemp(prefix="emollm-serve-")) if owns_work_dir else Path(settings.work_dir)  # type: ignore[arg-type]
    work.mkdir(parents=True, exist_ok=True)
    store = UploadStore(work / "uploads", settings.max_uploads)
    cancelled: Counter[str] = Counter()  # reason -> requests whose model work was stopped early
    worker = ModelWorker(settings.max_queue, on_cancel=lambda reason: cancelled.update([reason]))
    default_task = normalize_task(settings.default_task)
    created = int(time.time())
    quiet_known_warnings()

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
    app.state.cancelled = cancelled
    app.add_middleware(BodyLimit, max_bytes=int(settings.max_body_mb * 2**20))

    def err(status: int, message: str, type: str | None = None, code: str | None = None, param: str | None = None):
        return JSONResponse(
            error_body(message, type or type_for(status), code or default_code(status), param), status_code=status
        )

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, e: ApiError) -> Any:
        return err(e.status, e.message, e.type, e.code, e.param)

    @app.exception_handler(MediaInputError)
    async def _media_error(_: Request, e: MediaInputError) -> Any:
        # 415 makes the OpenAI SDK raise a bare APIStatusError; a 400 with a code is a BadRequestError
        status = 400 if e.status == 415 else e.status
        return err(status, e.message, None, e.code, e.param)

    @app.exception_handler(ChatInputError)
    async def _chat_error(_: Request, e: ChatInputError) -> Any:
        return err(400, str(e), None, e.code)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, e: RequestValidationError) -> Any:
        a = validation_error(list(e.errors()))
        return err(a.status, a.message, a.type, a.code, a.param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, e: StarletteHTTPException) -> Any:
        return err(e.status_code, str(e.detail), None, default_code(e.status_code))

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
        return {
            "status": "ok",
            "model": settings.model_id,
            "queue": worker.pending,
            "cancelled": dict(app.state.cancelled),
        }

    def model_card() -> dict[str, Any]:
        sysm = predictor.system
        trained = bool(getattr(sysm, "trained", False))
        return {
            "id": settings.model_id,
            "object": "model",
            "created": created,
            "owned_by": "emollm",
            "emollm": {
                "trained": trained,
                "source": str(getattr(sysm, "source", "")),
                "note": None
                if trained
                else "untrained: a preset's projectors and LoRA are random, so its answers are noise "
                "(train one with `make demo` or serve a checkpoint)",
                "modalities": list(sysm.modalities),
                "labels": list(sysm.labels.labels),
                "label_space": sysm.labels.name,
                "tasks": list(TASKS),
                "max_new_tokens": settings.max_new_tokens,
                "max_seconds": settings.max_seconds,
                "max_messages": settings.max_messages,
                "max_length": int(sysm.processor.max_length),
                "generation": settings.generation.model_dump(),
            },
        }

    @app.get("/v1/models")
    async def models() -> Any:
        return {"object": "list", "data": [model_card()]}

    @app.get("/v1/models/{model_id:path}")
    async def get_model(model_id: str) -> Any:
        if model_id != settings.model_id:
            raise ApiError(
                404,
                f"model {model_id!r} does not exist; this server serves {settings.model_id!r}",
                code="model_not_found",
                param="model",
            )
        return model_card()

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
    async def list_files(
        limit: int = Query(20, ge=1, le=10000),
        after: str | None = Query(None),
        order: str = Query("desc", pattern="^(asc|desc)$"),
        purpose: str | None = Query(None),
    ) -> Any:
        files = [f.describe() for f in store.list()]
        files.sort(key=lambda d: (d.get("created_at", 0), d["id"]), reverse=order == "desc")
        if purpose:
            files = [d for d in files if d.get("purpose") == purpose]
        if after is not None:
            ids = [d["id"] for d in files]
            if after not in ids:
                raise ApiError(404, f"after: no file {after!r}", code="file_not_found", param="after")
            files = files[ids.index(after) + 1 :]
        page = files[:limit]
        return {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(files) > limit,
        }

    @app.get("/v1/files/{fid}")
    async def get_file(fid: str) -> Any:
        return store.get(fid).describe()

    @app.delete("/v1/files/{fid}")
    async def delete_file(fid: str) -> Any:
        f = store.delete(fid)
        return {"id": f.id, "object": "file", "deleted": True}

    @app.post("/v1/chat/completions")
    async def chat_completions(req: ChatRequest, request: Request) -> Any:
        if req.model is not None and req.model != settings.model_id:
            raise ApiError(
                404,
                f"model {req.model!r} does not exist; this server serves {settings.model_id!r}",
                code="model_not_found",
                param="model",
            )
        check_supported(req)
        opts = req.emollm or EmollmOptions()
        task = task_of(req, default_task)
        json_mode = req.response_format is not None and req.response_format.type != "text"
        if json_mode and task == "label":
            task = "explain"  # the JSON answer carries an explanation; its label is read from it
        gen = decoding_options(req, settings.generation, settings.max_new_tokens)
        prepared = parse_messages(req, settings.max_messages)
        token = CancelToken(settings.max_request_seconds)

        async def guarded(fn: Callable[..., Any], *args: Any) -> Any:
            return await run_job(worker, request, token, fn, *args)

        ws = MediaWorkspace(work / "requests")
        try:
            await run_in_threadpool(materialize, prepared, ws, store, settings.media_root, settings.max_seconds)
            session, turn = await guarded(_build_session, predictor, prepared, task, opts, token)
        finally:
            ws.close()  # features are computed; the decoded files are no longer needed
        cid = "chatcmpl-" + uuid.uuid4().hex
        now = int(time.time())
        want_probs = opts.probs or json_mode
        top = req.top_logprobs or 0
        tokenizer = predictor.system.processor.tok
        stop_ids = list(predictor.system.processor.stop_ids)
        space = predictor.system.labels

        def answer(on_text: Callable[[str], None] | None = None) -> tuple[Reply, list[dict[str, Any]] | None]:
            kw = gen.generate_kwargs()
            if gen.seed is not None and gen.do_sample:
                torch.manual_seed(gen.seed)
            recorder = _LogprobRecorder() if req.logprobs and task != "label" else None
            if recorder is not None:
                kw["logits_processor"] = LogitsProcessorList([recorder])
            filt = StopFilter(gen.stop)

            def deliver(delta: str) -> None:
                out = filt.feed(delta)
                if filt.hit:
                    token.cancel("stop")  # the answer is complete: stop generating
                if out and on_text is not None:
                    on_text(out)

            use_stream = on_text is not None or bool(gen.stop)
            reply = session.ask(
                turn=turn, probs=want_probs, on_text=deliver if use_stream else None, cancel=token, **kw
            )
            if token.reason not in (None, "stop"):
                raise JobCancelled(token.reason)
            tail = filt.flush()
            if tail and on_text is not None:
                on_text(tail)
            if gen.stop:
                reply.text, found = cut_at_stop(reply.text, gen.stop)
                if found:
                    reply.finish_reason = "stop"
            if reply.finish_reason == "cancelled":
                reply.finish_reason = "stop"
            lp = None
            if req.logprobs:
                if task == "label" and reply.probs:
                    lp = label_logprobs(reply.text, reply.probs, top)
                elif recorder is not None:
                    lp = logprobs_content(
                        tokenizer, recorder.steps(tokenizer, reply.text, not gen.do_sample), top, stop_ids
                    )
                    if gen.stop:  # keep the entries of the text that was returned
                        n, acc = 0, ""
                        for e in lp:
                            if len(acc) >= len(reply.text):
                                break
                            acc += e["token"]
                            n += 1
                        lp = lp[:n]
            return reply, lp

        def content_of(reply: Reply) -> str:
            return json_answer(reply, space) if json_mode else reply.text

        def ext_of(reply: Reply) -> dict[str, Any]:
            return completion_ext(reply, opts.probs or reply.task == "label", space)

        if not req.stream:
            reply, lp = await guarded(answer)
            choice: dict[str, Any] = {
                "index": 0,
                "message": {"role": "assistant", "content": content_of(reply)},
                "finish_reason": reply.finish_reason,
                "logprobs": {"content": lp} if lp is not None else None,
            }
            return {
                "id": cid,
                "object": "chat.completion",
                "created": now,
                "model": settings.model_id,
                "choices": [choice],
                "usage": usage(reply),
                "emollm": ext_of(reply),
            }

        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

        def push(kind: str, text: str = "") -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (kind, text))

        fut = worker.submit(answer, None if json_mode else (lambda d: push("delta", d)), token=token)
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
            finished = False
            try:
                yield sse(chunk({"role": "assistant", "content": ""}))
                while True:
                    kind, text = await queue.get()
                    if kind == "done":
                        break
                    yield sse(chunk({"content": text}))
                try:
                    reply, lp = fut.result()
                except JobCancelled:
                    e = token.error()
                    yield sse(error_body(e.message, e.type, e.code))
                    yield "data: [DONE]\n\n"
                    return
                except Exception as e:  # noqa: BLE001 - headers are sent: report in-band, like OpenAI
                    log.exception("streaming generation failed")
                    code = getattr(e, "code", None) or "internal_error"
                    yield sse(error_body(f"{type(e).__name__}: {e}", "server_error", code))
                    yield "data: [DONE]\n\n"
                    return
                if json_mode:
                    yield sse(chunk({"content": content_of(reply)}))
                last = chunk({}, reply.finish_reason, emollm=ext_of(reply))
                if lp is not None:
                    last["choices"][0]["logprobs"] = {"content": lp}
                yield sse(last)
                if include_usage:
                    u = chunk({}, None, usage=usage(reply))
                    u["choices"] = []
                    yield sse(u)
                yield "data: [DONE]\n\n"
                finished = True
            finally:
                if not finished:  # the client went away (or the server stops): stop generating
                    token.cancel("disconnected")

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    return app


def _build_session(
    predictor: Any, prepared: Prepared, task: str, opts: EmollmOptions, token: CancelToken | None = None
) -> tuple[ChatSession, Any]:
    """Replay the request's history into a fresh session and encode the new turn's media (model thread).
    ``token`` is checked between turns (client gone, compute time spent)."""
    session = ChatSession(predictor, task=task, include_subtitle=opts.include_subtitle, system=prepared.system)
    for i, t in enumerate(prepared.turns):
        if token is not None:
            token.check()
        for kind, p in t.paths.items():
            session.attach(kind, p)
        if t.subtitle is not None:
            session.set_subtitle(t.subtitle)
        if i < len(prepared.turns) - 1:
            session.add_exchange(t.text, t.answer or "", t.task)
    last = prepared.turns[-1]
    turn = session.prepare_turn(last.text, last.task)
    if token is not None:
        token.check()
    return session, turn


def serve(predictor: Any, settings: ServeSettings, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the server in the foreground (Ctrl-C / SIGTERM stop it, cancelling running generations)."""
    app = create_app(predictor, settings)
    log.info("serving %s on http://%s:%d (web demo at /)", settings.model_id, host, port)
    if not getattr(predictor.system, "trained", True):
        log.warning(
            "%s is untrained (random projectors and LoRA): its answers are noise; train one with `make demo`",
            settings.model_id,
        )
    run_server(app, host, port)
