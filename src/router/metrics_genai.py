"""The OpenTelemetry GenAI semantic-convention metrics, in Prometheus spelling.

Names, attributes (as labels) and bucket boundaries follow the conventions
(https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-metrics/): the gateway is the
*server* for its callers (request duration, time to first token, time per output token) and
the *client* of its upstreams (operation duration per upstream attempt, token usage).
`gen_ai_client_token_usage` counts `input` (cached tokens included, as the conventions say)
and `output` (reasoning included) for every answered call, plus `cached` and `reasoning` as
their own label values when a provider reported them. Tokens consumed by broken attempts are
estimates, kept out of these series (see `router_tokens`). Labels stay bounded: a requested
model outside the catalog and its aliases is "other", error_type is a closed enum.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from router.core.types import Attempt, Report, Target
from router.errors import Failure
from router.metrics_labels import Histogram

# The conventions' advisory buckets.
DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
TPOT_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5)
TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip

_ATTRS = ["gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model"]
_ATTRS += ["gen_ai_response_model"]
_OPERATION = {"chat": "chat", "embedding": "embeddings"}  # other model types: generate_content


_SKIPS = frozenset(
    f.value
    for f in (Failure.CIRCUIT_OPEN, Failure.NO_API_KEY, Failure.UNSUPPORTED, Failure.TOO_LARGE)
)


def skipped(attempt: Attempt) -> bool:
    """A target passed over without a request (its circuit open, no key, ...)."""
    return attempt.status is None and attempt.ms == 0 and attempt.outcome in _SKIPS


def operation_of(target: Target) -> str:
    kind = target.info.type if target.info is not None else "chat"
    return _OPERATION.get(kind, "generate_content")


class GenAI:
    """The five GenAI histograms; `models` are the request-model names labelled as asked."""

    def __init__(self, r: CollectorRegistry, models: frozenset[str]) -> None:
        self.models = models
        self.server_duration = Histogram(
            "gen_ai_server_request_duration_seconds",
            "GenAI server request duration: from a call's arrival to its end.",
            [*_ATTRS, "error_type"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.server_ttft = Histogram(
            "gen_ai_server_time_to_first_token_seconds",
            "Time from a call's arrival to the first token of its answer.",
            _ATTRS,
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.server_tpot = Histogram(
            "gen_ai_server_time_per_output_token_seconds",
            "Time per output token after the first, for streamed answers.",
            _ATTRS,
            buckets=TPOT_BUCKETS,
            registry=r,
        )
        self.token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Tokens per answered call, by type (input includes cached, output reasoning).",
            [*_ATTRS, "gen_ai_token_type"],
            buckets=TOKEN_BUCKETS,
            registry=r,
        )
        self.operation_duration = Histogram(
            "gen_ai_client_operation_duration_seconds",
            "Duration of one upstream attempt, by its outcome.",
            [*_ATTRS, "error_type"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )

    def request_model(self, name: str) -> str:
        return name if name in self.models else "other"

    def attempted(self, target: Target, model: str, attempt: Attempt) -> None:
        if skipped(attempt):
            return  # skipped without a request (circuit open, no key): no operation
        error = "" if attempt.outcome == "ok" else attempt.outcome
        labels = (operation_of(target), target.provider.name, model, model, error)
        self.operation_duration.labels(*labels).observe(attempt.ms / 1000)

    def finished(self, report: Report) -> None:
        target = report.target
        provider = target.provider.name if target is not None else ""
        response = (target.model if target.info is not None else "other") if target else ""
        attrs = (report.operation, provider, self.request_model(report.request_model), response)
        error = "" if report.outcome == "ok" else report.outcome
        self.server_duration.labels(*attrs, error).observe(report.latency_ms / 1000)
        if report.ttft_ms is not None:
            self.server_ttft.labels(*attrs).observe(report.ttft_ms / 1000)
        usage = report.usage
        if report.stream and report.ttft_ms is not None and usage.completion_tokens > 1:
            per = (report.latency_ms - report.ttft_ms) / 1000 / (usage.completion_tokens - 1)
            self.server_tpot.labels(*attrs).observe(max(per, 0.0))
        if report.outcome != "ok" or target is None:
            return
        tokens = self.token_usage
        tokens.labels(*attrs, "input").observe(usage.prompt_tokens)
        tokens.labels(*attrs, "output").observe(usage.completion_tokens)
        if usage.cached_tokens:
            tokens.labels(*attrs, "cached").observe(usage.cached_tokens)
        if usage.reasoning_tokens:
            tokens.labels(*attrs, "reasoning").observe(usage.reasoning_tokens)


def rescue_reason(attempts: tuple[Attempt, ...]) -> str:
    """The failure that broke the stream: the last failed attempt before the answer."""
    for a in reversed(attempts):
        if a.outcome != "ok":
            return a.outcome
    return "other"
