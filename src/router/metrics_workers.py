"""Several workers, one `/metrics`: prometheus-client's multiprocess files of workers that are
gone are dropped before each scrape, so live gauges (in-flight, circuits) read live workers."""

from __future__ import annotations

import os

from prometheus_client import multiprocess


def forget_dead(folder: str) -> None:
    """Drop the live-gauge files of workers that are gone (a restarted or crashed worker),
    so in-flight and circuit gauges read live workers only; counters keep their files."""
    pids: set[int] = set()
    for name in os.listdir(folder):
        if name.startswith("gauge_live") and name.endswith(".db"):
            digits = name.rpartition("_")[2][:-3]
            if digits.isdigit():
                pids.add(int(digits))
    for pid in pids:
        if not _alive(pid):
            multiprocess.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
