"""What every SQLite store shares: a connection to the file, its tables created."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def connect(path: str, schema: str) -> sqlite3.Connection:
    """A connection to `path` (its folder made if need be) with `schema` run on it. WAL lets
    the stores' threads read while one writes; `synchronous=NORMAL` is WAL's usual pairing
    (a power cut may lose the last commits, never the file); a writer waits up to 10 s for
    another's lock. The connection is for one thread at a time, not necessarily its maker."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, timeout=10)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.executescript(schema)
    return db
