"""LiteLLM's price table (`model_prices_and_context_window.json`) as the catalog reads it: which
entry prices which catalog model, and what it says in the catalog's units.

Lookup, for model `<m>` of `providers/<p>.toml` with `upstream_name` `<u>` (if set), first hit wins:

1. `<ns>/<m>`, then `<ns>/<u>`, for each LiteLLM namespace `ns` of the provider: its own file
   name, or `NAMESPACES[p]` where LiteLLM spells it differently (google -> gemini, ...);
2. `<m>`, then `<u>`, bare (LiteLLM keys OpenAI and Anthropic models without a prefix);
3. `ALIASES[p][m]`: explicit keys for ids LiteLLM spells differently.

Steps 1 and 2 accept an entry only when its `litellm_provider` is one of the provider's
namespaces, so a bare `gpt-4o` never prices another provider's model of the same name.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import msgspec

from router.cli.catalog_edit import PRICE_FIELDS
from router.config import ModelInfo
from router.errors import ConfigError

NAMESPACES: dict[str, tuple[str, ...]] = {
    "google": ("gemini",),
    "together": ("together_ai",),
    "fireworks": ("fireworks_ai", "fireworks_ai-embedding-models"),
}
"""LiteLLM's provider names for our provider files, where they differ from the file name (the
first is also the prefix of the provider's table keys)."""

ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    # OpenRouter resells first-party models at the first party's list price (the recorded
    # cassette shows anthropic/claude-haiku-4.5 billed at $1 in / $5 out per 1M), under its own
    # ids; LiteLLM has no openrouter/* entries in the table.
    "openrouter": {
        "openai/gpt-4o": ("gpt-4o",),
        "openai/gpt-4o-mini": ("gpt-4o-mini",),
        "openai/gpt-4.1-mini": ("gpt-4.1-mini",),
        "anthropic/claude-sonnet-4.5": ("claude-sonnet-4-5",),
        "anthropic/claude-haiku-4.5": ("claude-haiku-4-5",),
        "google/gemini-2.5-flash": ("gemini/gemini-2.5-flash",),
        "google/gemini-2.5-pro": ("gemini/gemini-2.5-pro",),
    },
}
"""Provider -> model -> table keys, for ids LiteLLM spells differently."""

_PER_MILLION = 6  # decimal places between USD per token and USD per 1M tokens


class TableEntry(msgspec.Struct, kw_only=True):
    """The fields of one LiteLLM table entry that the catalog uses (the rest are ignored)."""

    litellm_provider: str | None = None
    mode: str | None = None
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    input_cost_per_token: Decimal | None = None
    output_cost_per_token: Decimal | None = None
    output_cost_per_image_token: Decimal | None = None
    cache_read_input_token_cost: Decimal | None = None
    cache_creation_input_token_cost: Decimal | None = None
    output_cost_per_reasoning_token: Decimal | None = None
    input_cost_per_image: Decimal | None = None
    output_cost_per_image: Decimal | None = None
    input_cost_per_character: Decimal | None = None
    input_cost_per_second: Decimal | None = None
    output_cost_per_second: Decimal | None = None
    supports_vision: bool = False
    supports_function_calling: bool = False
    supports_reasoning: bool = False
    supports_assistant_prefill: bool = False
    supports_web_search: bool = False
    supports_response_schema: bool = False
    supported_endpoints: list[str] | None = None


class _Owner(msgspec.Struct):
    """Just enough of an entry to index the table by provider."""

    litellm_provider: str | None = None


Table = dict[str, msgspec.Raw]

_TABLE = msgspec.json.Decoder(Table)
_ENTRY = msgspec.json.Decoder(TableEntry)
_OWNER = msgspec.json.Decoder(_Owner)


def load_table(path: Path) -> Table:
    """The table, keyed by model; entries are decoded only when looked up."""
    try:
        return _TABLE.decode(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(str(path), f"not a LiteLLM price table: {exc}") from None


def by_provider(table: Table) -> dict[str, list[str]]:
    """LiteLLM provider name -> its table keys, in table order (malformed entries left out)."""
    index: dict[str, list[str]] = {}
    for key, raw in table.items():
        try:
            owner = _OWNER.decode(raw).litellm_provider
        except (msgspec.DecodeError, msgspec.ValidationError):
            continue
        if owner is not None:
            index.setdefault(owner, []).append(key)
    return index


def table_prices(entry: TableEntry) -> dict[str, Decimal]:
    """The catalog's prices for one entry: token prices per 1M tokens, the rest as they are."""
    per_token = {
        "input": entry.input_cost_per_token,
        "output": _first(entry.output_cost_per_token, entry.output_cost_per_image_token),
        "cached_input": entry.cache_read_input_token_cost,
        "cache_write": entry.cache_creation_input_token_cost,
        "reasoning": entry.output_cost_per_reasoning_token,
        "per_1m_characters": entry.input_cost_per_character,
    }
    # LiteLLM's input_cost_per_image is per *generated* image only on image models.
    generated = entry.input_cost_per_image if entry.mode == "image_generation" else None
    as_is = {
        "per_image": _first(entry.output_cost_per_image, generated),
        "per_second": _first(entry.input_cost_per_second, entry.output_cost_per_second),
    }
    prices = {k: v.scaleb(_PER_MILLION) for k, v in per_token.items() if v is not None}
    prices.update({k: v for k, v in as_is.items() if v is not None})
    return {k: prices[k] for k in PRICE_FIELDS if k in prices}


def table_limits(entry: TableEntry) -> dict[str, int]:
    limits = {
        "context_window": entry.max_input_tokens,
        "max_output_tokens": entry.max_output_tokens,
    }
    return {k: v for k, v in limits.items() if v is not None}


def _first(*values: Decimal | None) -> Decimal | None:
    return next((v for v in values if v is not None), None)


def namespaces(provider: str) -> tuple[str, ...]:
    return NAMESPACES.get(provider, (provider,))


def lookup(
    table: Table, provider: str, model: str, info: ModelInfo
) -> tuple[str, TableEntry] | None:
    """The table entry for one catalog model (see the module docstring for the order)."""
    names = [model] + ([info.upstream_name] if info.upstream_name not in (None, model) else [])
    spaces = namespaces(provider)
    guarded = [f"{ns}/{n}" for n in names for ns in spaces] + names
    for key in guarded:
        entry = entry_at(table, key)
        if entry is not None and entry.litellm_provider in spaces:
            return key, entry
    for key in ALIASES.get(provider, {}).get(model, ()):
        entry = entry_at(table, key)
        if entry is not None:
            return key, entry
    return None


class BadEntry(Exception):
    """A table entry whose fields do not have the documented types."""


def entry_at(table: Table, key: str) -> TableEntry | None:
    raw = table.get(key)
    if raw is None:
        return None
    try:
        return _ENTRY.decode(raw)
    except msgspec.ValidationError as exc:
        raise BadEntry(f"table entry {key} is malformed: {exc}") from None
