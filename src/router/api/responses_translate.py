"""A Responses request made canonical, for every target that is not OpenAI's own Responses
endpoint.

- `instructions`, `system` and `developer` messages become system messages;
- `function` tools and their `function_call` / `function_call_output` items become tools,
  tool calls and tool messages; a `custom` tool (Codex's `apply_patch`) becomes a function
  taking one string, `{"input": "..."}`, and its calls are rendered back as custom calls;
- `reasoning` items are kept only for OpenAI itself (another provider would reject them);
- what another provider cannot take and the caller would not miss (built-in tools such as
  `web_search`, `include`, `store`, `prompt_cache_key`, `metadata`, `client_metadata`, ...) is
  dropped and named in `x-router-dropped`; what would change the answer if dropped (a forced
  built-in tool, a file input) is `blocked`, a 400 for such a target.
"""

from __future__ import annotations

import msgspec

from router.api.responses_request import (
    ContentPart,
    CustomCallItem,
    CustomOutputItem,
    FunctionCallItem,
    FunctionOutputItem,
    InputFile,
    InputImage,
    InputText,
    Item,
    MessageItem,
    OtherItem,
    ReasoningItem,
    Refusal,
    ResponsesBody,
    ToolChoice,
    ToolDef,
)
from router.core.types import ChatRequest, ImagePart, Message, Part, TextPart, Tool, ToolCall

_ENCODE = msgspec.json.Encoder().encode
_INPUT = msgspec.json.Decoder(dict[str, object])
CUSTOM_SCHEMA: dict[str, object] = {
    "type": "object",
    "properties": {"input": {"type": "string", "description": "The raw input for the tool."}},
    "required": ["input"],
    "additionalProperties": False,
}
_DROPPABLE = (
    "include",
    "store",
    "metadata",
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt_cache_options",
    "client_metadata",
    "safety_identifier",
    "service_tier",
    "truncation",
    "parallel_tool_calls",
    "max_tool_calls",
    "context_management",
    "moderation",
    "stream_options",
    "user",
)


class Translated(msgspec.Struct, frozen=True):
    request: ChatRequest
    custom: frozenset[str]  # names of custom tools: their calls render as custom_tool_call
    dropped: tuple[str, ...]  # named in x-router-dropped when a translated target answers
    blocked: tuple[tuple[str, str], ...]  # (field, why): a 400 for a translated target


def custom_arguments(text: str) -> str:
    return _ENCODE({"input": text}).decode()


def custom_input(arguments: str) -> str:
    """The raw input of a custom tool call from its canonical arguments."""
    try:
        value = _INPUT.decode(arguments).get("input", "")
    except msgspec.DecodeError:
        return arguments
    return value if isinstance(value, str) else _ENCODE(value).decode()


class _Notes:
    def __init__(self) -> None:
        self.dropped: list[str] = []
        self.blocked: list[tuple[str, str]] = []

    def drop(self, name: str) -> None:
        if name not in self.dropped:
            self.dropped.append(name)


def translate(body: ResponsesBody, items: tuple[Item, ...]) -> Translated:
    notes = _Notes()
    for name in _DROPPABLE:
        if getattr(body, name) is not None:
            notes.drop(name)
    tools, custom = _tools(body.tools, notes)
    messages = _messages(body, items, notes)
    request = ChatRequest(
        messages=messages,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_output_tokens,
        tools=tools,
        tool_choice=_tool_choice(body.tool_choice, tools, notes),
        response_format=_response_format(body, notes),
        reasoning_effort=_effort(body, notes),
    )
    return Translated(request, custom, tuple(notes.dropped), tuple(notes.blocked))


def _tools(defs: list[ToolDef], notes: _Notes) -> tuple[tuple[Tool, ...], frozenset[str]]:
    tools: list[Tool] = []
    custom: set[str] = set()
    for i, t in enumerate(defs):
        if t.type == "function" and t.name:
            tools.append(Tool(t.name, t.description, t.parameters))
        elif t.type == "custom" and t.name:
            custom.add(t.name)
            tools.append(Tool(t.name, t.description, CUSTOM_SCHEMA))
        else:
            notes.drop(f"tools[{i}] ({t.type})")
    return tuple(tools), frozenset(custom)


