"""Overload and body limits: beyond server.max_inflight an immediate 503 `overloaded` in the
surface's shape (never a queue), and bodies refused while they are read, chunked or not."""

from __future__ import annotations

import asyncio
import select
import socket
import time
from pathlib import Path

import httpx
import msgspec

from fakes import FakeUpstream, Fault
from gateway_harness import MASTER_KEY, running_gateway, write_config
from served import ACME, HEADERS, serving

MAX_INFLIGHT = 8
MB = 1024 * 1024


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def _one(client: httpx.AsyncClient, url: str, path: str) -> tuple[float, httpx.Response]:
    messages = [{"role": "user", "content": "hi"}]
    body: dict[str, object] = {"model": "acme/slow", "messages": messages}
    if path.startswith("/api/"):
        body = {"models": ["acme/slow"], "messages": messages}
    started = time.monotonic()
    response = await client.post(url + path, json=body, headers=HEADERS)
    return time.monotonic() - started, response


async def _round(url: str) -> list[tuple[str, float, httpx.Response]]:
    paths = ["/v1/chat/completions", "/api/v1/completions"] * (3 * MAX_INFLIGHT // 2)
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        done = await asyncio.gather(*(_one(client, url, p) for p in paths))
        health = await client.get(url + "/readyz")  # exempt, answered while full
    assert health.status_code == 200
    return [(p, took, r) for p, (took, r) in zip(paths, done, strict=True)]


def _check_round(results: list[tuple[str, float, httpx.Response]]) -> None:
    ok = [r for _, _, r in results if r.status_code == 200]
    refused = [(p, took, r) for p, took, r in results if r.status_code == 503]
    assert (len(ok), len(refused)) == (MAX_INFLIGHT, 2 * MAX_INFLIGHT)
    for path, took, r in refused:
        assert took < 1.0  # at once: the upstream takes 1.5 s
        assert r.headers["retry-after"] == "1"
        error = msgspec.json.decode(r.content)["error"]
        if path.startswith("/v1/"):
            assert (error["code"], error["type"]) == ("overloaded", "upstream_error")
            assert set(error) == {"code", "type", "message", "param"}
        else:
            assert (error["code"], error["field"]) == ("overloaded", None)
            assert set(error) == {"code", "message", "field"}


async def test_three_times_max_inflight_the_excess_gets_503_at_once_and_rss_stays_flat(tmp_path):
    config = write_config(
        tmp_path, extra=f"\n[server]\nmax_inflight = {MAX_INFLIGHT}\n", providers={"acme": ACME}
    )
    with FakeUpstream("openai", models=["slow"]) as fake:
        fake.always("slow", Fault.ok(text="hello there", delay=1.5))
        env = {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": fake.url}
        with serving(config, env, workers=1) as gw:
            _check_round(await _round(gw.url))
            first = _rss_kb(gw.proc.pid)
            for _ in range(4):
                _check_round(await _round(gw.url))
            last = _rss_kb(gw.proc.pid)
            metrics = httpx.get(gw.url + "/metrics").text
    assert last - first < 4096, (first, last)  # KiB: flat across four more rounds
    assert f"router_overloaded_total {5 * 2 * MAX_INFLIGHT}.0" in metrics


def _chunked_upload(port: int, path: str, total: int) -> tuple[int, bytes]:
    """POST `total` bytes as chunked transfer; (bytes the server let us send, its answer)."""
    sock = socket.create_connection(("127.0.0.1", port))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {MASTER_KEY}\r\n"
        "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    ).encode()
    piece = 64 * 1024
    chunk = f"{piece:x}\r\n".encode() + b"x" * piece + b"\r\n"
    sock.sendall(head)
    sock.setblocking(False)
    pending, sent, answer = b"", 0, b""
    try:
        while sent < total or pending:
            readable, writable, _ = select.select([sock], [sock], [], 10)
            if readable:
                data = sock.recv(65536)
                answer += data
                if not data or (b"\r\n\r\n" in answer and answer.rstrip().endswith(b"}")):
                    break
            if writable and (pending or sent < total):
                pending = pending or chunk
                n = sock.send(pending)
                pending, sent = pending[n:], sent + n
    except (BrokenPipeError, ConnectionResetError):
        pass
    finally:
        sock.close()
    return sent, answer


def test_a_chunked_oversize_body_gets_413_in_each_surfaces_shape_without_being_read(tmp_path):
    with running_gateway(write_config(tmp_path), {}) as gw:
        port = int(gw.url.rsplit(":", 1)[1])
        for path in ("/v1/chat/completions", "/api/v1/completions"):
            sent, answer = _chunked_upload(port, path, 200 * MB)
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 413"), head
            assert b"connection: close" in head.lower()
            assert sent < 48 * MB  # the 32 MB limit plus what socket buffers absorb
            error = msgspec.json.decode(body)["error"]
            assert error["code"] == "body_too_large"
            if path.startswith("/v1/"):
                assert error["type"] == "invalid_request_error"
            else:
                assert set(error) == {"code", "message", "field"}
        assert httpx.get(gw.url + "/healthz").status_code == 200


def test_a_small_chunked_body_is_still_accepted(tmp_path):
    body = msgspec.json.encode(
        {"model": "demo/echo", "messages": [{"role": "user", "content": "a"}]}
    )

    def pieces():
        yield body[:10]
        yield body[10:]

    with running_gateway(write_config(tmp_path), {}) as gw:
        r = httpx.post(
            gw.url + "/v1/chat/completions",
            content=pieces(),
            headers={**gw.headers, "content-type": "application/json"},
        )
    assert r.status_code == 200
    assert r.json()["model"] == "demo/echo"


def _stalled_body_app(monkeypatch, timeout: float):
    """Admission around an app that reads the body, whose client sent the head and then
    nothing: every `receive` waits forever."""
    from router import admission

    monkeypatch.setattr(admission, "BODY_TIMEOUT", timeout)
    stalled = asyncio.Event()

    async def receive():
        await stalled.wait()

    async def reader(scope, receive, send):
        await receive()

    async def send(message):
        raise AssertionError("nothing is sent by the inner app")

    scope = {"type": "http", "path": "/v1/chat/completions", "headers": []}
    app = admission.Admission(reader, 4, None, lambda: None)  # type: ignore[arg-type]
    return app(scope, receive, send)


async def test_a_body_that_stops_arriving_is_refused_408_after_the_body_timeout(monkeypatch):
    from router.errors import RequestError

    started = time.monotonic()
    try:
        await asyncio.wait_for(_stalled_body_app(monkeypatch, 0.2), 5)
    except RequestError as exc:
        assert (exc.code, exc.status) == ("body_timeout", 408)
    else:
        raise AssertionError("a stalled body was not refused")
    assert 0.2 <= time.monotonic() - started < 2  # the wait is what is under test


async def test_a_request_cancelled_while_its_body_arrives_stays_cancelled(monkeypatch):
    task = asyncio.ensure_future(_stalled_body_app(monkeypatch, 0.5))
    await asyncio.sleep(0.05)
    task.cancel()  # the client left: not a 408, and no timer left behind to fire
    try:
        await task
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the cancellation was swallowed")
    await asyncio.sleep(0.6)
    assert asyncio.current_task().cancelling() == 0


def _read_response(conn: socket.socket) -> bytes:
    """One whole HTTP/1.1 response with a Content-Length, read off `conn`."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += conn.recv(65536)
    return head


def _closed_after(conn: socket.socket, since: float) -> float:
    """Seconds from `since` until the server closed `conn` (the read gives nothing)."""
    conn.settimeout(20)
    assert conn.recv(1) == b"", "the server answered instead of closing"
    return time.monotonic() - since


def test_slow_clients_are_dropped_a_late_head_after_10s_an_idle_keep_alive_after_5s(tmp_path):
    """The waits are the behaviour under test: `serving.HEADER_TIMEOUT` and `KEEP_ALIVE`."""
    with serving(write_config(tmp_path), {}, 1) as served:
        address = ("127.0.0.1", served.port)
        silent = socket.create_connection(address)  # opens and sends nothing
        opened = time.monotonic()
        trickle = socket.create_connection(address)  # half a head, then nothing
        trickle.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: router\r\n")
        kept = socket.create_connection(address)  # one answered request, then idle
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: router\r\n\r\n")
        assert _read_response(kept).startswith(b"HTTP/1.1 200")
        answered = time.monotonic()
        assert httpx.get(served.url + "/healthz").status_code == 200  # others are served
        assert 4.5 <= _closed_after(kept, answered) < 8  # keep-alive: 5 s
        assert 9.5 <= _closed_after(silent, opened) < 14  # the head: 10 s
        assert 9.5 <= _closed_after(trickle, opened) < 14
        for conn in (silent, trickle, kept):
            conn.close()
