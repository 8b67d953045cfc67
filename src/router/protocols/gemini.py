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
    TextDelta,
    TextPart,
    ToolCallDelta,
    Usage,
)
from router.errors import Failure, UpstreamError
from router.protocols.base import HttpCall, Target
from router.protocols.errors import classify_http

SIGNATURE_SEPARATOR = "__thought__"
EFFORT_BUDGET = {"none": 0, "minimal": 512, "low": 1024, "medium": 8192, "high": 24576}

# ---- wire types: what we send ----------------------------------------------------------------


class _Blob(msgspec.Struct):
    mimeType: str
    data: str


class _FileData(msgspec.Struct):
    mimeType: str
    fileUri: str


class _FnCall(msgspec.Struct):
    name: str
    args: dict[str, Any]


class _FnResponse(msgspec.Struct):
    name: str
    response: dict[str, Any]


class _Part(msgspec.Struct, omit_defaults=True):
    text: str | None = None
    inlineData: _Blob | None = None
    fileData: _FileData | None = None
    functionCall: _FnCall | None = None
    functionResponse: _FnResponse | None = None
    thoughtSignature: str | None = None


class _Content(msgspec.Struct):
    role: str
    parts: list[_Part]


class _System(msgspec.Struct):
    parts: list[_Part]


class _ThinkingConfig(msgspec.Struct, omit_defaults=True):
    thinkingBudget: int
    includeThoughts: bool | None = None


class _GenerationConfig(msgspec.Struct, omit_defaults=True):
    maxOutputTokens: int | None = None
    temperature: float | None = None
    topP: float | None = None
    stopSequences: list[str] | None = None
    seed: int | None = None
    responseMimeType: str | None = None
    responseJsonSchema: Any = None
    thinkingConfig: _ThinkingConfig | None = None


class _FnDeclaration(msgspec.Struct, omit_defaults=True):
    name: str
    description: str | None = None
    parametersJsonSchema: dict[str, object] | None = None


class _Tool(msgspec.Struct):
    functionDeclarations: list[_FnDeclaration]


class _FnConfig(msgspec.Struct, omit_defaults=True):
    mode: str  # AUTO | ANY | NONE
    allowedFunctionNames: list[str] | None = None


class _ToolConfig(msgspec.Struct):
    functionCallingConfig: _FnConfig


class _Body(msgspec.Struct, omit_defaults=True):
    contents: list[_Content]
    systemInstruction: _System | None = None
    generationConfig: _GenerationConfig | None = None
    tools: list[_Tool] | None = None
    toolConfig: _ToolConfig | None = None


# ---- wire types: what comes back ---------------------------------------------------------------


class _OutCall(msgspec.Struct):
    name: str = ""
    args: dict[str, Any] | None = None
    id: str | None = None


class _OutPart(msgspec.Struct):
    text: str | None = None
    thought: bool = False
    functionCall: _OutCall | None = None
    thoughtSignature: str | None = None


class _OutContent(msgspec.Struct):
    parts: list[_OutPart] = []


class _Candidate(msgspec.Struct):
    content: _OutContent | None = None
    finishReason: str | None = None


class _UsageMetadata(msgspec.Struct):
    promptTokenCount: int = 0
    candidatesTokenCount: int = 0
    thoughtsTokenCount: int = 0
    cachedContentTokenCount: int = 0
    toolUsePromptTokenCount: int = 0


class _Feedback(msgspec.Struct):
    blockReason: str | None = None


class _Detail(msgspec.Struct):
    type: str = msgspec.field(default="", name="@type")
    reason: str | None = None
    retryDelay: str | None = None


class _Error(msgspec.Struct):
    code: int = 0
    message: str = ""
    status: str = ""
    details: list[_Detail] = []


class _Response(msgspec.Struct):
    candidates: list[_Candidate] = []
    usageMetadata: _UsageMetadata | None = None
    promptFeedback: _Feedback | None = None
    responseId: str | None = None
    error: _Error | None = None


class _ErrorEnvelope(msgspec.Struct):
    error: _Error | None = None


_ENCODER = msgspec.json.Encoder()
_ARGS = msgspec.json.Decoder(dict[str, Any])
_RESPONSE = msgspec.json.Decoder(_Response)
_ERROR = msgspec.json.Decoder(_ErrorEnvelope)
_ERRORS = msgspec.json.Decoder(list[_ErrorEnvelope])  # streaming endpoints wrap it in a list
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
    """(id, thought signature) of a tool call id made by `call_id`."""
    base, _, signature = call_id.partition(SIGNATURE_SEPARATOR)
    return base, signature or None


