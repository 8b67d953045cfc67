"""New catalog models from LiteLLM's table: which entries become models of a provider file,
what the table says about them (type, limits, capabilities, prices), and their TOML text.

A table entry of a provider (its `litellm_provider` is one of the provider's namespaces)
becomes model `<m>` when its key is `<ns>/<m>` or the bare `<m>`, no catalog model already
prices from it, and:

- its `mode` is one we serve with that provider's protocol (`MODES`, `PROTOCOL_TYPES`); the
  others (moderation, rerank, realtime, ocr, video_generation, completion, ...) are skipped;
- it names a model, not a price variant: LiteLLM's per-size/quality image prices
  (`low/1024-x-1024/gpt-image-1`), Azure's regional deployments (`azure/eu/gpt-4o`) and
  its per-size price tiers (`together-ai-up-to-4b`) are skipped;
- it has the prices accounting needs: input and output for chat; for media, a token,
  per-image, per-character or per-second price.
"""

from __future__ import annotations

import re

import msgspec

from router.cli.catalog_edit import LIMIT_FIELDS, PRICE_FIELDS, format_price, quote_key, toml_string
from router.cli.price_table import (
    BadEntry,
    Table,
    TableEntry,
    lookup,
    namespaces,
    table_prices,
)
from router.config import ModelInfo, ModelType, Prices, Provider

MODES: dict[str, ModelType] = {
    "chat": "chat",
    "responses": "chat",  # served by OpenAI's Responses API only: the `responses` capability
    "embedding": "embedding",
    "image_generation": "image",
    "audio_speech": "speech",
    "audio_transcription": "transcription",
}
"""LiteLLM's `mode` -> our model type; any other mode is not served."""

_ALL: frozenset[ModelType] = frozenset(MODES.values())
PROTOCOL_TYPES: dict[str, frozenset[ModelType]] = {
    "openai": _ALL,  # Chat Completions and the media endpoints
    "anthropic": frozenset({"chat"}),
    "gemini": frozenset({"chat"}),
    "azure": frozenset({"chat"}),
}
"""The model types each wire protocol serves (router.protocols: media only over `openai`)."""

RESPONSES = frozenset({"openai"})
"""Providers whose models serve the Responses API natively (the `responses` capability)."""

NOT_CLAIMED: dict[str, frozenset[str]] = {
    # Chat Completions neither continues a partial assistant message nor searches the web
    # (only the *-search-preview models do, through their own parameter).
    "openai": frozenset({"prefill", "web_search"}),
    "azure": frozenset({"prefill", "web_search"}),
}
"""Capabilities the table claims that a provider's endpoint does not offer."""

REASONING_UNSUPPORTED: dict[str, tuple[str, ...]] = {
    "openai": ("max_tokens", "temperature", "top_p", "stop"),
    "azure": ("max_tokens", "temperature", "top_p", "stop"),
}
"""Parameters a provider's reasoning models refuse (they take max_completion_tokens)."""

UPSTREAM_IS_NAME = frozenset({"azure"})
"""Providers whose models are deployments: `upstream_name` is set (to the model's name)."""

_VARIANT = re.compile(
    r"(?:^|/)(?:low|medium|high|hd|standard|eu|us|us-gov|apac|global|global-standard)/|\d-x-\d"
)
_TIER = re.compile(r"[a-z]+-ai-")  # together-ai-up-to-4b, fireworks-ai-default ...

_CAPABILITIES = (
    ("vision", "supports_vision"),
    ("tools", "supports_function_calling"),
    ("reasoning", "supports_reasoning"),
    ("prefill", "supports_assistant_prefill"),
    ("web_search", "supports_web_search"),
    ("json_mode", "supports_response_schema"),
)


class Added(msgspec.Struct, frozen=True):
    """A model the table adds to a provider file."""

    model: str
    key: str
    info: ModelInfo


class Skipped(msgspec.Struct, frozen=True):
    """A table entry of a provider that does not become a model, and why."""

    key: str
    reason: str


def new_models(
    table: Table, keys: list[str], provider: Provider, name: str, used: set[str]
) -> tuple[list[Added], list[Skipped]]:
    """The models `keys` (the provider's table keys) add to `provider`; `used` holds the keys
    its catalog models already price from."""
    added: dict[str, Added] = {}
    skipped: list[Skipped] = []
    for key in keys:
        model, reason = _model_name(key, namespaces(name))
        if model is None or model in provider.models or model in added or key in used:
            if reason:
                skipped.append(Skipped(key, reason))
            continue
        try:
            found = lookup(table, name, model, ModelInfo())
        except BadEntry as exc:
            skipped.append(Skipped(key, str(exc)))
            continue
        if found is None or found[0] in used:
            continue
        made = infer(found[1], provider.protocol, name, model)
        if isinstance(made, str):
            skipped.append(Skipped(found[0], made))
        else:
            added[model] = Added(model, found[0], made)
    return sorted(added.values(), key=lambda a: a.model), skipped


