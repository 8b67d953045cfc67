"""Every Prometheus metric of the gateway, in one place, with bounded labels only.

Two families side by side: the gateway's own `router_*` series, and the OpenTelemetry GenAI
semantic conventions in Prometheus spelling (`gen_ai_*`, attributes as labels, the buckets
the conventions recommend). Label values come from configuration (provider names, catalog
model names and aliases), closed enums (outcomes, surfaces, failure kinds) or key *names*
capped at `KEY_NAMES` per process (the rest fold into "other"). Never a key, a user or a
request id; a model that is not in the catalog is counted as "other".

With several workers, PROMETHEUS_MULTIPROC_DIR is set (by `router serve --workers N`) and
/metrics aggregates every worker (prometheus-client's multiprocess mode): counters and
histograms sum over all workers, dead or alive; gauges read live workers only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from decimal import Decimal

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from router.core.types import Attempt, Report, Target, Usage
from router.errors import Failure
from router.metrics_genai import GenAI
from router.metrics_genai import rescue_reason as _rescue_reason
from router.metrics_labels import Counter, Gauge, Histogram
from router.metrics_workers import forget_dead

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_STATE = {"closed": 0, "half_open": 1, "open": 2}
KEY_NAMES = 50  # distinct key names labelled per process; the others are "other"
LIMIT_KINDS = ("rate", "budget")  # why a request was refused before any upstream
STORES = ("sqlite", "postgres", "redis")


class Metrics:
    """The metric objects, registered in one registry per app, and the hooks that feed them:
    the core's observer (`attempted`, `finished`), the cluster link's, and the store/ledger/
    limit hooks other parts of the gateway call."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(
        self, registry: CollectorRegistry | None = None, models: Iterable[str] = ()
    ) -> None:
        self.registry = r = registry or CollectorRegistry()
        self.genai = GenAI(r, frozenset(models))
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
            "Tokens used by answered requests and broken attempts.",
            ["provider", "model", "kind"],
            registry=r,
        )
        self.cost = Counter(
            "router_cost_usd",
            "Cost in USD, from the price catalog, by target.",
            ["provider", "model"],
            registry=r,
        )
        self.key_cost = Counter(
            "router_key_cost_usd",
            "Cost in USD by key name (capped; the rest are 'other').",
            ["key"],
            registry=r,
        )
        self._outcome_series(r)
        self._state_series(r)
        self._routing_series(r)
        self._keys: set[str] = set()
        for kind in LIMIT_KINDS:  # known label values start at 0, so rates exist from the start
            self.limit_rejections.labels(kind)

    def _outcome_series(self, r: CollectorRegistry) -> None:
        self.fallbacks = Counter(
            "router_fallbacks",
            "Requests answered by a target other than the first planned,"
            " by the first target's failure.",
            ["surface", "reason"],
            registry=r,
        )
        self.rescues = Counter(
            "router_rescues",
            "Streams rescued after breaking mid-answer, by the failure.",
            ["reason"],
            registry=r,
        )
        self.stream_failures = Counter(
            "router_stream_failures",
            "Streams that failed after the first token, by result.",
            ["result"],
            registry=r,
        )
        self.limit_rejections = Counter(
            "router_limit_rejections",
            "Requests refused by a rate limit or a spent budget.",
            ["kind"],
            registry=r,
        )
        self.budget_used = Gauge(
            "router_budget_used_ratio",
            "Share of its budget a key has spent (capped names).",
            ["key"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.store_errors = Counter(
            "router_store_errors",
            "Storage failures (SQLite, PostgreSQL, Redis), by operation.",
            ["store", "operation"],
            registry=r,
        )
        self.ledger_lag = Gauge(
            "router_ledger_lag_seconds",
            "Age of the oldest spend record not yet written.",
            registry=r,
            multiprocess_mode="livemax",
        )

    def _state_series(self, r: CollectorRegistry) -> None:
        self.circuit = Gauge(
            "router_circuit_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
            ["provider", "model"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.inflight = Gauge(
            "router_inflight_requests",
            "Requests being served.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.inflight_streams = Gauge(
            "router_inflight_streams",
            "Streamed answers being relayed.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.store_waits = Counter(
            "router_store_queue_full",
            "Conversation saves that waited because SQLite's write queue was full.",
            registry=r,
        )
        self.overloaded = Counter(
            "router_overloaded",
            "Requests refused with 503 because server.max_inflight were in flight.",
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
        self._accounting(r)

    def _routing_series(self, r: CollectorRegistry) -> None:
        """Learned circuits and timeouts, and the response cache (`router.core.routes`)."""
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

    def _accounting(self, r: CollectorRegistry) -> None:
        """The spend ledger's writes and the limits' refusals (`router.store.ledger`,
        `router.limits`): labels are closed sets (scope, kind, reason)."""
        self.ledger_rows = Counter("router_ledger_rows", "Spend ledger rows written.", registry=r)
        self.ledger_errors = Counter(
            "router_ledger_write_errors",
            "Ledger batch writes that failed (and are retried).",
            registry=r,
        )
        self.ledger_queue = Gauge(
            "router_ledger_queued_rows",
            "Ledger rows waiting to be written.",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.limit_refusals = Counter(
            "router_limit_refusals",
            "Requests refused (or targets skipped) by a limit or budget, never sent upstream.",
            ["scope", "reason"],
            registry=r,
        )
        self.budget_alerts = Counter(
            "router_budget_soft_alerts",
            "Budgets that crossed their soft threshold.",
            ["scope"],
            registry=r,
        )
        self.limit_errors = Counter(
            "router_limits_redis_errors", "Limit checks that could not reach Redis.", registry=r
        )

    def start(self, targets: Iterable[tuple[str, str]]) -> None:
        """Every catalog target's circuit starts closed: export it so, for dashboards."""
        for provider, model in targets:
            self.circuit.labels(provider, model).set(0)

    @staticmethod
    def model_label(target: Target) -> str:
        return target.model if target.info is not None else "other"

    def key_label(self, name: str) -> str:
        if name in self._keys:
            return name
        if len(self._keys) < KEY_NAMES:
            self._keys.add(name)
            return name
        return "other"

    # ---- the core's observer (`router.core.ports.Observer`) --------------------------------

    def attempted(self, target: Target, attempt: Attempt, usage: Usage | None) -> None:
        model = self.model_label(target)
        self.attempts.labels(target.provider.name, model, attempt.outcome).inc()
        self.genai.attempted(target, model, attempt)
        if usage is not None:  # what a broken attempt consumed
            self._used(target, usage, attempt.cost)

    def finished(self, report: Report) -> None:
        self.genai.finished(report)
        if report.cache is not None:
            self.cache.labels(report.cache).inc()
        if report.saved:
            self.cache_saved.inc(float(report.saved))
        target = report.target
        cost = report.costs.total_tokens_cost if report.costs else None
        broken = sum((a.cost for a in report.attempts if a.cost), Decimal(0))
        if cost or broken:
            self.key_cost.labels(self.key_label(report.caller)).inc(float((cost or 0) + broken))
        if target is None:
            return
        self._used(target, report.usage, cost)
        if report.upstream_ttft is not None:
            self.ttft.labels(target.provider.name).observe(report.upstream_ttft)
        if report.outcome == "ok" and report.fell_back and not report.rescued:
            self.fallbacks.labels(report.surface, report.attempts[0].outcome).inc()
        if report.rescued:
            self.stream_failures.labels("rescued").inc()
            self.rescues.labels(_rescue_reason(report.attempts)).inc()
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

    # ---- hooks for the stores, the spend ledger and the limits -----------------------------

    def store_error(self, store: str, operation: str) -> None:
        """A storage call failed: `store` is one of STORES, `operation` a fixed verb."""
        self.store_errors.labels(store, operation).inc()

    def ledger_lagging(self, seconds: float) -> None:
        """The oldest spend record still waiting to be written is `seconds` old (0: none)."""
        self.ledger_lag.set(seconds)

    def limit_rejected(self, kind: str) -> None:
        """A request was refused by a limit: `kind` is one of LIMIT_KINDS."""
        self.limit_rejections.labels(kind).inc()

    def budget(self, key_name: str, used_ratio: float) -> None:
        """A key has spent `used_ratio` of its budget (1.0 = all of it)."""
        self.budget_used.labels(self.key_label(key_name)).set(used_ratio)

    # ---- the cluster link's observer (`router.cluster.ClusterObserver`) -------------------

    def cluster_event(self, direction: str, kind: str) -> None:
        self.cluster_events.labels(direction, kind).inc()

    def cluster_error(self, operation: str) -> None:
        self.cluster_errors.labels(operation).inc()
        self.store_errors.labels("redis", operation).inc()

    def cluster_link(self, up: bool) -> None:
        self.cluster_connected.set(1 if up else 0)

    # ---- the ledger's and the limits' counters ---------------------------------------------

    def ledger_written(self, rows: int) -> None:
        self.ledger_rows.inc(rows)

    def ledger_error(self) -> None:
        self.ledger_errors.inc()

    def ledger_queued(self, rows: int) -> None:
        self.ledger_queue.set(rows)

    def limit_refused(self, scope: str, reason: str) -> None:
        self.limit_refusals.labels(scope, reason).inc()

    def budget_alert(self, scope: str) -> None:
        self.budget_alerts.labels(scope).inc()

    def limit_error(self) -> None:
        self.limit_errors.inc()

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
        folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if folder:
            forget_dead(folder)
            registry = CollectorRegistry()
            # prometheus-client's multiprocess module carries no annotations
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


_NOT_STREAM_FAILURES = frozenset({"ok", Failure.CLIENT_CLOSED.value})
