"""`python -m bench app` (the application layer alone, gateway against the stack floor, in one
process) still runs and produces a figure for each app and mode. Never timed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.bench
def test_the_application_layer_cell_measures_both_apps_in_both_modes(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench", "app", "--requests", "32", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    result = json.loads((tmp_path / "app-layer.json").read_text())
    assert result["requests"] == 32
    for app in ("floor", "router"):
        for mode in ("json", "stream"):
            assert result["cpu_us_per_request"][app][mode] > 0, (app, mode)
    assert set(result["ratio_to_floor"]) == {"json", "stream"}
    assert "application layer alone" in run.stdout
