"""Command line: ``python -m graphcomms demo`` and ``python -m graphcomms emulator``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Coroutine
from typing import Any

_ACCESS_TOKEN_VARIABLE = "GRAPHCOMMS_EMULATOR_ACCESS_TOKEN"  # noqa: S105 - a variable name


def build_parser() -> argparse.ArgumentParser:
    """The command line's parser: one subcommand per job."""
    parser = argparse.ArgumentParser(
        prog="python -m graphcomms",
        description="graphcomms from the command line: an IVR demo against the embedded "
        "Graph emulator, or the emulator alone.",
    )
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        title="commands",
        metavar="COMMAND",
        help="python -m graphcomms COMMAND --help shows a command's options",
    )
    demo = commands.add_parser(
        "demo",
        help="run an IVR bot built on graphcomms against the embedded Graph emulator",
        description="Run an IVR bot built on graphcomms against the embedded Graph "
        "emulator, through the real webhook with token validation on: the emulator rings "
        "the bot, which answers and runs an IVR (greeting, recording, DTMF, hold music, "
        "hang-up), with a live timeline. It exits 0 when every step behaved.",
    )
    demo.add_argument("--seed", type=int, default=0, help="the emulator's seed (default 0)")
    demo.add_argument(
        "--prompt-seconds",
        type=float,
        default=0.05,
        help="emulated length of each prompt or recording (default 0.05)",
    )
    emulator = commands.add_parser(
        "emulator",
        help="serve the Graph calling emulator alone, for a bot in any language",
        description="Serve the Graph calling-service emulator until interrupted (Ctrl-C). "
        "It prints its Graph base URLs, its OpenID configuration and JWKS URLs, the URL "
        "of its control API (ring the bot, press keys, hang up as the caller, cue faults, "
        "read what happened; see the README), and the app id its notification tokens are "
        "issued for.",
    )
    emulator.add_argument(
        "--port",
        type=int,
        default=8765,
        help="TCP port to listen on; 0 picks a free one (default 8765)",
    )
    emulator.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1, this machine only)",
    )
    emulator.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed for ids, faults and delays: the same seed and the same requests give "
        "the same run (default 0)",
    )
    emulator.add_argument(
        "--access-token",
        metavar="TOKEN",
        default=os.environ.get(_ACCESS_TOKEN_VARIABLE) or None,
        help="answer Graph API requests only when they carry Authorization: Bearer TOKEN; "
        "others get 401 with a WWW-Authenticate header. Without it any non-empty bearer "
        f"token is accepted. Default: the {_ACCESS_TOKEN_VARIABLE} environment variable, "
        "which, unlike the command line, other users of this machine cannot list",
    )
    emulator.add_argument(
        "--bot-webhook-url",
        metavar="URL",
        default=None,
        help="where incoming calls ring (the bot's notification URL) when the control "
        "API's POST /_emulator/calls names no callbackUri",
    )
    emulator.add_argument(
        "--prompt-seconds",
        type=_non_negative,
        default=0.05,
        help="real seconds each prompt, recording or timed step takes (default 0.05)",
    )
    emulator.add_argument(
        "--keep-alive-window",
        metavar="SECONDS",
        type=_non_negative,
        default=2700.0,
        help="end a call that has had no keepAlive for this long with 408/8537, as Graph "
        "does after 45 minutes (default 2700); 0 never ends a call for that",
    )
    emulator.add_argument(
        "--readable-operations",
        choices=("documented", "all"),
        default="documented",
        help="which operations GET .../operations/{id} answers for. documented (the "
        "default): what Graph documents, an addLargeGalleryView operation until its "
        "result has reached the bot; any other answers 404. all: every operation of a "
        "live call, finished ones included",
    )
    return parser


def _non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):  # NaN too
        raise argparse.ArgumentTypeError(f"must be a number of seconds >= 0, got {text}")
    return value


async def _until_stopped(serving: Coroutine[Any, Any, None]) -> None:
    """Run ``serving`` until SIGINT or SIGTERM, then let it close. Handled here rather
    than as ``KeyboardInterrupt`` alone: a process started in the background by a
    non-interactive shell inherits SIGINT ignored, and a container runtime or service
    manager stops a process with SIGTERM."""
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    handled = []
    for stop in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(stop, stopped.set)
        except (NotImplementedError, RuntimeError):  # Windows: Ctrl-C stays KeyboardInterrupt
            continue
        handled.append(stop)
    task = asyncio.ensure_future(serving)
    signalled = asyncio.ensure_future(stopped.wait())
    try:
        await asyncio.wait((task, signalled), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for stop in handled:
            loop.remove_signal_handler(stop)
        for pending in (task, signalled):
            pending.cancel()
        await asyncio.gather(task, signalled, return_exceptions=True)
    if not task.cancelled():
        task.result()  # what stopped it on its own, if anything, is raised


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    try:
        if args.command == "demo":
            from graphcomms._demo import run_demo

            return asyncio.run(run_demo(seed=args.seed, prompt_seconds=args.prompt_seconds))
        from graphcomms.testing import run_emulator

        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(
                _until_stopped(
                    run_emulator(
                        port=args.port,
                        host=args.host,
                        seed=args.seed,
                        access_token=args.access_token,
                        readable_operations=args.readable_operations,
                        bot_webhook_url=args.bot_webhook_url,
                        prompt_seconds=args.prompt_seconds,
                        keep_alive_window=args.keep_alive_window or None,
                    )
                )
            )
        return 0
    except ImportError as exc:
        message = str(exc)
        if "graphcomms[testing]" not in message:  # the emulator's own error names it
            message += (
                "\nthe demo and the emulator need the testing extra: "
                'pip install "graphcomms[testing]"'
            )
        print(message, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
