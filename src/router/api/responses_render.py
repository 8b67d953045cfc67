"""OpenAI Responses output: the `response` object and its output items, built from a
canonical `Completion` (non-streamed) or piece by piece (`router.api.responses_stream`)."""

from __future__ import annotations

import time

import msgspec

from router.api.responses_request import ResponsesBody, SummaryText, ToolChoice, ToolDef
from router.api.responses_translate import custom_input
from router.core.types import Completion, ToolCall, Usage
from router.ids import hex_id

UNSET = msgspec.UNSET


def new_id(prefix: str) -> str:
    return f"{prefix}_{hex_id(32)}"


# ---- output items ---------------------------------------------------------------------------


class OutText(msgspec.Struct, kw_only=True, tag_field="type", tag="output_text"):
    text: str
    annotations: tuple[()] = ()
    logprobs: tuple[()] = ()


class OutMessage(msgspec.Struct, kw_only=True, tag_field="type", tag="message"):
    id: str
    status: str = "completed"
    role: str = "assistant"
    content: list[OutText] = []


class OutFunctionCall(msgspec.Struct, kw_only=True, tag_field="type", tag="function_call"):
    id: str
    call_id: str
    name: str
    arguments: str
    status: str = "completed"


class OutCustomCall(msgspec.Struct, kw_only=True, tag_field="type", tag="custom_tool_call"):
    id: str
    call_id: str
    name: str
    input: str
    status: str = "completed"


class OutReasoning(msgspec.Struct, kw_only=True, tag_field="type", tag="reasoning"):
    id: str
    summary: list[SummaryText] = []
    encrypted_content: str | msgspec.UnsetType = UNSET


OutItem = OutMessage | OutFunctionCall | OutCustomCall | OutReasoning


def call_item(call: ToolCall, custom: frozenset[str]) -> OutFunctionCall | OutCustomCall:
    if call.name in custom:
        return OutCustomCall(
            id=new_id("ctc"), call_id=call.id, name=call.name, input=custom_input(call.arguments)
        )
    return OutFunctionCall(
        id=new_id("fc"), call_id=call.id, name=call.name, arguments=call.arguments
    )


def output_items(completion: Completion, custom: frozenset[str]) -> list[OutItem]:
    out: list[OutItem] = []
    if completion.reasoning:
        out.append(OutReasoning(id=new_id("rs"), summary=[SummaryText(completion.reasoning)]))
    if completion.text or not completion.tool_calls:
        text = OutText(text=completion.text)
        out.append(OutMessage(id=new_id("msg"), content=[text]))
    out.extend(call_item(c, custom) for c in completion.tool_calls)
    return out


# ---- the response object --------------------------------------------------------------------


class InputDetails(msgspec.Struct):
    cached_tokens: int


class OutputDetails(msgspec.Struct):
    reasoning_tokens: int


class OutUsage(msgspec.Struct, kw_only=True):
    input_tokens: int
    input_tokens_details: InputDetails
    output_tokens: int
    output_tokens_details: OutputDetails
    total_tokens: int


class ErrorInfo(msgspec.Struct):
    code: str
    message: str


class Incomplete(msgspec.Struct):
    reason: str


class ReasoningInfo(msgspec.Struct):
    effort: str | None = None
    summary: str | None = None


class TextInfo(msgspec.Struct):
    format: dict[str, object]
    verbosity: str = "medium"


class ResponseObject(msgspec.Struct, kw_only=True):
    id: str
    object: str = "response"
    created_at: int
    status: str
    error: ErrorInfo | None = None
    incomplete_details: Incomplete | None = None
    instructions: str | None
    max_output_tokens: int | None
    model: str
    output: list[OutItem]
    parallel_tool_calls: bool
    previous_response_id: str | None
    reasoning: ReasoningInfo
    store: bool
    temperature: float | None
    text: TextInfo
    tool_choice: str | ToolChoice
    tools: list[ToolDef]
    top_p: float | None
    truncation: str = "disabled"
    usage: OutUsage | None = None
    user: str | None = None
    metadata: dict[str, str]
    output_text: str | msgspec.UnsetType = UNSET  # the SDKs' convenience, non-streamed only


def out_usage(u: Usage) -> OutUsage:
    return OutUsage(
        input_tokens=u.prompt_tokens,
        input_tokens_details=InputDetails(u.cached_tokens),
        output_tokens=u.completion_tokens,
        output_tokens_details=OutputDetails(u.reasoning_tokens),
        total_tokens=u.total_tokens,
    )


def skeleton(ident: str, body: ResponsesBody, model: str) -> ResponseObject:
    """The response as it stands before any output: `in_progress`, no usage."""
    reasoning = body.reasoning
    text = body.text
    choice = body.tool_choice
    return ResponseObject(
        id=ident,
        created_at=int(time.time()),
        status="in_progress",
        instructions=body.instructions,
        max_output_tokens=body.max_output_tokens,
        model=model,
        output=[],
        parallel_tool_calls=body.parallel_tool_calls is not False,
        previous_response_id=body.previous_response_id,
        reasoning=ReasoningInfo(reasoning.effort, reasoning.summary)
        if reasoning
        else ReasoningInfo(),
        store=body.store is not False,
        temperature=body.temperature,
        text=TextInfo(
            (text.format if text and text.format else None) or {"type": "text"},
            (text.verbosity if text else None) or "medium",
        ),
        tool_choice=choice if choice is not None else "auto",
        tools=body.tools,
        top_p=body.top_p,
        user=body.user,
        metadata=body.metadata or {},
    )


def finish(response: ResponseObject, completion: Completion, output: list[OutItem]) -> None:
    """Complete `response` with the answer's output, usage and status."""
    response.output = output
    response.usage = out_usage(completion.usage)
    if completion.finish == "length":
        response.status = "incomplete"
        response.incomplete_details = Incomplete("max_output_tokens")
    elif completion.finish == "content_filter":
        response.status = "incomplete"
        response.incomplete_details = Incomplete("content_filter")
    else:
        response.status = "completed"


def output_text(output: list[OutItem]) -> str:
    return "".join(t.text for item in output if isinstance(item, OutMessage) for t in item.content)
