"""OpenTelemetry traces (the optional extra `router[otel]`): one SERVER span per API request
and one CLIENT span per upstream attempt under it, with the GenAI attributes and the trail.

On only when an OTLP endpoint is configured by the standard variables
(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT) and not disabled
(OTEL_SDK_DISABLED=true, OTEL_TRACES_EXPORTER=none). The exporter (OTLP over HTTP/protobuf)
reads every other OTEL_* variable itself (headers, timeout, service name, resource).
When off, nothing here is imported and the middleware skips tracing: zero cost.

Spans are made when the response has ended, from the request's `Record` (attempts carry the
wall time they ended and their duration), so the hot path only appends to a list. A W3C
`traceparent` from the caller becomes the request span's parent.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from router.core.types import Attempt, Report, Target
from router.metrics_genai import operation_of
from router.observe.record import Record


class Tracing:
    def __init__(self, service: str = "router") -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; without them
        # the SDK names the service "unknown_service", where ours is a better default
        resource = Resource.create()
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": service}))
        self.provider = TracerProvider(resource=resource)
        self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer("router")
        self.propagator = TraceContextTextMapPropagator()

    def request(self, record: Record, scope: Any, status: int, start: int, end: int) -> None:
        parent = None
        if record.traceparent is not None:
            parent = self.propagator.extract({"traceparent": record.traceparent})
        span = self.tracer.start_span(
            f"{scope['method']} {scope['path']}", parent, SpanKind.SERVER, start_time=start
        )
        span.set_attribute("http.request.method", scope["method"])
        span.set_attribute("url.path", scope["path"])
        span.set_attribute("http.response.status_code", status)
        span.set_attribute("router.request_id", record.request_id)
        span.set_attribute("router.surface", record.surface)
        if record.report is not None:
            _report(span, record.report)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        inside = trace.set_span_in_context(span)
        for target, attempt, ended in record.attempts:
            self._attempt(inside, target, attempt, ended)
        span.end(end)

    def _attempt(self, parent: Any, target: Target, attempt: Attempt, ended: int) -> None:
        operation = operation_of(target)
        start = ended - attempt.ms * 1_000_000
        span = self.tracer.start_span(
            f"{operation} {target.model}", parent, SpanKind.CLIENT, start_time=start
        )
        span.set_attribute("gen_ai.operation.name", operation)
        span.set_attribute("gen_ai.provider.name", target.provider.name)
        span.set_attribute("gen_ai.request.model", target.model)
        span.set_attribute("router.outcome", attempt.outcome)
        if attempt.status is not None:
            span.set_attribute("http.response.status_code", attempt.status)
        if attempt.waited_ms:
            span.set_attribute("router.waited_ms", attempt.waited_ms)
        if attempt.outcome != "ok":
            span.set_attribute("error.type", attempt.outcome)
            span.set_status(Status(StatusCode.ERROR))
        else:
            span.set_attribute("gen_ai.response.model", target.model)
        span.end(ended)

    def close(self) -> None:
        self.provider.shutdown()  # flushes what is queued


def _report(span: Any, report: Report) -> None:
    span.set_attribute("gen_ai.operation.name", report.operation)
    span.set_attribute("gen_ai.request.model", report.request_model)
    span.set_attribute("router.key", report.caller)
    span.set_attribute("router.outcome", report.outcome)
    span.set_attribute("router.trail", [f"{a.ref} {a.outcome}" for a in report.attempts])
    if report.target is not None:
        span.set_attribute("gen_ai.provider.name", report.target.provider.name)
        span.set_attribute("gen_ai.response.model", report.target.model)
    if report.outcome == "ok":
        span.set_attribute("gen_ai.usage.input_tokens", report.usage.prompt_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", report.usage.completion_tokens)
    else:
        span.set_attribute("error.type", report.outcome)
