"""Line-based editing of providers/*.toml: prices and limits rewritten in place, every
comment, order and layout kept. There is no TOML writer in the standard library; this edits
only `[models.X]` / `[models.X.prices]` tables it can parse with certainty and refuses any
layout it cannot (inline or dotted `prices`), leaving the file unchanged.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from decimal import Decimal
from typing import Literal, NamedTuple

from router.config import ModelInfo, Prices
from router.errors import ConfigError

PRICE_FIELDS = tuple(Prices.__struct_fields__)
LIMIT_FIELDS = ("context_window", "max_output_tokens")


def format_price(value: Decimal) -> str:
    """A price as the catalog writes it: two decimals, more only when needed, no exponent."""
    cents = value.quantize(Decimal("0.01"))
    return format(cents if cents == value else value.normalize(), "f")


# ---- the editor --------------------------------------------------------------

_KEY = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')"""
_PATH = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_HEADER = re.compile(rf"\s*(\[\[?)\s*({_PATH})\s*\]\]?\s*(?:#.*)?")
_ASSIGN = re.compile(rf"\s*({_PATH})\s*=\s*")
_SCALAR = re.compile(
    r"""("(?:[^"\\\n]|\\.)*"(?!")|'[^'\n]*'(?!')|[^\s#"'\[{][^\s#,]*)\s*(?:#.*)?"""
)
_BLANK = re.compile(r"\s*(?:#.*)?")


class _Line(NamedTuple):
    kind: Literal["header", "entry", "blank", "inner"]  # inner: inside a multi-line value
    table: tuple[str, ...]  # the table the line belongs to (a header: the table it opens)
    key: tuple[str, ...] = ()  # entry: its dotted key
    span: tuple[int, int] | None = None  # entry: the value, if a one-line scalar
    path_text: str = ""  # header: the key path as written


def _keys(path_text: str) -> tuple[str, ...]:
    parts = re.findall(_KEY, path_text)
    return tuple(tomllib.loads(f"k = {p}")["k"] if p[0] in "\"'" else p for p in parts)


def _scan(lines: list[str]) -> list[_Line]:
    """Classify every line; only lines that start outside strings, arrays and inline tables can
    be headers or entries."""
    out: list[_Line] = []
    table: tuple[str, ...] = ()
    depth, quote = 0, ""
    for line in lines:
        text = line.rstrip("\r\n")
        if depth or quote:
            out.append(_Line("inner", table))
        elif header := _HEADER.fullmatch(text):
            prefix = ("[[",) if header[1] == "[[" else ()  # arrays of tables: never ours
            table = prefix + _keys(header[2])
            out.append(_Line("header", table, path_text=header[2]))
        elif assign := _ASSIGN.match(text):
            scalar = _SCALAR.fullmatch(text, assign.end())
            span = scalar.span(1) if scalar else None
            out.append(_Line("entry", table, _keys(assign[1]), span))
        else:
            out.append(_Line("blank" if _BLANK.fullmatch(text) else "inner", table))
        depth, quote = _lex(text, depth, quote)
    return out


def _lex(text: str, depth: int, quote: str) -> tuple[int, str]:
    """Bracket depth and open multi-line string after one line."""
    i = 0
    while i < len(text):
        if quote:
            if quote[0] == '"' and text[i] == "\\":
                i += 2
            elif text.startswith(quote, i):
                i, quote = i + len(quote), ""
            else:
                i += 1
            continue
        if text[i] == "#":
            break
        quote = next((q for q in ('"""', "'''", '"', "'") if text.startswith(q, i)), "")
        depth += (text[i] in "[{") - (text[i] in "]}")
        i += len(quote) or 1
    return depth, quote if len(quote) == 3 else ""


