"""Gemini `generateContent` / `streamGenerateContent?alt=sse` on the wire.

A stream is a sequence of complete `GenerateContentResponse` objects, `data: ` framed and
separated by `\\r\\n\\r\\n`, with no terminator. Thought parts (`"thought": true`) come first,
then one event per text piece, then a `functionCall` part; the last event carries
`finishReason: "STOP"` and the exact final `usageMetadata` (earlier ones carry running counts).
`Fault.content_policy()` is a 200 whose prompt was blocked (`promptFeedback.blockReason:
"SAFETY"`, no candidates), which is how the Gemini API refuses a prompt.
"""

from __future__ import annotations

from typing import Any

from fakes import cassettes
from fakes.faults import Fault, Reply, Usage
from fakes.frames import Answer, Ctx, Frame, Stream, Whole, dumps, error_body

SSE = "text/event-stream"
JSON = "application/json; charset=UTF-8"
_TYPE = "type.googleapis.com/google.rpc."


def _data(payload: Any) -> bytes:
    return b"data: " + dumps(payload) + b"\r\n\r\n"


def usage_metadata(
    u: Usage, candidates: int | None = None, thoughts: int | None = None
) -> dict[str, Any]:
    shown = u.completion - u.reasoning if candidates is None else candidates
    thought = u.reasoning if thoughts is None else thoughts
    out: dict[str, Any] = {
        "promptTokenCount": u.prompt,
        "candidatesTokenCount": shown,
        "totalTokenCount": u.prompt + shown + thought,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": u.prompt}],
    }
    if thought:
        out["thoughtsTokenCount"] = thought
    if u.cached:
        out["cachedContentTokenCount"] = u.cached
    return out


class GeminiGenerate:
    """Renders `models/{model}:generateContent` answers and errors."""

    def chat(self, reply: Reply, ctx: Ctx) -> Answer:
        if reply.recorded:
            raw = cassettes.load("gemini", ctx.model)
            if not ctx.stream:
                return Whole(content_type=JSON, pieces=(raw.body.encode(),))
            frames = tuple(Frame(e.encode() + b"\r\n\r\n", "content") for e in raw.events)
            return Stream(content_type=SSE, frames=frames)
        if ctx.stream:
            return Stream(content_type=SSE, frames=tuple(self._frames(reply, ctx)))
        parts = [{"text": reply.reasoning, "thought": True}] if reply.reasoning else []
        if reply.text is not None:
            parts.append({"text": reply.text})
        parts += _call(reply)
        body = self._response(ctx, parts, True, usage_metadata(reply.final_usage()))
        return Whole(content_type=JSON, pieces=(dumps(body),))

    def _response(
        self, ctx: Ctx, parts: list[dict[str, Any]], last: bool, usage: dict[str, Any]
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if last:
            candidate["finishReason"] = "STOP"
        candidate["index"] = 0
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": ctx.model,
            "responseId": ctx.ident(""),
        }

    def _frames(self, reply: Reply, ctx: Ctx) -> list[Frame]:
        usage = reply.final_usage()
        parts = [{"text": p, "thought": True} for p in reply.reasoning_pieces()]
        parts += [{"text": p} for p in reply.pieces()]
        parts += _call(reply)
        if not parts:
            parts = [{"text": ""}]
        frames = []
        thoughts = shown = 0
        visible = max(0, usage.completion - usage.reasoning)
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part.get("thought"):
                thoughts = min(thoughts + 1, usage.reasoning)
            else:
                shown = min(shown + 1, visible)
            meta = usage_metadata(usage) if last else usage_metadata(usage, shown, thoughts)
            frames.append(Frame(_data(self._response(ctx, [part], last, meta)), "content"))
        return frames

    def malformed(self, ctx: Ctx) -> bytes:
        return b'data: {"candidates": [{"content": {"parts": [{"text": "Ol\r\n\r\n'

    def stream_error(self, ctx: Ctx) -> bytes:
        message, status = _STATUS[500][1], _STATUS[500][0]
        return _data({"error": {"code": 500, "message": message, "status": status}})

    def error(self, fault: Fault, ctx: Ctx) -> Answer:
        if fault.kind == "content_policy" and fault.body is None:
            return self._blocked(ctx)
        status, error = _error(fault, ctx.model)
        body = error_body(fault)
        body = dumps({"error": error}) if body is None else body
        return Whole(
            status=fault.code if fault.body is not None else status,
            content_type=JSON,
            pieces=(body,),
            headers=dict(fault.headers),
        )

    def _blocked(self, ctx: Ctx) -> Answer:
        ratings = [
            {"category": f"HARM_CATEGORY_{c}", "probability": p}
            for c, p in (
                ("SEXUALLY_EXPLICIT", "NEGLIGIBLE"),
                ("HATE_SPEECH", "HIGH"),
                ("HARASSMENT", "NEGLIGIBLE"),
                ("DANGEROUS_CONTENT", "NEGLIGIBLE"),
            )
        ]
        usage = {
            "promptTokenCount": 8,
            "totalTokenCount": 8,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}],
        }
        body = {
            "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": ratings},
            "usageMetadata": usage,
            "modelVersion": ctx.model,
            "responseId": ctx.ident(""),
        }
        if ctx.stream:
            return Stream(content_type=SSE, frames=(Frame(_data(body), "final"),))
        return Whole(content_type=JSON, pieces=(dumps(body),))


