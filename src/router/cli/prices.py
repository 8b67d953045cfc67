"""`router prices refresh`: bring the prices in providers/*.toml in line with a LiteLLM price table.

    router prices refresh --table model_prices_and_context_window.json \\
        [--providers providers] [--dry-run]

The table is LiteLLM's `model_prices_and_context_window.json` (USD per token); the catalog keeps
USD per 1M tokens as decimal strings. JSON numbers are decoded straight into `Decimal` and shifted
six places, so no float ever rounds a price. Written as "2.50", "0.075": two decimals, more
only when needed. Fields, first present wins (the per-token ones scaled to per 1M):

    input              input_cost_per_token
    output             output_cost_per_token, output_cost_per_image_token (image models)
    cached_input       cache_read_input_token_cost
    cache_write        cache_creation_input_token_cost
    reasoning          output_cost_per_reasoning_token
    per_1m_characters  input_cost_per_character
    per_image          output_cost_per_image, input_cost_per_image (image_generation entries)
    per_second         input_cost_per_second, output_cost_per_second

Lookup, for model `<m>` of `providers/<p>.toml` with `upstream_name` `<u>` (if set), first hit wins:

1. `<ns>/<m>`, then `<ns>/<u>`, for each LiteLLM namespace `ns` of the provider: its own file
   name, or `NAMESPACES[p]` where LiteLLM spells it differently (google -> gemini, ...);
2. `<m>`, then `<u>`, bare (LiteLLM keys OpenAI and Anthropic models without a prefix);
3. `ALIASES[p][m]`: explicit keys for ids LiteLLM spells differently.

Steps 1 and 2 accept an entry only when its `litellm_provider` is one of the provider's
namespaces, so a bare `gpt-4o` never prices another provider's model of the same name. Azure
models are keyed by the name clients use, `upstream_name` being the deployment; either is tried.

What a refresh changes, and nothing else:

- for every model found and not `pinned_prices = true`, its `[models.<m>.prices]` table becomes
  exactly what the entry says: values replaced in place, keys added or dropped (an entry that
  carries no price at all counts as not found);
- `context_window` (LiteLLM `max_input_tokens`) and `max_output_tokens` of the same models, when
  the entry has them; they are never removed.

Edits are textual and line-based: comments, order and formatting of everything else stay byte
for byte. Every edited file is decoded again and compared with the intended catalog before it is
written; a layout the editor cannot handle safely is an error, and the file is left unchanged.
"""

from __future__ import annotations

import argparse
import os
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import msgspec

from router.cli.catalog_edit import LIMIT_FIELDS, PRICE_FIELDS, edit_catalog, format_price
from router.config import ModelInfo, Prices, Provider
from router.errors import ConfigError

NAMESPACES: dict[str, tuple[str, ...]] = {
    "google": ("gemini",),
    "together": ("together_ai",),
    "fireworks": ("fireworks_ai",),
}
"""LiteLLM's provider names for our provider files, where they differ from the file name."""

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


Status = Literal["changed", "unchanged", "pinned", "missing"]


class ModelResult(msgspec.Struct, frozen=True):
    """What the refresh did with one model."""

    provider: str
    model: str
    status: Status
    table_key: str | None = None
    changes: tuple[str, ...] = ()  # "input 2.50 -> 3.00", "cache_write unset -> 3.75" ...
    note: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.provider}/{self.model}"


class RefreshReport(msgspec.Struct, frozen=True):
    """Every model of every provider file, and the files rewritten (on a dry run: the files
    that would have been)."""

    results: tuple[ModelResult, ...]
    written: tuple[str, ...]
    dry_run: bool = False

    def by_status(self, status: Status) -> tuple[ModelResult, ...]:
        return tuple(r for r in self.results if r.status == status)

    def render(self) -> str:
        changed = self.by_status("changed")
        lines = [f"changed: {len(changed)}"]
        lines += [f"  {r.ref}: {'; '.join(r.changes)}" for r in changed]
        lines.append(f"unchanged: {len(self.by_status('unchanged'))}")
        lines.append(_names("left alone: pinned", self.by_status("pinned")))
        lines.append(_names("not in table", self.by_status("missing")))
        files = ", ".join(self.written) or "none"
        lines.append(f"dry run, would write: {files}" if self.dry_run else f"written: {files}")
        return "\n".join(lines)


