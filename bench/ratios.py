"""The gateway judged against the stack floor measured beside it, and the concurrency steps.

A gateway figure over the floor figure of the same mode and concurrency, taken in the same run
minutes apart, carries over between machines and days where absolute milliseconds do not
(shared/PERFORMANCE-FLOORS.md). Targets (issue 19): <= 1.2x the floor per JSON request, <= 1.5x
per stream, at concurrency 16 and 64; for the concurrent streams, per step and one worker: no
error, every stream open upstream at once, p99 added chunk delay < 20 ms, added time to first
chunk < 5 ms, < 50 KB per open stream, <= 30 us CPU per chunk, RSS back to idle after.
"""

from __future__ import annotations

from typing import Any

Result = dict[str, Any]
Cell = dict[str, Any]

RATIO_LIMITS = {"json": 1.2, "stream": 1.5}
RATIO_CONCURRENCY = (16, 64)
BASELINES = ("direct", "raw", "floor")
STEP_LIMITS = (
    # key, label, unit, limit
    ("errors", "errors", "", 0),
    ("missing_upstream", "streams never open upstream at once", "", 0),
    ("added_delay_p99_ms", "added chunk delay p99", "ms", 20.0),
    ("added_ttfc_p50_ms", "added time to first chunk p50", "ms", 5.0),
    ("kb_per_stream", "memory per open stream", "KB", 50.0),
    ("cpu_us_per_chunk", "CPU per relayed chunk", "us", 30.0),
    ("rss_after_growth", "RSS after the streams / idle before, - 1", "", 0.10),
)


def _cpu(cell: Cell | None) -> float | None:
    value = (cell or {}).get("cpu_ms_per_req")
    return float(value) if isinstance(value, int | float) else None


def _find(cells: list[Cell], target: str, mode: str, concurrency: int) -> Cell | None:
    for cell in cells:
        if (cell["target"], cell["mode"], cell["concurrency"]) == (target, mode, concurrency) and (
            cell.get("layout", "pinned") == "pinned"
        ):
            return cell
    return None


def annotate(result: Result) -> None:
    """Add `vs_floor` (CPU per request over the floor's, same mode and concurrency)."""
    for cell in result["cells"]:
        if cell["target"] in BASELINES or cell.get("layout", "pinned") != "pinned":
            continue
        floor = _find(result["cells"], "floor", cell["mode"], cell["concurrency"])
        mine, base = _cpu(cell), _cpu(floor)
        if mine is not None and base:
            cell["vs_floor"] = {"cpu_ratio": mine / base, "floor_cpu_ms_per_req": base}


def _status(value: float | None, limit: float, higher_is_better: bool = False) -> str:
    if value is None:
        return "n/a"
    return "PASS" if (value >= limit if higher_is_better else value <= limit) else "MISS"


def ratio_checks(result: Result) -> list[Result]:
    """One check per gateway surface, mode and concurrency of RATIO_CONCURRENCY."""
    found = []
    chunks = result["settings"]["chunks"]
    for cell in result["cells"]:
        if cell["target"] in BASELINES or cell.get("layout", "pinned") != "pinned":
            continue
        if cell["concurrency"] not in RATIO_CONCURRENCY or not cell.get("available"):
            continue
        mode = cell["mode"]
        what = "JSON request" if mode == "json" else f"{chunks}-chunk stream"
        value = (cell.get("vs_floor") or {}).get("cpu_ratio")
        found.append(
            {
                "target": cell["target"],
                "surface": cell["surface"],
                "check": f"floor_ratio_{mode}_c{cell['concurrency']}",
                "label": f"CPU per {what} / the floor's, c={cell['concurrency']}",
                "unit": "x",
                "limit": RATIO_LIMITS[mode],
                "value": value,
                "status": _status(value, RATIO_LIMITS[mode]),
            }
        )
    return found


def annotate_steps(result: Result) -> None:
    """Add to each step of a server the figures judged against direct's same step."""
    steps = result.get("concurrency") or []
    for record in steps:
        if record["target"] == "direct":
            continue
        direct = next(
            (
                r
                for r in steps
                if r["target"] == "direct"
                and (r["streams"], r["interval_ms"]) == (record["streams"], record["interval_ms"])
            ),
            None,
        )
        record.update(step_figures(record, direct))


def _get(record: Result | None, *keys: str) -> float | None:
    value: Any = record
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return float(value) if isinstance(value, int | float) else None


