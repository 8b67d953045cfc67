"""The `router` command: serve, check, prices, keys."""

from __future__ import annotations

import argparse
import os
import sys

from router.config import load_settings
from router.errors import ConfigError
from router.runtime import master_key


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    env = dict(os.environ)
    settings = load_settings(args.config, env)
    host = args.host or settings.server.host
    port = args.port or int(env.get("PORT") or settings.server.port)
    master_key(settings, env, host)  # refuse a dev key on a public address before binding
    os.environ["ROUTER_CONFIG"] = os.path.abspath(args.config)
    os.environ["ROUTER_HOST"] = host
    os.environ["ROUTER_WORKERS"] = str(args.workers)  # limits refuse to count per worker alone
    if args.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="router-metrics-")
    print(
        f"router: serving on http://{host}:{port} ({len(settings.providers)} providers)",
        file=sys.stderr,
    )
    uvicorn.run(
        "router.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=args.workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level=args.log_level,
        timeout_graceful_shutdown=5,
    )
    return 0


def _check(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    models = sum(len(p.models) for p in settings.providers.values())
    print(
        f"{args.config}: ok ({len(settings.providers)} providers, {models} models,"
        f" {len(settings.aliases)} aliases)"
    )
    return 0


def _prices(args: argparse.Namespace, rest: list[str]) -> int:
    from router import prices

    return prices.main(rest)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="router", description="Multi-model LLM routing gateway.")
    sub = p.add_subparsers(dest="command", required=True)
    default_config = os.environ.get("ROUTER_CONFIG", "routing.toml")
    serve = sub.add_parser("serve", help="serve the gateway")
    serve.add_argument("--config", default=default_config)
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--log-level", default="warning")
    check = sub.add_parser("check", help="validate routing.toml and providers/ without serving")
    check.add_argument("--config", default=default_config)
    sub.add_parser(
        "prices", help="refresh catalog prices: router prices refresh --table FILE", add_help=False
    )
    sub.add_parser(
        "keys", help="virtual keys: router keys create|list|update|revoke", add_help=False
    )
    sub.add_parser("spend", help="spend totals: router spend --help", add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["prices"]:
        return _prices(argparse.Namespace(), argv[1:])
    if argv[:1] == ["spend"]:
        from router import spend_cli

        return spend_cli.main(argv[1:])
    if argv[:2] == ["keys", "limits"]:
        from router import limits_cli

        return limits_cli.main(argv[2:])
    if argv[:1] == ["keys"]:
        from router import keyadmin

        return keyadmin.main(argv[1:])
    args = parser().parse_args(argv)
    try:
        return _check(args) if args.command == "check" else _serve(args)
    except ConfigError as exc:
        print(f"router: configuration error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
