"""What the limits read and answer: the request's reservation (`estimate`), the 429/503
refusals with Retry-After, OpenAI's x-ratelimit-* headers, and what a finished call really
used (tokens, nano-USD per provider)."""

from __future__ import annotations

import math
from decimal import Decimal

import msgspec

from router.core.types import Report, Target
from router.errors import RequestError
from router.limits_meters import Meter, nano

_M = Decimal(1_000_000)


class Peek(msgspec.Struct):
    """The few body fields the reservation needs, whatever the surface."""

    model: str | None = None
    models: list[str] = []
    fallback_models: list[str] = []
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    maxTokens: int | None = None  # the Iron Labs surface's field
    max_output_tokens: int | None = None


PEEK = msgspec.json.Decoder(Peek)


def estimate(
    peek: Peek, body: bytes, targets: list[Target], default_max: int
) -> tuple[int, int, int]:
    """(prompt tokens, maximum output tokens, nano-USD at the dearest target)."""
    prompt = (len(body) + 3) // 4
    most = (
        peek.max_completion_tokens
        or peek.max_tokens
        or peek.maxTokens
        or peek.max_output_tokens
        or default_max
    )
    cost = Decimal(0)
    for target in targets:
        prices = target.info.prices if target.info else None
        if prices is None or prices.input is None:
            continue
        out_price = max(prices.output or Decimal(0), prices.reasoning or Decimal(0))
        cost = max(cost, (prompt * prices.input + most * out_price) / _M)
    return prompt, most, nano(cost)


class Refused(RequestError):
    """429 `budget_exceeded` / `rate_limited`, or 503 `limits_unavailable`, with headers."""

    def __init__(self, code: str, message: str, status: int, headers: dict[str, str]) -> None:
        super().__init__(code, message, None, status)
        self.headers = headers


def _reset(seconds: float) -> str:
    return f"{max(1, math.ceil(seconds))}s"


def ratelimit_headers(meters: list[Meter], values: tuple[int, ...]) -> dict[str, str]:
    """OpenAI's x-ratelimit-* headers for a key with RPM or TPM limits."""
    headers: dict[str, str] = {}
    for meter, value in zip(meters, values, strict=True):
        if meter.scope != "key" or meter.kind not in ("requests", "tokens"):
            continue
        kind = meter.kind
        headers[f"x-ratelimit-limit-{kind}"] = str(meter.limit)
        headers[f"x-ratelimit-remaining-{kind}"] = str(max(0, meter.limit - value))
        headers[f"x-ratelimit-reset-{kind}"] = _reset(meter.reset)
    return headers


_WHAT = {
    "budget": "The {scope} budget is exhausted for this period.",
    "requests": "The {scope}'s limit of {limit} requests per minute is reached.",
    "tokens": "The {scope}'s limit of {limit} tokens per minute is reached.",
    "concurrent": "The {scope}'s limit of {limit} requests at once is reached.",
}


def refusal(meter: Meter) -> Refused:
    """The 429 for the meter that refused: `budget_exceeded` or `rate_limited`."""
    code = "budget_exceeded" if meter.kind == "budget" else "rate_limited"
    retry = 1.0 if meter.kind == "concurrent" else meter.reset
    headers = {"retry-after": str(max(1, math.ceil(retry)))}
    if meter.scope == "key" and meter.kind in ("requests", "tokens"):
        headers |= {
            f"x-ratelimit-limit-{meter.kind}": str(meter.limit),
            f"x-ratelimit-remaining-{meter.kind}": "0",
            f"x-ratelimit-reset-{meter.kind}": _reset(meter.reset),
        }
    message = _WHAT[meter.kind].format(scope=meter.scope, limit=meter.limit)
    return Refused(code, message, 429, headers)


def used(report: Report) -> tuple[int, int]:
    """(tokens, nano-USD) a call really consumed, its broken attempts included."""
    tokens = report.usage.total_tokens + sum(
        a.tokens or 0 for a in report.attempts if a.outcome != "ok"
    )
    return tokens, nano(sum(provider_costs(report).values(), Decimal(0)))


def provider_costs(report: Report) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for a in report.attempts:
        if a.outcome != "ok" and a.cost:
            out[a.provider] = out.get(a.provider, Decimal(0)) + a.cost
    if report.costs is not None and report.target is not None:
        name = report.target.provider.name
        out[name] = out.get(name, Decimal(0)) + report.costs.total_tokens_cost
    return out
