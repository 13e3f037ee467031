"""The ASGI plumbing under the server: body-size middleware, the single model worker with its queue,
per-request cancellation (client disconnect, compute-time bound, shutdown) and uvicorn runners.

    worker = ModelWorker(max_queue=16)
    token = CancelToken(max_seconds=120)                    # the compute bound starts when the job runs
    result = await run_job(worker, request, token, fn, x)  # cancelled when the client goes away
    with BackgroundServer(app) as url: ...                  # uvicorn in a thread on a free loopback port
    run_server(app, host, port)                             # foreground; SIGTERM cancels running jobs first

A ``CancelToken`` is a ``threading.Event`` whose ``is_set()`` also turns true past its deadline, so the
chat session's stopping criterion (which checks ``is_set()`` after every generated token) stops a
generation for any of the three reasons; long replays check it between turns (``token.check()``).
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.exceptions import HTTPException as StarletteHTTPException

from emollm.inference.openai_api import ApiError, error_body
from emollm.log import get_logger

log = get_logger(__name__)
T = TypeVar("T")


# ------------------------------------------------------------------------------------------ cancellation


class JobCancelled(Exception):
    """A model job stopped by its token (``reason``: disconnected | timeout | shutdown | stop)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CancelToken(threading.Event):
    """Set on client disconnect or shutdown; also set once ``max_seconds`` of compute have passed since
    ``start()`` (the first job of the request began)."""

    def __init__(self, max_seconds: float | None = None) -> None:
        super().__init__()
        self.max_seconds = max_seconds
        self.deadline: float | None = None
        self.reason: str | None = None

    def start(self) -> None:
        if self.deadline is None and self.max_seconds is not None:
            self.deadline = time.monotonic() + self.max_seconds

    def cancel(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason
        self.set()

    def is_set(self) -> bool:
        if super().is_set():
            return True
        if self.deadline is not None and time.monotonic() > self.deadline:
            self.cancel("timeout")
            return True
        return False

    def check(self) -> None:
        """Raise ``JobCancelled`` when cancelled (for loops between model calls)."""
        if self.is_set():
            raise JobCancelled(self.reason or "cancelled")

    def error(self) -> ApiError:
        """What a cancelled request answers (the client is usually gone for ``disconnected``)."""
        if self.reason == "timeout":
            return ApiError(
                400,
                f"the request needed more than {self.max_seconds:g} s of model time (--max-request-seconds); "
                "send a shorter history or ask for fewer max_tokens",
                code="compute_time_exceeded",
            )
        if self.reason == "shutdown":
            return ApiError(503, "the server is shutting down", code="server_shutting_down")
        return ApiError(499, "the client closed the request", code="client_closed_request")


# ------------------------------------------------------------------------------------------ model worker


class ModelWorker:
    """Runs all model work one job at a time on a dedicated thread; refuses jobs past ``max_queue``.

    Jobs carry a ``CancelToken``: a job whose token is already set when its turn comes is skipped, and
    ``cancel_all`` (shutdown) sets every live token so running generations stop at the next token.
    """

    def __init__(self, max_queue: int, on_cancel: Callable[[str], None] | None = None) -> None:
        self.on_cancel = on_cancel
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="emollm-model")
        self._lock = threading.Lock()
        self._tokens: set[CancelToken] = set()
        self.pending = 0
        self.max_queue = max_queue
        self.closing = False

    def submit(self, fn: Callable[..., T], *args: Any, token: CancelToken | None = None, **kw: Any) -> Future[T]:
        with self._lock:
            if self.closing:
                raise ApiError(503, "the server is shutting down", code="server_shutting_down")
            if self.pending >= self.max_queue:
                raise ApiError(503, "the server is busy; retry later", type="server_error", code="server_busy")
            self.pending += 1
            if token is not None:
                self._tokens.add(token)

        def job() -> T:
            try:
                if token is not None:
                    token.check()  # the client left (or time ran out) while queued: skip the work
                    token.start()
                return fn(*args, **kw)
            except JobCancelled as e:
                if self.on_cancel is not None:
                    self.on_cancel(e.reason)
                raise

        fut = self._pool.submit(job)
        fut.add_done_callback(lambda _: self._done(token))
        return fut

    def _done(self, token: CancelToken | None) -> None:
        with self._lock:
            self.pending -= 1
            if token is not None:
                self._tokens.discard(token)

    async def run(self, fn: Callable[..., T], *args: Any, token: CancelToken | None = None, **kw: Any) -> T:
        return await asyncio.wrap_future(self.submit(fn, *args, token=token, **kw))

    def cancel_all(self, reason: str = "shutdown") -> None:
        with self._lock:
            self.closing = True
            tokens = list(self._tokens)
        for t in tokens:
            t.cancel(reason)

    def shutdown(self) -> None:
        self.cancel_all("shutdown")
        self._pool.shutdown(wait=True, cancel_futures=True)


async def watch_disconnect(request: Any, token: CancelToken, interval: float = 0.1) -> None:
    """Set ``token`` when the client of ``request`` disconnects (runs until cancelled)."""
    while not token.is_set():
        if await request.is_disconnected():
            token.cancel("disconnected")
            return
        await asyncio.sleep(interval)


async def run_job(worker: ModelWorker, request: Any, token: CancelToken, fn: Callable[..., T], *args: Any) -> T:
    """Run ``fn`` on the model worker while watching for the client going away; a cancelled job raises
    the token's ``ApiError`` (compute time exceeded, shutting down, client gone)."""
    fut = worker.submit(fn, *args, token=token)
    watcher = asyncio.create_task(watch_disconnect(request, token))
    try:
        return await asyncio.wrap_future(fut)
    except JobCancelled:
        raise token.error() from None
    except asyncio.CancelledError:  # uvicorn cancels handlers when a graceful shutdown times out
        token.cancel("shutdown")
        raise
    finally:
        watcher.cancel()


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


# ------------------------------------------------------------------------------------------ running


def _uvicorn_server(app: Any, **config: Any) -> Any:
    """A ``uvicorn.Server`` whose exit signal (SIGTERM, Ctrl-C) first cancels the running model jobs, so a
    long generation stops at its next token and shutdown never waits on it."""
    import uvicorn

    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            worker = getattr(getattr(app, "state", None), "worker", None)
            if worker is not None:
                worker.cancel_all("shutdown")
            super().handle_exit(sig, frame)

    config.setdefault("timeout_graceful_shutdown", 10)
    return _Server(uvicorn.Config(app, **config))


class BackgroundServer:
    """uvicorn serving ``app`` in a daemon thread on a free loopback port: ``with BackgroundServer(app) as url``."""

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> None:
        self.app, self.host, self.port, self.log_level = app, host, port, log_level
        self.url = ""

    def __enter__(self) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self.server = _uvicorn_server(self.app, log_level=self.log_level, lifespan="on")
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
        self.server.handle_exit(signal.SIGTERM, None)
        self.thread.join(timeout=30)


def run_server(app: Any, host: str, port: int, log_level: str = "info") -> None:
    """Serve ``app`` in the foreground until SIGTERM / Ctrl-C (running generations are cancelled)."""
    _uvicorn_server(app, host=host, port=port, log_level=log_level, timeout_keep_alive=30).run()