def _minus(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def harness_limited(direct: Result | None) -> bool:
    """Direct itself lagged (p99 delay over 20 ms, or not every stream open at once): the load
    core is the limit of this step, so no figure is judged against direct."""
    if direct is None:
        return True
    opened = direct.get("max_open_upstream")
    p99 = _get(direct, "delay_ms", "p99")
    return opened != direct["streams"] or p99 is None or p99 > 20.0


def step_figures(record: Result, direct: Result | None) -> Result:
    idle, after = _get(record, "idle_rss_mb"), _get(record, "rss_after_mb")
    opened = record.get("max_open_upstream")
    if harness_limited(direct):
        direct = None
    return {
        "harness_limited": direct is None,
        "added_delay_p50_ms": _minus(
            _get(record, "delay_ms", "p50"), _get(direct, "delay_ms", "p50")
        ),
        "added_delay_p99_ms": _minus(
            _get(record, "delay_ms", "p99"), _get(direct, "delay_ms", "p99")
        ),
        "added_ttfc_p50_ms": _minus(_get(record, "ttfc_ms", "p50"), _get(direct, "ttfc_ms", "p50")),
        "missing_upstream": record["streams"] - opened if isinstance(opened, int) else None,
        "rss_after_growth": after / idle - 1 if after is not None and idle else None,
    }


def step_checks(result: Result) -> list[Result]:
    found = []
    for record in result.get("concurrency") or []:
        if record["target"] != "router":
            continue
        where = f"{record['streams']} streams @ {record['interval_ms']:g} ms"
        for key, label, unit, limit in STEP_LIMITS:
            value = record.get(key)
            found.append(
                {
                    "target": "router",
                    "surface": record["surface"],
                    "check": f"streams_{key}",
                    "label": f"{where}: {label}",
                    "unit": unit,
                    "limit": limit,
                    "value": value,
                    "status": _status(value if isinstance(value, int | float) else None, limit),
                }
            )
    return found


def scaling_checks(scaling: Result) -> list[Result]:
    found = []
    workers = scaling["workers"]
    for mode in ("json", "stream"):
        figures = scaling.get(mode)
        if not figures:
            continue
        ratio = figures.get("ratio")
        note = ""
        if scaling["cores"] < workers + 1:
            note = f"{scaling['cores']} cores shared with the upstream and the load generator"
        found.append(
            {
                "target": "router",
                "surface": scaling["surface"],
                "check": f"scaling_{mode}",
                "label": f"{mode} throughput at {workers} workers / at 1",
                "unit": "x",
                "limit": 0.9 * workers,
                "value": ratio,
                "status": _status(ratio, 0.9 * workers, higher_is_better=True),
                "note": note,
            }
        )
    return found


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, int | float) else "-"


def ratio_table(result: Result) -> str:
    """Gateway CPU per request over the floor's, one row per surface."""
    rows = ["CPU per request / the floor's, same run (target: JSON <= 1.2x, stream <= 1.5x):"]
    cols = [(m, c) for m in ("json", "stream") for c in RATIO_CONCURRENCY]
    rows.append("  " + "surface".ljust(18) + "".join(f"{m} c={c}".rjust(14) for m, c in cols))
    floor = ["  " + "floor (CPU ms)".ljust(18)]
    floor += [_fmt(_cpu(_find(result["cells"], "floor", m, c)), ".3f").rjust(14) for m, c in cols]
    rows.append("".join(floor))
    seen = []
    for cell in result["cells"]:
        key = (cell["target"], cell["surface"])
        if cell["target"] in BASELINES or key in seen or cell.get("layout", "pinned") != "pinned":
            continue
        seen.append(key)
        line = "  " + f"{key[0]}/{key[1]}".ljust(18)
        for mode, conc in cols:
            match = [
                c
                for c in result["cells"]
                if (c["target"], c["surface"], c["mode"], c["concurrency"]) == (*key, mode, conc)
                and c.get("layout", "pinned") == "pinned"
            ]
            ratio = (match[0].get("vs_floor") or {}).get("cpu_ratio") if match else None
            line += (_fmt(ratio, ".2f") + "x" if ratio is not None else "n/a").rjust(14)
        rows.append(line)
    return "\n".join(rows)


STEP_HEADER = (
    "target/surface",
    "streams",
    "every",
    "errors",
    "open up",
    "delay p50",
    "p99",
    "+p99",
    "TTFC p50",
    "+TTFC",
    "CPU us/chunk",
    "KB/stream",
    "idle MB",
    "after MB",
)


def steps_table(result: Result) -> str:
    rows = [list(STEP_HEADER)]
    for r in result.get("concurrency") or []:
        rows.append(
            [
                f"{r['target']}/{r['surface']}",
                str(r["streams"]),
                f"{r['interval_ms']:g} ms",
                _fmt(r.get("errors"), "d"),
                _fmt(r.get("max_open_upstream"), "d"),
                _fmt(_get(r, "delay_ms", "p50"), ".1f"),
                _fmt(_get(r, "delay_ms", "p99"), ".1f"),
                _fmt(r.get("added_delay_p99_ms"), "+.1f"),
                _fmt(_get(r, "ttfc_ms", "p50"), ".1f"),
                _fmt(r.get("added_ttfc_p50_ms"), "+.1f"),
                _fmt(r.get("cpu_us_per_chunk") or r.get("upstream_cpu_us_per_chunk"), ".0f"),
                _fmt(r.get("kb_per_stream"), ".1f"),
                _fmt(r.get("idle_rss_mb"), ".1f"),
                _fmt(r.get("rss_after_mb"), ".1f"),
            ]
        )
    if len(rows) == 1:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(len(STEP_HEADER))]
    lines = [
        "concurrent slow streams, one worker (delays in ms; direct: the upstream's CPU/chunk):"
    ]
    for row in rows:
        lines.append(
            "  "
            + "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    limited = sorted(
        {
            f"{x['streams']} @ {x['interval_ms']:g} ms"
            for x in result["concurrency"]
            if x.get("harness_limited")
        }
    )
    if limited:
        lines.append(
            "  load-limited (direct itself lagged, nothing judged against it): "
            + ", ".join(limited)
        )
    if r := next((x for x in result["concurrency"] if x.get("error_sample")), None):
        lines.append(f"  first error ({r['target']} {r['streams']} streams): {r['error_sample']}")
    return "\n".join(lines)
