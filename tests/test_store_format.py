"""The conversation rows' JSON is the store's own format: pinned here byte for byte, and rows
written before the format had its own Structs still read back."""

from __future__ import annotations

from router.core.types import (
    CacheHint,
    ImagePart,
    Message,
    Source,
    TextPart,
    ThinkingPart,
    ToolCall,
)
from router.store.stored import decode_messages, decode_sources, encode_messages

TURN = (
    Message(
        "user", (TextPart("Weather in Rome?", CacheHint()), ImagePart("https://x/y.png", "low"))
    ),
    Message(
        "assistant",
        (ThinkingPart("let me look", "sig", origin="anthropic"), TextPart("Checking.")),
        (ToolCall("call_1", "weather", '{"city":"Rome"}'),),
    ),
    Message("tool", (TextPart("21 C"),), tool_call_id="call_1", name="weather"),
)

PINNED = (
    b'[{"role":"user","content":[{"type":"text","text":"Weather in Rome?"},'
    b'{"type":"image","url":"https://x/y.png","detail":"low"}],"tool_calls":[],'
    b'"tool_call_id":null,"name":null},'
    b'{"role":"assistant","content":[{"type":"text","text":"Checking."}],"tool_calls":'
    b'[{"id":"call_1","name":"weather","arguments":"{\\"city\\":\\"Rome\\"}"}],'
    b'"tool_call_id":null,"name":null},'
    b'{"role":"tool","content":[{"type":"text","text":"21 C"}],"tool_calls":[],'
    b'"tool_call_id":"call_1","name":"weather"}]'
)


def test_the_stored_format_is_pinned():
    """Cache hints and reasoning are request-time facts: they are not stored."""
    assert encode_messages(TURN) == PINNED


def test_stored_messages_read_back_without_what_is_not_kept():
    back = decode_messages(PINNED)
    assert back == [
        Message("user", (TextPart("Weather in Rome?"), ImagePart("https://x/y.png", "low"))),
        Message(
            "assistant",
            (TextPart("Checking."),),
            (ToolCall("call_1", "weather", '{"city":"Rome"}'),),
        ),
        Message("tool", (TextPart("21 C"),), tool_call_id="call_1", name="weather"),
    ]


def test_rows_written_by_earlier_versions_still_read():
    """A row as written before the store had its own Structs (the internal `Message`)."""
    old = (
        b'[{"role":"user","content":[{"type":"text","text":"hi"}],"tool_calls":[],'
        b'"tool_call_id":null,"name":null},{"role":"assistant","content":[{"type":"text",'
        b'"text":"You said: hi"}],"tool_calls":[],"tool_call_id":null,"name":null}]'
    )
    assert decode_messages(old) == [
        Message("user", (TextPart("hi"),)),
        Message("assistant", (TextPart("You said: hi"),)),
    ]


def test_a_searched_answer_keeps_its_sources_and_older_rows_read_without():
    """Sources are an optional field of the answer: rows without it stay byte for byte."""
    answer = (Message("assistant", (TextPart("Rome is warm [1]."),)),)
    cited = (Source("https://w.example/rome", "Rome weather"),)
    blob = encode_messages(answer, cited)
    assert blob == (
        b'[{"role":"assistant","content":[{"type":"text","text":"Rome is warm [1]."}],'
        b'"tool_calls":[],"tool_call_id":null,"name":null,'
        b'"sources":[{"url":"https://w.example/rome","title":"Rome weather"}]}]'
    )
    assert decode_sources(blob) == cited
    assert decode_messages(blob) == list(answer)
    assert decode_sources(PINNED) == ()
    assert encode_messages(TURN, ()) == PINNED
