"""Anthropic Messages (`POST /v1/messages`) on the wire.

Streams follow the recorded ones: `event:` + `data:` lines, `message_start`, one
`content_block_start` per block (thinking, text, tool_use) with a single `ping` after the first,
`content_block_delta`s (thinking_delta + signature_delta, text_delta, input_json_delta),
`content_block_stop`, `message_delta` with the final usage, `message_stop`.
`Fault.content_policy()` is a 200 refusal (`stop_reason: "refusal"`), as Claude answers it
(template: recorded/anthropic-sdk-python/refusal_response.txt).
"""

from __future__ import annotations

from typing import Any

import msgspec

from fakes import cassettes
from fakes.anthropic_strict import request_problem
from fakes.faults import Fault, Reply, ToolCall, Usage
from fakes.frames import Answer, Ctx, Frame, FrameKind, Stream, Whole, dumps, error_body

SSE = "text/event-stream; charset=utf-8"
SIGNATURE = "RmFrZSB0aGlua2luZyBzaWduYXR1cmU="
PING = b'event: ping\ndata: {"type": "ping"}\n\n'


def _event(name: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + dumps(payload) + b"\n\n"


def _usage(u: Usage, final: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "input_tokens": u.prompt - u.cached - u.cache_write,
        "cache_creation_input_tokens": u.cache_write,
        "cache_read_input_tokens": u.cached,
    }
    if final:
        return out | {"output_tokens": u.completion}
    creation = {"ephemeral_5m_input_tokens": u.cache_write, "ephemeral_1h_input_tokens": 0}
    return out | {
        "cache_creation": creation,
        "output_tokens": u.completion,
        "service_tier": "standard",
        "inference_geo": "not_available",
    }


def _blocks(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.reasoning:
        blocks.append({"type": "thinking", "thinking": reply.reasoning, "signature": SIGNATURE})
    if reply.text is not None:
        blocks.append({"type": "text", "text": reply.text})
    if reply.tool_call:
        call = reply.tool_call
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        )
    return blocks


class AnthropicMessages:
    """Renders `/v1/messages` answers and errors."""

    def chat(self, reply: Reply, ctx: Ctx) -> Answer:
        if reply.recorded:
            return _recorded(ctx)
        stop = "tool_use" if reply.tool_call else "end_turn"
        if not ctx.stream:
            return Whole(
                pieces=(dumps(self._message(ctx, _blocks(reply), stop, reply.final_usage())),)
            )
        return Stream(content_type=SSE, frames=tuple(self._frames(reply, ctx, stop)))

    def _message(
        self, ctx: Ctx, content: list[dict[str, Any]], stop: str | None, usage: Usage
    ) -> dict[str, Any]:
        return {
            "model": ctx.model,
            "id": ctx.ident("msg_"),
            "type": "message",
            "role": "assistant",
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": _usage(usage),
        }

    def _frames(self, reply: Reply, ctx: Ctx, stop: str) -> list[Frame]:
        usage = reply.final_usage()
        start = self._message(
            ctx,
            [],
            None,
            Usage(
                prompt=usage.prompt,
                completion=1,
                cached=usage.cached,
                cache_write=usage.cache_write,
            ),
        )
        frames = [
            Frame(_event("message_start", {"type": "message_start", "message": start}), "meta")
        ]
        blocks: list[list[Frame]] = []
        if reply.reasoning:
            blocks.append(_thinking(len(blocks), reply.reasoning_pieces()))
        if reply.text is not None:
            blocks.append(_text(len(blocks), reply.pieces()))
        if reply.tool_call:
            blocks.append(_tool(len(blocks), reply.tool_call))
        for i, block in enumerate(blocks):
            frames += block[:1] + ([Frame(PING, "meta")] if i == 0 else []) + block[1:]
        delta = {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None}}
        frames.append(
            Frame(_event("message_delta", delta | {"usage": _usage(usage, True)}), "final")
        )
        frames.append(Frame(_event("message_stop", {"type": "message_stop"}), "end"))
        return frames

    def malformed(self, ctx: Ctx) -> bytes:
        return (
            b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
            b'"delta":{"type":"text_delta","text":"Ol\n\n'
        )

    def stream_error(self, ctx: Ctx) -> bytes:
        error = {"type": "overloaded_error", "message": "Overloaded"}
        return _event("error", {"type": "error", "error": error, "request_id": ctx.ident("req_")})

    def error(self, fault: Fault, ctx: Ctx) -> Answer:
        if fault.kind == "content_policy" and fault.body is None:
            return self._refusal(ctx)
        rid = ctx.ident("req_")
        headers = {"request-id": rid} | fault.headers
        status, kind, message = _error_triple(fault, ctx.model)
        body = error_body(fault)
        if body is None:
            payload = {"type": "error", "error": {"type": kind, "message": message}}
            body = dumps(payload | {"request_id": rid})
        return Whole(status=status, pieces=(body,), headers=headers)

    def _refusal(self, ctx: Ctx) -> Answer:
        usage = Usage(prompt=20, completion=0)
        if not ctx.stream:
            return Whole(pieces=(dumps(self._message(ctx, [], "refusal", usage)),))
        start = self._message(ctx, [], None, Usage(prompt=20, completion=1))
        details = {
            "type": "refusal",
            "category": "cyber",
            "explanation": "This request was refused due to policy.",
        }
        delta = {"stop_reason": "refusal", "stop_sequence": None, "stop_details": details}
        text = _text(0, [])
        frames = [
            Frame(_event("message_start", {"type": "message_start", "message": start}), "meta"),
            *text,
            Frame(
                _event(
                    "message_delta",
                    {"type": "message_delta", "delta": delta, "usage": {"output_tokens": 0}},
                ),
                "final",
            ),
            Frame(_event("message_stop", {"type": "message_stop"}), "end"),
        ]
        return Stream(content_type=SSE, frames=tuple(frames))