def _call(reply: Reply) -> list[dict[str, Any]]:
    if reply.tool_call is None:
        return []
    call = {"name": reply.tool_call.name, "args": reply.tool_call.arguments}
    return [{"functionCall": call}]


_STATUS = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: (
        "NOT_FOUND",
        "models/{model} is not found for API version v1beta, or is not supported for "
        "generateContent. Call ListModels to see the list of available models and their "
        "supported methods.",
    ),
    429: (
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.",
    ),
    500: (
        "INTERNAL",
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "The request timed out. Please try again."),
}


def _error(fault: Fault, model: str) -> tuple[int, dict[str, Any]]:
    if fault.kind == "invalid_key":
        return 400, _invalid_key()
    if fault.kind == "context_length":
        message = (
            "The input token count (1048577) exceeds the maximum number of tokens allowed "
            "(1048576)."
        )
        return 400, {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}
    status = {"rate_limited": 429, "overloaded": 503}.get(fault.kind, fault.code)
    name, message = _STATUS.get(status, _STATUS[500 if status >= 500 else 400])
    error: dict[str, Any] = {"code": status, "message": message.format(model=model), "status": name}
    if status == 429:
        error["details"] = _quota_details(model, fault.retry_delay)
    return status, error


def _invalid_key() -> dict[str, Any]:
    message = "API key not valid. Please pass a valid API key."
    info = {
        "@type": _TYPE + "ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {"service": "generativelanguage.googleapis.com"},
    }
    localized = {"@type": _TYPE + "LocalizedMessage", "locale": "en-US", "message": message}
    return {
        "code": 400,
        "message": message,
        "status": "INVALID_ARGUMENT",
        "details": [info, localized],
    }


def _quota_details(model: str, retry_delay: float | None) -> list[dict[str, Any]]:
    violation = {
        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        "quotaDimensions": {"location": "global", "model": model},
        "quotaValue": "10",
    }
    links = [
        {
            "description": "Learn more about Gemini API quotas",
            "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
        }
    ]
    details: list[dict[str, Any]] = [
        {"@type": _TYPE + "QuotaFailure", "violations": [violation]},
        {"@type": _TYPE + "Help", "links": links},
    ]
    if retry_delay is not None:
        seconds = str(int(retry_delay)) if float(retry_delay).is_integer() else str(retry_delay)
        details.append({"@type": _TYPE + "RetryInfo", "retryDelay": f"{seconds}s"})
    return details
