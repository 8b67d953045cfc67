"""A strict fake of OpenAI's Responses API (`POST /v1/responses`), on real loopback HTTP.

Strict like the real API: an unknown top-level parameter, an unknown input item type, a
`function_call_output` / `custom_tool_call_output` without its call earlier in `input`, a
`previous_response_id` it never issued, or a wrong key are refused with OpenAI's 400/401
shapes. Streams follow the real lifecycle with `sequence_number`s.

    with FakeResponses(api_key="sk-oai") as fake:
        fake.script(RReply(text="Hi"), RReply(status=429))
        ...  # base_url = fake.url  (http://127.0.0.1:PORT/v1)
        fake.seen[0]  # the request bodies, as decoded JSON
"""

from __future__ import annotations

import asyncio
import json
import secrets
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

CREATE_RESPONSE = frozenset(
    [
        "background",
        "context_management",
        "conversation",
        "include",
        "input",
        "instructions",
        "max_output_tokens",
        "max_tool_calls",
        "metadata",
        "model",
        "moderation",
        "parallel_tool_calls",
        "previous_response_id",
        "prompt",
        "prompt_cache_key",
        "prompt_cache_options",
        "prompt_cache_retention",
        "reasoning",
        "safety_identifier",
        "service_tier",
        "store",
        "stream",
        "stream_options",
        "temperature",
        "text",
        "tool_choice",
        "tools",
        "top_logprobs",
        "top_p",
        "truncation",
        "user",
    ]
)
ITEM_TYPES = frozenset(
    [
        "message",
        "function_call",
        "function_call_output",
        "custom_tool_call",
        "custom_tool_call_output",
        "reasoning",
        "web_search_call",
        "item_reference",
    ]
)


@dataclass(frozen=True)
class RReply:
    """One scripted answer: text, a function call, a custom tool call, reasoning, or an
    HTTP error `status`; `usage` is (input, output, cached, reasoning) tokens."""

    text: str | None = "Hello from the Responses fake"
    call: tuple[str, str] | None = None  # (name, JSON arguments)
    custom: tuple[str, str] | None = None  # (name, raw input)
    reasoning: str | None = None
    encrypted: str | None = None
    usage: tuple[int, int, int, int] = (12, 6, 0, 0)
    status: int | None = None
    incomplete: bool = False


Scripted = RReply | Callable[[dict[str, Any]], RReply]  # a reply, or one made from the body


def _error(status: int, message: str, code: str | None, param: str | None = None) -> web.Response:
    kind = "rate_limit_error" if status == 429 else "invalid_request_error"
    if status >= 500:
        kind = "server_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return web.json_response(body, status=status)


def check(body: dict[str, Any]) -> web.Response | None:
    """The request as OpenAI would judge it; None when acceptable."""
    for name in body:
        if name not in CREATE_RESPONSE:
            return _error(400, f"Unknown parameter: '{name}'.", "unknown_parameter", name)
    if not isinstance(body.get("model"), str):
        return _error(400, "Missing required parameter: 'model'.", "missing_required_parameter")
    if "previous_response_id" in body:
        ident = body["previous_response_id"]
        return _error(400, f"Previous response with id '{ident}' not found.", None)
    items = body.get("input")
    if isinstance(items, str):
        return None
    calls: set[str] = set()
    for i, item in enumerate(items or ()):
        kind = item.get("type", "message")
        if kind not in ITEM_TYPES:
            return _error(400, f"Invalid value: '{kind}'.", "invalid_value", f"input[{i}].type")
        if kind in ("function_call", "custom_tool_call"):
            calls.add(item["call_id"])
        if kind.endswith("_output") and item.get("call_id") not in calls:
            message = (
                f"No tool call found for function call output with call_id {item.get('call_id')}."
            )
            return _error(400, message, None, "input")
    return None


def _usage(reply: RReply) -> dict[str, Any]:
    inp, out, cached, reasoning = reply.usage
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": inp + out,
    }


def output_items(reply: RReply) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if reply.reasoning is not None or reply.encrypted is not None:
        summary = [{"type": "summary_text", "text": reply.reasoning}] if reply.reasoning else []
        item = {"type": "reasoning", "id": "rs_fake", "summary": summary}
        if reply.encrypted:
            item["encrypted_content"] = reply.encrypted
        out.append(item)
    if reply.call is not None:
        name, args = reply.call
        out.append(
            {
                "type": "function_call",
                "id": "fc_fake",
                "call_id": "call_fake1",
                "name": name,
                "arguments": args,
                "status": "completed",
            }
        )
    elif reply.custom is not None:
        name, text = reply.custom
        out.append(
            {
                "type": "custom_tool_call",
                "id": "ctc_fake",
                "call_id": "call_fake2",
                "name": name,
                "input": text,
            }
        )
    elif reply.text is not None:
        content = [{"type": "output_text", "text": reply.text, "annotations": []}]
        out.append(
            {
                "type": "message",
                "id": "msg_fake",
                "status": "completed",
                "role": "assistant",
                "content": content,
            }
        )
    return out