def _names(label: str, results: tuple[ModelResult, ...]) -> str:
    refs = ", ".join(r.ref + (f" ({r.note})" if r.note else "") for r in results)
    return f"{label}: {len(results)}" + (f" - {refs}" if refs else "")


# ---- the table -------------------------------------------------------------------------------

_TABLE = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ENTRY = msgspec.json.Decoder(TableEntry)


def load_table(path: Path) -> dict[str, msgspec.Raw]:
    """The table, keyed by model; entries are decoded only when looked up."""
    try:
        return _TABLE.decode(path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(str(path), "file not found") from None
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ConfigError(str(path), f"not a LiteLLM price table: {exc}") from None


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


SEARCH_FEES = ("per_search", "per_grounded_request")  # from the providers' pricing pages


def table_limits(entry: TableEntry) -> dict[str, int]:
    limits = {
        "context_window": entry.max_input_tokens,
        "max_output_tokens": entry.max_output_tokens,
    }
    return {k: v for k, v in limits.items() if v is not None}


def _first(*values: Decimal | None) -> Decimal | None:
    return next((v for v in values if v is not None), None)


def lookup(
    table: dict[str, msgspec.Raw], provider: str, model: str, info: ModelInfo
) -> tuple[str, TableEntry] | None:
    """The table entry for one catalog model (see the module docstring for the order)."""
    names = [model] + ([info.upstream_name] if info.upstream_name not in (None, model) else [])
    spaces = NAMESPACES.get(provider, (provider,))
    guarded = [f"{ns}/{n}" for n in names for ns in spaces] + names
    for key in guarded:
        entry = _entry(table, key)
        if entry is not None and entry.litellm_provider in spaces:
            return key, entry
    for key in ALIASES.get(provider, {}).get(model, ()):
        entry = _entry(table, key)
        if entry is not None:
            return key, entry
    return None


class _BadEntry(Exception):
    """A table entry whose fields do not have the documented types."""


def _entry(table: dict[str, msgspec.Raw], key: str) -> TableEntry | None:
    raw = table.get(key)
    if raw is None:
        return None
    try:
        return _ENTRY.decode(raw)
    except msgspec.ValidationError as exc:
        raise _BadEntry(f"table entry {key} is malformed: {exc}") from None


# ---- the refresh -----------------------------------------------------------------------------


def refresh_prices(
    providers_dir: Path, table_path: Path, *, dry_run: bool = False
) -> RefreshReport:
    """Refresh every providers_dir/*.toml from the table; write nothing when `dry_run`.

    All files are edited and checked before the first is written: an error leaves every file
    as it was."""
    table = load_table(table_path)
    if not providers_dir.is_dir():
        raise ConfigError(str(providers_dir), "not a directory")
    results: list[ModelResult] = []
    rewritten: dict[Path, str] = {}
    for path in sorted(providers_dir.glob("*.toml")):
        file_results, new_text = _refresh_file(path, table)
        results += file_results
        if new_text is not None:
            rewritten[path] = new_text
    if not dry_run:
        for path, text in rewritten.items():
            _write(path, text)
    return RefreshReport(tuple(results), tuple(map(str, rewritten)), dry_run)


def _refresh_file(
    path: Path, table: dict[str, msgspec.Raw]
) -> tuple[list[ModelResult], str | None]:
    text = path.read_bytes().decode("utf-8")
    provider = _decode(text, str(path))
    results = []
    updated: dict[str, tuple[ModelInfo, ModelInfo]] = {}
    for model, info in provider.models.items():
        result, new_info = _refresh_model(path.stem, model, info, table)
        results.append(result)
        if new_info is not None:
            updated[model] = (info, new_info)
    if not updated:
        return results, None
    new_text = edit_catalog(text, updated, str(path))
    models = {m: updated[m][1] if m in updated else i for m, i in provider.models.items()}
    if _decode(new_text, str(path)) != msgspec.structs.replace(provider, models=models):
        raise ConfigError(str(path), "cannot be edited safely (unusual layout); left unchanged")
    return results, new_text


def _refresh_model(
    provider: str, model: str, info: ModelInfo, table: dict[str, msgspec.Raw]
) -> tuple[ModelResult, ModelInfo | None]:
    if info.pinned_prices:
        return ModelResult(provider, model, "pinned"), None
    try:
        found = lookup(table, provider, model, info)
    except _BadEntry as exc:
        return ModelResult(provider, model, "missing", note=str(exc)), None
    if found is None:
        return ModelResult(provider, model, "missing"), None
    key, entry = found
    prices = table_prices(entry)
    if not prices:
        return ModelResult(provider, model, "missing", key, note="entry has no price"), None
    fees = {f: getattr(info.prices, f) for f in SEARCH_FEES}  # the table has none: kept
    prices = {**{f: v for f, v in fees.items() if v is not None}, **prices}
    new_info = msgspec.structs.replace(info, prices=Prices(**prices), **table_limits(entry))
    changes = _describe(info, new_info)
    if not changes:
        return ModelResult(provider, model, "unchanged", key), None
    return ModelResult(provider, model, "changed", key, changes), new_info


def _describe(old: ModelInfo, new: ModelInfo) -> tuple[str, ...]:
    def show(value: Decimal | int | None) -> str:
        if value is None:
            return "unset"
        return format_price(value) if isinstance(value, Decimal) else str(value)

    pairs = [(f, getattr(old.prices, f), getattr(new.prices, f)) for f in PRICE_FIELDS]
    pairs += [(f, getattr(old, f), getattr(new, f)) for f in LIMIT_FIELDS]
    return tuple(f"{f} {show(a)} -> {show(b)}" for f, a, b in pairs if a != b)


def _decode(text: str, source: str) -> Provider:
    try:
        return msgspec.toml.decode(text, type=Provider)
    except msgspec.ValidationError as exc:
        raise ConfigError(source, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise ConfigError(source, f"not valid TOML: {exc}") from None


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(text.encode("utf-8"))
    os.replace(tmp, path)


# ---- the command -----------------------------------------------------------------------------


EXAMPLES = """examples:
  router prices refresh --table model_prices_and_context_window.json --dry-run
  router prices refresh --table prices.json --providers ./providers
"""


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    """`router prices refresh --table FILE [--providers DIR] [--dry-run]`."""
    prices = commands.add_parser(
        "prices",
        help="refresh the catalog's prices from LiteLLM's price table",
        description="Bring the prices in providers/*.toml in line with a LiteLLM price table.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = prices.add_subparsers(dest="action", required=True, metavar="ACTION", help="one of:")
    refresh = sub.add_parser(
        "refresh",
        help="rewrite providers/*.toml prices in place, keeping comments",
        description="Rewrite providers/*.toml prices and context windows from a price table;"
        " pinned_prices = true entries are left alone.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    refresh.add_argument(
        "--table",
        type=Path,
        required=True,
        metavar="FILE",
        help="LiteLLM's model_prices_and_context_window.json",
    )
    refresh.add_argument(
        "--providers",
        type=Path,
        default=Path("providers"),
        metavar="DIR",
        help="the providers folder to edit (default: %(default)s)",
    )
    refresh.add_argument("--dry-run", action="store_true", help="report the changes, write nothing")
    refresh.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        report = refresh_prices(args.providers, args.table, dry_run=args.dry_run)
    except ConfigError as exc:
        print(f"router prices: {exc}", file=sys.stderr)
        return 1
    print(report.render())
    return 0
