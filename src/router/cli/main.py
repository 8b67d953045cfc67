"""`router`: the top-level parser. Each command module adds its own sub-parser and `run`."""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from typing import NoReturn

from router import __version__
from router.cli import keys, prices, serve

OVERVIEW = """commands:
  serve    serve the gateway                       router serve --port 9000
  check    validate routing.toml and providers/    router check --config other.toml
  keys     virtual keys: create|list|update|revoke router keys create --name app --models 'demo/*'
  keys limits  a key's budget, limits and team      router keys limits ID --rpm 60 --budget 5
  prices   refresh catalog prices from a table     router prices refresh --table prices.json
  spend    spend totals from the ledger            router spend --group-by model --format csv

Run `router COMMAND --help` for a command's options and examples.
Environment: ROUTER_CONFIG (routing.toml path), HOST, PORT, WORKERS, ROUTER_MASTER_KEY,
and each provider's key variable (OPENAI_API_KEY, ...; providers/<name>.toml names it).
"""
_CHOICE = re.compile(r"invalid choice: '(?P<given>[^']*)' \(choose from (?P<of>.*)\)")
_CHOICES = re.compile(r"'([^']*)'")


class Parser(argparse.ArgumentParser):
    """argparse, with errors that end in what to do next."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        hint = f"run `{self.prog} --help`"
        wrong = _CHOICE.search(message)
        if wrong is not None:
            close = difflib.get_close_matches(wrong["given"], _CHOICES.findall(wrong["of"]), n=1)
            hint = f"did you mean `{self.prog} {close[0]}`? Or {hint}" if close else hint
        self.exit(2, f"{self.prog}: error: {message}\n  next: {hint}\n")


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="router",
        description="router: a multi-model LLM routing gateway (Iron Labs and OpenAI-compatible"
        " APIs, fallback chains, retries, stream rescue, costs).",
        epilog=OVERVIEW,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"router {__version__}")
    commands = p.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=Parser, help="one of:"
    )
    serve.add_parsers(commands)
    keys.add_parser(commands)
    prices.add_parser(commands)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["spend"]:  # commands with parsers of their own
        from router.cli import spend

        return spend.main(argv[1:])
    if argv[:2] == ["keys", "limits"]:
        from router.cli import limits

        return limits.main(argv[2:])
    args = parser().parse_args(argv)
    return serve.run_guarded(args)
