"""Canonical types: the one internal request, the one stream of events, routing targets and
the attempt trail's entries.

Every surface decodes into `ChatRequest` and renders from `Event`s; every wire protocol
translates to and from them. Nothing here knows about HTTP or any provider. This module is
the bottom layer with `router.errors` and `router.config`: it imports nothing else of ours.
"""

from __future__ import annotations

import enum
from decimal import Decimal
from typing import Literal

import msgspec

from router.config import ModelInfo, Provider

Role = Literal["system", "user", "assistant", "tool"]


class CacheHint(msgspec.Struct, frozen=True, omit_defaults=True):
    """A prompt-cache breakpoint (Anthropic's `cache_control`): cache the prompt up to and
    including the part that carries it. Protocols without explicit caching ignore it."""

    type: str = "ephemeral"
    ttl: str | None = None


class TextPart(msgspec.Struct, frozen=True, tag="text"):
    text: str
    cache: CacheHint | None = None


class ImagePart(msgspec.Struct, frozen=True, tag="image"):
    """An image by URL (http(s) or a `data:` URL); `detail` is OpenAI's hint."""

    url: str
    detail: str | None = None
    cache: CacheHint | None = None

    def inline(self) -> tuple[str, str] | None:
        """(media type, base64 data) for a `data:` URL, else None."""
        if not self.url.startswith("data:"):
            return None
        header, _, data = self.url[5:].partition(",")
        return header.split(";", 1)[0] or "application/octet-stream", data


class ThinkingPart(msgspec.Struct, frozen=True, tag="thinking"):
    """Reasoning an assistant turn showed, with the provider's opaque `signature` (or its
    `redacted` form). It round-trips only to the protocol named by `origin`: every other
    protocol drops it, since a foreign signature would be rejected."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    origin: str = ""  # the protocol that produced it, e.g. "anthropic"


Part = TextPart | ImagePart | ThinkingPart


class ToolCall(msgspec.Struct, frozen=True):
    id: str
    name: str
    arguments: str  # JSON text, as the model produced it


class Tool(msgspec.Struct, frozen=True):
    name: str
    description: str | None = None
    parameters: dict[str, object] | None = None  # JSON Schema, passed through untouched
    cache: CacheHint | None = None


class Native(msgspec.Struct, frozen=True):
    """Provider-specific passthrough: body `fields` and `headers` that only the codec of
    `protocol` reads (merged into its request as given); every other protocol ignores them.
    `endpoint` names another endpoint of that protocol than its chat one (Anthropic's
    "count_tokens")."""

    protocol: str
    fields: dict[str, object] = msgspec.field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()
    capability: str | None = None  # and only for models that list it (e.g. "responses")
    endpoint: str = ""

    def for_protocol(self, protocol: str) -> Native | None:
        return self if protocol == self.protocol else None

    def for_target(self, target: Target) -> Native | None:
        """Itself when `target` speaks `protocol` and, if one is named, its model lists
        `capability` in the catalog; else None (the canonical request is sent instead)."""
        if target.provider.protocol != self.protocol:
            return None
        if self.capability is None:
            return self
        info = target.info
        return self if info is not None and self.capability in info.capabilities else None


class Message(msgspec.Struct, frozen=True):
    role: Role
    content: tuple[Part, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None  # for role "tool"
    name: str | None = None

    def text(self) -> str:
        return "".join(p.text for p in self.content if type(p) is TextPart)


class Source(msgspec.Struct, frozen=True, gc=False):
    """A web page an answer is grounded in."""

    url: str
    title: str = ""


class Found(msgspec.Struct, frozen=True):
    """One result of the gateway-run search: a page and what it says."""

    url: str
    title: str = ""
    snippet: str = ""


class ChatRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a protocol adapter needs to build one upstream request."""

    messages: tuple[Message, ...]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    seed: int | None = None
    tools: tuple[Tool, ...] = ()
    tool_choice: str | dict[str, object] | None = (
        None  # "auto" | "none" | "required" | {"name": ...}
    )
    response_format: dict[str, object] | None = None
    user: str | None = None
    reasoning_effort: str | None = None
    thinking_budget: int | None = None
    prefill: str | None = None  # continue this partial assistant answer (stream rescue)
    native: Native | None = None  # passthrough for one protocol (see `Native`)
    # Controls not every protocol has (see `params` and the backends' `accepts`):
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    top_k: int | None = None
    n: int = 1  # choices to generate
    logprobs: bool = False
    top_logprobs: int | None = None
    logit_bias: dict[str, float] | None = None
    extra: dict[str, object] | None = None  # provider extras (`extra_body`), by provider file
    search: bool = False  # ground the answer in a web search (natively, else the gateway's)
    found: tuple[Found, ...] = ()  # the gateway-run search's results, shared by every attempt

    def params(self) -> frozenset[str]:
        """The canonical parameters this request sets: what a target may not honour."""
        return frozenset(name for name, unset in _PARAMS if getattr(self, name) != unset)

    def output_limit(self, info: ModelInfo | None) -> int | None:
        """`max_tokens`, clamped to the model's own maximum output when the catalog knows it."""
        limit = info.max_output_tokens if info is not None else None
        if self.max_tokens is None or limit is None:
            return self.max_tokens
        return min(self.max_tokens, limit)