def _object(text: str) -> dict[str, Any] | None:
    try:
        return _ARGS.decode(text)
    except msgspec.DecodeError:  # also a JSON value that is not an object
        return None


def _image(p: ImagePart) -> _Part:
    inline = p.inline()
    if inline is not None:
        return _Part(inlineData=_Blob(inline[0], inline[1]))
    mime = mimetypes.guess_type(p.url.split("?", 1)[0])[0] or "image/jpeg"
    return _Part(fileData=_FileData(mime, p.url))


def _parts(m: Message, names: Mapping[str, str]) -> list[_Part]:
    if m.role == "tool":
        text = m.text()
        name = m.name or names.get(m.tool_call_id or "", "")
        response = _object(text) or {"result": text}
        return [_Part(functionResponse=_FnResponse(name, response))]
    parts = [_image(p) if isinstance(p, ImagePart) else _Part(text=p.text) for p in m.content]
    parts = [p for p in parts if p.text != ""]  # the API refuses empty text parts
    for call in m.tool_calls:
        signature = split_call_id(call.id)[1]
        args = _object(call.arguments or "{}") or {}
        parts.append(_Part(functionCall=_FnCall(call.name, args), thoughtSignature=signature))
    return parts


def wire_contents(
    messages: tuple[Message, ...], prefill: str | None
) -> tuple[_System | None, list[_Content]]:
    """(systemInstruction, contents): system hoisted out, same-role neighbours merged so that
    parallel function responses share one turn."""
    names = {c.id: c.name for m in messages for c in m.tool_calls}
    system: list[_Part] = []
    contents: list[_Content] = []
    for m in messages:
        if m.role == "system":
            system += [_Part(text=p.text) for p in m.content if type(p) is TextPart and p.text]
            continue
        _append(contents, "model" if m.role == "assistant" else "user", _parts(m, names))
    if prefill:
        _append(contents, "model", [_Part(text=prefill)])
    return (_System(system) if system else None), contents


def _append(contents: list[_Content], role: str, parts: list[_Part]) -> None:
    if not parts:
        return
    if contents and contents[-1].role == role:
        contents[-1].parts.extend(parts)
    else:
        contents.append(_Content(role, parts))


def _thinking(target: Target, request: ChatRequest) -> _ThinkingConfig | None:
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
    return _ThinkingConfig(budget, True if budget else None)


def _generation(target: Target, request: ChatRequest) -> _GenerationConfig | None:
    skip = target.info.unsupported_params if target.info else frozenset()
    config = _GenerationConfig(thinkingConfig=_thinking(target, request))
    wanted = {
        "max_tokens": ("maxOutputTokens", request.max_tokens),
        "temperature": ("temperature", request.temperature),
        "top_p": ("topP", request.top_p),
        "stop": ("stopSequences", list(request.stop) or None),
        "seed": ("seed", request.seed),
    }
    for name, (field, value) in wanted.items():
        if name not in skip:
            setattr(config, field, value)
    if request.response_format and "response_format" not in skip:
        _response_format(config, request.response_format)
    return config if config != _GenerationConfig() else None


def _response_format(config: _GenerationConfig, fmt: dict[str, object]) -> None:
    kind = fmt.get("type")
    if kind in ("json_object", "json_schema"):
        config.responseMimeType = "application/json"
    spec = fmt.get("json_schema")
    if kind == "json_schema" and isinstance(spec, dict):
        config.responseJsonSchema = spec.get("schema")


def _tool_config(choice: str | dict[str, object] | None) -> _ToolConfig | None:
    if isinstance(choice, dict):
        return _ToolConfig(_FnConfig("ANY", [str(choice.get("name", ""))]))
    mode = _MODES.get(choice or "")
    return _ToolConfig(_FnConfig(mode)) if mode else None


def body_for(target: Target, request: ChatRequest) -> _Body:
    """The wire body, leaving out whatever the catalog says this model does not accept."""
    skip = target.info.unsupported_params if target.info else frozenset()
    system, contents = wire_contents(request.messages, request.prefill)
    body = _Body(contents, system, _generation(target, request))
    if request.tools and "tools" not in skip:
        declarations = [_FnDeclaration(t.name, t.description, t.parameters) for t in request.tools]
        body.tools = [_Tool(declarations)]
        if "tool_choice" not in skip:
            body.toolConfig = _tool_config(request.tool_choice)
    return body


