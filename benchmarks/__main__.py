"""``python -m benchmarks [--quick] [--instructions] [--json PATH] [--only NAME ...]``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from benchmarks._harness import FULL, QUICK
from benchmarks._suite import COMPARISONS, DEFAULT_JSON, run_suite


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="graphcomms against its floors and peers; prints a table, writes JSON.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, no peers: under a minute (CI smoke)"
    )
    parser.add_argument(
        "--json",
        type=Path,
        metavar="PATH",
        help="also write the JSON here (it always goes to benchmarks/results/latest.json)",
    )
    parser.add_argument(
        "--only",
        nargs="+",
        choices=list(COMPARISONS),
        metavar="NAME",
        help=f"run only these comparisons: {', '.join(COMPARISONS)}",
    )
    parser.add_argument("--repeats", type=int, help="rounds per comparison (at least 5)")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count instructions for the in-process rows (ingest, action, scale):"
        " perf stat where it works, else valgrind's callgrind (minutes, not seconds)",
    )
    parser.add_argument(
        "--no-timing",
        dest="timing",
        action="store_false",
        help="with --instructions: only the instruction counts, no wall-clock rows",
    )
    parser.add_argument(
        "--counter",
        choices=["auto", "perf", "callgrind"],
        default="auto",
        help="what counts instructions (default auto: perf if it can, else callgrind)",
    )
    parser.add_argument(
        "--keep-profiles",
        type=Path,
        metavar="DIR",
        help="with callgrind: keep each variant's profile of its last counted region in DIR,"
        " for callgrind_annotate",
    )
    peers = parser.add_mutually_exclusive_group()
    peers.add_argument(
        "--peers",
        dest="peers",
        action="store_true",
        default=None,
        help="run the msgraph-beta-sdk rows (default: on, off with --quick)",
    )
    peers.add_argument("--no-peers", dest="peers", action="store_false")
    args = parser.parse_args(argv)

    sizes = QUICK if args.quick else FULL
    if args.repeats is not None:
        if args.repeats < 5:
            parser.error("--repeats must be at least 5")
        sizes = sizes.with_repeats(args.repeats)
    if args.peers is not None:
        sizes = replace(sizes, peers=args.peers)
    if not args.timing and not args.instructions:
        parser.error("--no-timing leaves nothing to run without --instructions")
    sizes = replace(
        sizes,
        instructions=args.instructions,
        timing=args.timing,
        counter=args.counter,
        keep_profiles=None if args.keep_profiles is None else str(args.keep_profiles),
    )
    paths = [DEFAULT_JSON] + ([args.json] if args.json is not None else [])
    command = " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])])
    document = run_suite(sizes, only=args.only, json_paths=paths, command=command)

    machine = document["machine"]
    load = document["load_average"]
    print(
        f"\ngraphcomms benchmarks ({document['mode']}, {document['duration_s']} s):"
        f" {machine['nproc']} CPUs, {machine['cpu']}, Python {machine['python']},"
        f" graphcomms from {machine['library']['path']} ({machine['library']['revision']}),"
        f" load average {load['before']} before, {load['after']} after\n"
    )
    print(document["table"])
    print(f"\nJSON: {', '.join(str(p) for p in paths)}")
    return 1 if any(row["result"] == "ERROR" for row in document["rows"]) else 0


if __name__ == "__main__":
    sys.exit(main())
