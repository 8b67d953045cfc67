"""Google Gemini: `models/{model}:generateContent` and `:streamGenerateContent?alt=sse`.

Requests: `contents` of `user`/`model` turns made of `parts`, system messages hoisted into
`systemInstruction`, `generationConfig` for sampling, output length, stop sequences and
thinking. Tool calls are `functionCall` parts and tool results `functionResponse` parts, which
need the function's name: it is looked up from the assistant call with the same id.

Answers: thought parts become reasoning. A stream is a sequence of whole responses with no end
marker (`done` stays False; the upstream ends at EOF); a `finishReason` ends the answer.
Usage: `candidatesTokenCount` excludes the thinking tokens that are still billed, so the
canonical completion is `candidates + thoughts`. A blocked prompt (or an answer blocked before
any output) is a content-policy failure.

Gemini 3 wants a function call's `thoughtSignature` back with it in later turns; canonical
tool calls carry no such field, so the signature rides in the tool call id
(`<id>__thought__<signature>`) and is split off again when the call is sent back.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Mapping
from typing import Any

import msgspec

from router.core.types import (
    ChatRequest,
    Event,
    Finish,
    FinishReason,
    ImagePart,
    Message,
    ReasoningDelta,
    Target,
    TextDelta,
    TextPart,
    ThinkingPart,
    ToolCallDelta,
    Usage,
)
from router.errors import Failure, UpstreamError
from router.protocols import gemini_wire as wire
from router.protocols.errors import classify_http
from router.protocols.gemini_search import grounding
from router.upstream import HttpCall

SIGNATURE_SEPARATOR = "__thought__"
EFFORT_BUDGET = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}

_FINISH: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "content_filter",
    "MALFORMED_FUNCTION_CALL": "error",
    "UNEXPECTED_TOOL_CALL": "error",
}
_GENERATE = ":generateContent"
_STREAM = ":streamGenerateContent?alt=sse"
_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}
_KEY_REASONS = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "API_KEY_SERVICE_BLOCKED"})

# ---- request -----------------------------------------------------------------------------------


def split_call_id(call_id: str) -> tuple[str, str | None]:
    """(id, thought signature) of a tool call id as `_Reader._call` makes them."""
    base, _, signature = call_id.partition(SIGNATURE_SEPARATOR)
    return base, signature or None


def _object(text: str) -> dict[str, Any] | None:
    try:
        return wire.ARGS.decode(text)
    except msgspec.DecodeError:  # also a JSON value that is not an object
        return None


def _image(p: ImagePart) -> wire.Part:
    inline = p.inline()
    if inline is not None:
        return wire.Part(inlineData=wire.Blob(inline[0], inline[1]))
    mime = mimetypes.guess_type(p.url.split("?", 1)[0])[0] or "image/jpeg"
    return wire.Part(fileData=wire.FileData(mime, p.url))


def _parts(m: Message, names: Mapping[str, str]) -> list[wire.Part]:
    if m.role == "tool":
        text = m.text()
        name = m.name or names.get(m.tool_call_id or "", "")
        response = _object(text) or {"result": text}
        return [wire.Part(functionResponse=wire.FnResponse(name, response))]
    parts = [
        _image(p) if isinstance(p, ImagePart) else wire.Part(text=p.text)
        for p in m.content
        if type(p) is not ThinkingPart  # another protocol's: its signature means nothing here
    ]
    parts = [p for p in parts if p.text != ""]  # the API refuses empty text parts
    for call in m.tool_calls:
        signature = split_call_id(call.id)[1]
        args = _object(call.arguments or "{}") or {}
        parts.append(
            wire.Part(functionCall=wire.FnCall(call.name, args), thoughtSignature=signature)
        )
    return parts


def wire_contents(
    messages: tuple[Message, ...], prefill: str | None
) -> tuple[wire.System | None, list[wire.Content]]:
    """(systemInstruction, contents): system hoisted out, same-role neighbours merged so that
    parallel function responses share one turn."""
    names = {c.id: c.name for m in messages for c in m.tool_calls}
    system: list[wire.Part] = []
    contents: list[wire.Content] = []
    for m in messages:
        if m.role == "system":
            system += [wire.Part(text=p.text) for p in m.content if type(p) is TextPart and p.text]
            continue
        _append(contents, "model" if m.role == "assistant" else "user", _parts(m, names))
    if prefill:
        _append(contents, "model", [wire.Part(text=prefill)])
    return (wire.System(system) if system else None), contents


def _append(contents: list[wire.Content], role: str, parts: list[wire.Part]) -> None:
    if not parts:
        return
    if contents and contents[-1].role == role:
        contents[-1].parts.extend(parts)
    else:
        contents.append(wire.Content(role, parts))


def _thinking(target: Target, request: ChatRequest) -> wire.ThinkingConfig | None:
    info = target.info
    if info is not None and (
        "reasoning" not in info.capabilities
        or {"thinking_budget", "reasoning_effort"} & info.unsupported_params
    ):
        return None
    budget = request.thinking_budget
    if budget is None:
        budget = EFFORT_BUDGET.get(request.reasoning_effort or "")
    if budget is None:
        return None
    return wire.ThinkingConfig(budget, True if budget else None)


ACCEPTS = frozenset(
    {
        "temperature",
        "top_p",
        "top_k",
        "max_tokens",
        "stop",
        "seed",
        "tools",
        "tool_choice",
        "response_format",
        "reasoning_effort",
        "thinking_budget",
        "presence_penalty",
        "frequency_penalty",
    }
)


def _generation(target: Target, request: ChatRequest) -> wire.GenerationConfig | None:
    skip = target.info.unsupported_params if target.info else frozenset()
    config = wire.GenerationConfig(thinkingConfig=_thinking(target, request))
    wanted = {
        "max_tokens": ("maxOutputTokens", request.output_limit(target.info)),
        "temperature": ("temperature", request.temperature),
        "top_p": ("topP", request.top_p),
        "top_k": ("topK", request.top_k),
        "presence_penalty": ("presencePenalty", request.presence_penalty),
        "frequency_penalty": ("frequencyPenalty", request.frequency_penalty),
        "stop": ("stopSequences", list(request.stop) or None),
        "seed": ("seed", request.seed),
    }
    for name, (field, value) in wanted.items():
        if name not in skip:
            setattr(config, field, value)
    if request.response_format and "response_format" not in skip:
        _response_format(config, request.response_format)
    return config if config != wire.GenerationConfig() else None


def _response_format(config: wire.GenerationConfig, fmt: dict[str, object]) -> None:
    kind = fmt.get("type")
    if kind in ("json_object", "json_schema"):
        config.responseMimeType = "application/json"
    spec = fmt.get("json_schema")
    if kind == "json_schema" and isinstance(spec, dict):
        config.responseJsonSchema = spec.get("schema")


def _tool_config(choice: str | dict[str, object] | None) -> wire.ToolConfig | None:
    if isinstance(choice, dict):
        return wire.ToolConfig(wire.FnConfig("ANY", [str(choice.get("name", ""))]))
    mode = _MODES.get(choice or "")
    return wire.ToolConfig(wire.FnConfig(mode)) if mode else None


def body_for(target: Target, request: ChatRequest) -> wire.Body:
    """The wire body, leaving out whatever the catalog says this model does not accept."""
    skip = target.info.unsupported_params if target.info else frozenset()
    system, contents = wire_contents(request.messages, request.prefill)
    body = wire.Body(contents, system, _generation(target, request))
    if request.tools and "tools" not in skip:
        declarations = [
            wire.FnDeclaration(t.name, t.description, t.parameters) for t in request.tools
        ]
        body.tools = [wire.Tool(declarations)]
        if "tool_choice" not in skip:
            body.toolConfig = _tool_config(request.tool_choice)
    info = target.info
    if request.search and info is not None and "web_search" in info.capabilities:
        body.tools = [*(body.tools or ()), wire.SearchTool()]
    return body


# ---- answers -------------------------------------------------------------------------------------


def usage_from(u: wire.UsageMetadata, searches: int = 0) -> Usage:
    thoughts = u.thoughtsTokenCount
    prompt = u.promptTokenCount + u.toolUsePromptTokenCount
    completion = u.candidatesTokenCount + thoughts
    return Usage(prompt, completion, thoughts, u.cachedContentTokenCount, searches=searches)


def _blocked(what: str) -> UpstreamError:
    return UpstreamError(Failure.CONTENT_POLICY, f"Gemini blocked the {what}")


class _Reader:
    """Turns responses into events; one per answer, shared by plain and streamed answers."""

    __slots__ = ("calls", "finished", "produced", "searches")

    def __init__(self) -> None:
        self.searches = 0  # Google searches the answer ran (from its grounding metadata)
        self.calls = 0  # tool calls so far: the next call's index
        self.produced = False  # any text or tool call seen
        self.finished = False  # a finishReason was seen: usage from now on is final

    def events(self, response: wire.Response) -> list[Event]:
        if response.error is not None:
            raise _classify(500, {}, response.error)
        feedback = response.promptFeedback
        if not response.candidates and feedback is not None and feedback.blockReason:
            raise _blocked(f"prompt ({feedback.blockReason})")
        out: list[Event] = []
        for candidate in response.candidates[:1]:
            self._candidate(candidate, response.responseId, out)
        if self.finished and response.usageMetadata is not None:
            out.append(usage_from(response.usageMetadata, self.searches))
        return out

    def _candidate(self, candidate: wire.Candidate, rid: str | None, out: list[Event]) -> None:
        for part in candidate.content.parts if candidate.content else ():
            self._part(part, rid, out)
        if candidate.groundingMetadata is not None:
            self.searches = grounding(candidate.groundingMetadata, out) or self.searches
        reason = candidate.finishReason
        if reason is None or reason == "FINISH_REASON_UNSPECIFIED":
            return
        finish = _FINISH.get(reason, "stop")
        if finish == "content_filter" and not self.produced:
            raise _blocked(f"answer ({reason})")
        if finish == "stop" and self.calls:
            finish = "tool_calls"
        out.append(Finish(finish))
        self.finished = True

    def _part(self, part: wire.OutPart, rid: str | None, out: list[Event]) -> None:
        if part.functionCall is not None:
            out.append(self._call(part.functionCall, part.thoughtSignature, rid))
        elif part.text and part.thought:
            out.append(ReasoningDelta(part.text))
        elif part.text:
            self.produced = True
            out.append(TextDelta(part.text))

    def _call(self, call: wire.OutCall, signature: str | None, rid: str | None) -> ToolCallDelta:
        index = self.calls
        self.calls += 1
        self.produced = True
        call_id = call.id or f"call_{rid or 'gemini'}_{index}"
        if signature:
            call_id += SIGNATURE_SEPARATOR + signature
        arguments = wire.ENCODER.encode(call.args or {}).decode()
        return ToolCallDelta(index, call_id, call.name, arguments)


class StreamDecoder:
    """Decodes `streamGenerateContent?alt=sse`: whole responses, no end marker."""

    __slots__ = ("done", "reader")

    def __init__(self) -> None:
        self.done = False  # never set: the stream ends at EOF
        self.reader = _Reader()

    def feed(self, event: str | None, data: bytes) -> list[Event]:
        return self.reader.events(_decode(data))


def _decode(data: bytes) -> wire.Response:
    try:
        return wire.RESPONSE.decode(data)
    except msgspec.DecodeError:
        raise UpstreamError(Failure.MALFORMED, "malformed JSON from upstream") from None


def _retry_delay(error: wire.Error) -> float | None:
    for detail in error.details:
        if detail.retryDelay and detail.retryDelay.endswith("s"):
            try:
                return max(0.0, float(detail.retryDelay[:-1]))
            except ValueError:
                return None
    return None


def _classify(status: int, headers: Mapping[str, str], error: wire.Error) -> UpstreamError:
    """Gemini answers a bad key with 400 INVALID_ARGUMENT: its `reason` makes it an auth
    failure; a 429's `RetryInfo.retryDelay` counts like Retry-After."""
    reasons = [d.reason for d in error.details if d.reason]
    if _KEY_REASONS.intersection(reasons):
        return UpstreamError(Failure.AUTH, error.message or "invalid API key", status=status)
    code = " ".join([error.status, *reasons])
    return classify_http(status, headers, error.message, code, _retry_delay(error))


