"""The one protocol registry: protocol name (as in providers/*.toml) -> how to build its
backend around the app's upstream session.

A new wire format is one codec module plus one line here; `router.config.check_protocols`
checks every provider file against these names at start-up.
"""

from __future__ import annotations

from collections.abc import Callable

from router.protocols.anthropic import AnthropicMessages
from router.protocols.azure import AzureChat
from router.protocols.backend import HttpBackend
from router.protocols.demo import DemoBackend
from router.protocols.gemini import Gemini
from router.protocols.openai_responses import OpenAIBackend
from router.upstream import Upstream

AnyBackend = HttpBackend | DemoBackend

REGISTRY: dict[str, Callable[[Upstream], AnyBackend]] = {
    "openai": OpenAIBackend,  # Chat Completions, media, and Responses for Responses bodies
    "anthropic": lambda upstream: HttpBackend(AnthropicMessages(), upstream),
    "gemini": lambda upstream: HttpBackend(Gemini(), upstream),
    "azure": lambda upstream: HttpBackend(AzureChat(), upstream),
    "demo": lambda upstream: DemoBackend(),
}


def backends(upstream: Upstream) -> dict[str, AnyBackend]:
    """Every protocol's backend, built once at start-up around the app's upstream session."""
    return {name: build(upstream) for name, build in REGISTRY.items()}
