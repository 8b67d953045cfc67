"""Native passthrough to Anthropic: a request that came in on the Anthropic Messages surface
(`router.api.anthropic`) goes to an Anthropic target as the client wrote it.

The surface keeps each top-level field of the client's body as raw JSON (`Native.fields`);
here only `model` is replaced (the target's upstream name) and `stream` set to how the
gateway reads the answer, so blocks, `cache_control`, thinking signatures and fields this
gateway does not know pass through byte for byte. The client's `anthropic-version` and
`anthropic-beta` (`Native.headers`) replace the provider file's. `count_tokens` goes to
`/v1/messages/count_tokens`; its count comes back as the answer's text with zero usage (a
count costs nothing).
"""

from __future__ import annotations

import msgspec

from router.core.types import Event, Finish, Native, Target, TextDelta, Usage
from router.protocols.anthropic_wire import ENCODER
from router.upstream import HttpCall

_TRUE = msgspec.Raw(b"true")
COUNT_SUFFIX = "/count_tokens"


def native_call(
    url: str, headers: dict[str, str], target: Target, native: Native, stream: bool
) -> HttpCall:
    fields = dict(native.fields)
    fields["model"] = msgspec.Raw(ENCODER.encode(target.upstream_model))
    if native.endpoint == "count_tokens":
        url += COUNT_SUFFIX
        fields.pop("stream", None)
    elif stream:
        fields["stream"] = _TRUE
    else:
        fields.pop("stream", None)
    merged = dict(headers)
    for name, value in native.headers:
        merged[name] = value
    return HttpCall(url, merged, ENCODER.encode(fields))


def counted(tokens: int) -> list[Event]:
    """A `count_tokens` answer as events: the count as text, no billable usage."""
    return [TextDelta(str(tokens)), Finish("stop"), Usage()]
