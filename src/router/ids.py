"""Random ids (request, completion, message, response and conversation ids) without a system
call each: the operating system's randomness (what `secrets` uses) read 4 KB at a time and
handed out in slices. System calls are a large part of a request's cost on a virtual
machine. A forked child starts with a fresh buffer, never its parent's. API keys are made
with `secrets` directly (rare, and they deserve no shortcut)."""

from __future__ import annotations

import os
import threading
import uuid

_SIZE = 4096


class _Pool:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.buffer = b""
        self.at = 0

    def take(self, size: int) -> bytes:
        with self.lock:
            at = self.at
            if at + size > len(self.buffer):
                self.buffer, at = os.urandom(_SIZE), 0
            self.at = at + size
            return self.buffer[at : at + size]


_POOL = _Pool()
os.register_at_fork(after_in_child=_POOL.reset)


def hex_id(digits: int) -> str:
    """`digits` (even) random lowercase hex digits, as `secrets.token_hex(digits // 2)`."""
    return _POOL.take(digits // 2).hex()


def uuid4() -> str:
    """A random (version 4) UUID as text, as `str(uuid.uuid4())`."""
    return str(uuid.UUID(bytes=_POOL.take(16), version=4))