def _model_name(key: str, spaces: tuple[str, ...]) -> tuple[str | None, str]:
    """(the model a table key names, "") or (None, why it names none)."""
    prefix = next((ns for ns in spaces if key.startswith(ns + "/")), None)
    model = key[len(prefix) + 1 :] if prefix else key
    if _VARIANT.search(model):
        return None, "a per-size, per-quality or regional price variant"
    if prefix is None and _TIER.match(key):
        return None, "a LiteLLM price tier, not a model"
    return model, ""


def infer(entry: TableEntry, protocol: str, provider: str, model: str) -> ModelInfo | str:
    """The catalog entry for a table entry, or why there is none."""
    kind = MODES.get(entry.mode or "")
    if kind is None:
        return f"mode {entry.mode} not served"
    if kind not in PROTOCOL_TYPES.get(protocol, frozenset()):
        return f"{entry.mode} not served over the {protocol} protocol"
    if entry.mode == "responses" and provider not in RESPONSES:
        return "a Responses-only model of a provider we reach by Chat Completions"
    prices = Prices(**table_prices(entry))
    if not priced(kind, prices):
        return "no price for what it serves"
    caps = capabilities(entry, provider)
    unsupported = REASONING_UNSUPPORTED.get(provider, ()) if "reasoning" in caps else ()
    return ModelInfo(
        type=kind,
        context_window=entry.max_input_tokens,
        max_output_tokens=entry.max_output_tokens,
        capabilities=frozenset(caps),
        unsupported_params=frozenset(unsupported),
        prices=prices,
        upstream_name=model if provider in UPSTREAM_IS_NAME else None,
    )


def priced(kind: ModelType, prices: Prices) -> bool:
    """Whether accounting can cost an answer of a model of this type at these prices."""
    if kind == "chat":
        return prices.input is not None and prices.output is not None
    units = (prices.input, prices.per_image, prices.per_1m_characters, prices.per_second)
    return any(p is not None for p in units)


def capabilities(entry: TableEntry, provider: str) -> list[str]:
    """What the table says the model does, in the catalog's order and names."""
    if MODES.get(entry.mode or "") != "chat":
        return []
    caps = [cap for cap, flag in _CAPABILITIES if getattr(entry, flag)]
    caps = [c for c in caps if c not in NOT_CLAIMED.get(provider, frozenset())]
    endpoints = entry.supported_endpoints
    if provider in RESPONSES and (endpoints is None or "/v1/responses" in endpoints):
        caps.append("responses")
    return caps


def used_keys(table: Table, provider: Provider, name: str) -> set[str]:
    """The table keys the provider's catalog models price from."""
    used = set()
    for model, info in provider.models.items():
        try:
            found = lookup(table, name, model, info)
        except BadEntry:
            continue
        if found is not None:
            used.add(found[0])
    return used


def render(added: list[Added]) -> list[str]:
    """The TOML lines of new models, in the layout of the shipped files."""
    lines: list[str] = []
    for item in added:
        info = item.info
        lines += ["", f"[models.{quote_key(item.model)}]"]
        if info.type != "chat":
            lines.append(f'type = "{info.type}"')
        lines += [f"{f} = {getattr(info, f)}" for f in LIMIT_FIELDS if getattr(info, f)]
        if info.capabilities:
            lines.append(f"capabilities = {_array(_ordered(info.capabilities))}")
        if info.unsupported_params:
            params = sorted(
                info.unsupported_params, key=lambda p: _PARAM_ORDER.get(p, len(_PARAM_ORDER))
            )
            lines.append(f"unsupported_params = {_array(params)}")
        if info.upstream_name is not None:
            lines.append(f"upstream_name = {toml_string(info.upstream_name)}")
        lines += ["", f"[models.{quote_key(item.model)}.prices]"]
        for field in PRICE_FIELDS:
            value = getattr(info.prices, field)
            if value is not None:
                lines.append(f'{field} = "{format_price(value)}"')
    return lines


_PARAM_ORDER = {p: i for i, p in enumerate(REASONING_UNSUPPORTED["openai"])}
_ORDER = [cap for cap, _ in _CAPABILITIES] + ["responses"]


def _ordered(caps: frozenset[str]) -> list[str]:
    return sorted(caps, key=_ORDER.index)


def _array(items: list[str]) -> str:
    return "[" + ", ".join(map(toml_string, items)) + "]"
