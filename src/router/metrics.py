"""Every Prometheus metric of the gateway, in one place, with bounded labels only.

Label values come from configuration (provider names, catalog model names) or closed enums
(outcomes, surfaces); a model that is not in the catalog is counted as "other". Never a key,
a user or a request id. With several workers, set PROMETHEUS_MULTIPROC_DIR and /metrics
aggregates every worker (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from router.core.types import Attempt, Report, Target, Usage
from router.errors import Failure

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_STATE = {"closed": 0, "half_open": 1, "open": 2}


class Metrics:
    """The metric objects, registered in one registry per app."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "router_requests",
            "Requests answered, by surface and HTTP status.",
            ["surface", "status"],
            registry=r,
        )
        self.duration = Histogram(
            "router_request_duration_seconds",
            "Time from request received to response complete.",
            ["surface", "stream"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "router_ttft_seconds",
            "Time to the first token of the answer.",
            ["provider"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.attempts = Counter(
            "router_upstream_attempts",
            "Upstream attempts, by target and outcome.",
            ["provider", "model", "outcome"],
            registry=r,
        )
        self.tokens = Counter(
            "router_tokens",
            "Tokens used by answered requests.",
            ["provider", "model", "kind"],
            registry=r,
        )
        self.cost = Counter(
            "router_cost_usd",
            "Cost in USD of answered requests, from the price catalog.",
            ["provider", "model"],
            registry=r,
        )
        self.fallbacks = Counter(
            "router_fallbacks",
            "Requests answered by a target other than the first planned.",
            ["surface"],
            registry=r,
        )
        self.stream_failures = Counter(
            "router_stream_failures",
            "Streams that failed after the first token, by result.",
            ["result"],
            registry=r,
        )
        self.circuit = Gauge(
            "router_circuit_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            ["provider", "model"],
            registry=r,
            multiprocess_mode="max",
        )
        self.inflight = Gauge(
            "router_inflight_requests",
            "Requests being served.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.cooldown = Gauge(
            "router_circuit_cooldown_seconds",
            "The current cool-down of a target's circuit (doubles per failed probe).",
            ["provider", "model"],
            registry=r,
            multiprocess_mode="max",
        )
        self.learned = Gauge(
            "router_learned_timeout_seconds",
            "A target's learned timeouts (kind: first_token, stall), refreshed as it answers.",
            ["provider", "model", "kind"],
            registry=r,
            multiprocess_mode="max",
        )
        self.cache = Counter(
            "router_cache_lookups",
            "Response cache lookups, by result (hit, miss).",
            ["result"],
            registry=r,
        )
        self.cache_saved = Counter(
            "router_cache_saved_usd",
            "USD that cache hits did not spend: what the answers cost when they were made.",
            registry=r,
        )
        self.cluster_events = Counter(
            "router_cluster_events",
            "Circuit and key events sent to or received from other processes over Redis.",
            ["direction", "kind"],
            registry=r,
        )
        self.cluster_errors = Counter(
            "router_cluster_errors",
            "Redis failures (subscribe, publish) and events dropped or not decoded.",
            ["operation"],
            registry=r,
        )
        self.cluster_connected = Gauge(
            "router_cluster_connected",
            "1 while subscribed to the cluster channel on Redis, else 0 (least over workers).",
            registry=r,
            multiprocess_mode="livemin",
        )

    @staticmethod
    def model_label(target: Target) -> str:
        return target.model if target.info is not None else "other"

    # ---- the core's observer (`router.core.ports.Observer`) --------------------------------

    def attempted(self, target: Target, attempt: Attempt, usage: Usage | None) -> None:
        self.attempts.labels(target.provider.name, self.model_label(target), attempt.outcome).inc()
        if usage is not None:  # what a broken attempt consumed
            self._used(target, usage, attempt.cost)

    def finished(self, report: Report) -> None:
        if report.cache is not None:
            self.cache.labels(report.cache).inc()
        if report.saved:
            self.cache_saved.inc(float(report.saved))
        target = report.target
        if target is None:
            return
        self._used(target, report.usage, report.costs.total_tokens_cost if report.costs else None)
        if report.upstream_ttft is not None:
            self.ttft.labels(target.provider.name).observe(report.upstream_ttft)
        if report.outcome == "ok" and report.fell_back:
            self.fallbacks.labels(report.surface).inc()
        if report.rescued:
            self.stream_failures.labels("rescued").inc()
        if report.stream and report.outcome not in _NOT_STREAM_FAILURES:
            self.stream_failures.labels("error").inc()  # broke after it started: no rescue

    def _used(self, target: Target, usage: Usage, cost: Decimal | None) -> None:
        provider, model = target.provider.name, self.model_label(target)
        tokens = self.tokens
        tokens.labels(provider, model, "prompt").inc(usage.prompt_tokens)
        tokens.labels(provider, model, "completion").inc(usage.completion_tokens)
        if usage.reasoning_tokens:
            tokens.labels(provider, model, "reasoning").inc(usage.reasoning_tokens)
        if usage.cached_tokens:
            tokens.labels(provider, model, "cached").inc(usage.cached_tokens)
        if cost:
            self.cost.labels(provider, model).inc(float(cost))

    # ---- the cluster link's observer (`router.cluster.ClusterObserver`) -------------------

    def cluster_event(self, direction: str, kind: str) -> None:
        self.cluster_events.labels(direction, kind).inc()

    def cluster_error(self, operation: str) -> None:
        self.cluster_errors.labels(operation).inc()

    def cluster_link(self, up: bool) -> None:
        self.cluster_connected.set(1 if up else 0)

    def circuit_changed(self, ref: str, state: str, known: bool) -> None:
        provider, _, model = ref.partition("/")
        self.circuit.labels(provider, model if known else "other").set(_STATE[state])

    def circuit_cooldown(self, ref: str, seconds: float, known: bool) -> None:
        provider, _, model = ref.partition("/")
        self.cooldown.labels(provider, model if known else "other").set(seconds)

    def learned_timeouts(self, target: Target, first_token: float, stall: float) -> None:
        provider, model = target.provider.name, self.model_label(target)
        self.learned.labels(provider, model, "first_token").set(first_token)
        self.learned.labels(provider, model, "stall").set(stall)

    def exposition(self) -> bytes:
        """The text format, aggregating every worker in multiprocess mode."""
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            registry = CollectorRegistry()
            # prometheus-client's multiprocess module carries no annotations
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


_NOT_STREAM_FAILURES = frozenset({"ok", Failure.CLIENT_CLOSED.value})


class MetricsMiddleware:
    """Pure ASGI: counts API requests by surface and status, times them, tracks in-flight.
    `surface_of(path)` names a request's surface (None for paths that are not an API)."""

    def __init__(
        self, app: ASGIApp, metrics: Metrics, surface_of: Callable[[str], str | None]
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.surface_of = surface_of
        self._counters: dict[tuple[str, int], Any] = {}
        self._timers: dict[tuple[str, bool], Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        surface = self.surface_of(scope["path"]) if scope["type"] == "http" else None
        if surface is None:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        streamed = False

        async def sending(message: Message) -> None:
            nonlocal status, streamed
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name == b"content-type":
                        streamed = value.startswith(b"text/event-stream")
            await send(message)

        self.metrics.inflight.inc()
        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.inflight.dec()
            self._count(surface, status, streamed, time.perf_counter() - started)

    def _count(self, surface: str, status: int, stream: bool, seconds: float) -> None:
        counter = self._counters.get((surface, status))
        if counter is None:
            counter = self._counters[(surface, status)] = self.metrics.requests.labels(
                surface, str(status)
            )
        counter.inc()
        timer = self._timers.get((surface, stream))
        if timer is None:
            timer = self._timers[(surface, stream)] = self.metrics.duration.labels(
                surface, "true" if stream else "false"
            )
        timer.observe(seconds)
