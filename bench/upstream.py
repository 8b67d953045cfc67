"""A fast fake OpenAI upstream: raw asyncio + httptools, pre-encoded responses, keep-alive.

It shares a core with the gateway under test, so it must cost as little as possible: every
response is encoded once at start-up, and a request is answered straight from the parser's
callback. `POST /v1/chat/completions` answers a `chat.completion`, or with `"stream": true`
a `chat.completion.chunk` SSE stream (one chunk per text token, then a finish chunk, a usage
chunk and `[DONE]`), shaped like OpenAI's recorded traffic. `POST /v1/responses` answers the
same words as a Responses API `response` or event stream (bench/upstream_responses.py).
`GET /stats` counts requests.

Run: python -m bench.upstream --port 9000 [--chunks 20] [--chunk-delay-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any, cast

import httptools

from bench import upstream_responses
from bench.procs import raise_nofile
from bench.stamped import StampedStream, slow_request

MODEL = "gpt-4o-mini-2024-07-18"
COMPLETION_ID = "chatcmpl-BenchBenchBenchBenchBenchBench"
CREATED = 1_760_000_000
# The first token is what the load generator looks for to time the first token.
FIRST_TOKEN = "Hello"
TOKENS = (
    FIRST_TOKEN,
    "!",
    " I",
    " am",
    " a",
    " fast",
    " fake",
    " upstream",
    ",",
    " answering",
    " every",
    " request",
    " with",
    " the",
    " same",
    " words",
    ",",
    " so",
    " that",
    " only",
    " the",
    " gateway",
    "'s",
    " own",
    " cost",
    " differs",
    ".",
)
PROMPT_TOKENS = 8


def tokens(count: int) -> list[str]:
    """`count` text pieces of an answer, the first being FIRST_TOKEN."""
    return [TOKENS[i % len(TOKENS)] for i in range(count)]


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _usage(completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": PROMPT_TOKENS,
        "completion_tokens": completion_tokens,
        "total_tokens": PROMPT_TOKENS + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion_body(chunks: int) -> bytes:
    """A non-streamed `chat.completion` whose text is the same as the stream's."""
    return _json(
        {
            "id": COMPLETION_ID,
            "object": "chat.completion",
            "created": CREATED,
            "model": MODEL,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": "".join(tokens(chunks)),
                        "refusal": None,
                        "annotations": [],
                    },
                    "logprobs": None,
                    "finish_reason": "stop",
                }
            ],
            "usage": _usage(chunks),
            "service_tier": "default",
            "system_fingerprint": "fp_bench",
        }
    )


def _chunk(choices: list[dict[str, Any]], usage: dict[str, Any] | None) -> bytes:
    return _json(
        {
            "id": COMPLETION_ID,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": MODEL,
            "service_tier": "default",
            "system_fingerprint": "fp_bench",
            "choices": choices,
            "usage": usage,
            "obfuscation": "Bench",
        }
    )


def stream_events(chunks: int) -> list[bytes]:
    """The SSE events of a stream: `chunks` text chunks (the first also carries the role),
    a finish chunk, a usage chunk (as with `stream_options.include_usage`) and `[DONE]`."""
    events = []
    for i, text in enumerate(tokens(chunks)):
        delta = (
            {"role": "assistant", "content": text, "refusal": None} if i == 0 else {"content": text}
        )
        events.append(
            _chunk([{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}], None)
        )
    events.append(
        _chunk([{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}], None)
    )
    events.append(_chunk([], _usage(chunks)))
    events.append(b"[DONE]")
    return [b"data: " + event + b"\n\n" for event in events]


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def response(status: str, content_type: str, body: bytes) -> bytes:
    """A whole HTTP/1.1 response with a Content-Length (keep-alive is HTTP/1.1's default)."""
    return (
        f"HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\n"
        f"content-length: {len(body)}\r\nx-request-id: req_bench\r\n\r\n"
    ).encode() + body


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"transfer-encoding: chunked\r\ncache-control: no-cache\r\nx-request-id: req_bench\r\n\r\n"
)


def stream_frames(events: list[bytes]) -> list[bytes]:
    """A chunked SSE response, one write per event: the head rides with the first one."""
    frames = [STREAM_HEAD + _http_chunk(events[0])]
    frames += [_http_chunk(event) for event in events[1:]]
    frames.append(b"0\r\n\r\n")
    return frames


