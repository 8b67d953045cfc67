"""Which observability outputs are on, from the environment (read once at start-up). Kept
apart from `tracing` so that deciding imports nothing of OpenTelemetry."""

from __future__ import annotations

_NO = ("off", "0", "false", "no")


def request_log_on(env: dict[str, str]) -> bool:
    """One JSON line per request on stdout unless ROUTER_REQUEST_LOG=off."""
    return env.get("ROUTER_REQUEST_LOG", "on").lower() not in _NO


def tracing_on(env: dict[str, str]) -> bool:
    """Traces when an OTLP endpoint is set by the standard variables, unless disabled."""
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if env.get("OTEL_TRACES_EXPORTER", "otlp").lower() in ("none", ""):
        return False
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    return bool(endpoint)
