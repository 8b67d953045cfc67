"""Storage: conversations (and keys) in SQLite by default, PostgreSQL to scale out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from router.config import Settings
from router.store.conversations import ConversationStore, SqliteStore
from router.store.response_records import ResponseStore


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


def database_path(settings: Settings) -> str:
    """The SQLite path; a relative one is relative to routing.toml's folder."""
    path = settings.storage.database
    if path == ":memory:" or is_postgres(path) or Path(path).is_absolute() or not settings.source:
        return path
    return str(Path(settings.source).parent / path)


async def open_conversations(
    database: str, on_full: Callable[[], None] | None = None
) -> ConversationStore:
    """The conversation store for `storage.database`: a SQLite path or a PostgreSQL URL.
    `on_full` is told each time a save waits for room in SQLite's bounded write queue."""
    if is_postgres(database):
        from router.store.postgres import PostgresStore  # asyncpg only when asked for

        return await PostgresStore(database).open()
    return await SqliteStore(database, on_full=on_full).open()


async def open_responses(database: str) -> ResponseStore:
    """The response store for `storage.database`: a SQLite path or a PostgreSQL URL."""
    if database.startswith(("postgresql://", "postgres://")):
        from router.store.responses_postgres import PostgresResponses  # asyncpg when asked

        return await PostgresResponses(database).open()
    from router.store.responses import SqliteResponses

    return await SqliteResponses(database).open()
