"""Storage: conversations (and keys) in SQLite by default, PostgreSQL to scale out."""

from __future__ import annotations

from collections.abc import Callable

from router.store.conversations import ConversationStore, SqliteStore


def is_postgres(url: str) -> bool:
    return url.startswith(("postgresql://", "postgres://"))


async def open_conversations(
    database: str, on_full: Callable[[], None] | None = None
) -> ConversationStore:
    """The conversation store for `storage.database`: a SQLite path or a PostgreSQL URL.
    `on_full` is told each time a save waits for room in SQLite's bounded write queue."""
    if is_postgres(database):
        from router.store.postgres import PostgresStore  # asyncpg only when asked for

        return await PostgresStore(database).open()
    return await SqliteStore(database, on_full=on_full).open()
