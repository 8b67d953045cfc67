"""The scaling pair: the same JSON and stream cells at one worker and at `--workers N`.

Every process may use every core here (a 2-core machine has no spare core for pinning), so on
2 cores the upstream and the load generator share the gateway's cores and x N is out of reach;
the ratio of throughputs is the figure, CPU per request at N workers should stay where it was.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from bench import targets
from bench.procs import Proc, StartError, memory_mb
from bench.targets import Target

if TYPE_CHECKING:
    from bench.run import Bench

Result = dict[str, Any]
MODES = ("json", "stream")


def run_scaling(bench: Bench, target: Target, one: Proc) -> None:
    """Measure the pair and store it in `bench.result["scaling"]`."""
    from bench.setup import _progress

    surface, concurrency = targets.IRONLABS, 64
    reasons = {mode: bench.probe(target, surface, mode) for mode in MODES}
    modes = [mode for mode, reason in reasons.items() if reason is None]
    workers = bench.options.workers
    scaling: Result = {
        "workers": workers,
        "cores": len(bench.layout.all),
        "surface": surface.name,
        "concurrency": concurrency,
        "unavailable": {mode: reason for mode, reason in reasons.items() if reason is not None},
    }
    bench.repin(bench.layout.all, one)
    try:
        singles = {}
        for mode in modes:
            singles[mode] = bench.cell(
                target, surface, mode, concurrency, one.tree(), layout="shared"
            )
            _progress(singles[mode])
        many = scaled_cells(bench, modes, concurrency)
    except StartError as exc:
        scaling["error"] = str(exc)
    else:
        for mode in modes:
            scaling[mode] = figures(singles[mode], many[mode], workers)
            bench.result["cells"] += [singles[mode], many[mode]]
        scaling["idle_rss_mb_n"] = many["idle_rss_mb"]
        scaling["idle_rss_mb_per_worker_n"] = many["idle_rss_mb_per_worker"]
    finally:
        bench.repin(bench.layout.servers, one)
    bench.result["scaling"] = scaling


def scaled_cells(bench: Bench, modes: list[str], concurrency: int) -> Result:
    from bench.setup import _progress

    workers = bench.options.workers
    proc, port = bench.start_router(bench.procs.workdir, workers, bench.layout.all)
    surface = targets.IRONLABS
    try:
        target = Target("router", port, targets.MASTER_KEY, (surface,))
        for mode in modes:
            bench.cell(target, surface, mode, 8, [], warmup=0.0, duration=0.5)
        time.sleep(bench.options.idle_wait)
        tree = proc.tree()
        idle = memory_mb(tree)
        supervisor = memory_mb([proc.pid]) if len(tree) > 1 else 0.0
        found: Result = {
            "idle_rss_mb": idle,
            "idle_rss_mb_per_worker": (idle - supervisor) / workers,
        }
        for mode in modes:
            record = bench.cell(
                target, surface, mode, concurrency, proc.tree(), workers=workers, layout="shared"
            )
            record["processes"] = len(tree)
            _progress(record)
            found[mode] = record
        return found
    finally:
        bench.procs.stop(proc)


def figures(single: Result, many: Result, workers: int) -> Result:
    rps1, rpsn = single.get("rps"), many.get("rps")
    ratio = rpsn / rps1 if rps1 and rpsn else None
    return {
        "rps_1": rps1,
        "rps_n": rpsn,
        "ratio": ratio,
        "efficiency": ratio / workers if ratio else None,
        "cpu_ms_per_req_1": single.get("cpu_ms_per_req"),
        "cpu_ms_per_req_n": many.get("cpu_ms_per_req"),
    }
