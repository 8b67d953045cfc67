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
STREAM_CONCURRENCY = (1, 16)
NOT_IMPLEMENTED = "not available (HTTP 404)"  # the one reason a surface may lack figures


def _expected_cells() -> set[tuple[str, str, str, int]]:
    pairs = [("direct", "direct"), ("router", "ironlabs"), ("router", "openai")]
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
    for name in names:
        value: Any = cell
        for part in name.split("."):
            value = value[part]
        assert _is_number(value), f"{where}: {name} = {value!r}"


@pytest.mark.bench
def test_quick_benchmark_produces_every_figure(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path), "--name", "smoke"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,  # a hang guard, not a speed check
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
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

    router = result["targets"]["router"]
    assert _is_number(router["idle_rss_mb"]) and _is_number(router["peak_rss_mb"])
    scaling = result["scaling"]
    assert _is_number(scaling["rps_1"]) and _is_number(scaling["rps_n"]), scaling
    assert {c["status"] for c in result["checks"]} <= {"PASS", "MISS", "n/a"}
    if importlib.util.find_spec("matplotlib") is not None:  # the chart is optional ([bench])
        assert (tmp_path / "smoke.png").stat().st_size > 0
