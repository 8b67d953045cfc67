"""The one loader of recorded traffic, and the recorded replies a fake serves for `Fault.ok()`
without text.

Everything lives in tests/data/recorded (see its SOURCE.txt): go-vcr cassettes under
`fantasy/`, raw bodies beside them. `recorded` reads one interaction of a cassette (for the
protocol tests, through tests/replay.py), `raw` one raw body. `load` returns one protocol's
raw non-stream body and raw SSE events with the model name swapped for the requested one;
everything else is byte-for-byte what the provider sent (the Anthropic events keep their odd
trailing padding, Gemini keeps `": "` spacing and `\\r\\n\\r\\n`).

`RECORDED` states, for test writers, the text and usage each default reply carries.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import msgspec
import yaml

from fakes.faults import Usage

ROOT = Path(__file__).parent.parent / "data" / "recorded"


class Recorded(msgspec.Struct, frozen=True, kw_only=True):
    """Where one protocol's default reply comes from and what it says."""

    folder: str
    model: str  # the model name in the recording, replaced by the requested one
    text: str
    usage: Usage
    stream_text: str
    stream_usage: Usage


RECORDED: dict[str, Recorded] = {
    "openai": Recorded(
        folder="TestOpenAICommon/openai-gpt-4o-mini",
        model="gpt-4o-mini-2024-07-18",
        text="Olá!",
        usage=Usage(prompt=20, completion=2),
        stream_text="Olá!",
        stream_usage=Usage(prompt=20, completion=2),
    ),
    "azure": Recorded(
        folder="TestAzureCommon/azure-o4-mini",
        model="o4-mini-2025-04-16",
        text="Olá!",
        usage=Usage(prompt=19, completion=85, reasoning=64),
        stream_text="Oi!",
        stream_usage=Usage(prompt=19, completion=149, reasoning=128),
    ),
    "anthropic": Recorded(
        folder="TestAnthropicCommon/claude-sonnet-4",
        model="claude-sonnet-4-20250514",
        text='Olá! \n\n(That\'s "hello" in Portuguese. You could also say "Oi!" for a more'
        ' casual "hi!")',
        usage=Usage(prompt=16, completion=34),
        stream_text='Olá! (That\'s "hi" in Portuguese)\n\nYou could also say "Oi!" which is a more'
        " casual way to say hi in Portuguese.",
        stream_usage=Usage(prompt=16, completion=38),
    ),
    "gemini": Recorded(
        folder="TestGoogleCommon/gemini-2.5-flash",
        model="gemini-2.5-flash",
        text="Olá!",
        usage=Usage(prompt=11, completion=26, reasoning=24),
        stream_text="Olá!",
        stream_usage=Usage(prompt=11, completion=23, reasoning=21),
    ),
}


class Raw(msgspec.Struct, frozen=True):
    """A recorded reply for one requested model: the JSON body and the SSE events (no separator)."""

    body: str
    events: tuple[str, ...]


class Interaction(msgspec.Struct, frozen=True):
    """One recorded exchange: what the real client sent, what the provider answered."""

    url: str
    request: Any  # the decoded JSON body the real client sent
    body: bytes  # the provider's answer, byte for byte
    content_type: str


@functools.cache
def _cassette(case: str) -> Any:
    return yaml.safe_load((ROOT / "fantasy" / f"{case}.yaml").read_text(encoding="utf-8"))


def recorded(case: str, index: int = 0) -> Interaction:
    """Interaction `index` of the cassette `fantasy/<case>.yaml`."""
    interaction = _cassette(case)["interactions"][index]
    request, response = interaction["request"], interaction["response"]
    content_type = response.get("headers", {}).get("Content-Type", ["application/json"])[0]
    return Interaction(
        request["url"],
        msgspec.json.decode(request["body"]),
        response["body"].encode(),
        content_type,
    )


def raw(name: str) -> bytes:
    """A raw recorded body that is not a cassette (e.g. `anthropic-sdk-python/...txt`)."""
    return (ROOT / name).read_bytes()


def load(protocol: str, model: str) -> Raw:
    """The recorded reply of `protocol`, answering as `model`."""
    rec = RECORDED[protocol]
    pattern = re.compile(r'("model(?:Version)?"\s*:\s*)"' + re.escape(rec.model) + '"')
    name = msgspec.json.encode(model).decode()

    def swap(text: str) -> str:
        return pattern.sub(lambda m: m.group(1) + name, text)

    stream = recorded(f"{rec.folder}/simple_streaming").body.decode()
    separator = "\r\n\r\n" if "\r\n\r\n" in stream else "\n\n"
    events = tuple(swap(e) for e in stream.split(separator) if e.strip())
    return Raw(swap(recorded(f"{rec.folder}/simple").body.decode()), events)
