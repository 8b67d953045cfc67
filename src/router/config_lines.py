"""Where in a TOML file a configuration error is, and what an unknown key probably meant.

msgspec names the field of an error as a path (`$.retry`, `$.models."gpt-4o".prices`); this
turns it into a line number by scanning the file's table headers and keys (no second TOML
parser: only `[table]` lines and `key =` lines are read), and offers the closest known field
name for an unknown one.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

import msgspec

_AT = re.compile(r" - at `\$(?P<path>[^`]*)`")
_UNKNOWN = re.compile(r"unknown field `(?P<name>[^`]+)`")
_SEGMENT = re.compile(
    r'\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|\'(?P<literal>[^\']*)\'|(?P<bare>[A-Za-z0-9_*-]+))\s*'
)
_ASSIGN = re.compile(r'^\s*(?P<keys>(?:"(?:[^"\\]|\\.)*"|\'[^\']*\'|[A-Za-z0-9_.\s-])+?)\s*=')


def split_keys(text: str) -> tuple[str, ...] | None:
    """`a."b.c".d` -> ('a', 'b.c', 'd'); None when it is not a dotted key."""
    keys: list[str] = []
    pos = 0
    while True:
        m = _SEGMENT.match(text, pos)
        if m is None:
            return None
        keys.append(m["quoted"] if m["quoted"] is not None else m["literal"] or m["bare"] or "")
        pos = m.end()
        if pos == len(text):
            return tuple(keys)
        if text[pos] != ".":
            return None
        pos += 1


def path_of(message: str) -> tuple[str, ...]:
    """The keys of msgspec's `- at `$...`` path, array indexes dropped, `*` for a dict key
    msgspec does not name."""
    m = _AT.search(message)
    if m is None:
        return ()
    path = re.sub(r"\[\d+\]", "", m["path"]).replace("[...]", ".*")  # [...]: some dict key
    return split_keys(path.lstrip(".")) or ()


def key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Every table header and key of a TOML file -> its first line number (1-based)."""
    lines: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.startswith("["):
            inner = stripped.lstrip("[").split("]", 1)[0]
            table = split_keys(inner) or table
            lines.setdefault(table, number)
            continue
        m = _ASSIGN.match(line)
        keys = split_keys(m["keys"]) if m else None
        if keys:
            lines.setdefault(table + keys, number)
    return lines


def line_of(text: str, path: tuple[str, ...]) -> int | None:
    """The line of `path`, or of its nearest ancestor written in the file."""
    lines = key_lines(text)
    for end in range(len(path), 0, -1):
        found = [n for keys, n in lines.items() if _matches(keys, path[:end])]
        if found:
            return min(found)
    return None


def _matches(keys: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    return len(keys) == len(pattern) and all(
        p in ("*", k) for k, p in zip(keys, pattern, strict=True)
    )


def _struct_at(kind: Any, path: tuple[str, ...]) -> msgspec.inspect.StructType | None:
    info: Any = msgspec.inspect.type_info(kind)
    for key in path:
        info = _unwrap(info)
        if isinstance(info, msgspec.inspect.StructType):
            info = next((f.type for f in info.fields if f.encode_name == key), None)
        elif isinstance(info, msgspec.inspect.DictType):
            info = info.value_type
        else:
            return None
    info = _unwrap(info)
    return info if isinstance(info, msgspec.inspect.StructType) else None


def _unwrap(info: Any) -> Any:
    """`X | None` -> X."""
    if isinstance(info, msgspec.inspect.UnionType):
        return next((t for t in info.types if not isinstance(t, msgspec.inspect.NoneType)), None)
    return info


def suggestion(kind: type, message: str) -> str | None:
    """For an unknown field: the known field of that table it most likely meant."""
    unknown = _UNKNOWN.search(message)
    struct = _struct_at(kind, path_of(message)) if unknown else None
    if unknown is None or struct is None:
        return None
    names = [f.encode_name for f in struct.fields if not f.encode_name.startswith("_")]
    close = difflib.get_close_matches(unknown["name"], names, n=1, cutoff=0.6)
    return close[0] if close else None


def locate(kind: type, text: str, source: str, message: str) -> tuple[str, str]:
    """(`file:line`, the message with a "did you mean") for an error about `source`."""
    path = path_of(message)
    unknown = _UNKNOWN.search(message)
    if unknown is not None:
        path = (*path, unknown["name"])
    line = line_of(text, path) if path else None
    meant = suggestion(kind, message)
    if meant is not None:
        message = f"{message}; did you mean `{meant}`?"
    return (f"{source}:{line}" if line else source), message