def _tool_choice(
    choice: str | ToolChoice | None, tools: tuple[Tool, ...], notes: _Notes
) -> str | dict[str, object] | None:
    if choice is None or isinstance(choice, str):
        if choice == "required" and not tools:
            notes.blocked.append(("tool_choice", "it requires a tool, and only built-in ones"))
        return choice if tools else None
    if choice.type in ("function", "custom") and choice.name:
        return {"name": choice.name}
    if choice.type == "allowed_tools":
        notes.drop("tool_choice")
        return "auto"
    notes.blocked.append(("tool_choice", f"it forces the built-in tool {choice.type}"))
    return None


def _response_format(body: ResponsesBody, notes: _Notes) -> dict[str, object] | None:
    text = body.text
    if text is None:
        return None
    if text.verbosity is not None:
        notes.drop("text.verbosity")
    fmt = text.format
    if fmt is None or fmt.get("type") == "text":
        return None
    if fmt.get("type") == "json_schema":
        schema = {k: v for k, v in fmt.items() if k in ("name", "schema", "strict", "description")}
        return {"type": "json_schema", "json_schema": schema}
    return {"type": fmt.get("type")}


def _effort(body: ResponsesBody, notes: _Notes) -> str | None:
    reasoning = body.reasoning
    if reasoning is None:
        return None
    if reasoning.summary is not None or reasoning.generate_summary is not None:
        notes.drop("reasoning.summary")
    return reasoning.effort


# ---- input items -> messages --------------------------------------------------------------

_ROLE = {"developer": "system"}


def _messages(body: ResponsesBody, items: tuple[Item, ...], notes: _Notes) -> tuple[Message, ...]:
    out: list[Message] = []
    if body.instructions:
        out.append(Message("system", (TextPart(body.instructions),)))
    for i, item in enumerate(items):
        if isinstance(item, MessageItem):
            out.append(_message(item, f"input[{i}]", notes))
        elif isinstance(item, FunctionCallItem | CustomCallItem):
            _call(out, item)
        elif isinstance(item, FunctionOutputItem | CustomOutputItem):
            text = item.output if isinstance(item.output, str) else _text(item.output)
            out.append(Message("tool", (TextPart(text),), tool_call_id=item.call_id))
        elif isinstance(item, ReasoningItem):
            notes.drop("reasoning items")
        else:
            assert isinstance(item, OtherItem)
            notes.drop(f"{item.type} items")
    return tuple(out)


def _call(out: list[Message], item: FunctionCallItem | CustomCallItem) -> None:
    """A tool call joins the assistant message before it (one turn, several calls)."""
    arguments = (
        item.arguments if isinstance(item, FunctionCallItem) else custom_arguments(item.input)
    )
    call = ToolCall(item.call_id, item.name, arguments)
    last = out[-1] if out else None
    if last is not None and last.role == "assistant":
        out[-1] = msgspec.structs.replace(last, tool_calls=(*last.tool_calls, call))
    else:
        out.append(Message("assistant", (), (call,)))


def _message(item: MessageItem, field: str, notes: _Notes) -> Message:
    role = _ROLE.get(item.role, item.role)
    if isinstance(item.content, str):
        return Message(role, (TextPart(item.content),))  # type: ignore[arg-type]
    parts: list[Part] = []
    for j, p in enumerate(item.content):
        part = _part(p)
        if part is None:
            notes.blocked.append((f"{field}.content[{j}]", "file inputs reach only OpenAI"))
            continue
        parts.append(part)
    return Message(role, tuple(parts))  # type: ignore[arg-type]


def _part(p: ContentPart) -> Part | None:
    if isinstance(p, InputText):
        return TextPart(p.text)
    if isinstance(p, InputImage):
        return ImagePart(p.image_url, p.detail) if p.image_url else None
    if isinstance(p, InputFile):
        return None
    if isinstance(p, Refusal):
        return TextPart(p.refusal)
    return TextPart(p.text)


def _text(parts: list[ContentPart]) -> str:
    return "".join(p.text for p in parts if isinstance(p, InputText))
