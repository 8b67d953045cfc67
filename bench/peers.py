"""The peers column: LiteLLM's proxy, installed in its own virtual environment.

`python -m bench --peers` creates bench/.peers-venv on first use (`pip install 'litellm[proxy]'`,
a few minutes and about 1 GB) and reuses it afterwards. It is never installed into the project's
environment: its dependencies would pin ours.
"""

from __future__ import annotations

import subprocess
import sys

from bench.targets import PEERS_VENV

LITELLM_REQUIREMENT = "litellm[proxy]"


def ensure_venv() -> None:
    """Create the peers' environment unless its `litellm` command already exists."""
    if (PEERS_VENV / "bin" / "litellm").exists():
        return
    print(f"installing {LITELLM_REQUIREMENT} into {PEERS_VENV} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEERS_VENV)], check=True)
    pip = [str(PEERS_VENV / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, LITELLM_REQUIREMENT], check=True)


def litellm_version() -> str | None:
    try:
        out = subprocess.run(
            [
                str(PEERS_VENV / "bin" / "python"),
                "-c",
                "import importlib.metadata as m; print(m.version('litellm'))",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()