_PARAMS: tuple[tuple[str, object], ...] = (
    ("temperature", None),
    ("top_p", None),
    ("max_tokens", None),
    ("stop", ()),
    ("tools", ()),
    ("tool_choice", None),
    ("user", None),
    ("thinking_budget", None),
    ("presence_penalty", None),
    ("frequency_penalty", None),
    ("top_k", None),
    ("n", 1),
    ("logprobs", False),
    ("top_logprobs", None),
    ("logit_bias", None),
    ("seed", None),
    ("response_format", None),
    ("reasoning_effort", None),
)


def estimate_tokens(text: str) -> int:
    """About four characters a token: used only where a provider reported no usage."""
    return (len(text) + 3) // 4


def estimate_prompt(request: ChatRequest) -> int:
    return sum(estimate_tokens(m.text()) + 4 for m in request.messages)


# ---- stream events -------------------------------------------------------------------------


class TextDelta(msgspec.Struct, frozen=True, gc=False):
    text: str
    choice: int = 0  # which of `n` choices (OpenAI's `index`)


class ReasoningDelta(msgspec.Struct, frozen=True, gc=False):
    """Reasoning text; `signature` (Anthropic's `signature_delta`) closes a thinking block;
    `redacted` is a whole redacted thinking block (its opaque data)."""

    text: str
    signature: str | None = None
    choice: int = 0
    redacted: str | None = None


class ToolCallDelta(msgspec.Struct, frozen=True, gc=False):
    """A piece of a tool call: `id`/`name` on its first piece, `arguments` appended."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""
    choice: int = 0


class Usage(msgspec.Struct, frozen=True, gc=False):
    """Normalised token counts. `prompt_tokens` includes cached and cache-write tokens;
    `completion_tokens` includes `reasoning_tokens`, whatever the protocol reported."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    estimated: bool = False
    searches: int = 0  # web searches run for the answer (billed apart, `Prices.per_search`)

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


class Finish(msgspec.Struct, frozen=True, gc=False):
    reason: FinishReason = "stop"
    choice: int = 0


class Logprobs(msgspec.Struct, frozen=True, gc=False):
    """Token log probabilities as the provider sent them (OpenAI's `logprobs` object),
    relayed untouched to a surface that shows them."""

    raw: msgspec.Raw
    choice: int = 0


class Sources(msgspec.Struct, frozen=True, gc=False):
    """Pages the answer is grounded in: `cited` ones in order of citation, else pages that
    were searched (and may follow the cited ones)."""

    sources: tuple[Source, ...]
    cited: bool = True
    choice: int = 0  # always the first: providers ground the answer, not each choice


Event = TextDelta | ReasoningDelta | ToolCallDelta | Usage | Finish | Logprobs | Sources


# ---- routing --------------------------------------------------------------------------------


