"""The code stays as STYLE.md asks: ruff clean (incl. complexity) and mypy --strict clean."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


def test_ruff():
    r = _run("ruff", "check", "src", "tests")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_strict():
    r = _run("mypy", "src")
    assert r.returncode == 0, r.stdout + r.stderr
