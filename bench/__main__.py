"""Command line: `python -m bench [--quick] [--peers]`, `python -m bench soak [--minutes N]`,
`python -m bench profile [--duration S]` (needs py-spy), `python -m bench app [--requests N]`
(the application layer alone, in this process: the gateway's own code against the floor's).

Run from the repository root, with the repository installed in the interpreter's environment
(`pip install -e '.[dev,bench]'`). Results go to bench/results/ unless `--out` says otherwise.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from types import FrameType

from bench import report, startup
from bench.chart import write_chart, write_soak_chart
from bench.run import run
from bench.setup import REPO, Options

RESULTS = REPO / "bench" / "results"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "command", nargs="?", choices=("run", "soak", "profile", "app"), default="run"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few seconds in all: keeps the harness working, figures are noisy",
    )
    parser.add_argument(
        "--peers",
        action="store_true",
        help="add LiteLLM's proxy (installed into bench/.peers-venv on first use)",
    )
    parser.add_argument("--duration", type=float, help="measured seconds per cell (default 5)")
    parser.add_argument("--warmup", type=float, help="warm-up seconds per cell (default 1)")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker count of the scaling cell; 1 skips it (default 2)",
    )
    parser.add_argument(
        "--large-steps",
        action="store_true",
        help="add the concurrent-streams steps 3,000 @ 150 ms and 10,000 @ 500 ms",
    )
    parser.add_argument("--no-steps", action="store_true", help="skip the concurrent-streams steps")
    parser.add_argument("--chunks", type=int, default=20, help="text chunks per stream")
    parser.add_argument(
        "--chunk-delay-ms",
        type=float,
        default=0.0,
        help="delay between the upstream's stream chunks (default 0)",
    )
    parser.add_argument(
        "--retries",
        type=int,
        help="measure a cell again while other processes disturb it (default 2; quick: 0)",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout's src/: its gateway measured beside this one (target baseline)",
    )
    parser.add_argument(
        "--modes",
        choices=("json", "stream", "both"),
        default="both",
        help="the side-by-side cells to run (default both)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--name", help="result file stem (default: latest, quick or soak)")
    parser.add_argument("--minutes", type=float, default=10.0, help="soak length")
    parser.add_argument("--interval", type=float, help="soak: seconds per round of mixed traffic")
    parser.add_argument(
        "--requests", type=int, default=4000, help="app: requests per round (default 4000)"
    )
    return parser


QUICK_STEPS = ((20, 0.05, 10),)
STEPS = ((100, 0.05, 60), (1000, 0.05, 60))
LARGE_STEPS = ((3000, 0.15, 40), (10000, 0.5, 40))


def _steps(args: argparse.Namespace) -> tuple[tuple[int, float, int], ...]:
    if args.no_steps:
        return ()
    steps = QUICK_STEPS if args.quick else STEPS
    return steps + LARGE_STEPS if args.large_steps else steps


def _options(args: argparse.Namespace) -> Options:
    quick = args.quick
    return Options(
        stream_steps=_steps(args),
        quick=quick,
        warmup=args.warmup if args.warmup is not None else (0.1 if quick else 1.0),
        duration=args.duration if args.duration is not None else (0.3 if quick else 5.0),
        chunks=args.chunks,
        chunk_delay_ms=args.chunk_delay_ms,
        workers=args.workers,
        peers=args.peers,
        startup_timeout=30.0 if quick else 60.0,
        retries=args.retries if args.retries is not None else (0 if quick else 2),
        baseline=args.baseline.resolve() if args.baseline else None,
        json_concurrency=() if args.modes == "stream" else (1, 16, 64),
        stream_concurrency=() if args.modes == "json" else (1, 16, 64),
    )


def _stop(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks that stop processes


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _stop)
    options = _options(args)
    if args.command == "soak":
        return _soak(args, options)
    if args.command == "profile":
        return _profile(args, options)
    if args.command == "app":
        return _app_layer(args)
    if options.peers:
        from bench import peers

        peers.ensure_venv()
    name = args.name or ("quick" if options.quick else "latest")
    result = run(options)
    report.annotate(result)
    result["checks"] = report.checks(result) + startup.checks(result)
    print()
    print(report.table(result))
    if result.get("startup"):
        print("\n" + startup.text(result["startup"]))
    json_path = args.out / f"{name}.json"
    report.write_json(result, json_path)
    print(f"\nwrote {json_path}")
    if write_chart(report.rounded(result), args.out / f"{name}.png"):
        print(f"wrote {args.out / f'{name}.png'}")
    else:
        print("no chart: matplotlib is not installed (pip install -e '.[bench]')")
    return 0


def _soak(args: argparse.Namespace, options: Options) -> int:
    from bench.soak import soak

    interval = args.interval or (2.0 if options.quick else 8.0)
    result = soak(options, args.minutes, interval)
    name = args.name or "soak"
    if "error" in result:
        print(f"soak: a kind of traffic is not available: {result['error']}")
    else:
        result["checks"] = report.soak_checks(result)
        print(
            f"\nsoak: RSS idle {result['idle_mb']:.1f} MB; median after warm-up, first quarter"
            f" {result['first_mb']:.1f} MB, last quarter {result['last_mb']:.1f} MB;"
            f" max {result['max_mb']:.1f} MB"
        )
        for check in result["checks"]:
            print(
                f"  {check['status']:<4}  {check['label']}: {check['value']} (<= {check['limit']})"
            )
    report.write_json(result, args.out / f"{name}.json")
    print(f"wrote {args.out / f'{name}.json'}")
    if "error" not in result and write_soak_chart(report.rounded(result), args.out / f"{name}.png"):
        print(f"wrote {args.out / f'{name}.png'}")
    return 0


def _profile(args: argparse.Namespace, options: Options) -> int:
    from bench import profile

    py_spy = profile.find_py_spy()
    if py_spy is None:
        print("py-spy is not installed: pip install py-spy")
        return 2
    found = profile.profile(options, args.duration or 10.0, args.out, py_spy)
    print(profile.render(found))
    report.write_json(found, args.out / f"{args.name or 'profile'}.json")
    print(f"wrote {args.out / 'profile-*.txt'} (collapsed stacks) and the summary JSON")
    return 0


def _app_layer(args: argparse.Namespace) -> int:
    from bench.app_layer import print_app_layer, run_app_layer

    result = run_app_layer(args.requests)
    print_app_layer(result)
    path = args.out / f"{args.name or 'app-layer'}.json"
    report.write_json(result, path)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
