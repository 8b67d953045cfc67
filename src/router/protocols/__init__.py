"""The one protocol registry: protocol name (as in providers/*.toml) -> backend.

A new wire format is one codec module plus one line here.
"""

from __future__ import annotations

from router.protocols.anthropic import AnthropicMessages
from router.protocols.azure import AzureChat
from router.protocols.backend import Backend, HttpBackend
from router.protocols.demo import DemoBackend
from router.protocols.gemini import Gemini
from router.protocols.openai_chat import OpenAIChat
from router.protocols.openai_media import OpenAIMedia
from router.upstream import Upstream


def backends(upstream: Upstream) -> dict[str, Backend]:
    """Every protocol's backend, built once at start-up around the app's upstream session."""
    return {
        "openai": HttpBackend(OpenAIChat(), upstream, OpenAIMedia()),
        "anthropic": HttpBackend(AnthropicMessages(), upstream),
        "gemini": HttpBackend(Gemini(), upstream),
        "azure": HttpBackend(AzureChat(), upstream),
        "demo": DemoBackend(),
    }
