"""`router serve` and `router check`: run the gateway, or validate its configuration."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from pathlib import Path
from typing import Any

from router.cli.banner import banner
from router.cli.common import add_config
from router.config import (
    Settings,
    check_protocols,
    load_settings,
    packaged_providers,
    providers_dir,
)
from router.errors import ConfigError

SERVE_EXAMPLES = """examples:
  router serve                                  # routing.toml here, 127.0.0.1:8080
  router serve --config /etc/router/routing.toml --host 0.0.0.0 --port 9000 --workers 4
  PORT=9000 ROUTER_CONFIG=other.toml router serve
"""
CHECK_EXAMPLES = """examples:
  router check
  router check --config /etc/router/routing.toml
"""


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if not raw:
        return default
    if not raw.isdigit():
        raise SystemExit(f"router: {name}={raw!r} is not a whole number; unset it or fix it")
    return int(raw)


def add_parsers(commands: argparse._SubParsersAction[Any]) -> None:
    raw = argparse.RawDescriptionHelpFormatter
    serve = commands.add_parser(
        "serve",
        help="serve the gateway (prints where it listens and a curl line to try)",
        description="Serve the gateway: both APIs, the model list, /metrics.",
        epilog=SERVE_EXAMPLES,
        formatter_class=raw,
    )
    add_config(serve)
    serve.add_argument(
        "--host",
        default=os.environ.get("HOST") or None,
        help="address to bind (default: $HOST, else server.host from routing.toml)",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=None,
        help="port to bind (default: $PORT, else server.port from routing.toml)",
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=_env_int("WORKERS", 1),
        help="worker processes sharing the port (default: $WORKERS, else 1)",
    )
    serve.add_argument(
        "--log-level",
        default="warning",
        choices=("critical", "error", "warning", "info", "debug"),
        help="uvicorn's log level (default: %(default)s)",
    )
    serve.set_defaults(run=serve_command)
    check = commands.add_parser(
        "check",
        help="validate routing.toml and the provider files without serving",
        description="Validate routing.toml and providers/*.toml, say which providers folder"
        " was used, and exit 0 (valid) or 2 (the error names file, line and field).",
        epilog=CHECK_EXAMPLES,
        formatter_class=raw,
    )
    add_config(check)
    check.set_defaults(run=check_command)


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def serve_command(args: argparse.Namespace) -> int:
    from router.runtime import master_key  # loads the app's modules: only when serving

    env = dict(os.environ)
    settings = load_settings(args.config, env)
    host = args.host or settings.server.host
    port = args.port or int(env.get("PORT") or settings.server.port)
    master_key(settings, env, host)  # refuse a dev key on a public address before binding
    if not _port_free(host, port):
        print(
            f"router: {host}:{port} is already in use (another router?): stop it, or pick"
            " another port with --port N or PORT=N",
            file=sys.stderr,
        )
        return 1
    os.environ["ROUTER_CONFIG"] = os.path.abspath(args.config)
    os.environ["ROUTER_HOST"] = host
    if args.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="router-metrics-")
    print("\n".join(banner(settings, env, host, port, args.workers)), file=sys.stderr, flush=True)
    from router.supervisor import serve  # drains on SIGTERM: see router.serving

    return serve(host, port, args.workers, args.log_level, settings)


def providers_note(settings: Settings) -> str:
    """Which providers folder `load_settings` used, and why."""
    used = providers_dir(settings, Path(settings.source))
    beside = (Path(settings.source).parent / settings.providers_dir).resolve()
    if used == packaged_providers() and used != beside:
        return f"providers: {used} (shipped with router: no provider files in {beside})"
    return f"providers: {used}"


def check_command(args: argparse.Namespace) -> int:
    from router.protocols import REGISTRY  # the one list of protocols

    settings = load_settings(args.config)
    check_protocols(settings, REGISTRY)
    models = sum(len(p.models) for p in settings.providers.values())
    print(
        f"{args.config}: ok ({len(settings.providers)} providers, {models} models,"
        f" {len(settings.aliases)} aliases)"
    )
    print(providers_note(settings))
    return 0


def run_guarded(args: argparse.Namespace) -> int:
    """A command with its configuration errors printed as what to do next (exit 2)."""
    from router.cli.common import config_error

    try:
        result: int = args.run(args)
    except ConfigError as exc:
        return config_error("router", exc, getattr(args, "config", "routing.toml"))
    return result
