"""The fake upstream's OpenAI Responses answers (`POST /v1/responses`), encoded once.

Shaped like OpenAI's: a non-streamed `response` object (one `message` output item holding one
`output_text` part, the same words as the chat answers, and usage with its token details), or
with `"stream": true` the real event sequence, each event with its `sequence_number`:
`response.created`, `response.in_progress`, `response.output_item.added`,
`response.content_part.added`, one `response.output_text.delta` per text token,
`response.output_text.done`, `response.content_part.done`, `response.output_item.done`,
`response.completed`; framed `event: NAME` / `data: {...}`, with no `[DONE]`.
"""

from __future__ import annotations

import json
from typing import Any

RESPONSE_ID = "resp_BenchBenchBenchBenchBenchBenchBenchBench"
MESSAGE_ID = "msg_BenchBenchBenchBenchBenchBenchBenchBench"
MODEL = "gpt-4o-mini-2024-07-18"
CREATED = 1_760_000_000
INPUT_TOKENS = 8


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _usage(output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": INPUT_TOKENS,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": INPUT_TOKENS + output_tokens,
    }


def _part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _message(text: str | None) -> dict[str, Any]:
    """The output message item: complete with its text, or just opened (`None`)."""
    return {
        "id": MESSAGE_ID,
        "type": "message",
        "status": "completed" if text is not None else "in_progress",
        "content": [_part(text)] if text is not None else [],
        "role": "assistant",
    }


def response_object(status: str, pieces: list[str]) -> dict[str, Any]:
    """The `response` object: in progress (no output, no usage yet) or completed."""
    done = status == "completed"
    return {
        "id": RESPONSE_ID,
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": MODEL,
        "output": [_message("".join(pieces))] if done else [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": True,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": _usage(len(pieces)) if done else None,
        "user": None,
        "metadata": {},
    }


def response_body(pieces: list[str]) -> bytes:
    """A non-streamed answer whose text is the same as the stream's."""
    return _json(response_object("completed", pieces))


def _events(pieces: list[str]) -> list[dict[str, Any]]:
    text = "".join(pieces)
    where = {"item_id": MESSAGE_ID, "output_index": 0, "content_index": 0}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": response_object("in_progress", pieces)},
        {"type": "response.in_progress", "response": response_object("in_progress", pieces)},
        {"type": "response.output_item.added", "output_index": 0, "item": _message(None)},
        {"type": "response.content_part.added", **where, "part": _part("")},
    ]
    for piece in pieces:
        delta = {"type": "response.output_text.delta", **where, "delta": piece, "logprobs": []}
        events.append({**delta, "obfuscation": "Bench"})
    events += [
        {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": _part(text)},
        {"type": "response.output_item.done", "output_index": 0, "item": _message(text)},
        {"type": "response.completed", "response": response_object("completed", pieces)},
    ]
    for number, event in enumerate(events):
        event["sequence_number"] = number
    return events


def stream_events(pieces: list[str]) -> list[bytes]:
    """The SSE events of a streamed answer, one text delta per piece."""
    return [
        b"event: " + event["type"].encode() + b"\ndata: " + _json(event) + b"\n\n"
        for event in _events(pieces)
    ]
