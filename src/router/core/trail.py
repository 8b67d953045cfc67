"""The attempt trail of one call: what was tried, in order, each with its final outcome.

The call owns it. Attempts that end at once (skips, failures, non-streamed answers) are added
when they end. A stream's attempt is *open* from its first token until the stream ends: it
shows as "ok" while open (headers are sent then) and is closed exactly once, with the
outcome it really had. Renderers, metrics and the ledger read `entries`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from router.core.types import Attempt


class Trail:
    __slots__ = ("_done", "_open", "strategy")

    def __init__(self, skipped: Iterable[Attempt] = (), strategy: str = "ordered") -> None:
        self._done: list[Attempt] = list(skipped)
        self._open: Attempt | None = None
        self.strategy = strategy  # what ordered the attempts (`router.core.strategies`)

    def add(self, attempt: Attempt) -> None:
        """An attempt that ended."""
        self._done.append(attempt)

    def open(self, attempt: Attempt) -> None:
        """A streamed attempt that committed (sent its first token) and has not ended."""
        assert self._open is None, "one open attempt at a time"
        self._open = attempt

    @property
    def opened(self) -> Attempt | None:
        return self._open

    def close(self, final: Attempt) -> None:
        """The open attempt ended: `final` is its entry, with its real outcome."""
        assert self._open is not None, "no open attempt"
        self._open = None
        self._done.append(final)

    @property
    def entries(self) -> tuple[Attempt, ...]:
        if self._open is None:
            return tuple(self._done)
        return (*self._done, self._open)

    def __iter__(self) -> Iterator[Attempt]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self._done) + (self._open is not None)

    @property
    def fell_back(self) -> bool:
        """Did anything before the answering attempt fail or get skipped?"""
        entries = self.entries
        return bool(entries) and entries[0].outcome != "ok"
