"""Turn a result document into ratios to direct, target checks, a table, JSON and a chart."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench import ratios

Result = dict[str, Any]
Cell = dict[str, Any]

# The speed issue's targets, for one worker. `value` names where each figure comes from.
TARGETS = (
    ("cpu_json", "CPU per non-streamed request", "ms", 0.4),
    ("cpu_stream", "CPU per streamed request", "ms", 1.0),
    ("added_p50_c1", "added latency p50, concurrency 1", "ms", 0.5),
    ("added_p99_c1", "added latency p99, concurrency 1", "ms", 2.0),
    ("added_ttft_p50", "time-to-first-token overhead p50, concurrency 1", "ms", 1.0),
    ("idle_rss", "idle RSS per worker", "MB", 60.0),
)
NOISY = 0.05  # cores used by other processes during a cell above which it is suspect
SOAK_GROWTH = 0.05


def find(
    result: Result, target: str, surface: str, mode: str, concurrency: int, layout: str = "pinned"
) -> Cell | None:
    cell: Cell
    for cell in result["cells"]:
        if (
            cell["target"],
            cell["surface"],
            cell["mode"],
            cell["concurrency"],
            cell.get("layout", "pinned"),
        ) == (target, surface, mode, concurrency, layout):
            return cell
    return None


def _figure(cell: Cell | None, *keys: str) -> float | None:
    value: Any = cell
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return float(value) if isinstance(value, int | float) else None


def _diff(a: float | None, b: float | None) -> float | None:
    return a - b if a is not None and b is not None else None


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def compare(cell: Cell, direct: Cell) -> Result:
    """A cell's figures beside the direct cell's: ratios, and milliseconds added."""
    lat, tail, ttft = ("latency_ms", "p50"), ("latency_ms", "p99"), ("ttft_ms", "p50")
    return {
        "rps_ratio": _ratio(_figure(cell, "rps"), _figure(direct, "rps")),
        "p50_ratio": _ratio(_figure(cell, *lat), _figure(direct, *lat)),
        "p99_ratio": _ratio(_figure(cell, *tail), _figure(direct, *tail)),
        "added_p50_ms": _diff(_figure(cell, *lat), _figure(direct, *lat)),
        "added_p99_ms": _diff(_figure(cell, *tail), _figure(direct, *tail)),
        "ttft_p50_ratio": _ratio(_figure(cell, *ttft), _figure(direct, *ttft)),
        "added_ttft_p50_ms": _diff(_figure(cell, *ttft), _figure(direct, *ttft)),
        # CPU in units of the fake upstream's own CPU per request: a machine-independent scale.
        "cpu_vs_upstream": _ratio(
            _figure(cell, "cpu_ms_per_req"), _figure(direct, "upstream_cpu_ms_per_req")
        ),
    }


def annotate(result: Result) -> None:
    """Add `vs_direct` to every measured, pinned cell of a target other than direct."""
    for cell in result["cells"]:
        if cell["target"] == "direct" or not cell.get("available") or cell.get("reason"):
            continue
        if cell.get("layout", "pinned") != "pinned":
            continue
        direct = direct_cell(result, cell)
        if direct is not None and direct.get("rps"):
            cell["vs_direct"] = compare(cell, direct)
    ratios.annotate(result)
    ratios.annotate_steps(result)


def direct_cell(result: Result, cell: Cell) -> Cell | None:
    """The direct cell a cell is compared with: direct's cell of the same surface when direct
    has one (the Responses surface: the upstream's /v1/responses), else its chat cell."""
    mode, concurrency = cell["mode"], cell["concurrency"]
    same = find(result, "direct", cell["surface"], mode, concurrency)
    return same if same is not None else find(result, "direct", "direct", mode, concurrency)


def served(result: Result) -> Iterator[tuple[str, str]]:
    """(target, surface) pairs other than direct, in the order they were measured."""
    seen: list[tuple[str, str]] = []
    for cell in result["cells"]:
        key = (cell["target"], cell["surface"])
        if (
            cell["target"] != "direct"
            and cell.get("layout", "pinned") == "pinned"
            and key not in seen
        ):
            seen.append(key)
    yield from seen


def _values(result: Result, target: str, surface: str) -> dict[str, float | None]:
    settings = result["settings"]
    top_json = max(settings["json_concurrency"], default=0)  # 0: the mode was not run
    top_stream = max(settings["stream_concurrency"], default=0)

    def cell(mode: str, concurrency: int) -> Cell | None:
        return find(result, target, surface, mode, concurrency)

    return {
        "cpu_json": _figure(cell("json", top_json), "cpu_ms_per_req"),
        "cpu_stream": _figure(cell("stream", top_stream), "cpu_ms_per_req"),
        "added_p50_c1": _figure(cell("json", 1), "vs_direct", "added_p50_ms"),
        "added_p99_c1": _figure(cell("json", 1), "vs_direct", "added_p99_ms"),
        "added_ttft_p50": _figure(cell("stream", 1), "vs_direct", "added_ttft_p50_ms"),
        "idle_rss": _figure(result["targets"].get(target), "idle_rss_mb"),
    }


def _measured(result: Result, target: str, surface: str) -> bool:
    return any(
        c["target"] == target and c["surface"] == surface and c.get("available")
        for c in result["cells"]
    )


def _status(value: float | None, limit: float, higher_is_better: bool = False) -> str:
    if value is None:
        return "n/a"
    ok = value >= limit if higher_is_better else value <= limit
    return "PASS" if ok else "MISS"


def checks(result: Result) -> list[Result]:
    """PASS/MISS per target of the speed issue, for every target and surface measured."""
    found = []
    chunks = result["settings"]["chunks"]
    targets_seen: list[str] = []
    for target, surface in served(result):
        if target in ratios.BASELINES or not _measured(result, target, surface):
            continue
        values = _values(result, target, surface)
        for key, label, unit, limit in TARGETS:
            where = surface
            if key == "cpu_stream":
                label = f"CPU per {chunks}-chunk stream"
            if key == "idle_rss":  # one figure per server, not per surface
                if target in targets_seen:
                    continue
                targets_seen.append(target)
                where = ""
            found.append(
                {
                    "target": target,
                    "surface": where,
                    "check": key,
                    "label": label,
                    "unit": unit,
                    "limit": limit,
                    "value": values[key],
                    "status": _status(values[key], limit),
                }
            )
    found += ratios.ratio_checks(result)
    found += ratios.step_checks(result)
    scaling = result.get("scaling")
    if scaling and not scaling.get("error"):
        found += ratios.scaling_checks(scaling)
    soak = result.get("soak")
    if soak:
        found += soak_checks(soak)
    return found


def soak_checks(soak: Result) -> list[Result]:
    """RSS within 5% after warm-up; no growth in descriptors, tasks, upstream streams."""
    limits = (
        ("growth", f"RSS growth after warm-up over {soak.get('minutes')} minutes", SOAK_GROWTH),
        ("fd_growth", "open file descriptors added after warm-up", 0),
        ("task_growth", "asyncio tasks added after warm-up", 0),
        ("upstream_open_last", "streams still open upstream after the last round", 0),
    )
    return [
        {
            "target": "router",
            "surface": "mixed",
            "check": f"soak_{key}",
            "label": label,
            "unit": "",
            "limit": limit,
            "value": soak.get(key),
            "status": _status(soak.get(key), limit),
        }
        for key, label, limit in limits
    ]


def rounded(value: Any) -> Any:
    """The document with floats cut to 5 significant digits (JSON stays readable)."""
    if isinstance(value, float):
        return float(f"{value:.5g}") if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [rounded(item) for item in value]
    return value


def write_json(result: Result, path: Path) -> None:
    """Write atomically (a *.tmp file renamed), so a reader never sees half a document."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(rounded(result), indent=1) + "\n")
    os.replace(tmp, path)


# -- the table -------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str = ".2f", sign: bool = False) -> str:
    if value is None:
        return "-"
    return format(value, ("+" if sign else "") + spec)


def _row(cell: Cell) -> list[str]:
    name = f"{cell['target']}/{cell['surface']}"
    if (cell["target"], cell["surface"]) == ("direct", "direct"):
        name = "direct"
    head = [name, cell["mode"], str(cell["concurrency"])]
    if not cell.get("available") or cell.get("reason"):
        return [*head, cell.get("reason") or "not available"]
    vs = cell.get("vs_direct", {})
    lat, ttft = cell.get("latency_ms") or {}, cell.get("ttft_ms") or {}
    cpu, upstream_cpu = cell.get("cpu_ms_per_req"), cell.get("upstream_cpu_ms_per_req")
    stream = cell["mode"] == "stream"
    return [
        *head,
        _fmt(cell.get("rps"), ",.0f"),
        _fmt(vs.get("rps_ratio"), ".3f"),
        _fmt(cpu, ".3f") if cpu is not None else f"({_fmt(upstream_cpu, '.3f')})",
        _fmt(lat.get("p50"), ".3f"),
        _fmt(vs.get("added_p50_ms"), ".3f", sign=True),
        _fmt(lat.get("p99"), ".3f"),
        _fmt(vs.get("added_p99_ms"), ".3f", sign=True),
        _fmt(ttft.get("p50"), ".3f") if stream else "",
        _fmt(vs.get("added_ttft_p50_ms"), ".3f", sign=True) if stream else "",
        str(cell.get("errors", 0)),
        _fmt(cell.get("foreign_cpu_cores"), ".2f"),
    ]


HEADER = [
    "target/surface",
    "mode",
    "c",
    "req/s",
    "x direct",
    "CPU ms/req",
    "p50 ms",
    "+ms",
    "p99 ms",
    "+ms",
    "TTFT p50",
    "+ms",
    "errors",
    "other CPU",
]


def _grid(rows: list[list[str]], header: list[str]) -> str:
    full = [r for r in [header, *rows] if len(r) == len(header)]
    widths = [max(len(r[i]) for r in full) for i in range(len(header))]
    lines = []
    for r in [header, *rows]:
        if len(r) < len(header):  # an unavailable cell: the reason spans the figures
            head = [r[0].ljust(widths[0]), r[1].ljust(widths[1]), r[2].rjust(widths[2])]
            lines.append("  ".join(head) + "  " + r[3])
        else:
            lines.append(
                "  ".join(
                    c.rjust(w) if i > 1 else c.ljust(w)
                    for i, (c, w) in enumerate(zip(r, widths, strict=True))
                )
            )
    return "\n".join(lines)


def table(result: Result) -> str:
    """Every cell, then memory, scaling and the target checks, as plain text."""
    cells = [c for c in result["cells"] if c.get("layout", "pinned") == "pinned"]
    parts = [
        "CPU ms/req: the server's CPU per request (direct: the upstream's, in parentheses);"
        " +ms: added over direct; other CPU: cores used meanwhile by processes outside the bench",
        _grid([_row(c) for c in cells], HEADER),
        "",
        ratios.ratio_table(result),
        "",
        _memory(result),
    ]
    steps = ratios.steps_table(result)
    if steps:
        parts += ["", steps]
    noise = _noise(result)
    if noise:
        parts += ["", noise]
    scaling = result.get("scaling")
    if scaling:
        parts += ["", _scaling_text(scaling)]
    found = result.get("checks") or []
    if found:
        parts += ["", _checks_text(found)]
    return "\n".join(parts)


def noisiest(result: Result) -> float:
    """The most CPU (in cores) anything outside the bench used during one cell."""
    return max((c.get("foreign_cpu_cores") or 0.0 for c in result["cells"]), default=0.0)


def _noise(result: Result) -> str:
    worst = noisiest(result)
    # /proc/stat counts 10 ms ticks: a few of them in a short cell are not noise.
    if worst <= max(NOISY, 0.03 / result["settings"]["duration_s"]):
        return ""
    return (
        f"WARNING: the machine was not quiet: other processes used up to {worst:.2f} cores"
        " during a cell; figures of such cells are perturbed (run again on a quiet machine)"
    )


def _memory(result: Result) -> str:
    lines = ["memory (RSS of the whole process tree):"]
    for name, info in result["targets"].items():
        if name == "direct":
            lines.append(f"  direct (fake upstream): {_fmt(info.get('upstream_rss_mb'), '.1f')} MB")
        elif info.get("error"):
            lines.append(f"  {name}: did not start")
        else:
            lines.append(
                f"  {name}: idle {_fmt(info.get('idle_rss_mb'), '.1f')} MB,"
                f" peak {_fmt(info.get('peak_rss_mb'), '.1f')} MB"
            )
    return "\n".join(lines)


def _scaling_text(scaling: Result) -> str:
    if scaling.get("error"):
        return f"scaling: {scaling['error']}"
    lines = [
        f"scaling ({scaling['surface']} c={scaling['concurrency']}, all {scaling['cores']} cores"
        f" shared): idle RSS at {scaling['workers']} workers"
        f" {_fmt(scaling.get('idle_rss_mb_n'), '.1f')} MB"
        f" ({_fmt(scaling.get('idle_rss_mb_per_worker_n'), '.1f')} MB per worker)"
    ]
    for mode in ("json", "stream"):
        f = scaling.get(mode)
        if f:
            lines.append(
                f"  {mode}: 1 worker {_fmt(f.get('rps_1'), ',.0f')} req/s,"
                f" {scaling['workers']} workers {_fmt(f.get('rps_n'), ',.0f')} req/s,"
                f" ratio {_fmt(f.get('ratio'), '.2f')}; CPU ms/req"
                f" {_fmt(f.get('cpu_ms_per_req_1'), '.3f')} ->"
                f" {_fmt(f.get('cpu_ms_per_req_n'), '.3f')}"
            )
    return "\n".join(lines)


def _checks_text(found: list[Result]) -> str:
    lines = ["targets (informational):"]
    for check in found:
        cmp = ">=" if check["check"].startswith("scaling") else "<="
        unit = check["unit"]
        where = f"{check['target']}/{check['surface']}" if check["surface"] else check["target"]
        value = _fmt(check["value"], ".3f")
        line = (
            f"  {check['status']:<4}  {where:<16} {check['label']}: {value} {unit}"
            f" ({cmp} {check['limit']:g} {unit})"
        )
        if check.get("note"):
            line += f" - {check['note']}"
        lines.append(line)
    return "\n".join(lines)
