"""OpenAI Chat Completions on the wire, and its Azure OpenAI variant.

Generated replies copy the field layout of the recorded ones (see `fakes.cassettes`). Reasoning
text goes out as `reasoning_content` (the DeepSeek/xAI convention OpenAI-compatible servers
use; OpenAI itself only reports `reasoning_tokens`). Azure differs by its content-filter
annotations: a first stream chunk with empty `choices` and `prompt_filter_results`, and
`content_filter_results` on every choice.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from fakes import cassettes
from fakes.faults import Fault, Reply, Usage
from fakes.frames import CREATED, Answer, Ctx, Frame, FrameKind, Stream, Whole, dumps, error_body

SSE = "text/event-stream; charset=utf-8"
_SAFE = {"filtered": False, "severity": "safe"}
_PROMPT_FILTER = [
    {
        "prompt_index": 0,
        "content_filter_results": {
            "hate": _SAFE,
            "jailbreak": {"detected": False, "filtered": False},
            "self_harm": _SAFE,
            "sexual": _SAFE,
            "violence": _SAFE,
        },
    }
]
_UNDETECTED = {"detected": False, "filtered": False}
_OUTPUT_FILTER = {
    "hate": _SAFE,
    "protected_material_code": _UNDETECTED,
    "protected_material_text": _UNDETECTED,
    "self_harm": _SAFE,
    "sexual": _SAFE,
    "violence": _SAFE,
}
_USAGE_NULL = re.compile(r',"usage":null(?=[,}])|"usage":null,')


def usage_json(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.prompt,
        "completion_tokens": u.completion,
        "total_tokens": u.total,
        "prompt_tokens_details": {"cached_tokens": u.cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _data(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


class OpenAIChat:
    """Renders `/chat/completions` answers and errors; `azure=True` for Azure OpenAI."""

    def __init__(self, azure: bool = False) -> None:
        self.azure = azure
        self.protocol = "azure" if azure else "openai"

    # -- successes -----------------------------------------------------------------------------

    def chat(self, reply: Reply, ctx: Ctx) -> Answer:
        if reply.recorded:
            return self._recorded(ctx)
        if ctx.stream:
            return Stream(content_type=SSE, frames=tuple(self._frames(reply, ctx)))
        return Whole(pieces=(dumps(self._completion(reply, ctx)),))

    def _choice(self, body: dict[str, Any]) -> dict[str, Any]:
        if self.azure:
            body["content_filter_results"] = {}
        return body

    def _completion(self, reply: Reply, ctx: Ctx) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if reply.reasoning:
            message["reasoning_content"] = reply.reasoning
        if reply.tool_call:
            call = reply.tool_call
            function = {"name": call.name, "arguments": dumps(call.arguments).decode()}
            message["tool_calls"] = [{"id": call.id, "type": "function", "function": function}]
        message |= {"refusal": None, "annotations": []}
        finish = "tool_calls" if reply.tool_call else "stop"
        choices = []
        for i in range(_n(ctx)):  # `n` choices, the i-th text marked with its index
            text = reply.text if i == 0 else f"{reply.text} #{i}"
            lp = _logprobs(ctx, reply.pieces() if i == 0 else [text])
            choice = {"index": i, "message": message | {"content": text}, "logprobs": lp}
            choice["finish_reason"] = finish
            if self.azure:
                choice["content_filter_results"] = _OUTPUT_FILTER
            choices.append(choice)
        out = self._head(ctx, "chat.completion") | {
            "choices": choices,
            "usage": usage_json(reply.final_usage()),
        }
        if self.azure:
            out["prompt_filter_results"] = _PROMPT_FILTER
        return out

    def _head(self, ctx: Ctx, obj: str) -> dict[str, Any]:
        return {
            "id": ctx.ident("chatcmpl-"),
            "object": obj,
            "created": CREATED,
            "model": ctx.model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }

    def _chunk(self, ctx: Ctx, choices: list[dict[str, Any]], usage: Any = None) -> bytes:
        out = self._head(ctx, "chat.completion.chunk") | {"choices": choices}
        if ctx.include_usage:
            out["usage"] = usage
        return _data(dumps(out))

    def _delta(
        self, ctx: Ctx, delta: dict[str, Any], finish: str | None = None, index: int = 0
    ) -> bytes:
        logprobs = _logprobs(ctx, [delta["content"]]) if delta.get("content") else None
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return self._chunk(ctx, [self._choice(choice)])

    def _frames(self, reply: Reply, ctx: Ctx) -> list[Frame]:
        frames: list[Frame] = []
        if self.azure:
            first = {"choices": [], "created": 0, "id": "", "model": "", "object": ""}
            frames.append(
                Frame(_data(dumps(first | {"prompt_filter_results": _PROMPT_FILTER})), "meta")
            )
        role = {"role": "assistant", "content": "", "refusal": None}
        frames.append(Frame(self._delta(ctx, role), "meta"))
        for piece in reply.reasoning_pieces():
            frames.append(Frame(self._delta(ctx, {"reasoning_content": piece}), "content"))
        for piece in reply.pieces():
            frames.append(Frame(self._delta(ctx, {"content": piece}), "content"))
        for i in range(1, _n(ctx)):  # further choices follow the first, marked with their index
            frames.append(Frame(self._delta(ctx, role, index=i), "content"))
            more = {"content": f"{reply.text} #{i}"}
            frames.append(Frame(self._delta(ctx, more, "stop", index=i), "content"))
        frames += self._tool_frames(reply, ctx)
        finish = "tool_calls" if reply.tool_call else "stop"
        frames.append(Frame(self._delta(ctx, {}, finish), "final"))
        if ctx.include_usage:
            usage = usage_json(reply.final_usage())
            frames.append(Frame(self._chunk(ctx, [], usage), "final"))
        frames.append(Frame(b"data: [DONE]\n\n", "end"))
        return frames

    def _tool_frames(self, reply: Reply, ctx: Ctx) -> list[Frame]:
        call = reply.tool_call
        if call is None:
            return []
        head = {"index": 0, "id": call.id, "type": "function"}
        head["function"] = {"name": call.name, "arguments": ""}
        frames = [Frame(self._delta(ctx, {"tool_calls": [head]}), "content")]
        args = dumps(call.arguments).decode()
        for i in range(0, len(args), 8):
            part = {"index": 0, "function": {"arguments": args[i : i + 8]}}
            frames.append(Frame(self._delta(ctx, {"tool_calls": [part]}), "content"))
        return frames

    def _recorded(self, ctx: Ctx) -> Answer:
        raw = cassettes.load(self.protocol, ctx.model)
        if not ctx.stream:
            return Whole(pieces=(raw.body.encode(),))
        frames = []
        for event in raw.events:
            kind = _recorded_kind(event)
            if not ctx.include_usage:
                if kind == "final" and '"choices":[]' in event:
                    continue  # the usage chunk exists only with include_usage
                event = _USAGE_NULL.sub("", event)
            frames.append(Frame(event.encode() + b"\n\n", kind))
        return Stream(content_type=SSE, frames=tuple(frames))

    # -- failures ------------------------------------------------------------------------------

    def malformed(self, ctx: Ctx) -> bytes:
        head = f'{{"id":"{ctx.ident("chatcmpl-")}","object":"chat.completion.chunk","choices":['
        return _data(head.encode() + b'{"index":0,"delta":{"content":"Ol')

    def stream_error(self, ctx: Ctx) -> bytes:
        message = "The server had an error while processing your request. Sorry about that!"
        error = {"message": message, "type": "server_error", "param": None, "code": None}
        return _data(dumps({"error": error}))

    def error(self, fault: Fault, ctx: Ctx) -> Answer:
        status = fault.code
        body = error_body(fault)
        if body is None:
            status, payload = self._error_payload(fault, ctx)
            body = dumps(payload)
        return Whole(status=status, pieces=(body,), headers=dict(fault.headers))

    def _error_payload(self, fault: Fault, ctx: Ctx) -> tuple[int, dict[str, Any]]:
        if self.azure and fault.kind in _AZURE:
            return _AZURE[fault.kind](ctx)
        if self.azure and fault.code == 404:
            return 404, {"error": {"code": "DeploymentNotFound", "message": _NO_DEPLOYMENT}}
        status = {"rate_limited": 429, "overloaded": 503, "invalid_key": 401}.get(
            fault.kind, fault.code
        )
        message, kind, param, code = _openai_error(fault.kind, status, ctx.model)
        error = {"message": message, "type": kind, "param": param, "code": code}
        return status, {"error": error}


def _recorded_kind(event: str) -> FrameKind:
    payload = event.removeprefix("data: ")
    if payload.strip() == "[DONE]":
        return "end"
    chunk = msgspec.json.decode(payload)
    if not chunk["choices"]:
        return "final" if chunk.get("usage") else "meta"
    choice = chunk["choices"][0]
    if choice.get("finish_reason"):
        return "final"
    delta = choice["delta"]
    has = delta.get("content") or delta.get("reasoning_content") or delta.get("tool_calls")
    return "content" if has else "meta"


def _openai_error(kind: str, status: int, model: str) -> tuple[str, str, str | None, str | None]:
    if kind == "context_length":
        return (
            "This model's maximum context length is 128000 tokens. However, your messages "
            "resulted in 131072 tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            "messages",
            "context_length_exceeded",
        )
    if kind == "content_policy":
        return (
            "Your request was rejected as a result of our safety system. Your prompt may "
            "contain text that is not allowed by our safety system.",
            "invalid_request_error",
            None,
            "content_policy_violation",
        )
    known = {
        400: ("Invalid request.", "invalid_request_error", None),
        401: (
            "Incorrect API key provided: sk-fake. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        ),
        403: ("Country, region, or territory not supported", "request_forbidden", None),
        404: (
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        ),
        429: (
            f"Rate limit reached for {model} in organization org-fake on tokens per min (TPM):"
            " Limit 30000, Used 30000, Requested 20. Please try again in 40ms. Visit "
            "https://platform.openai.com/account/rate-limits to learn more.",
            "tokens",
            "rate_limit_exceeded",
        ),
        503: ("The server is overloaded or not ready yet.", "server_error", None),
    }
    message, kind_, code = known.get(
        status,
        (
            "The server had an error while processing your request. Sorry about that!",
            "server_error" if status >= 500 else "invalid_request_error",
            None,
        ),
    )
    if status == 403:
        code = "unsupported_country_region_territory"
    return message, kind_, None, code


def _azure_429(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    message = (
        "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
        "2024-10-21 have exceeded token rate limit of your current AIServices S0 pricing tier. "
        "Please retry after 1 second. Please contact Azure support service if you would like "
        "to further increase the default rate limit."
    )
    return 429, {"error": {"code": "429", "message": message}}


def _azure_401(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    message = (
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
        "provide a valid key for an active subscription and use a correct regional API "
        "endpoint for your resource."
    )
    return 401, {"error": {"code": "401", "message": message}}


def _azure_filter(ctx: Ctx) -> tuple[int, dict[str, Any]]:
    message = (
        "The response was filtered due to the prompt triggering Azure OpenAI's content "
        "management policy. Please modify your prompt and retry. To learn more about our "
        "content filtering policies please read our documentation: "
        "https://go.microsoft.com/fwlink/?linkid=2198766"
    )
    results = {
        "hate": _SAFE,
        "jailbreak": {"filtered": False, "detected": False},
        "self_harm": _SAFE,
        "sexual": {"filtered": True, "severity": "high"},
        "violence": _SAFE,
    }
    inner = {"code": "ResponsibleAIPolicyViolation", "content_filter_result": results}
    error = {
        "message": message,
        "type": None,
        "param": "prompt",
        "code": "content_filter",
        "status": 400,
        "innererror": inner,
    }
    return 400, {"error": error}


_NO_DEPLOYMENT = (
    "The API deployment for this resource does not exist. If you created the deployment within "
    "the last 5 minutes, please wait a moment and try again."
)
_AZURE = {"rate_limited": _azure_429, "invalid_key": _azure_401, "content_policy": _azure_filter}


def _n(ctx: Ctx) -> int:
    n = ctx.body.get("n") if isinstance(ctx.body, dict) else None
    return n if isinstance(n, int) and n > 1 else 1


def _logprobs(ctx: Ctx, pieces: list[str]) -> dict[str, Any] | None:
    """OpenAI's `logprobs` object for `pieces`, when the request asked for them."""
    if not (isinstance(ctx.body, dict) and ctx.body.get("logprobs")):
        return None
    top = ctx.body.get("top_logprobs") or 0
    content = [
        {
            "token": p,
            "logprob": -0.25,
            "bytes": list(p.encode()),
            "top_logprobs": [{"token": p, "logprob": -0.25, "bytes": list(p.encode())}][:top],
        }
        for p in pieces
    ]
    return {"content": content, "refusal": None}
