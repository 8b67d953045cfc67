"""prometheus_client's metric kinds with a `labels()` that finds an existing child in one dict
lookup, and a histogram whose `observe` finds its bucket by bisection. The library's own
`labels()` takes a lock and converts and counts the values on every call, and its `observe`
walks the buckets one by one; a request calls them about a dozen and seven times (tokens,
costs, durations, the GenAI histograms). A first use, values that are not all strings, an
exemplar or a NaN go the library's way."""

from __future__ import annotations

from bisect import bisect_left
from typing import Any

import prometheus_client
from prometheus_client.metrics import MetricWrapperBase


def _child(metric: MetricWrapperBase, values: tuple[Any, ...], named: dict[str, Any]) -> Any:
    return None if named else metric._metrics.get(values)


class Counter(prometheus_client.Counter):
    def labels(self, *values: Any, **named: Any) -> Any:
        return _child(self, values, named) or super().labels(*values, **named)


class Gauge(prometheus_client.Gauge):
    def labels(self, *values: Any, **named: Any) -> Any:
        return _child(self, values, named) or super().labels(*values, **named)


class Histogram(prometheus_client.Histogram):
    def labels(self, *values: Any, **named: Any) -> Any:
        return _child(self, values, named) or super().labels(*values, **named)

    def observe(self, amount: float, exemplar: dict[str, str] | None = None) -> None:
        buckets = getattr(self, "_buckets", None)  # None: a labelled parent, which refuses
        if buckets is None or exemplar or amount != amount:
            super().observe(amount, exemplar)
            return
        self._sum.inc(amount)
        # the first bucket whose upper bound is >= amount (the last is +Inf), as the library's
        buckets[bisect_left(self._upper_bounds, amount)].inc(1)
