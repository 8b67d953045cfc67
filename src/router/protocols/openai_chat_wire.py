"""The OpenAI Chat Completions wire format: what is sent (`Body`) and what comes back
(`Response`, one for a whole answer and for each stream chunk), as msgspec Structs."""

from __future__ import annotations

from typing import Any

import msgspec

from router.protocols import openai_search


class Fn(msgspec.Struct, omit_defaults=True):
    name: str
    arguments: str


class ToolCall(msgspec.Struct):  # no omit_defaults: OpenAI requires `type` to be sent
    id: str
    function: Fn
    type: str = "function"


class Msg(msgspec.Struct, omit_defaults=True):
    role: str
    content: str | list[dict[str, Any]] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None
    name: str | None = None
    prefix: bool | None = None  # DeepSeek / Mistral assistant prefill


class Body(msgspec.Struct, omit_defaults=True):
    model: str
    messages: list[Msg]
    stream: bool | None = None
    stream_options: dict[str, bool] | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: Any = None
    response_format: dict[str, Any] | None = None
    user: str | None = None
    reasoning_effort: str | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    n: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    logit_bias: dict[str, float] | None = None
    web_search_options: dict[str, object] | None = None


class PromptDetails(msgspec.Struct):
    cached_tokens: int | None = 0
    cache_write_tokens: int | None = 0  # OpenRouter, for providers that bill cache writes


class CompletionDetails(msgspec.Struct):
    reasoning_tokens: int | None = 0


class Usage(msgspec.Struct):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_tokens_details: PromptDetails | None = None
    completion_tokens_details: CompletionDetails | None = None
    prompt_cache_hit_tokens: int | None = None  # DeepSeek's name for cached tokens
    total_tokens: int | None = None


class InFn(msgspec.Struct):
    name: str | None = None
    arguments: str | None = None


class InToolCall(msgspec.Struct):
    index: int = 0
    id: str | None = None
    function: InFn | None = None


class Delta(msgspec.Struct):
    content: str | None = None
    reasoning_content: str | None = None  # DeepSeek, vLLM, llama.cpp
    reasoning: str | None = None  # OpenRouter, Groq
    tool_calls: list[InToolCall] | None = None
    refusal: str | None = None
    annotations: list[openai_search.Annotation] | None = None


class Choice(msgspec.Struct):
    index: int = 0
    message: Delta | None = None
    delta: Delta | None = None
    finish_reason: str | None = None
    logprobs: msgspec.Raw = msgspec.Raw(b"null")


class ErrorBody(msgspec.Struct):
    message: str = ""
    type: str | None = None
    code: str | int | None = None
    param: str | None = None


class Response(msgspec.Struct):
    choices: list[Choice] = []
    usage: Usage | None = None
    error: ErrorBody | str | None = None


class ErrorEnvelope(msgspec.Struct):
    error: ErrorBody | str | None = None
    message: str | None = None
