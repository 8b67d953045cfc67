"""The only place that touches aiohttp: one pooled session, SSE byte parsing, timeouts.

Transport failures become classified `UpstreamError`s here; HTTP error statuses are handed
to the protocol's `classify`. Streams come back as batches of canonical events, one batch per
network read, so a burst of upstream events costs one trip through the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Protocol

import aiohttp
import msgspec

from router.config import Timeouts
from router.core.media import Upload
from router.core.types import Event
from router.errors import Failure, UpstreamError

SseEvent = tuple[str | None, bytes]
Classify = Callable[[int, Mapping[str, str], bytes], UpstreamError]


class HttpCall(msgspec.Struct, frozen=True):
    """A ready-to-send upstream request (what a codec builds, as httpx's `Request`)."""

    url: str
    headers: Mapping[str, str]
    body: bytes


class StreamDecoder(Protocol):
    """Stateful decoder for one upstream stream; `feed` gets one SSE event at a time."""

    done: bool  # the protocol's own end marker was seen

    def feed(self, event: str | None, data: bytes) -> list[Event]:
        """Canonical events for one SSE event. Raises UpstreamError for in-band errors and
        malformed data."""
        ...


class Decoding(Protocol):
    """What the transport needs from a wire codec to read an answer."""

    def parse_response(self, body: bytes) -> list[Event]: ...

    def stream_decoder(self) -> StreamDecoder: ...

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError: ...


def current_task() -> asyncio.Task[object]:
    task = asyncio.current_task()
    assert task is not None, "called outside a task"
    return task


def split_sse(buffer: bytes) -> tuple[list[SseEvent], bytes]:
    """Complete SSE events in `buffer` as (event name, data), and the unfinished rest."""
    if b"\r" in buffer:
        buffer = buffer.replace(b"\r\n", b"\n")
    *blocks, rest = buffer.split(b"\n\n")
    events: list[SseEvent] = []
    for block in blocks:
        if block.startswith(b"data: ") and b"\n" not in block:
            events.append((None, block[6:]))  # the common one-line case
        elif block:
            parsed = _parse_block(block)
            if parsed is not None:
                events.append(parsed)
    return events, rest


def _parse_block(block: bytes) -> SseEvent | None:
    name: str | None = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        field, _, value = line.partition(b":")
        value = value[1:] if value.startswith(b" ") else value
        if field == b"data":
            data.append(value)
        elif field == b"event":
            name = value.decode()
    if not data:
        return None
    return name, b"\n".join(data)


class _Watchdog:
    """First-token and stall timeouts for one stream with a single timer (one `call_at`),
    re-armed when it fires and once when the first content comes (the stall limit may be
    shorter than the first-token one): a read costs one float store, not a reschedule."""

    __slots__ = ("fired", "handle", "idle", "last", "loop", "task", "yielded")

    def __init__(self, loop: asyncio.AbstractEventLoop, first_token: float, idle: float) -> None:
        self.loop = loop
        self.task = asyncio.current_task()  # the task to interrupt when the upstream is late
        self.idle = idle
        self.last: float | None = None  # None until the first content arrives
        self.yielded = False  # the consumer holds a batch: its slowness is not the upstream's
        self.fired: Failure | None = None
        self.handle = loop.call_at(loop.time() + first_token, self._check)

    def _check(self) -> None:
        if self.yielded:
            self.handle = self.loop.call_at(self.loop.time() + self.idle, self._check)
            return
        if self.last is not None:
            due = self.last + self.idle
            if due > self.loop.time():
                self.handle = self.loop.call_at(due, self._check)
                return
        self.fired = Failure.FIRST_TOKEN_TIMEOUT if self.last is None else Failure.STALL
        if self.task is not None:
            self.task.cancel()

    def content(self) -> None:
        """The first content came: from now on the stall limit applies."""
        self.handle.cancel()
        self.handle = self.loop.call_at(self.loop.time() + self.idle, self._check)

    def close(self) -> None:
        self.handle.cancel()


class Upstream:
    """Sends `HttpCall`s over one pooled aiohttp session owned by the app's lifespan."""

    def __init__(self, session: aiohttp.ClientSession, timeouts: Timeouts) -> None:
        self.session = session
        self.timeouts = timeouts
        self._json_timeout = aiohttp.ClientTimeout(
            total=timeouts.response, connect=timeouts.connect
        )
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, connect=timeouts.connect, sock_read=None
        )

    @classmethod
    def create(cls, timeouts: Timeouts, limit: int = 0) -> Upstream:
        """`limit`: connections open at once, all providers together (0: no limit of the pool's
        own; the worker's `max_inflight` and open-file limit bound it, see
        docs/performance.md); none per host: one provider may take them all."""
        connector = aiohttp.TCPConnector(
            limit=limit, limit_per_host=0, keepalive_timeout=60, ttl_dns_cache=300
        )
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
        )
        return cls(session, timeouts)

    async def close(self) -> None:
        await self.session.close()

    async def upload(
        self,
        url: str,
        headers: Mapping[str, str],
        fields: list[tuple[str, str]],
        upload: Upload,
        timeout: float | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """A multipart/form-data POST of `fields` and then the file, read from its spool a
        chunk at a time (never whole into memory), from the start: a retry or a fallback
        sends the same file again. Every part is sized, so the request has a Content-Length."""
        form = aiohttp.MultipartWriter("form-data")
        for name, value in fields:
            form.append(value).set_content_disposition("form-data", name=name)
        form.append_payload(_Spool(upload)).set_content_disposition(
            "form-data", name="file", filename=upload.filename
        )
        return await self._send("POST", url, form, headers, timeout)

    async def _send(
        self,
        method: str,
        url: str,
        data: Any,
        headers: Mapping[str, str],
        timeout: float | None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One request read whole: (status, headers, body); transport failures classified."""
        client_timeout = (
            self._json_timeout  # built once: the usual case, the deadline is further away
            if timeout is None or timeout >= self.timeouts.response
            else aiohttp.ClientTimeout(total=timeout, connect=self.timeouts.connect)
        )
        try:
            async with self.session.request(
                method, url, data=data, headers=headers, timeout=client_timeout
            ) as resp:
                return resp.status, resp.headers, await resp.read()
        except aiohttp.ClientError as exc:
            raise _transport_error(exc, started=False) from None
        except TimeoutError:
            raise UpstreamError(Failure.TIMEOUT, "upstream did not answer in time") from None

    async def open_bytes(
        self, classify: Classify, call: HttpCall, timeout: float | None = None
    ) -> tuple[str, AsyncGenerator[bytes, None]]:
        """A POST whose answer is relayed as it arrives (audio): (content type, chunks).
        Errors before the body are raised classified; `timeout` bounds the wait for the
        headers and `stream_idle` every read after them."""
        client_timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self.timeouts.connect,
            sock_read=min(self.timeouts.stream_idle, timeout or self.timeouts.stream_idle),
        )
        try:
            resp = await self.session.post(
                call.url, data=call.body, headers=call.headers, timeout=client_timeout
            )
        except aiohttp.ClientError as exc:
            raise _transport_error(exc, started=False) from None
        except TimeoutError:
            raise UpstreamError(Failure.TIMEOUT, "upstream did not answer in time") from None
        if resp.status >= 400:
            try:
                body = await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                body = b""
            finally:
                resp.release()
            raise classify(resp.status, resp.headers, body)
        content_type = resp.headers.get("Content-Type", "application/octet-stream")
        return content_type, _relay(resp)

    async def request(
        self, method: str, call: HttpCall, timeout: float | None = None
    ) -> tuple[int, Mapping[str, str], bytes]:
        """One plain request: (status, headers, body); transport failures raised classified."""
        return await self._send(method, call.url, call.body, call.headers, timeout)

    async def complete(
        self, codec: Decoding, call: HttpCall, timeout: float | None = None
    ) -> list[Event]:
        status, headers, body = await self.request("POST", call, timeout)
        if status >= 400:
            raise codec.classify(status, headers, body)
        return codec.parse_response(body)

    async def stream(
        self, codec: Decoding, call: HttpCall, first_token: float, stall: float | None = None
    ) -> AsyncGenerator[list[Event], None]:
        """Batches of canonical events; raises classified errors, including timeouts: no
        first content within `first_token` seconds, then silence for `stall` seconds (a
        learned limit) or `timeouts.stream_idle`, whichever is shorter."""
        idle, learned = self.timeouts.stream_idle, False
        if stall is not None and stall < idle:
            idle, learned = stall, True
        watchdog = _Watchdog(asyncio.get_running_loop(), first_token, idle)
        try:
            async with self.session.post(
                call.url, data=call.body, headers=call.headers, timeout=self._stream_timeout
            ) as resp:
                if resp.status >= 400:
                    raise codec.classify(resp.status, resp.headers, await resp.read())
                async for batch in _decode_stream(resp, codec.stream_decoder(), watchdog):
                    yield batch
        except asyncio.CancelledError:
            if watchdog.fired is None:
                raise
            current_task().uncancel()
            message = _TIMEOUT_MESSAGES[watchdog.fired]
            if learned and watchdog.fired is Failure.STALL:
                message = f"the stream stalled: no data for {watchdog.idle:.1f}s (learned limit)"
            raise UpstreamError(watchdog.fired, message) from None
        except aiohttp.ClientError as exc:
            raise _transport_error(exc, started=watchdog.last is not None) from None
        finally:
            watchdog.close()


_TIMEOUT_MESSAGES = {
    Failure.FIRST_TOKEN_TIMEOUT: "no first token within the first-token timeout",
    Failure.STALL: "the stream stalled: no data within the idle timeout",
}


async def _decode_stream(
    resp: aiohttp.ClientResponse, decoder: StreamDecoder, watchdog: _Watchdog
) -> AsyncIterator[list[Event]]:
    buffer = b""
    clock = watchdog.loop.time
    async for chunk in resp.content.iter_any():
        if watchdog.last is not None:
            watchdog.last = clock()
        events, buffer = split_sse(buffer + chunk) if buffer else split_sse(chunk)
        batch: list[Event] = []
        try:
            for name, data in events:
                batch.extend(decoder.feed(name, data))
        except UpstreamError:
            if batch:  # what came before the error in the same read is the answer's too
                watchdog.yielded = True
                yield batch
            raise
        if batch:
            if watchdog.last is None:
                watchdog.content()
            watchdog.yielded = True
            yield batch
            watchdog.yielded = False
            watchdog.task = asyncio.current_task()  # the consumer may resume us from another task
            watchdog.last = clock()
        if decoder.done:
            return


class _Spool(aiohttp.payload.Payload):
    """An upload's spool as a sized payload, read off the event loop in chunks and left open:
    aiohttp closes what it is handed, and a retry needs the file again."""

    _autoclose = True  # nothing here for aiohttp to close

    def __init__(self, upload: Upload) -> None:
        super().__init__(upload.file, content_type=upload.content_type)
        self._size = upload.size

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("an uploaded file is not text")

    async def write(self, writer: Any) -> None:
        file = self._value
        await asyncio.to_thread(file.seek, 0)
        while chunk := await asyncio.to_thread(file.read, 256 * 1024):
            await writer.write(chunk)


async def _relay(resp: aiohttp.ClientResponse) -> AsyncGenerator[bytes, None]:
    """The body of an open response as it arrives; the connection is released at the end,
    on failure, and when the consumer stops early (`aclose`)."""
    try:
        async for chunk in resp.content.iter_any():
            yield chunk
    except aiohttp.ClientError as exc:
        raise _transport_error(exc, started=True) from None
    except TimeoutError:
        raise UpstreamError(Failure.STALL, "the upstream stopped sending audio") from None
    finally:
        resp.release()


def _transport_error(exc: aiohttp.ClientError, *, started: bool) -> UpstreamError:
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return UpstreamError(Failure.TIMEOUT, "upstream did not answer in time")
    if isinstance(exc, aiohttp.ClientPayloadError) or started:
        return UpstreamError(Failure.CUT, "the upstream connection broke mid-response")
    # Never the host, port or OS message: they would show internal addresses to clients.
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamError(Failure.CONNECT, "cannot connect to the provider")
    return UpstreamError(Failure.CONNECT, f"provider connection failed ({type(exc).__name__})")


def retry_after_seconds(headers: Mapping[str, Any]) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date)."""
    ms = headers.get("retry-after-ms")
    if ms is not None:
        with contextlib.suppress(ValueError):
            return max(0.0, float(ms) / 1000)
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