NOT_FOUND = response("404 Not Found", "application/json", b'{"error":{"message":"not found"}}')
BAD_REQUEST = response("400 Bad Request", "application/json", b'{"error":{"message":"bad"}}')
OK = response("200 OK", "application/json", b'{"status":"ok"}')
# Under /fail/ every request fails as an overloaded upstream would: the soak's failovers.
UNAVAILABLE = response(
    "503 Service Unavailable",
    "application/json",
    b'{"error":{"message":"overloaded","type":"server_error"}}',
)
MODELS = response(
    "200 OK",
    "application/json",
    _json(
        {
            "object": "list",
            "data": [
                {"id": "gpt-4o-mini", "object": "model", "created": CREATED, "owned_by": "system"}
            ],
        }
    ),
)


class Responses:
    """Everything the server sends, encoded once; and the request counters."""

    def __init__(self, chunks: int, chunk_delay: float) -> None:
        self.completion = response("200 OK", "application/json", completion_body(chunks))
        self.stream_frames = stream_frames(stream_events(chunks))
        pieces = tokens(chunks)
        body = upstream_responses.response_body(pieces)
        self.response = response("200 OK", "application/json", body)
        self.response_frames = stream_frames(upstream_responses.stream_events(pieces))
        self.chunk_delay = chunk_delay
        self.requests = 0
        self.streams = 0
        self.open_streams = 0  # stamped slow streams open now, and the most at once
        self.max_open = 0

    def stats(self, reset: bool = False) -> bytes:
        body = _json(
            {
                "requests": self.requests,
                "streams": self.streams,
                "open_streams": self.open_streams,
                "max_open": self.max_open,
            }
        )
        if reset:
            self.max_open = self.open_streams
        return response("200 OK", "application/json", body)


def wants_stream(body: bytes) -> bool:
    """Whether a chat request asks for a stream (compact or spaced JSON, no full decode)."""
    return b'"stream":true' in body or b'"stream": true' in body


class UpstreamProtocol(asyncio.Protocol):
    """One client connection; answers each request from the parser's completion callback."""

    def __init__(self, responses: Responses) -> None:
        self.responses = responses
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.stamped: StampedStream | None = None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.stamped is not None:
            self.stamped.finish()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.write(BAD_REQUEST)
                self.transport.close()

    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        keep_alive = self.parser.should_keep_alive()
        if self.url == b"/v1/chat/completions" and self.parser.get_method() == b"POST":
            self.responses.requests += 1
            body = b"".join(self.body)
            slow = slow_request(body)
            if slow is not None:
                self.stamped = StampedStream(transport, *slow, self.responses)
                return
            if wants_stream(body):
                self.responses.streams += 1
                self._stream(transport, keep_alive, self.responses.stream_frames)
                return
            transport.write(self.responses.completion)
        elif self.url == b"/v1/responses" and self.parser.get_method() == b"POST":
            self.responses.requests += 1
            if wants_stream(b"".join(self.body)):
                self.responses.streams += 1
                self._stream(transport, keep_alive, self.responses.response_frames)
                return
            transport.write(self.responses.response)
        else:
            transport.write(self._simple())
        if not keep_alive:
            transport.close()

    def _simple(self) -> bytes:
        path = self.url.split(b"?", 1)[0]
        if path == b"/stats":
            return self.responses.stats(reset=self.url.endswith(b"?reset"))
        if path in (b"/healthz", b"/health"):
            return OK
        if path == b"/v1/models":
            return MODELS
        if path.startswith(b"/fail/"):
            return UNAVAILABLE
        return NOT_FOUND

    def _stream(self, transport: asyncio.Transport, keep_alive: bool, frames: list[bytes]) -> None:
        if self.responses.chunk_delay > 0:
            slowly = self._stream_slowly(transport, keep_alive, frames)
            asyncio.get_running_loop().create_task(slowly)
            return
        for frame in frames:  # one write (one TCP segment) per event
            transport.write(frame)
        if not keep_alive:
            transport.close()

    async def _stream_slowly(
        self, transport: asyncio.Transport, keep_alive: bool, frames: list[bytes]
    ) -> None:
        for frame in frames[:-1]:
            if transport.is_closing():
                return
            transport.write(frame)
            await asyncio.sleep(self.responses.chunk_delay)
        transport.write(frames[-1])
        if not keep_alive:
            transport.close()


async def serve(host: str, port: int, responses: Responses) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: UpstreamProtocol(responses), host, port, backlog=4096, reuse_address=True
    )
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.upstream", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--chunks", type=int, default=20, help="text chunks per stream")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    responses = Responses(args.chunks, args.chunk_delay_ms / 1000)
    raise_nofile()
    try:
        import uvloop
    except ImportError:  # the stdlib loop is slower but correct
        asyncio.run(serve(args.host, args.port, responses))
    else:
        uvloop.run(serve(args.host, args.port, responses))


if __name__ == "__main__":
    main()
