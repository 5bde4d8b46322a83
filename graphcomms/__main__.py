"""Command line: ``python -m graphcomms demo`` and ``python -m graphcomms emulator``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m graphcomms", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="run an IVR bot built on graphcomms against the embedded Graph emulator"
    )
    demo.add_argument("--seed", type=int, default=0, help="the emulator's seed (default 0)")
    demo.add_argument(
        "--prompt-seconds",
        type=float,
        default=0.05,
        help="emulated length of each prompt or recording (default 0.05)",
    )
    emulator = commands.add_parser(
        "emulator", help="serve the Graph calling emulator alone, for a bot in any language"
    )
    emulator.add_argument("--port", type=int, default=8765)
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        if args.command == "demo":
            from graphcomms._demo import run_demo

            return asyncio.run(run_demo(seed=args.seed, prompt_seconds=args.prompt_seconds))
        from graphcomms.testing import run_emulator

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_emulator(port=args.port, host=args.host, seed=args.seed))
        return 0
    except ImportError as exc:
        print(
            f"{exc}\nthe demo and the emulator need the testing extra: "
            'pip install "graphcomms[testing]"',
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
