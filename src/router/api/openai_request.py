"""The OpenAI chat request: `ChatBody` decoded and checked, then made canonical.

Every parameter of the Chat Completions spec is accepted. Those with a canonical meaning
(sampling, penalties, `n`, `logprobs`, tools, formats ...) reach every protocol that has an
equivalent; OpenAI-only ones (`metadata`, `store`, `service_tier`, `modalities`, `audio`,
`prediction`, `web_search_options`, `verbosity` ...) pass through unchanged to
OpenAI-compatible targets (`PASSTHROUGH`). A target that cannot honour one drops it, named in
`x-router-dropped`, or is passed by, as its provider file says (`on_unsupported`). Fields
outside the spec are provider extras (the SDKs' `extra_body`): they go only to providers whose
file lists them (`extra_params`), and are refused with a 400 naming the field elsewhere.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from msgspec import UNSET

from router.api.common import MAX_OUTPUT, check_ranges, decode
from router.api.parts import InImageUrl, InRefusal, InText, check_images, part_of
from router.core.types import (
    ChatRequest,
    ImagePart,
    Message,
    Native,
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
    n: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    logit_bias: dict[str, float] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    # OpenAI-only: passed through to OpenAI-compatible targets as sent
    parallel_tool_calls: Any = msgspec.UNSET
    metadata: Any = msgspec.UNSET
    store: Any = msgspec.UNSET
    service_tier: Any = msgspec.UNSET
    safety_identifier: Any = msgspec.UNSET
    prompt_cache_key: Any = msgspec.UNSET
    prompt_cache_retention: Any = msgspec.UNSET
    prompt_cache_options: Any = msgspec.UNSET
    verbosity: Any = msgspec.UNSET
    moderation: Any = msgspec.UNSET
    modalities: Any = msgspec.UNSET
    audio: Any = msgspec.UNSET
    prediction: Any = msgspec.UNSET
    web_search_options: Any = msgspec.UNSET
    function_call: Any = msgspec.UNSET
    functions: Any = msgspec.UNSET


class _LenientBody(ChatBody, frozen=True, forbid_unknown_fields=False):
    """The same, for a body with provider extras (fields outside the spec)."""


PASSTHROUGH = (
    "parallel_tool_calls",
    "metadata",
    "store",
    "service_tier",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt_cache_options",
    "verbosity",
    "moderation",
    "modalities",
    "audio",
    "prediction",
    "function_call",
    "functions",
)
_STRICT = msgspec.json.Decoder(ChatBody)
_LENIENT = msgspec.json.Decoder(_LenientBody)
_FIELDS = msgspec.json.Decoder(dict[str, msgspec.Raw])
_KNOWN = frozenset(ChatBody.__struct_fields__)


class Decoded(msgspec.Struct, frozen=True):
    body: ChatBody
    extra: dict[str, object] | None  # provider extras, by name


def decode_chat(raw: bytes) -> Decoded:
    """The body, strictly; fields outside the spec are kept apart as provider extras (the
    common case, a body without any, costs one decode)."""
    try:
        return Decoded(decode(_STRICT, raw), None)
    except RequestError as exc:
        if exc.code != "unknown_field" or exc.field is None or "." in exc.field:
            raise  # a typo inside a message or tool is no provider extra
    fields = decode(_FIELDS, raw)
    extra = {n: msgspec.json.decode(v) for n, v in fields.items() if n not in _KNOWN}
    return Decoded(decode(_LENIENT, raw), extra)


_RANGES: tuple[tuple[str, float, float], ...] = (
    ("temperature", 0, 2),
    ("top_p", 0, 1),
    ("presence_penalty", -2, 2),
    ("frequency_penalty", -2, 2),
    ("n", 1, 128),
    ("top_logprobs", 0, 20),
    ("max_tokens", 1, MAX_OUTPUT),
    ("max_completion_tokens", 1, MAX_OUTPUT),
    ("seed", -(2**63), 2**63 - 1),
)


def validate(body: ChatBody) -> None:
    """Checks beyond the types, each naming its parameter."""
    if body.model is None and not body.models:
        raise RequestError("missing_required_parameter", "`model` is required.", "model")
    if not body.messages:
        raise RequestError("invalid_value", "`messages` must not be empty.", "messages")
    check_ranges(body, _RANGES)
    for bias in (body.logit_bias or {}).values():
        if not -100 <= bias <= 100:
            raise RequestError(
                "invalid_value", "logit_bias values must be between -100 and 100.", "logit_bias"
            )
    for i, m in enumerate(body.messages):
        if m.role == "tool" and not m.tool_call_id:
            raise RequestError(
                "missing_required_parameter",
                "A tool message needs `tool_call_id`.",
                f"messages[{i}].tool_call_id",
            )
        if isinstance(m.content, list):
            check_images(m.content, f"messages[{i}].content")


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


def _native(body: ChatBody) -> Native | None:
    fields = {name: value for name in PASSTHROUGH if (value := getattr(body, name)) is not UNSET}
    if body.max_completion_tokens is not None:  # kept by its own name for OpenAI targets
        fields["max_completion_tokens"] = body.max_completion_tokens
    return Native("openai", fields) if fields else None


def chat_request(body: ChatBody, extra: dict[str, object] | None = None) -> ChatRequest:
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
        presence_penalty=body.presence_penalty,
        frequency_penalty=body.frequency_penalty,
        n=body.n or 1,
        logprobs=bool(body.logprobs),
        top_logprobs=body.top_logprobs,
        logit_bias=body.logit_bias,
        native=_native(body),
        extra=extra,
        search=body.web_search_options not in (UNSET, None),  # asks for grounded answers
    )
