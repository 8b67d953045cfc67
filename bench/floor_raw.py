"""The Python limit: a raw asyncio + httptools forwarder of `POST /v1/chat/completions`.

No framework (shared/PERFORMANCE-FLOORS.md, first row): a client request is parsed by
httptools, its body decoded into the same msgspec Struct as the Starlette floor's and
re-encoded, and written to an idle keep-alive upstream connection (a new one when none is
idle); the upstream's answer, JSON or stream, is relayed to the client byte for byte as it
arrives, its own HTTP/1.1 framing included. One request in flight per client connection.

Run: python -m bench.floor_raw --port 9002 --upstream-port 9000
"""

from __future__ import annotations

import argparse
import asyncio
from typing import cast

import httptools
import msgspec

from bench.floor import DECODER, ENCODER
from bench.procs import raise_nofile

OK = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\nok"
BAD = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


class UpstreamConn(asyncio.Protocol):
    """One keep-alive connection to the upstream, lent to one client request at a time."""

    def __init__(self, pool: list[UpstreamConn]) -> None:
        self.pool = pool
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.client: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.client is not None:
            self.client.write(data)
        self.parser.feed_data(data)

    def on_message_complete(self) -> None:
        self.client = None
        if self.parser.should_keep_alive():
            self.pool.append(self)
        elif self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self in self.pool:
            self.pool.remove(self)
        if self.client is not None:
            self.client.close()

    def send(self, client: asyncio.Transport, request: bytes) -> None:
        assert self.transport is not None
        self.client = client
        self.transport.write(request)


class ClientConn(asyncio.Protocol):
    """One client connection: parse its request, forward it, let the upstream answer it."""

    def __init__(self, upstream_port: int, pool: list[UpstreamConn]) -> None:
        self.upstream_port = upstream_port
        self.pool = pool
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []
        self.head = (
            f"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1:{upstream_port}\r\n"
            "content-type: application/json\r\nauthorization: Bearer sk-bench\r\n"
            "content-length: %d\r\n\r\n"
        ).encode()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._refuse()

    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        if self.url == b"/healthz":
            self.transport.write(OK)
            return
        try:
            payload = ENCODER.encode(DECODER.decode(b"".join(self.body)))
        except msgspec.DecodeError:
            self._refuse()
            return
        request = self.head % len(payload) + payload
        if self.pool:
            self.pool.pop().send(self.transport, request)
        else:
            asyncio.get_running_loop().create_task(self._connect_and_send(request))

    async def _connect_and_send(self, request: bytes) -> None:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(
            lambda: UpstreamConn(self.pool), "127.0.0.1", self.upstream_port
        )
        assert self.transport is not None
        conn.send(self.transport, request)

    def _refuse(self) -> None:
        if self.transport is not None:
            self.transport.write(BAD)
            self.transport.close()


async def serve(port: int, upstream_port: int) -> None:
    pool: list[UpstreamConn] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: ClientConn(upstream_port, pool), "127.0.0.1", port, backlog=4096
    )
    async with server:
        await server.serve_forever()


def main(argv: list[str] | None = None) -> None:
    import uvloop

    parser = argparse.ArgumentParser(prog="python -m bench.floor_raw", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    args = parser.parse_args(argv)
    raise_nofile()
    uvloop.run(serve(args.port, args.upstream_port))


if __name__ == "__main__":
    main()
