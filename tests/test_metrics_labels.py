"""The fast metric kinds (`router.metrics_labels`) expose exactly what prometheus_client's own
do for the same observations: same children, same buckets, sums and counts."""

from __future__ import annotations

import random

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from router.metrics_labels import Counter, Gauge, Histogram

EDGES = [0.0, 0.1, 0.5, 1.0, 5.0, 6.0, 0.0999, 0.3, 1e9, -1.0, float("nan"), float("inf")]


def _exposition(registry: CollectorRegistry) -> list[str]:
    text = generate_latest(registry).decode()
    return [line for line in text.splitlines() if "_created" not in line]


def test_histograms_bucket_sum_and_count_as_the_librarys() -> None:
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    buckets = (0.1, 0.5, 1, 5)
    fast = Histogram("h", "doc", ["k"], registry=ours, buckets=buckets)
    slow = prometheus_client.Histogram("h", "doc", ["k"], registry=theirs, buckets=buckets)
    bare = Histogram("b", "doc", registry=ours)
    plain = prometheus_client.Histogram("b", "doc", registry=theirs)
    rng = random.Random(7)
    for value in EDGES + [rng.random() * 7 for _ in range(500)]:
        for label in ("x", "y"):
            fast.labels(label).observe(value)
            slow.labels(label).observe(value)
        bare.observe(value)
        plain.observe(value)
    assert _exposition(ours) == _exposition(theirs)
    with pytest.raises(ValueError):
        fast.observe(1.0)  # a labelled parent refuses, as the library's does


def test_labels_returns_the_one_child_per_label_values() -> None:
    registry = CollectorRegistry()
    counter = Counter("c", "doc", ["a", "b"], registry=registry)
    gauge = Gauge("g", "doc", ["a"], registry=registry)
    child = counter.labels("p", "q")
    assert counter.labels("p", "q") is child
    assert counter.labels(a="p", b="q") is child  # named values go the library's way
    counter.labels("p", "q").inc(2)
    counter.labels(1, "q").inc()  # not a string: converted by the library, its own child
    gauge.labels("z").set(4)
    assert registry.get_sample_value("c_total", {"a": "p", "b": "q"}) == 2
    assert registry.get_sample_value("c_total", {"a": "1", "b": "q"}) == 1
    assert registry.get_sample_value("g", {"a": "z"}) == 4
