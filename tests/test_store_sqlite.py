"""The embedded SQLite conversation store: batched writes, read-after-write, persistence."""

from __future__ import annotations

import uuid

from router.core.types import Message, TextPart
from router.store import open_conversations
from router.store.conversations import SqliteStore, Turn


def _msg(role, text):
    return Message(role, (TextPart(text),))


def _turn(conv, i):
    return Turn(
        conv,
        f"title {conv[:4]}",
        (_msg("user", f"q{i}"),),
        _msg("assistant", f"a{i}"),
        "demo",
        "echo",
        str(uuid.uuid4()),
    )


async def test_a_burst_of_saves_is_read_back_in_order_and_persists(tmp_path):
    path = str(tmp_path / "conv.db")
    store = await open_conversations(path)
    convs = [str(uuid.uuid4()) for _ in range(3)]
    for i in range(300):
        store.save(_turn(convs[i % 3], i))
    first = await store.load(convs[0])  # queued after every save: sees all of them
    assert first is not None
    assert [m.text() for m in first.messages][:4] == ["q0", "a0", "q3", "a3"]
    assert len(first.messages) == 200
    await store.close()

    reopened = await open_conversations(path)
    again = await reopened.load(convs[2])
    assert again is not None and again.title == f"title {convs[2][:4]}"
    assert [m.text() for m in again.messages][-2:] == ["q299", "a299"]
    assert await reopened.load(str(uuid.uuid4())) is None
    assert reopened.failed_writes == 0
    await reopened.close()


async def test_a_full_write_queue_holds_the_saver_back_and_loses_nothing(tmp_path):
    waits: list[int] = []
    store = await SqliteStore(
        str(tmp_path / "conv.db"), limit=4, on_full=lambda: waits.append(1)
    ).open()
    conv = str(uuid.uuid4())
    for i in range(50):
        store.save(_turn(conv, i))
    found = await store.load(conv)
    await store.close()
    assert found is not None and len(found.messages) == 100
    assert store.full_waits == len(waits) > 0  # saves waited for room instead of queueing
    assert store.failed_writes == 0
