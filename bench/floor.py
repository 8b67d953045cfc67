"""The stack floor: uvicorn + Starlette + aiohttp forwarding `POST /v1/chat/completions`.

What any gateway on this stack pays before its own logic (shared/PERFORMANCE-FLOORS.md, third
row): the request is decoded into a typed msgspec Struct and re-encoded, posted upstream on one
keep-alive `ClientSession` (unlimited connector, dummy cookie jar, headers built once), and the
answer relayed: a JSON body as it came, a stream chunk by chunk through a `StreamingResponse`
(`iter_any()`, no event parsing). The gateway's figures are judged as ratios to this one,
measured beside it in the same run.

Run: python -m bench.floor --port 9001 --upstream http://127.0.0.1:9000
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import msgspec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from bench.procs import raise_nofile


class Part(msgspec.Struct, omit_defaults=True):
    type: str
    text: str | None = None


class Message(msgspec.Struct, omit_defaults=True):
    role: str
    content: str | list[Part] | None = None


class StreamOptions(msgspec.Struct, omit_defaults=True):
    include_usage: bool = False


class ChatRequest(msgspec.Struct, omit_defaults=True):
    model: str
    messages: list[Message]
    stream: bool = False
    stream_options: StreamOptions | None = None


DECODER = msgspec.json.Decoder(ChatRequest)
ENCODER = msgspec.json.Encoder()
UPSTREAM_HEADERS = {"content-type": "application/json", "authorization": "Bearer sk-bench"}


def create_app(upstream: str) -> Starlette:
    """The forwarder; `upstream` is the fake upstream's base URL (no path)."""
    url = upstream.rstrip("/") + "/v1/chat/completions"
    session: aiohttp.ClientSession | None = None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        nonlocal session
        connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=60)
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None),
        )
        async with session:
            yield

    async def completions(request: Request) -> Response:
        assert session is not None
        chat = DECODER.decode(await request.body())
        upstream_response = await session.post(
            url, data=ENCODER.encode(chat), headers=UPSTREAM_HEADERS
        )
        media_type = upstream_response.headers.get("content-type", "application/json")
        if not chat.stream:
            async with upstream_response:
                body = await upstream_response.read()
            return Response(body, upstream_response.status, media_type=media_type)

        async def relay() -> AsyncIterator[bytes]:
            async with upstream_response:
                async for piece in upstream_response.content.iter_any():
                    yield piece

        return StreamingResponse(relay(), upstream_response.status, media_type=media_type)

    async def healthz(request: Request) -> Response:
        return Response(b"ok")

    return Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/healthz", healthz),
        ],
        lifespan=lifespan,
    )


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m bench.floor", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL of the fake upstream")
    args = parser.parse_args(argv)
    raise_nofile()
    uvicorn.run(
        create_app(args.upstream),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
        backlog=4096,
    )


if __name__ == "__main__":
    main()
