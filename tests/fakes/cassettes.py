"""The recorded replies a fake serves for `Fault.ok()` without text.

The cassettes in `recorded/` are real go-vcr recordings (see recorded/SOURCE.txt). `load`
returns one protocol's raw non-stream body and raw SSE events with the model name swapped for
the requested one; everything else is byte-for-byte what the provider sent (the Anthropic
events keep their odd trailing padding, Gemini keeps `": "` spacing and `\\r\\n\\r\\n`).

`RECORDED` states, for test writers, the text and usage each default reply carries.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path

import msgspec
import yaml

from fakes.faults import Usage

_ROOT = Path(__file__).parent / "recorded"


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


@functools.cache
def _cassette(folder: str, case: str) -> str:
    data = yaml.safe_load((_ROOT / folder / f"{case}.yaml").read_text(encoding="utf-8"))
    body: str = data["interactions"][0]["response"]["body"]
    return body


def load(protocol: str, model: str) -> Raw:
    """The recorded reply of `protocol`, answering as `model`."""
    rec = RECORDED[protocol]
    pattern = re.compile(r'("model(?:Version)?"\s*:\s*)"' + re.escape(rec.model) + '"')
    name = msgspec.json.encode(model).decode()

    def swap(text: str) -> str:
        return pattern.sub(lambda m: m.group(1) + name, text)

    stream = _cassette(rec.folder, "simple_streaming")
    separator = "\r\n\r\n" if "\r\n\r\n" in stream else "\n\n"
    events = tuple(swap(e) for e in stream.split(separator) if e.strip())
    return Raw(swap(_cassette(rec.folder, "simple")), events)
