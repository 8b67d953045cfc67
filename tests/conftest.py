"""Shared fixtures: the real gateway on loopback, and required-service handling for CI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway_harness import Gateway, running_gateway, write_config

REQUIRE_SERVICES = os.environ.get("ROUTER_REQUIRE_SERVICES") == "1"


def need(available: bool, reason: str) -> None:
    """Skip when a service is absent, but fail instead under CI (ROUTER_REQUIRE_SERVICES=1)."""
    if available:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing under CI: {reason}")
    pytest.skip(reason)


@pytest.fixture
def demo_gateway(tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(write_config(tmp_path), {}) as gw:
        yield gw