def invalid(ctx: Ctx, message: str) -> Answer:
    """The real API's 400 for a body it refuses."""
    error = {"type": "invalid_request_error", "message": message}
    body = dumps({"type": "error", "error": error, "request_id": ctx.ident("req_")})
    return Whole(status=400, pieces=(body,))


def count_tokens(ctx: Ctx) -> Answer:
    """`/v1/messages/count_tokens`: a deterministic count (a token per four bytes of the
    compact JSON of `messages`), after the same strict checks."""
    problem = request_problem(ctx.body, count=True)
    if problem is not None:
        return invalid(ctx, problem)
    return Whole(pieces=(dumps({"input_tokens": len(dumps(ctx.body["messages"])) // 4}),))


def _block(
    index: int, block: dict[str, Any], deltas: list[tuple[dict[str, Any], FrameKind]]
) -> list[Frame]:
    start = {"type": "content_block_start", "index": index, "content_block": block}
    frames = [Frame(_event("content_block_start", start), "meta")]
    for delta, kind in deltas:
        payload = {"type": "content_block_delta", "index": index, "delta": delta}
        frames.append(Frame(_event("content_block_delta", payload), kind))
    stop = {"type": "content_block_stop", "index": index}
    return [*frames, Frame(_event("content_block_stop", stop), "meta")]


def _thinking(index: int, pieces: list[str]) -> list[Frame]:
    deltas: list[tuple[dict[str, Any], FrameKind]] = [
        ({"type": "thinking_delta", "thinking": p}, "content") for p in pieces
    ]
    deltas.append(({"type": "signature_delta", "signature": SIGNATURE}, "meta"))
    return _block(index, {"type": "thinking", "thinking": "", "signature": ""}, deltas)


def _text(index: int, pieces: list[str]) -> list[Frame]:
    deltas: list[tuple[dict[str, Any], FrameKind]] = [
        ({"type": "text_delta", "text": p}, "content") for p in pieces
    ]
    return _block(index, {"type": "text", "text": ""}, deltas)


def _tool(index: int, call: ToolCall) -> list[Frame]:
    args = dumps(call.arguments).decode()
    deltas: list[tuple[dict[str, Any], FrameKind]] = [
        ({"type": "input_json_delta", "partial_json": ""}, "meta")
    ]
    deltas += [
        ({"type": "input_json_delta", "partial_json": args[i : i + 8]}, "content")
        for i in range(0, len(args), 8)
    ]
    block = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
    return _block(index, block, deltas)


_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization (fake) of 30,000 input "
        "tokens per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. "
        "You can see the response headers for current usage. Please reduce the prompt length "
        "or the maximum tokens requested, or try again later.",
    ),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


def _error_triple(fault: Fault, model: str) -> tuple[int, str, str]:
    if fault.kind == "context_length":
        return 400, "invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum"
    status = {"rate_limited": 429, "overloaded": 529, "invalid_key": 401}.get(
        fault.kind, fault.code
    )
    kind, message = _ERRORS.get(status, _ERRORS[500 if status >= 500 else 400])
    return status, kind, message.format(model=model)


def _recorded(ctx: Ctx) -> Answer:
    raw = cassettes.load("anthropic", ctx.model)
    if not ctx.stream:
        return Whole(pieces=(raw.body.encode(),))
    frames = tuple(Frame(e.encode() + b"\n\n", _recorded_kind(e)) for e in raw.events)
    return Stream(content_type=SSE, frames=frames)


def _recorded_kind(event: str) -> FrameKind:
    name = event.split("\n", 1)[0].removeprefix("event: ").strip()
    if name == "message_stop":
        return "end"
    if name == "message_delta":
        return "final"
    if name != "content_block_delta":
        return "meta"
    data = msgspec.json.decode(event.split("data: ", 1)[1])
    return "meta" if data["delta"]["type"] == "signature_delta" else "content"
