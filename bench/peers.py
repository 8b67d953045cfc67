"""The peers column: LiteLLM's proxy, installed in its own virtual environment.

`python -m bench --peers` creates bench/.peers-venv on first use (`pip install 'litellm[proxy]'`,
a few minutes and about 1 GB) and reuses it afterwards. It is never installed into the project's
environment: its dependencies would pin ours.
"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

from bench import targets
from bench.procs import StartError, free_port
from bench.targets import PEERS_VENV, Target

if TYPE_CHECKING:
    from bench.run import Bench

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


def run_litellm(bench: Bench) -> None:
    """Start LiteLLM's proxy on the servers' core and measure its OpenAI surface."""
    bench.result["targets"]["litellm"] = {
        "label": "LiteLLM proxy",
        "workers": 1,
        "version": litellm_version(),
    }
    surfaces = (targets.OPENAI,)
    port = free_port()
    config = targets.litellm_config(bench.procs.workdir, bench.upstream_port)
    try:
        proc = bench.procs.start(
            "litellm",
            targets.litellm_argv(config, port),
            bench.layout.servers,
            targets.litellm_env(),
        )
        proc.wait_http(port, "/health/liveliness", max(bench.options.startup_timeout, 180))
    except (StartError, OSError) as exc:
        bench.unavailable("litellm", surfaces, str(exc))
        return
    bench.measure(Target("litellm", port, targets.LITELLM_MASTER_KEY, surfaces), proc)
    bench.procs.stop(proc)
