"""`python -m bench.counted serve ...`: the gateway's own CLI, counting its asyncio tasks.

Used by the soak only. It wraps `uvloop.new_event_loop` (what uvicorn calls to make its loop)
to keep the loop, and a daemon thread asks that loop once a second, from inside it, how many
tasks exist, writing the number to the file named by BENCH_TASKS_FILE. The gateway's code is
untouched; one worker only (the wrapper lives in this process).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from pathlib import Path

import uvloop

from bench.procs import raise_nofile

_loops: list[asyncio.AbstractEventLoop] = []
_new_event_loop = uvloop.new_event_loop


def _keeping_loop() -> asyncio.AbstractEventLoop:
    loop = _new_event_loop()
    _loops.append(loop)
    return loop


def _write_count(loop: asyncio.AbstractEventLoop, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(len(asyncio.all_tasks(loop))))
    os.replace(tmp, path)


def _reporter(path: Path) -> None:
    while True:
        time.sleep(1.0)
        for loop in _loops[-1:]:
            if loop.is_running():
                loop.call_soon_threadsafe(_write_count, loop, path)


def main() -> int:
    from router.__main__ import main as router_main

    raise_nofile()
    uvloop.new_event_loop = _keeping_loop
    target = os.environ.get("BENCH_TASKS_FILE")
    if target:
        threading.Thread(target=_reporter, args=(Path(target),), daemon=True).start()
    sys.argv = ["router", *sys.argv[1:]]
    result: int = router_main()
    return result


if __name__ == "__main__":
    sys.exit(main())
