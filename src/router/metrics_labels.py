"""prometheus_client's metric kinds with a `labels()` that finds an existing child in one dict
lookup. The library's own takes a lock and converts and counts the values on every call; a
request calls it about a dozen times (tokens, costs, durations, the GenAI histograms). A
first use, or values that are not all strings, goes the library's way."""

from __future__ import annotations

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