def response_object(body: dict[str, Any], reply: RReply, status: str) -> dict[str, Any]:
    done = status != "in_progress"
    return {
        "id": "resp_fake_" + secrets.token_hex(4),
        "object": "response",
        "created_at": 1,
        "status": status,
        "model": body["model"],
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "output": output_items(reply) if done else [],
        "usage": _usage(reply) if done else None,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
    }


def stream_events(body: dict[str, Any], reply: RReply) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    events.append(
        {"type": "response.created", "response": response_object(body, reply, "in_progress")}
    )
    events.append(
        {"type": "response.in_progress", "response": response_object(body, reply, "in_progress")}
    )
    for index, item in enumerate(output_items(reply)):
        events.extend(_item_events(item, index))
    final = "incomplete" if reply.incomplete else "completed"
    events.append({"type": f"response.{final}", "response": response_object(body, reply, final)})
    for n, e in enumerate(events):
        e["sequence_number"] = n
    return events


def _item_events(item: dict[str, Any], index: int) -> list[dict[str, Any]]:
    kind = item["type"]
    where = {"item_id": item["id"], "output_index": index}
    empty = {**item, "content": []} if kind == "message" else dict(item)
    if kind == "function_call":
        empty["arguments"] = ""
    if kind == "custom_tool_call":
        empty["input"] = ""
    out = [{"type": "response.output_item.added", "output_index": index, "item": empty}]
    if kind == "message":
        text = item["content"][0]["text"]
        part = {"type": "output_text", "text": "", "annotations": []}
        out.append(
            {"type": "response.content_part.added", **where, "content_index": 0, "part": part}
        )
        for piece in (text[: len(text) // 2], text[len(text) // 2 :]):
            out.append(
                {
                    "type": "response.output_text.delta",
                    **where,
                    "content_index": 0,
                    "delta": piece,
                    "logprobs": [],
                }
            )
        out.append(
            {
                "type": "response.output_text.done",
                **where,
                "content_index": 0,
                "text": text,
                "logprobs": [],
            }
        )
        out.append(
            {
                "type": "response.content_part.done",
                **where,
                "content_index": 0,
                "part": {**part, "text": text},
            }
        )
    elif kind == "function_call":
        out.append(
            {"type": "response.function_call_arguments.delta", **where, "delta": item["arguments"]}
        )
        out.append(
            {
                "type": "response.function_call_arguments.done",
                **where,
                "arguments": item["arguments"],
            }
        )
    elif kind == "custom_tool_call":
        out.append(
            {"type": "response.custom_tool_call_input.delta", **where, "delta": item["input"]}
        )
        out.append(
            {"type": "response.custom_tool_call_input.done", **where, "input": item["input"]}
        )
    elif item["summary"]:
        text = item["summary"][0]["text"]
        out.append(
            {
                "type": "response.reasoning_summary_text.delta",
                **where,
                "summary_index": 0,
                "delta": text,
            }
        )
        out.append(
            {
                "type": "response.reasoning_summary_text.done",
                **where,
                "summary_index": 0,
                "text": text,
            }
        )
    out.append({"type": "response.output_item.done", "output_index": index, "item": item})
    return out


class FakeResponses:
    """The fake server, in its own thread and event loop."""

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key
        self.seen: list[dict[str, Any]] = []
        self._script: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Scripted) -> None:
        with self._lock:
            self._script.extend(replies)

    def _next(self, body: dict[str, Any]) -> RReply:
        with self._lock:
            reply = self._script.popleft() if self._script else RReply()
        return reply(body) if callable(reply) else reply

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.api_key and request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error(400, "We could not parse the JSON body of your request.", None)
        with self._lock:
            self.seen.append(body)
        refused = check(body)
        if refused is not None:
            return refused
        reply = self._next(body)
        if reply.status is not None:
            return _error(reply.status, "Rate limit reached for requests", "rate_limit_exceeded")
        if not body.get("stream"):
            status = "incomplete" if reply.incomplete else "completed"
            return web.json_response(response_object(body, reply, status))
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        for e in stream_events(body, reply):
            await resp.write(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode())
        await resp.write_eof()
        return resp

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/responses", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self._ready.set()

    def __enter__(self) -> FakeResponses:
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