class Target(msgspec.Struct, frozen=True):
    """One `provider/model` the gateway may send a request to, resolved at plan time."""

    provider: Provider
    model: str
    info: ModelInfo | None
    key: str | None  # the provider's API key, if configured; never rendered anywhere

    @property
    def ref(self) -> str:
        return f"{self.provider.name}/{self.model}"

    @property
    def upstream_model(self) -> str:
        return (self.info.upstream_name if self.info else None) or self.model

    def __repr__(self) -> str:  # keep the key out of every repr
        return f"Target({self.ref})"


class CircuitState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Asked(msgspec.Struct, frozen=True):
    """One requested model name and the surface's own name for the field that asked for it
    (`model`, `models[1]`, ...), so every error about it names the caller's field."""

    name: str
    field: str


# ---- outcomes -------------------------------------------------------------------------------


class Attempt(msgspec.Struct, frozen=True):
    """One line of the attempt trail, with its final outcome."""

    provider: str
    model: str
    outcome: str  # "ok" or a `router.errors.Failure` value
    status: int | None = None
    ms: int = 0
    reason: str | None = None
    tokens: int | None = None  # consumed by a stream that broke (estimated)
    cost: Decimal | None = None  # what those tokens cost, from the catalog
    waited_ms: int = 0  # the back-off slept before this attempt (a retry)
    hedged: bool | msgspec.UnsetType = msgspec.UNSET  # started as a hedge; rendered only then

    @property
    def ref(self) -> str:
        return f"{self.provider}/{self.model}"


class Choice(msgspec.Struct, frozen=True):
    """One more of `n` choices, beyond the first (which is the `Completion` itself)."""

    index: int
    text: str
    tool_calls: tuple[ToolCall, ...] = ()
    finish: FinishReason = "stop"
    logprobs: msgspec.Raw | None = None


class Costs(msgspec.Struct, frozen=True):
    input_tokens_cost: Decimal
    output_tokens_cost: Decimal
    total_tokens_cost: Decimal  # search fees included
    search_cost: Decimal = Decimal(0)


class Completion(msgspec.Struct, kw_only=True):
    """A finished answer, accumulated from events, with the facts the surfaces report."""

    provider: str
    model: str
    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = []
    usage: Usage = Usage()
    finish: FinishReason = "stop"
    costs: Costs | None = None
    attempts: tuple[Attempt, ...] = ()
    latency_ms: int = 0
    ttft_ms: int = 0
    logprobs: msgspec.Raw | None = None  # the first choice's, as the provider sent them
    choices: tuple[Choice, ...] = ()  # choices beyond the first (n > 1)
    dropped: tuple[str, ...] = ()  # parameters the answering target could not honour
    strategy: str = "ordered"  # what ordered the attempts
    cache: str | None = None  # "hit" or "miss" when the response cache was asked
    sources: tuple[Source, ...] = ()  # cited pages in order of first citation, then searched


class Report(msgspec.Struct, frozen=True, kw_only=True):
    """What one call came to, told once to the observers (metrics, request logs, the spend
    ledger, traces): the answer's facts when there is one, the failure otherwise."""

    surface: str
    request_id: str = ""  # the surface's id for this request (api/common `begin`)
    caller: str  # the key's name ("master" for the master key)
    operation: str = "chat"  # the GenAI operation: "chat", "embeddings", "generate_content"
    request_model: str = ""  # the first model name the caller asked for, as asked
    key_id: str | None
    stream: bool
    outcome: str  # "ok", or the `Failure` value that ended the call
    target: Target | None  # the target that answered (or broke last)
    usage: Usage = Usage()
    costs: Costs | None = None
    attempts: tuple[Attempt, ...] = ()
    latency_ms: int = 0
    ttft_ms: int | None = None  # from the request's arrival
    upstream_ttft: float | None = None  # seconds, from the answering attempt's own start
    rescued: bool = False
    cache: str | None = None  # "hit" or "miss" when the response cache was asked
    strategy: str = "ordered"  # what ordered the attempts (`router.core.strategies`)
    saved: Decimal | None = None  # a cache hit: what the answer cost when it was made

    @property
    def fell_back(self) -> bool:
        return bool(self.attempts) and self.attempts[0].outcome != "ok"
