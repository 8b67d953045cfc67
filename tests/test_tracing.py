"""Traces: spans received over OTLP/HTTP (protobuf) on loopback by a tiny aiohttp server,
decoded with opentelemetry-proto: a request that failed over is one SERVER span (child of
the caller's traceparent) with a CLIENT span per upstream attempt."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from chaos import ACME, POLICY
from fakes import FakeUpstream, Fault
from gateway_harness import free_port, running_gateway, write_config
from kit import post

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


@contextmanager
def collector() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    received: list[ExportTraceServiceRequest] = []

    async def traces(request: web.Request) -> web.Response:
        received.append(ExportTraceServiceRequest.FromString(await request.read()))
        return web.Response(body=b"", content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    loop = asyncio.new_event_loop()
    runner = web.AppRunner(app)
    port = free_port()
    loop.run_until_complete(runner.setup())
    loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", port).start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def _attrs(span: Any) -> dict[str, Any]:
    out = {}
    for kv in span.attributes:
        v = kv.value
        kind = v.WhichOneof("value")
        if kind == "array_value":
            out[kv.key] = [x.string_value for x in v.array_value.values]
        else:
            out[kv.key] = getattr(v, kind)
    return out


def test_spans_of_a_failed_over_request(tmp_path, monkeypatch):
    with collector() as (endpoint, received), FakeUpstream("openai") as fake:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)  # the exporter reads it
        monkeypatch.setenv("OTEL_SERVICE_NAME", "router-test")
        config = write_config(tmp_path, providers={"acme": ACME}, policy=POLICY)
        env = {"ACME_API_KEY": "sk-acme", "ACME_BASE_URL": fake.url}
        with running_gateway(config, {**env, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}) as gw:
            assert gw.runtime.tracing is not None
            fake.script("primary", Fault.status(500), Fault.status(500), Fault.status(500))
            fake.script("backup", Fault.ok(text="hi there", usage=(11, 2)))
            body = {
                "messages": [{"role": "user", "content": "hello"}],
                "models": ["acme/primary"],
                "fallback_models": ["acme/backup"],
            }
            headers = {**gw.headers, "traceparent": f"00-{TRACE_ID}-{PARENT}-01"}
            r = post(gw, "/api/v1/completions", body, headers=headers)
            assert r.status_code == 200
            rid = r.headers["x-request-id"]
    spans = [
        (resource, span)
        for req in received
        for rs in req.resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
        for resource in [rs.resource]
    ]
    assert len(spans) == 5
    servers = [s for _, s in spans if s.kind == s.SPAN_KIND_SERVER]
    clients = [s for _, s in spans if s.kind == s.SPAN_KIND_CLIENT]
    assert len(servers) == 1 and len(clients) == 4
    root = servers[0]
    assert root.trace_id.hex() == TRACE_ID and root.parent_span_id.hex() == PARENT
    assert root.name == "POST /api/v1/completions"
    a = _attrs(root)
    assert a["router.request_id"] == rid
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.request.model"] == "acme/primary"
    assert a["gen_ai.provider.name"] == "acme" and a["gen_ai.response.model"] == "backup"
    assert a["gen_ai.usage.input_tokens"] == 11 and a["gen_ai.usage.output_tokens"] == 2
    assert a["http.response.status_code"] == 200
    assert a["router.trail"] == [
        "acme/primary server_error",
        "acme/primary server_error",
        "acme/primary server_error",
        "acme/backup ok",
    ]
    names = {kv.key: kv.value.string_value for kv in spans[0][0].attributes}
    assert names["service.name"] == "router-test"
    clients.sort(key=lambda s: s.start_time_unix_nano)
    for span in clients:
        assert span.trace_id == root.trace_id and span.parent_span_id == root.span_id
        assert root.start_time_unix_nano <= span.start_time_unix_nano
        assert span.end_time_unix_nano <= root.end_time_unix_nano
    outcomes = [(_attrs(s)["gen_ai.request.model"], _attrs(s)["router.outcome"]) for s in clients]
    assert outcomes == [("primary", "server_error")] * 3 + [("backup", "ok")]
    assert [_attrs(s).get("error.type") for s in clients] == ["server_error"] * 3 + [None]
    assert clients[0].name == "chat primary"
    assert _attrs(clients[0])["http.response.status_code"] == 500


def test_tracing_off_imports_no_opentelemetry(tmp_path):
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from router.runtime import Runtime\n"
        "from router.app import create_app\n"
        "assert not [m for m in sys.modules if m.startswith('opentelemetry')]\n"
    )
    env = {"PATH": "/usr/bin:/bin"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
