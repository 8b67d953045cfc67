"""What every command shares: the `--config` option and configuration errors that say what
to do next."""

from __future__ import annotations

import argparse
import os
import sys

from router.errors import ConfigError


def default_config() -> str:
    return os.environ.get("ROUTER_CONFIG") or "routing.toml"


def add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=default_config(),
        metavar="FILE",
        help="routing.toml to use (default: $ROUTER_CONFIG, else ./routing.toml; now %(default)s)",
    )


def config_error(prog: str, exc: ConfigError, path: str) -> int:
    """Print a configuration error and the next step; the exit status is 2."""
    print(f"{prog}: configuration error: {exc}", file=sys.stderr)
    if exc.message == "file not found":
        hint = (
            "run where routing.toml is, pass --config PATH, or set ROUTER_CONFIG=PATH"
            " (the repository's routing.toml is a working start)"
        )
    else:
        hint = f"fix it, then validate with: router check --config {path}"
    print(f"  next: {hint}", file=sys.stderr)
    return 2