class Gemini:
    """The codec for `POST {base_url}/models/{model}:generateContent`."""

    accepts = ACCEPTS
    dialect = "gemini"

    def __init__(self) -> None:
        self._endpoints: dict[str, tuple[str, dict[str, str]]] = {}  # provider -> (url, headers)

    def endpoint(self, target: Target) -> tuple[str, dict[str, str]]:
        """The models URL and the headers of a provider, built once and reused."""
        provider = target.provider
        found = self._endpoints.get(provider.name)
        if found is None:
            headers = {"Content-Type": "application/json", **provider.headers}
            if target.key:
                headers["x-goog-api-key"] = target.key
            found = self._endpoints[provider.name] = (provider.base_url + "/models/", headers)
        return found

    def build(self, target: Target, request: ChatRequest, stream: bool) -> HttpCall:
        models, headers = self.endpoint(target)
        method = _STREAM if stream else _GENERATE
        url = models + target.upstream_model + method
        return HttpCall(url, headers, wire.ENCODER.encode(body_for(target, request)))

    def parse_response(self, body: bytes) -> list[Event]:
        reader = _Reader()
        reader.finished = True  # a whole answer's usage is final
        return reader.events(_decode(body))

    def stream_decoder(self) -> StreamDecoder:
        return StreamDecoder()

    def classify(self, status: int, headers: Mapping[str, str], body: bytes) -> UpstreamError:
        error = _error_of(body)
        if error is None:
            message = body[:300].decode(errors="replace").strip()
            return classify_http(status, headers, message)
        return _classify(status, headers, error)


def _error_of(body: bytes) -> wire.Error | None:
    try:
        return wire.ERROR.decode(body).error
    except msgspec.DecodeError:
        pass
    try:
        wrapped = wire.ERRORS.decode(body)
    except msgspec.DecodeError:
        return None
    return wrapped[0].error if wrapped else None
