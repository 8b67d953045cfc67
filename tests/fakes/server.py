"""`FakeUpstream`: a real aiohttp server on 127.0.0.1 that speaks one provider's wire protocol.

It runs in its own thread with its own event loop, so sync and async tests alike can use it.
Base URLs (`fake.url`), as a gateway provider's `base_url`:

    openai     http://127.0.0.1:PORT/v1       (+ /chat/completions, /embeddings, ...)
    anthropic  http://127.0.0.1:PORT          (+ /v1/messages)
    gemini     http://127.0.0.1:PORT/v1beta   (+ /models/{model}:generateContent)
    azure      http://127.0.0.1:PORT/openai   (+ /deployments/{d}/chat/completions or /v1/...)

Behaviour per request: the next scripted `Fault` of the request's model, else of the wildcard
model "*", else the `always` fault of the model (or of "*"), else `Fault.ok()`. With
`api_key=` set, a request without that key gets `Fault.invalid_key()` and consumes no script.
`Seen.outcome` is the served fault's kind ("ok", "status", "rate_limited", "cut", ...);
"not_found" for a path the protocol does not serve.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable
from types import TracebackType
from typing import Any

import msgspec
from aiohttp import web

from fakes import inbound, media, transport
from fakes.anthropic_strict import request_problem
from fakes.anthropic_wire import AnthropicMessages, invalid
from fakes.anthropic_wire import count_tokens as anthropic_count
from fakes.cassettes import RECORDED
from fakes.faults import Fault
from fakes.frames import Answer, Ctx, Dialect, Stream, seal
from fakes.gemini_wire import GeminiGenerate
from fakes.inbound import Route, Seen
from fakes.openai_wire import OpenAIChat

DIALECTS: dict[str, Dialect] = {
    "openai": OpenAIChat(),
    "azure": OpenAIChat(azure=True),
    "anthropic": AnthropicMessages(),
    "gemini": GeminiGenerate(),
}
_PREFIX = {"openai": "/v1", "anthropic": "", "gemini": "/v1beta", "azure": "/openai"}
DEFAULT_MODELS = (
    "gpt-4o-mini",
    "gpt-4o",
    "text-embedding-3-small",
    "gpt-image-1",
    "tts-1",
    "whisper-1",
)
_ERRORS = frozenset(
    {"status", "rate_limited", "overloaded", "context_length", "content_policy", "invalid_key"}
)
_MEDIA = {
    "embeddings": media.embeddings,
    "images": media.images,
    "speech": media.speech,
    "transcriptions": media.transcription,
}


class FakeUpstream:
    """A scriptable fake of one LLM provider, served over real loopback HTTP."""

    def __init__(
        self,
        protocol: str,
        *,
        api_key: str | None = None,
        models: Iterable[str] = DEFAULT_MODELS,
        strict: bool = True,
    ) -> None:
        if protocol not in DIALECTS:
            raise ValueError(f"unknown protocol {protocol!r}; one of {sorted(DIALECTS)}")
        self.protocol = protocol
        self.api_key = api_key
        self.strict = strict  # anthropic: refuse bodies the real API refuses (anthropic_strict)
        self.models = list(models)
        self._dialect = DIALECTS[protocol]
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[Fault]] = {}
        self._always: dict[str, Fault] = {}
        self._seen: list[Seen] = []
        self._gone: list[str | None] = []  # models whose caller disconnected mid-answer
        self._model_of: dict[asyncio.Task[Any] | None, str | None] = {}  # handler -> model
        self._seq = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return self.origin + _PREFIX[self.protocol]

    def start(self) -> FakeUpstream:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=loop.run_forever, name=f"fake-{self.protocol}", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._open(sock), loop).result(10)
        return self

    async def _open(self, sock: socket.socket) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        self._loop = self._thread = None

    async def _close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        await asyncio.get_running_loop().shutdown_asyncgens()

    def __enter__(self) -> FakeUpstream:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- scripting and inspection -------------------------------------------------------------

    def script(self, model: str, *faults: Fault) -> FakeUpstream:
        """Queue behaviours for `model` ("*": any model), consumed one per request."""
        with self._lock:
            self._scripts.setdefault(model, deque()).extend(faults)
        return self

    def always(self, model: str, fault: Fault) -> FakeUpstream:
        """What `model` does once its script is used up (instead of `Fault.ok()`)."""
        with self._lock:
            self._always[model] = fault
        return self

    def reset(self) -> None:
        with self._lock:
            self._scripts.clear()
            self._always.clear()
            self._seen.clear()

    @property
    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    @property
    def disconnected(self) -> list[str | None]:
        """The models of requests whose client closed the connection before the answer ended."""
        with self._lock:
            return list(self._gone)

    def seen_for(self, model: str) -> list[Seen]:
        return [s for s in self.seen if s.model == model]

    def pending(self, model: str) -> int:
        """How many scripted faults `model` has not consumed yet."""
        with self._lock:
            return len(self._scripts.get(model, ()))

    def _take(self, model: str | None) -> Fault:
        with self._lock:
            for key in (model or "", "*"):
                queue = self._scripts.get(key)
                if queue:
                    return queue.popleft()
            return self._always.get(model or "") or self._always.get("*") or Fault.ok()

    # -- serving ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            return await self._serve(request, time.monotonic())
        except asyncio.CancelledError:  # aiohttp cancels a handler whose client disconnected
            with self._lock:
                self._gone.append(self._model_of.get(task))
            raise
        finally:
            self._model_of.pop(task, None)
            self._tasks.discard(task)

    async def _serve(self, request: web.Request, arrived: float) -> web.StreamResponse:
        route = inbound.resolve(self.protocol, request.method, request.path)
        body = await inbound.read_body(request)
        if route is None or route.endpoint in ("models", "file"):
            self._record(
                request, arrived, route, body, None, "not_found" if route is None else "ok"
            )
            return await self._static(route)
        model = inbound.model_of(route, body)
        self._model_of[asyncio.current_task()] = model
        if self.api_key is not None and inbound.api_key_of(self.protocol, request) != self.api_key:
            fault = Fault.invalid_key()
        else:
            fault = self._take(model)
        seen = self._record(request, arrived, route, body, model, fault.kind)
        ctx = Ctx(
            model=model or "",
            stream=seen.stream,
            body=body,
            seq=next(self._seq),
            base_url=self.origin,
        )
        answer = self._answer(route, fault, ctx, request)
        broken = (
            self._dialect.malformed if fault.kind == "malformed" else self._dialect.stream_error
        )
        return await transport.serve(request, fault, answer, broken(ctx))

    def _record(
        self,
        request: web.Request,
        arrived: float,
        route: Route | None,
        body: Any,
        model: str | None,
        outcome: str,
    ) -> Seen:
        seen = Seen(
            t=arrived,
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers={k.lower(): v for k, v in request.headers.items()},
            model=model,
            stream=route is not None and inbound.wants_stream(route, body),
            body=body,
            outcome=outcome,
        )
        with self._lock:
            self._seen.append(seen)
        return seen

    def _answer(self, route: Route, fault: Fault, ctx: Ctx, request: web.Request) -> Answer | None:
        if fault.kind in ("reset", "silent"):
            return None
        if fault.kind in _ERRORS:
            return self._dialect.error(fault, ctx)
        if self.protocol == "gemini" and ctx.stream and request.query.get("alt") != "sse":
            return self._dialect.error(Fault.status(400), ctx)  # the fake streams only SSE
        if route.endpoint == "chat" and self.strict and self.protocol == "anthropic":
            problem = request_problem(ctx.body)
            if problem is not None:
                return invalid(ctx, problem)
        if route.endpoint == "chat":
            reply = fault.reply
            if not reply.recorded and reply.text is None and reply.tool_call is None:
                reply = msgspec.structs.replace(reply, text=RECORDED[self.protocol].text)
            answer = self._dialect.chat(reply, ctx)
        elif route.endpoint == "count_tokens":
            answer = anthropic_count(ctx)
        else:
            answer = _MEDIA[route.endpoint](fault.reply, ctx)
        if isinstance(answer, Stream):
            return Stream(
                content_type=answer.content_type, frames=seal(answer.frames), headers=answer.headers
            )
        return answer

    async def _static(self, route: Route | None) -> web.StreamResponse:
        if route is None:
            return web.json_response(
                {"error": {"message": "Not found", "type": "invalid_request_error"}}, status=404
            )
        answer = media.models(self.models) if route.endpoint == "models" else media.image_file()
        return web.Response(
            body=answer.body, status=answer.status, content_type=answer.content_type
        )
