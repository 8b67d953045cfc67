"""The OpenAI Responses request: decoded with field-precise errors, its `input` items typed,
and the body kept as sent for the native passthrough to OpenAI's own Responses endpoint.

The canonical translation (for every other target) is `router.api.responses_translate`.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from router.api.common import field_of
from router.errors import RequestError

# ---- content parts --------------------------------------------------------------------------


class InputText(msgspec.Struct, frozen=True, tag="input_text"):
    text: str


class InputImage(msgspec.Struct, frozen=True, tag="input_image"):
    image_url: str | None = None
    file_id: str | None = None
    detail: str | None = None


class InputFile(msgspec.Struct, frozen=True, tag="input_file"):
    file_id: str | None = None
    file_data: str | None = None
    file_url: str | None = None
    filename: str | None = None


class OutputText(msgspec.Struct, frozen=True, tag="output_text"):
    """An earlier answer sent back; its `annotations` and `logprobs` are ignored."""

    text: str


class Refusal(msgspec.Struct, frozen=True, tag="refusal"):
    refusal: str


ContentPart = InputText | InputImage | InputFile | OutputText | Refusal

# ---- input items ----------------------------------------------------------------------------


class MessageItem(msgspec.Struct, frozen=True, tag="message"):
    role: Literal["user", "assistant", "system", "developer"]
    content: str | list[ContentPart]
    id: str | None = None
    status: str | None = None
    phase: str | None = None


class FunctionCallItem(msgspec.Struct, frozen=True, tag="function_call"):
    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: str | None = None
    namespace: str | None = None


class FunctionOutputItem(msgspec.Struct, frozen=True, tag="function_call_output"):
    call_id: str
    output: str | list[ContentPart]
    id: str | None = None
    status: str | None = None


class CustomCallItem(msgspec.Struct, frozen=True, tag="custom_tool_call"):
    call_id: str
    name: str
    input: str
    id: str | None = None
    status: str | None = None
    namespace: str | None = None


class CustomOutputItem(msgspec.Struct, frozen=True, tag="custom_tool_call_output"):
    call_id: str
    output: str | list[ContentPart]
    id: str | None = None


class SummaryText(msgspec.Struct, frozen=True):
    text: str
    type: str = "summary_text"


class ReasoningItem(msgspec.Struct, frozen=True, tag="reasoning"):
    summary: list[SummaryText] = []
    id: str | None = None
    encrypted_content: str | None = None
    content: list[dict[str, object]] | None = None
    status: str | None = None


class OtherItem(msgspec.Struct, frozen=True):
    """An item only OpenAI itself understands (`web_search_call`, `item_reference`, ...)."""

    type: str


Item = (
    MessageItem
    | FunctionCallItem
    | FunctionOutputItem
    | CustomCallItem
    | CustomOutputItem
    | ReasoningItem
    | OtherItem
)
_ITEMS: dict[str, type[Item]] = {
    "message": MessageItem,
    "function_call": FunctionCallItem,
    "function_call_output": FunctionOutputItem,
    "custom_tool_call": CustomCallItem,
    "custom_tool_call_output": CustomOutputItem,
    "reasoning": ReasoningItem,
}

# ---- the body -------------------------------------------------------------------------------


class ToolDef(msgspec.Struct, frozen=True):
    """A tool as declared: `function`, `custom` or one of OpenAI's built-in tools (whose
    other fields pass through to OpenAI untouched)."""

    type: str
    name: str | None = None
    description: str | None = None
    parameters: dict[str, object] | None = None
    strict: bool | None = None
    format: dict[str, object] | None = None


class ToolChoice(msgspec.Struct, frozen=True):
    type: str
    name: str | None = None


class Reasoning(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    effort: str | None = None
    summary: str | None = None
    generate_summary: str | None = None


class TextOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    format: dict[str, object] | None = None
    verbosity: str | None = None


class ResponsesBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """`CreateResponse` as in OpenAI's OpenAPI document, plus Codex's `client_metadata`."""

    model: str
    input: str | list[dict[str, object]] = []
    instructions: str | None = None
    tools: list[ToolDef] = []
    tool_choice: Literal["none", "auto", "required"] | ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    reasoning: Reasoning | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    text: TextOptions | None = None
    include: list[str] | None = None
    store: bool | None = None
    metadata: dict[str, str] | None = None
    prompt_cache_key: str | None = None
    previous_response_id: str | None = None
    stream: bool = False
    stream_options: dict[str, object] | None = None
    user: str | None = None
    safety_identifier: str | None = None
    service_tier: str | None = None
    truncation: str | None = None
    top_logprobs: int | None = None
    max_tool_calls: int | None = None
    background: bool | None = None
    conversation: str | dict[str, object] | None = None
    prompt: dict[str, object] | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: dict[str, object] | None = None
    context_management: list[dict[str, object]] | None = None
    moderation: dict[str, object] | None = None
    client_metadata: dict[str, object] | None = None


class Decoded(msgspec.Struct, frozen=True):
    """The typed body, its input items, and the body as sent (for the native passthrough)."""

    body: ResponsesBody
    items: tuple[Item, ...]
    raw: dict[str, object]


_RAW = msgspec.json.Decoder(dict[str, object])


def _invalid(exc: msgspec.ValidationError, prefix: str = "") -> RequestError:
    text, field = field_of(str(exc))
    code = "invalid_request"
    if "unknown field" in text:
        code, text = "unknown_parameter", f"Unknown parameter: '{prefix}{field}'."
    elif "missing required field" in text:
        code = "missing_required_parameter"
    path = f"{prefix}{field}" if field else (prefix.rstrip(".") or None)
    return RequestError(code, text, path)


def decode_body(data: bytes) -> Decoded:
    try:
        raw = _RAW.decode(data)
    except msgspec.ValidationError:
        raise RequestError("invalid_json", "The body must be a JSON object.", None) from None
    except msgspec.DecodeError as exc:
        raise RequestError("invalid_json", f"The body is not valid JSON: {exc}", None) from None
    try:
        body = msgspec.convert(raw, ResponsesBody)
    except msgspec.ValidationError as exc:
        raise _invalid(exc) from None
    return Decoded(body, items_of(body.input, "input"), raw)


def items_of(value: str | list[dict[str, object]], field: str) -> tuple[Item, ...]:
    """`input` as typed items: a string is one user message; an item without `type` is a
    message (OpenAI's `EasyInputMessage`)."""
    if isinstance(value, str):
        return (MessageItem("user", value),)
    out: list[Item] = []
    for i, raw in enumerate(value):
        kind = raw.get("type", "message")
        if not isinstance(kind, str):
            raise RequestError("invalid_type", "`type` must be a string.", f"{field}[{i}].type")
        struct = _ITEMS.get(kind)
        if struct is None:
            out.append(OtherItem(kind))
            continue
        fields = {k: v for k, v in raw.items() if k != "type"}
        try:
            out.append(msgspec.convert(fields, struct))
        except msgspec.ValidationError as exc:
            raise _invalid(exc, f"{field}[{i}].") from None
    return tuple(out)


def validate(body: ResponsesBody) -> None:
    """Checks beyond the types, each naming its parameter."""
    if body.temperature is not None and not 0 <= body.temperature <= 2:
        raise RequestError("invalid_value", "temperature must be between 0 and 2.", "temperature")
    if body.top_p is not None and not 0 <= body.top_p <= 1:
        raise RequestError("invalid_value", "top_p must be between 0 and 1.", "top_p")
    if body.max_output_tokens is not None and body.max_output_tokens < 16:
        raise RequestError(
            "invalid_value", "max_output_tokens must be at least 16.", "max_output_tokens"
        )
    if body.background:
        raise RequestError(
            "unsupported_parameter", "`background` is not supported by this gateway.", "background"
        )
    if body.conversation is not None:
        raise RequestError(
            "unsupported_parameter",
            "`conversation` is not supported by this gateway; use previous_response_id.",
            "conversation",
        )
    if not body.input:
        raise RequestError("missing_required_parameter", "`input` is required.", "input")
