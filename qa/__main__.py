"""``python -m qa soak [...]`` and ``python -m qa flood [...]``; ``--help`` for options."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser: one subcommand per harness."""
    parser = argparse.ArgumentParser(
        prog="python -m qa",
        description="graphcomms' QA harnesses, run from a checkout of the repository. "
        "Each prints its report and exits 0 when every check passed, 1 otherwise.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    soak = commands.add_parser(
        "soak",
        help="operations across concurrent calls through the emulator with a seeded fault mix",
        description="Run operations across concurrent calls through the Graph emulator and "
        "the real webhook (token validation on) under a seeded fault mix, and check every "
        "outcome against the emulator's own record.",
    )
    soak.add_argument(
        "--operations",
        type=int,
        default=10_000,
        help="how many call actions to run in all (default 10000)",
    )
    soak.add_argument(
        "--calls",
        type=int,
        default=100,
        help="how many calls run at once; each is replaced when it ends (default 100)",
    )
    soak.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for the plan of actions and the emulator's faults (default 0)",
    )
    soak.add_argument(
        "--close-midway",
        action="store_true",
        help="close the client halfway through, and check that everything pending "
        "failed at once and nothing was left behind",
    )
    flood = commands.add_parser(
        "flood",
        help="flood the webhook with valid, forged and malformed requests",
        description="Flood the webhook (token validation on) from another process with "
        "valid, forged and malformed notification requests, and check every answer, what "
        "was dispatched, and that memory stays bounded.",
    )
    flood.add_argument(
        "--seconds",
        type=float,
        default=10.0,
        help="how long to flood, in seconds (default 10)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "soak":
        from qa.soak import run_soak

        report = asyncio.run(
            run_soak(
                operations=args.operations,
                calls=args.calls,
                seed=args.seed,
                close_midway=args.close_midway,
            )
        )
        return 0 if report.ok else 1
    from qa.flood import run_flood

    flooded = asyncio.run(run_flood(seconds=args.seconds))
    return 0 if flooded.ok else 1


if __name__ == "__main__":
    sys.exit(main())
