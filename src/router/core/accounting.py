"""Costs from the price catalog: every kind of token priced with its own rate.

Prices are USD per 1M tokens (`router.config.Prices`). A model without prices has an unknown
cost (`None`), never a made-up zero.
"""

from __future__ import annotations

from decimal import Decimal

from router.config import Prices
from router.core.types import Costs, Usage

_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)


def price(usage: Usage, prices: Prices | None) -> Costs | None:
    """What `usage` cost at `prices`; None when the catalog does not price this model."""
    if prices is None or prices.input is None or prices.output is None:
        return None
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    fresh = usage.prompt_tokens - cached - written
    reasoning = min(usage.reasoning_tokens, usage.completion_tokens)
    answer = usage.completion_tokens - reasoning
    input_cost = (
        fresh * prices.input
        + cached * _or(prices.cached_input, prices.input)
        + written * _or(prices.cache_write, prices.input)
    ) / _MILLION
    output_cost = (
        answer * prices.output + reasoning * _or(prices.reasoning, prices.output)
    ) / _MILLION
    searched = search_fee(usage.searches, prices)
    return Costs(input_cost, output_cost, input_cost + output_cost + searched, searched)


def search_fee(searches: int, prices: Prices) -> Decimal:
    """What `searches` web searches for one answer cost: per search, and/or once for an
    answer grounded at all (as Gemini bills), whichever the model's file declares."""
    if not searches:
        return _ZERO
    grounded = _or(prices.per_grounded_request, _ZERO)
    return searches * _or(prices.per_search, _ZERO) + grounded


def with_search(costs: Costs | None, fee: Decimal) -> Costs | None:
    """`costs` plus a search fee paid apart (the gateway-run search's)."""
    if costs is None or not fee:
        return costs
    return Costs(
        costs.input_tokens_cost,
        costs.output_tokens_cost,
        costs.total_tokens_cost + fee,
        costs.search_cost + fee,
    )


def _or(value: Decimal | None, default: Decimal) -> Decimal:
    return default if value is None else value
