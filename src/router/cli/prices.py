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

Which entry prices which model: `router.cli.price_table` (namespaces, bare keys, aliases). Azure
models are keyed by the name clients use, `upstream_name` being the deployment; either is tried.

What a refresh changes, and nothing else:

- for every model found and not `pinned_prices = true`, its `[models.<m>.prices]` table becomes
  exactly what the entry says: values replaced in place, keys added or dropped (an entry that
  carries no price at all counts as not found);
- `context_window` (LiteLLM `max_input_tokens`) and `max_output_tokens` of the same models, when
  the entry has them; they are never removed;
- every entry of a provider that no catalog model prices from becomes a new model, appended to
  the end of the provider's file in name order, with its type, limits, the capabilities the
  table claims and every price it has (`router.cli.catalog_add` says which entries qualify;
  the others are counted, by reason, in the report).

Edits are textual and line-based: comments, order and formatting of everything else stay byte
for byte. Every edited file is decoded again and compared with the intended catalog before it is
written; a layout the editor cannot handle safely is an error, and the file is left unchanged.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import msgspec

from router.cli import catalog_add
from router.cli.catalog_edit import LIMIT_FIELDS, PRICE_FIELDS, edit_catalog, format_price
from router.cli.price_table import (
    BadEntry,
    Table,
    by_provider,
    load_table,
    lookup,
    namespaces,
    table_limits,
    table_prices,
)
from router.config import ModelInfo, Prices, Provider
from router.errors import ConfigError

Status = Literal["changed", "unchanged", "pinned", "missing", "added"]


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
    that would have been); `skipped` counts the provider's table entries that became no model,
    by reason."""

    results: tuple[ModelResult, ...]
    written: tuple[str, ...]
    dry_run: bool = False
    skipped: tuple[tuple[str, int], ...] = ()

    def by_status(self, status: Status) -> tuple[ModelResult, ...]:
        return tuple(r for r in self.results if r.status == status)

    def render(self) -> str:
        changed = self.by_status("changed")
        added = self.by_status("added")
        lines = [f"changed: {len(changed)}"]
        lines += [f"  {r.ref}: {'; '.join(r.changes)}" for r in changed]
        lines.append(f"unchanged: {len(self.by_status('unchanged'))}")
        lines.append(_names("left alone: pinned", self.by_status("pinned")))
        lines.append(_names("not in table", self.by_status("missing")))
        if added:
            lines.append(f"added: {len(added)}")
            lines += [f"  {r.ref}: {r.note}" for r in added]
        lines += [f"skipped table entries: {n} {reason}" for reason, n in self.skipped]
        files = ", ".join(self.written) or "none"
        lines.append(f"dry run, would write: {files}" if self.dry_run else f"written: {files}")
        return "\n".join(lines)


def _names(label: str, results: tuple[ModelResult, ...]) -> str:
    refs = ", ".join(r.ref + (f" ({r.note})" if r.note else "") for r in results)
    return f"{label}: {len(results)}" + (f" - {refs}" if refs else "")


SEARCH_FEES = ("per_search", "per_grounded_request")  # from the providers' pricing pages


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
    index = by_provider(table)
    results: list[ModelResult] = []
    skipped: Counter[str] = Counter()
    rewritten: dict[Path, str] = {}
    for path in sorted(providers_dir.glob("*.toml")):
        keys = [k for ns in namespaces(path.stem) for k in index.get(ns, ())]
        file_results, new_text, file_skipped = _refresh_file(path, table, keys)
        results += file_results
        skipped.update(s.reason for s in file_skipped)
        if new_text is not None:
            rewritten[path] = new_text
    if not dry_run:
        for path, text in rewritten.items():
            _write(path, text)
    counts = tuple(sorted(skipped.items(), key=lambda item: (-item[1], item[0])))
    return RefreshReport(tuple(results), tuple(map(str, rewritten)), dry_run, counts)


def _refresh_file(
    path: Path, table: Table, keys: list[str]
) -> tuple[list[ModelResult], str | None, list[catalog_add.Skipped]]:
    text = path.read_bytes().decode("utf-8")
    provider = _decode(text, str(path))
    results = []
    updated: dict[str, tuple[ModelInfo, ModelInfo]] = {}
    for model, info in provider.models.items():
        result, new_info = _refresh_model(path.stem, model, info, table)
        results.append(result)
        if new_info is not None:
            updated[model] = (info, new_info)
    used = catalog_add.used_keys(table, provider, path.stem)
    added, skipped = catalog_add.new_models(table, keys, provider, path.stem, used)
    results += [ModelResult(path.stem, a.model, "added", a.key, note=_summary(a)) for a in added]
    if not updated and not added:
        return results, None, skipped
    new_text = edit_catalog(text, updated, str(path)) if updated else text
    new_text = _append(new_text, catalog_add.render(added))
    models = {m: updated[m][1] if m in updated else i for m, i in provider.models.items()}
    models.update({a.model: a.info for a in added})
    if _decode(new_text, str(path)) != msgspec.structs.replace(provider, models=models):
        raise ConfigError(str(path), "cannot be edited safely (unusual layout); left unchanged")
    return results, new_text, skipped


def _summary(added: catalog_add.Added) -> str:
    prices = added.info.prices
    shown = [
        f"{f} {format_price(v)}" for f in PRICE_FIELDS if (v := getattr(prices, f)) is not None
    ]
    return f"{added.info.type}, " + ", ".join(shown)


def _append(text: str, lines: list[str]) -> str:
    """`lines` after the end of `text`, in its newline style."""
    if not lines:
        return text
    newline = "\r\n" if "\r\n" in text else "\n"
    if text and not text.endswith("\n"):
        text += newline
    return text + newline.join(lines) + newline


def _refresh_model(
    provider: str, model: str, info: ModelInfo, table: dict[str, msgspec.Raw]
) -> tuple[ModelResult, ModelInfo | None]:
    if info.pinned_prices:
        return ModelResult(provider, model, "pinned"), None
    try:
        found = lookup(table, provider, model, info)
    except BadEntry as exc:
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