# ---- answers -------------------------------------------------------------------------------------


def usage_from(u: _UsageMetadata) -> Usage:
    thoughts = u.thoughtsTokenCount
    prompt = u.promptTokenCount + u.toolUsePromptTokenCount
    completion = u.candidatesTokenCount + thoughts
    return Usage(prompt, completion, thoughts, u.cachedContentTokenCount)


def _blocked(what: str) -> UpstreamError:
    return UpstreamError(Failure.CONTENT_POLICY, f"Gemini blocked the {what}")


class _Reader:
    """Turns responses into events; one per answer, shared by plain and streamed answers."""

    __slots__ = ("calls", "finished", "produced")

    def __init__(self) -> None:
        self.calls = 0  # tool calls so far: the next call's index
        self.produced = False  # any text or tool call seen
        self.finished = False  # a finishReason was seen: usage from now on is final

    def events(self, response: _Response) -> list[Event]:
        if response.error is not None:
            raise _classify(500, {}, response.error)
        feedback = response.promptFeedback
        if not response.candidates and feedback is not None and feedback.blockReason:
            raise _blocked(f"prompt ({feedback.blockReason})")
        out: list[Event] = []
        for candidate in response.candidates[:1]:
            self._candidate(candidate, response.responseId, out)
        if self.finished and response.usageMetadata is not None:
            out.append(usage_from(response.usageMetadata))
        return out

    def _candidate(self, candidate: _Candidate, rid: str | None, out: list[Event]) -> None:
        for part in candidate.content.parts if candidate.content else ():
            self._part(part, rid, out)
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

    def _part(self, part: _OutPart, rid: str | None, out: list[Event]) -> None:
        if part.functionCall is not None:
            out.append(self._call(part.functionCall, part.thoughtSignature, rid))
        elif part.text and part.thought:
            out.append(ReasoningDelta(part.text))
        elif part.text:
            self.produced = True
            out.append(TextDelta(part.text))

    def _call(self, call: _OutCall, signature: str | None, rid: str | None) -> ToolCallDelta:
        index = self.calls
        self.calls += 1
        self.produced = True
        call_id = call.id or f"call_{rid or 'gemini'}_{index}"
        if signature:
            call_id += SIGNATURE_SEPARATOR + signature
        arguments = _ENCODER.encode(call.args or {}).decode()
        return ToolCallDelta(index, call_id, call.name, arguments)


class StreamDecoder:
    """Decodes `streamGenerateContent?alt=sse`: whole responses, no end marker."""

    __slots__ = ("done", "reader")

    def __init__(self) -> None:
        self.done = False  # never set: the stream ends at EOF
        self.reader = _Reader()

    def feed(self, event: str | None, data: bytes) -> list[Event]:
        return self.reader.events(_decode(data))


def _decode(data: bytes) -> _Response:
    try:
        return _RESPONSE.decode(data)
    except msgspec.DecodeError:
        raise UpstreamError(Failure.MALFORMED, "malformed JSON from upstream") from None


def _retry_delay(error: _Error) -> float | None:
    for detail in error.details:
        if detail.retryDelay and detail.retryDelay.endswith("s"):
            try:
                return max(0.0, float(detail.retryDelay[:-1]))
            except ValueError:
                return None
    return None


def _classify(status: int, headers: Mapping[str, str], error: _Error) -> UpstreamError:
    """Gemini answers a bad key with 400 INVALID_ARGUMENT: its `reason` makes it an auth
    failure; a 429's `RetryInfo.retryDelay` counts like Retry-After."""
    reasons = [d.reason for d in error.details if d.reason]
    if _KEY_REASONS.intersection(reasons):
        return UpstreamError(Failure.AUTH, error.message or "invalid API key", status=status)
    code = " ".join([error.status, *reasons])
    return classify_http(status, headers, error.message, code, _retry_delay(error))


class Gemini:
    """The codec for `POST {base_url}/models/{model}:generateContent`."""

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
        return HttpCall(url, headers, _ENCODER.encode(body_for(target, request)))

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


def _error_of(body: bytes) -> _Error | None:
    try:
        return _ERROR.decode(body).error
    except msgspec.DecodeError:
        pass
    try:
        wrapped = _ERRORS.decode(body)
    except msgspec.DecodeError:
        return None
    return wrapped[0].error if wrapped else None