class _Edits:
    """Pending line edits: replaced, deleted and inserted lines, applied in one pass."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = list(lines)
        self.newline = "\r\n" if any(line.endswith("\r\n") for line in lines) else "\n"
        self.inserts: dict[int, list[str]] = {}

    def set_value(self, at: int, span: tuple[int, int], value: str) -> None:
        line = self.lines[at]
        body = line.rstrip("\r\n")
        self.lines[at] = body[: span[0]] + value + body[span[1] :] + line[len(body) :]

    def delete(self, at: int) -> None:
        self.lines[at] = ""

    def insert(self, at: int, lines: list[str]) -> None:
        self.inserts.setdefault(at, []).extend(lines)

    def render(self) -> str:
        if len(self.lines) in self.inserts and self.lines and not self.lines[-1].endswith("\n"):
            self.lines[-1] += self.newline
        out: list[str] = []
        for at in range(len(self.lines) + 1):
            out += [line + self.newline for line in self.inserts.get(at, [])]
            out += self.lines[at : at + 1]
        return "".join(out)


class _Layout(Exception):
    """The file holds a model in a shape the line editor does not rewrite."""


def edit_catalog(text: str, updates: dict[str, tuple[ModelInfo, ModelInfo]], source: str) -> str:
    """Rewrite, in `text`, the prices and limits that differ between each (old, new) pair."""
    lines = text.splitlines(keepends=True)
    scan = _scan(lines)
    edits = _Edits(lines)
    try:
        for model, (old, new) in updates.items():
            _edit_model(scan, edits, model, old, new)
    except _Layout as exc:
        raise ConfigError(source, f"cannot be edited safely ({exc}); left unchanged") from None
    return edits.render()


def _edit_model(
    scan: list[_Line], edits: _Edits, model: str, old: ModelInfo, new: ModelInfo
) -> None:
    prices = {f: getattr(new.prices, f) for f in PRICE_FIELDS}
    price_changes = {f: v for f, v in prices.items() if v != getattr(old.prices, f)}
    limit_changes = {f: getattr(new, f) for f in LIMIT_FIELDS if getattr(new, f) != getattr(old, f)}
    model_table = _section(scan, ("models", model))
    prices_table = _section(scan, ("models", model, "prices"))
    if limit_changes:
        if model_table is None:
            if prices_table is None:
                raise _Layout(f"no [models.{model}] table")
            header = f"[models.{_quote(model)}]"
            edits.insert(prices_table[0], [header, *_assignments(limit_changes), ""])
        else:
            _apply(scan, edits, model_table, limit_changes)
    if not price_changes:
        return
    if prices_table is not None:
        _apply(scan, edits, prices_table, price_changes)
    elif model_table is None:
        raise _Layout(f"no [models.{model}] table")
    else:
        header = f"[{scan[model_table[0]].path_text}.prices]"
        added = _assignments({f: v for f, v in price_changes.items() if v is not None})
        edits.insert(_after_content(scan, *model_table), ["", header, *added])


def _section(scan: list[_Line], table: tuple[str, ...]) -> tuple[int, int] | None:
    """(header line, end) of the table opened by a header, or None if it has no header."""
    for at, line in enumerate(scan):
        if line.kind == "header" and line.table == table:
            end = next((i for i in range(at + 1, len(scan)) if scan[i].kind == "header"), len(scan))
            return at, end
    for line in scan:  # a parent table reaching into ours with a dotted key or inline table
        crosses = len(line.table) < len(table) and (line.table + line.key)[: len(table)] == table
        if line.kind == "entry" and crosses:
            raise _Layout(f"{'.'.join(table)} is written as dotted keys or an inline table")
    return None


def _apply(
    scan: list[_Line], edits: _Edits, section: tuple[int, int], changes: Mapping[str, object]
) -> None:
    start, end = section
    present: dict[str, int] = {}
    for at in range(start + 1, end):
        line = scan[at]
        if line.kind == "entry" and line.key[0] in changes:
            if len(line.key) > 1 or line.span is None:
                raise _Layout(f"{'.'.join(line.key)} is not a one-line value")
            present[line.key[0]] = at
    for key, at in present.items():
        value = changes[key]
        if value is None:
            edits.delete(at)
        else:
            edits.set_value(at, scan[at].span or (0, 0), _literal(value))
    missing = {k: v for k, v in changes.items() if k not in present and v is not None}
    if missing:
        edits.insert(_after_content(scan, start, end), _assignments(missing))


def _after_content(scan: list[_Line], start: int, end: int) -> int:
    """Where new entries go: after the table's last entry, before the comments and blank lines
    that introduce the next table."""
    return next((at + 1 for at in range(end - 1, start, -1) if scan[at].kind != "blank"), start + 1)


def _assignments(values: Mapping[str, object]) -> list[str]:
    return [f"{key} = {_literal(value)}" for key, value in values.items()]


def _literal(value: object) -> str:
    return f'"{format_price(value)}"' if isinstance(value, Decimal) else str(value)


def _quote(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else '"' + key.replace('"', '\\"') + '"'
