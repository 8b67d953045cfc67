"""The OpenAI chat request: `ChatBody` decoded and checked, then made canonical.

Accepted and ignored (nothing to forward them to): `metadata`, `store`, `service_tier`,
`safety_identifier`, `prompt_cache_key`, `parallel_tool_calls`. Refused with a 400 naming the
parameter unless left at their defaults: `n`, `logprobs`, `top_logprobs`, `logit_bias`,
`presence_penalty`, `frequency_penalty`, `audio`, `modalities` other than text, `prediction`,
`web_search_options`.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from router.api.parts import InImageUrl, InRefusal, InText, part_of
from router.core.types import (
    ChatRequest,
    ImagePart,
    Message,
    Role,
    TextPart,
    Tool,
    ToolCall,
)
from router.errors import RequestError

# ---- request ------------------------------------------------------------------------------


InPart = InText | InImageUrl | InRefusal


class _InFunction(msgspec.Struct, frozen=True):
    name: str
    arguments: str


class InToolCall(msgspec.Struct, frozen=True):
    id: str
    function: _InFunction
    type: Literal["function"] = "function"


class InMessage(msgspec.Struct, frozen=True):
    """Unknown keys are ignored here: SDKs send back response messages (`annotations`...)."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[InPart] | None = None
    name: str | None = None
    tool_calls: list[InToolCall] | None = None
    tool_call_id: str | None = None
    refusal: str | None = None


class _FunctionDef(msgspec.Struct, frozen=True):
    name: str
    description: str | None = None
    parameters: dict[str, object] | None = None
    strict: bool | None = None


class InTool(msgspec.Struct, frozen=True):
    function: _FunctionDef
    type: Literal["function"] = "function"


class _Name(msgspec.Struct, frozen=True):
    name: str


class NamedToolChoice(msgspec.Struct, frozen=True):
    function: _Name
    type: Literal["function"] = "function"


class StreamOptions(msgspec.Struct, frozen=True):
    include_usage: bool = False
    include_obfuscation: bool | None = None


class ChatBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    messages: list[InMessage]
    model: str | None = None
    models: list[str] = []  # extension: more models, in order (OpenRouter's `models`)
    fallback_models: list[str] = []  # extension: tried after `model` and `models`
    strategy: str | None = None  # extension: how `models` are ordered (x-router-strategy)
    stream: bool = False
    stream_options: StreamOptions | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    user: str | None = None
    tools: list[InTool] | None = None
    tool_choice: Literal["none", "auto", "required"] | NamedToolChoice | None = None
    response_format: dict[str, object] | None = None
    reasoning_effort: str | None = None
    # accepted, not forwarded
    parallel_tool_calls: bool | None = None
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    # refused unless at their defaults
    n: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    logit_bias: dict[str, float] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    modalities: list[str] | None = None
    audio: dict[str, object] | None = None
    prediction: dict[str, object] | None = None
    web_search_options: dict[str, object] | None = None


CHAT_BODY = msgspec.json.Decoder(ChatBody)


def _unsupported(body: ChatBody) -> str | None:
    """The first parameter set to something this gateway cannot honour."""
    checks = (
        ("n", body.n not in (None, 1)),
        ("logprobs", bool(body.logprobs)),
        ("top_logprobs", body.top_logprobs not in (None, 0)),
        ("logit_bias", bool(body.logit_bias)),
        ("presence_penalty", body.presence_penalty not in (None, 0)),
        ("frequency_penalty", body.frequency_penalty not in (None, 0)),
        ("modalities", body.modalities not in (None, ["text"])),
        ("audio", body.audio is not None),
        ("prediction", body.prediction is not None),
        ("web_search_options", body.web_search_options is not None),
    )
    return next((name for name, bad in checks if bad), None)


def validate(body: ChatBody) -> None:
    """Checks beyond the types, each naming its parameter."""
    if body.model is None and not body.models:
        raise RequestError("missing_required_parameter", "`model` is required.", "model")
    if not body.messages:
        raise RequestError("invalid_value", "`messages` must not be empty.", "messages")
    if body.temperature is not None and not 0 <= body.temperature <= 2:
        raise RequestError("invalid_value", "temperature must be between 0 and 2.", "temperature")
    if body.top_p is not None and not 0 <= body.top_p <= 1:
        raise RequestError("invalid_value", "top_p must be between 0 and 1.", "top_p")
    for name in ("max_tokens", "max_completion_tokens"):
        value = getattr(body, name)
        if value is not None and value < 1:
            raise RequestError("invalid_value", f"{name} must be at least 1.", name)
    for i, m in enumerate(body.messages):
        if m.role == "tool" and not m.tool_call_id:
            raise RequestError(
                "missing_required_parameter",
                "A tool message needs `tool_call_id`.",
                f"messages[{i}].tool_call_id",
            )
    unsupported = _unsupported(body)
    if unsupported is not None:
        raise RequestError(
            "unsupported_parameter",
            f"`{unsupported}` is not supported by this gateway.",
            unsupported,
        )


_ROLE: dict[str, Role] = {
    "developer": "system",
    "system": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}


def _message(m: InMessage) -> Message:
    content = m.content
    if content is None:
        parts: tuple[TextPart | ImagePart, ...] = ()
    elif isinstance(content, str):
        parts = (TextPart(content),)
    else:
        parts = tuple(part_of(p) for p in content)
    if m.refusal and not parts:
        parts = (TextPart(m.refusal),)
    calls = tuple(ToolCall(c.id, c.function.name, c.function.arguments) for c in m.tool_calls or ())
    return Message(_ROLE[m.role], parts, calls, m.tool_call_id, m.name)


def chat_request(body: ChatBody) -> ChatRequest:
    choice = body.tool_choice
    stop = body.stop
    return ChatRequest(
        messages=tuple(_message(m) for m in body.messages),
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
        seed=body.seed,
        tools=tuple(
            Tool(t.function.name, t.function.description, t.function.parameters)
            for t in body.tools or ()
        ),
        tool_choice={"name": choice.function.name}
        if isinstance(choice, NamedToolChoice)
        else choice,
        response_format=body.response_format,
        user=body.user,
        reasoning_effort=body.reasoning_effort,
    )
