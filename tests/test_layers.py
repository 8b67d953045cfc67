"""The layers hold: imports point one way, with no cycles, and every module imports alone.

    errors, config, core/types, core/media      the bottom: canonical types and settings
    upstream                                     bytes on the wire (aiohttp)
    protocols/                                   codecs: canonical <-> one provider dialect
    store/, cluster, metrics                     persistence, the Redis link, Prometheus
    observe/                                     request ids, logs, traces, the status view
    auth                                         who is calling
    lifecycle                                    the process's drain state (imports nothing)
    core/                                        planning, the gateway, rescue, accounting
    limits, spend_report                         budgets, rate limits and spend reports
    api/                                         surfaces: decode, call the core, render
    runtime, app                                 the composition root: wires it all
    cli/, __main__ and the command-line tools    the top

The graph is read from the source (every `import`, also those inside functions), so a lazy
import cannot hide an upward dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

BOTTOM = {
    "router",
    "router.errors",
    "router.config",
    "router.config_lines",
    "router.config_checks",
    "router.core.types",
    "router.core.media",
    "router.ids",
}


def group(module: str) -> str:
    if module in BOTTOM:
        return "bottom"
    for prefix, name in (
        ("router.upstream", "upstream"),
        ("router.protocols", "protocols"),
        ("router.store", "store"),
        ("router.cluster", "cluster"),
        ("router.metrics", "metrics"),
        ("router.metrics_genai", "metrics"),
        ("router.metrics_workers", "metrics"),
        ("router.metrics_labels", "metrics"),
        ("router.observe", "observe"),
        ("router.auth", "auth"),
        ("router.lifecycle", "lifecycle"),
        ("router.admission", "root"),
        ("router.core", "core"),
        ("router.limits", "limits"),
        ("router.limits_answers", "limits"),
        ("router.limits_meters", "limits"),
        ("router.limits_policy", "limits"),
        ("router.limits_redis", "limits"),
        ("router.spend_report", "limits"),
        ("router.api", "api"),
        ("router.runtime", "root"),
        ("router.app", "root"),
    ):
        if module == prefix or module.startswith(prefix + "."):
            return name
    return "top"  # the command line and its tools


ALLOWED = {
    "bottom": {"bottom"},
    "upstream": {"bottom"},
    "protocols": {"bottom", "upstream", "protocols"},
    "store": {"bottom", "store"},
    "cluster": {"bottom"},
    "metrics": {"bottom", "metrics"},
    "observe": {"bottom", "metrics", "observe"},
    "auth": {"bottom", "store"},
    "lifecycle": set(),
    "core": {"bottom", "core", "auth"},
    "limits": {"bottom", "auth", "core", "cluster", "store", "limits"},
    "api": {"bottom", "core", "auth", "store", "api", "lifecycle", "observe", "limits", "root"},
    "root": {
        "bottom",
        "upstream",
        "protocols",
        "store",
        "cluster",
        "metrics",
        "observe",
        "limits",
        "auth",
        "core",
        "api",
        "lifecycle",
        "root",
    },
}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "router").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _type_only(tree: ast.Module) -> set[int]:
    """ids of the import nodes under `if TYPE_CHECKING:`: no edge at run time."""
    return {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
        for inner in ast.walk(node)
    }


def imports(path: Path, known: dict[str, Path], runtime_only: bool = False) -> set[str]:
    """The router modules `path` imports (a `from package import submodule` names the
    submodule); with `runtime_only`, not those imported for type checking only."""
    out: set[str] = set()
    tree = ast.parse(path.read_text())
    skip = _type_only(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("router")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("router"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in known else node.module)
    return out


def graph(runtime_only: bool = False) -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, known, runtime_only) - {name} for name, path in known.items()}


def upward(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in sorted(edges.items()):
        allowed = ALLOWED.get(group(source))
        if allowed is None:
            continue  # the top may import anything
        bad += [f"{source} -> {t}" for t in sorted(targets) if group(t) not in allowed]
    return bad


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                found.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return found


def test_imports_point_one_way():
    assert upward(graph()) == []


def test_no_import_cycles():
    assert cycles(graph(runtime_only=True)) == []


def test_the_checks_catch_what_they_are_for():
    edges = {
        "router.core.planner": {"router.protocols.openai_chat"},
        "router.upstream": {"router.protocols.base"},
        "router.protocols.base": {"router.upstream"},
    }
    assert upward(edges) == [
        "router.core.planner -> router.protocols.openai_chat",
        "router.upstream -> router.protocols.base",
    ]
    assert cycles(edges) == [["router.protocols.base", "router.upstream", "router.protocols.base"]]


def test_every_module_imports_alone_in_a_fresh_interpreter():
    """Each module first, in an interpreter of its own (import order cannot hide a cycle)."""
    names = sorted(modules())
    script = (
        "import importlib, subprocess, sys\n"
        "failed = []\n"
        "for name in sys.argv[1:]:\n"
        "    r = subprocess.run([sys.executable, '-c', f'import {name}'], capture_output=True,"
        " text=True)\n"
        "    if r.returncode:\n"
        "        failed.append((name, r.stderr.strip().splitlines()[-1]))\n"
        "print(failed)\n"
        "sys.exit(1 if failed else 0)\n"
    )
    r = subprocess.run(
        [sys.executable, "-c", script, *names], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, r.stdout + r.stderr
