"""Ids that name things but grant nothing: request ids, completion and message ids.

They come from the process's pseudo-random generator (`random`, seeded from the OS at start
and again in every forked child), so making one costs no system call: system calls are a
large part of a request's cost on virtual machines. Ids that grant something (API keys,
stored response ids, conversation ids) come from `secrets`.
"""

from __future__ import annotations

import random

_bits = random.getrandbits


def hex_id(digits: int) -> str:
    """`digits` random lowercase hex digits."""
    return f"{_bits(digits * 4):0{digits}x}"
