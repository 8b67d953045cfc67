"""The benchmark harness still runs end to end against the real gateway (`python -m bench
--quick`, a few seconds) and produces figures. Nothing here is timed: how fast is the bench's
business, shown by `make bench`, never asserted by a test."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]
JSON_CONCURRENCY = (1, 16, 64)
STREAM_CONCURRENCY = (1, 16, 64)
SURFACES = ("ironlabs", "openai", "messages", "responses")
NOT_IMPLEMENTED = "not available (HTTP 404)"  # the one reason a surface may lack figures


def _bench(*args: str) -> str:
    """`python -m bench ARGS` from the repository root; its output, after a zero exit."""
    run = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard, not a speed check
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def _expected_cells() -> set[tuple[str, str, str, int]]:
    pairs = [("direct", "direct"), ("direct", "responses"), ("raw", "raw"), ("floor", "floor")]
    pairs += [("router", s) for s in SURFACES]
    modes = [("json", c) for c in JSON_CONCURRENCY] + [("stream", c) for c in STREAM_CONCURRENCY]
    return {(t, s, m, c) for t, s in pairs for m, c in modes}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _assert_figures(cell: dict[str, Any]) -> None:
    where = f"{cell['target']}/{cell['surface']} {cell['mode']} c={cell['concurrency']}"
    assert cell["reason"] is None, where
    assert cell["requests"] > 0, where
    names = ["rps", "latency_ms.p50", "latency_ms.p99", "loadgen_cpu_util"]
    names.append("upstream_cpu_ms_per_req" if cell["target"] == "direct" else "cpu_ms_per_req")
    if cell["mode"] == "stream":
        names += ["ttft_ms.p50", "ttft_ms.p99"]
    if cell["target"] != "direct" and cell.get("layout") == "pinned":
        names += ["vs_direct.rps_ratio", "vs_direct.added_p50_ms", "vs_direct.added_p99_ms"]
    if cell["target"] == "router" and cell.get("layout") == "pinned":
        names += ["vs_floor.cpu_ratio", "vs_floor.floor_cpu_ms_per_req"]
    for name in names:
        value: Any = cell
        for part in name.split("."):
            value = value[part]
        assert _is_number(value), f"{where}: {name} = {value!r}"


def _assert_steps(result: dict[str, Any]) -> None:
    """The quick concurrent-streams step ran on direct, the floor and the gateway, and every
    stream got every stamped chunk (a working harness; nothing about speed)."""
    steps = result["concurrency"]
    assert [(r["target"], r["surface"]) for r in steps] == [
        ("direct", "direct"),
        ("raw", "raw"),
        ("floor", "floor"),
        ("router", "openai"),
    ]
    for record in steps:
        where = record["target"]
        assert record["errors"] == 0, (where, record["error_sample"])
        assert record["ok"] == record["streams"] == 20, where
        assert record["chunks"] == 20 * record["chunks_per_stream"], where
        assert record["max_open_upstream"] == 20, where
        assert record["open_upstream_after"] == 0, where
        for name in ("p50", "p99"):
            assert _is_number(record["delay_ms"][name]) and _is_number(record["ttfc_ms"][name])
    for record in steps[1:]:
        for name in ("cpu_us_per_chunk", "kb_per_stream", "rss_after_mb", "added_delay_p99_ms"):
            assert _is_number(record[name]), (record["target"], name)


def _assert_startup(result: dict[str, Any]) -> None:
    """The start-up time was measured: a spawn answered a chat request and /readyz."""
    startup = result["startup"]
    assert startup["runs"] and "error" not in startup["runs"][0], startup
    for name in ("first_answer_s", "readyz_s"):
        for figure in ("min", "median"):
            assert _is_number(startup[name][figure]), (name, startup)
    assert "openai" in startup["providers"], startup
    checks = [c for c in result["checks"] if c["check"] == "startup_first_answer"]
    assert [c["value"] for c in checks] == [startup["first_answer_s"]["median"]]


@pytest.mark.bench
def test_quick_benchmark_produces_every_figure(tmp_path: Path) -> None:
    _bench("--quick", "--out", str(tmp_path), "--name", "smoke")
    result = json.loads((tmp_path / "smoke.json").read_text())
    assert "error" not in result["targets"]["router"], result["targets"]["router"]["error"]
    assert result["machine"]["cpu_model"] and result["machine"]["python"]
    assert result["versions"]["router"]

    pinned = [c for c in result["cells"] if c["layout"] == "pinned"]
    assert {(c["target"], c["surface"], c["mode"], c["concurrency"]) for c in pinned} == (
        _expected_cells()
    )
    for cell in pinned:
        if cell["available"]:
            _assert_figures(cell)
        else:
            assert cell["reason"].startswith(NOT_IMPLEMENTED), cell
    assert any(c["surface"] == "ironlabs" and c["available"] for c in pinned)

    assert any(c["surface"] == "openai" and c["available"] for c in pinned)
    # The fake upstream serves /v1/responses, so the Responses surface always has figures.
    responses = [c for c in pinned if c["surface"] == "responses"]
    assert {c["target"] for c in responses} == {"direct", "router"}
    for cell in responses:
        assert cell["available"], cell
        _assert_figures(cell)
    _assert_startup(result)

    for name in ("router", "floor", "raw"):
        info = result["targets"][name]
        assert _is_number(info["idle_rss_mb"]) and _is_number(info["peak_rss_mb"]), name
    scaling = result["scaling"]
    for mode in ("json", "stream"):
        assert _is_number(scaling[mode]["rps_1"]) and _is_number(scaling[mode]["rps_n"]), scaling
    _assert_steps(result)
    checks = {(c["target"], c["surface"], c["check"]) for c in result["checks"]}
    for surface in ("ironlabs", "openai", "responses"):
        for check in ("floor_ratio_json_c16", "floor_ratio_json_c64", "floor_ratio_stream_c64"):
            assert ("router", surface, check) in checks, (surface, check)
    assert {c["status"] for c in result["checks"]} <= {"PASS", "MISS", "n/a"}
    if importlib.util.find_spec("matplotlib") is not None:  # the chart is optional ([bench])
        assert (tmp_path / "smoke.png").stat().st_size > 0


@pytest.mark.bench
def test_quick_soak_runs_every_kind_of_traffic(tmp_path: Path) -> None:
    """A few rounds of the mixed soak: every kind of traffic reached the gateway, and every
    sample holds RSS, descriptors, threads and tasks (counted inside the gateway's loop)."""
    argv = ["soak", "--quick", "--minutes", "0.1", "--out", str(tmp_path), "--name", "soak"]
    _bench(*argv)
    result = json.loads((tmp_path / "soak.json").read_text())
    assert "error" not in result, result.get("error")
    assert result["rounds"], result
    for counts in result["rounds"]:
        for kind in ("ironlabs_json", "openai_json", "ironlabs_stream", "openai_stream"):
            assert counts[kind]["requests"] > 0 and counts[kind]["errors"] == 0, (kind, counts)
        for kind in ("failover_json", "large_json"):  # fell back / was accepted: answered
            assert counts[kind]["requests"] > 0 and counts[kind]["errors"] == 0, (kind, counts)
        assert counts["cut_stream"]["requests"] + counts["cut_stream"]["errors"] > 0, counts
        assert counts["disconnects"] == 50, counts
    for sample in result["samples"]:
        for name in ("rss_mb", "fds", "threads", "tasks"):
            assert _is_number(sample[name]) and sample[name] > 0, (name, sample)
    assert result["upstream_open_last"] == 0
    assert {c["check"] for c in result["checks"]} == {
        "soak_growth",
        "soak_fd_growth",
        "soak_task_growth",
        "soak_upstream_open_last",
    }


@pytest.mark.bench
def test_the_application_layer_cell_measures_both_apps_in_every_mode(tmp_path: Path) -> None:
    """`python -m bench app`: the gateway's app and the floor's, in one process; per
    request (JSON, 20-chunk stream) and per chunk of slow streams."""
    out = _bench("app", "--requests", "32", "--out", str(tmp_path))
    result = json.loads((tmp_path / "app-layer.json").read_text())
    assert result["requests"] == 32
    for app in ("floor", "router"):
        for mode in ("json", "stream", "slow"):
            assert result["cpu_us_per_request"][app][mode] > 0, (app, mode)
    assert set(result["ratio_to_floor"]) == {"json", "stream", "slow"}
    assert "application layer alone" in out
