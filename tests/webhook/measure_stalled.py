"""What stalled connections cost the webhook: the RSS of a real receiver process while N
clients each start a notification POST and then stop sending.

Not a test (nothing is asserted, and it takes a while): the numbers it prints are the
ones the README's Security section states. Run it from the repository root::

    python tests/webhook/measure_stalled.py            # 200 clients, no token, each
                                                       # sends 1 MiB - 1 of a 1 MiB body
    python tests/webhook/measure_stalled.py --sent 0   # ... only the headers
    python tests/webhook/measure_stalled.py --token    # ... with a valid token
    python tests/webhook/measure_stalled.py --stall-in headers --keepalive-timeout 15

The receiver runs in a child process with the defaults a user gets from ``make_app``
under ``web.AppRunner`` (``--keepalive-timeout`` and ``--max-headers`` change those
two); its memory is read
from ``/proc`` (Linux only): ``VmRSS`` before the clients connect, the peak (``VmHWM``)
while they stall, and ``VmRSS`` at the end; every half second, the RSS and how many
client connections the receiver still holds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MIB = 1024 * 1024


def _memory_kib(pid: int) -> dict[str, int]:
    fields: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def _open_connections(pid: int, port: int) -> int:
    """Established TCP connections of ``pid`` on ``port`` (its listening socket excluded)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    count = 0
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                parts = line.split()
                local_port = int(parts[1].rsplit(":", 1)[1], 16)
                if parts[9] in inodes and local_port == port and parts[3] == "01":
                    count += 1
    return count


# -- the receiver's side -------------------------------------------------------------------


async def serve(keepalive_timeout: float | None, max_headers: int | None) -> None:
    import attrs
    from aiohttp import web
    from webhook_support import KeyServer, RecordingSink, SigningKey, make_token, private_key

    from graphcomms.webhook import (
        NotificationReceiver,
        TokenValidationSettings,
        TokenValidator,
        make_app,
    )

    key = SigningKey("key1", private_key())
    keys = KeyServer([key])
    await keys.server.start_server()
    url = str(keys.server.make_url("/.well-known/OpenIdConfiguration"))
    validator = TokenValidator(
        TokenValidationSettings(app_id="11111111-2222-3333-4444-555555555555",
                                openid_configuration_url=url)
    )  # fmt: skip
    receiver = NotificationReceiver(RecordingSink(), validator)
    options: dict[str, Any] = {"access_log": None}
    if keepalive_timeout is not None:
        options["keepalive_timeout"] = keepalive_timeout
    if max_headers is not None:
        options["max_headers"] = max_headers
    runner = web.AppRunner(make_app(receiver), **options)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    print(json.dumps({"port": port, "token": make_token(key)}), flush=True)
    # Until the parent closes stdin.
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    print(json.dumps({"stats": attrs.asdict(receiver.stats)}), flush=True)
    await runner.cleanup()
    await keys.server.close()


# -- the clients' side ---------------------------------------------------------------------


def _request_head(size: int, token: str | None) -> bytes:
    lines = [
        "POST /callback HTTP/1.1",
        "Host: 127.0.0.1",
        "Content-Type: application/json",
        f"Content-Length: {size}",
    ]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _unfinished_head(max_headers: int) -> bytes:
    """About as many header bytes as aiohttp takes (``max_headers`` fields of up to
    8,190 bytes), without the blank line that would end them."""
    lines = ["POST /callback HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"X-Pad-{n:03}: {'x' * 8000}" for n in range(max_headers - 8)]
    return ("\r\n".join(lines) + "\r\n").encode()


async def stall(request: bytes, answers: list[bytes]) -> None:
    """Send ``request`` (a start of one), then nothing; note any answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT[0])
    try:
        with contextlib.suppress(OSError):  # the receiver may close before all is sent
            writer.write(request)
            await writer.drain()
        with contextlib.suppress(OSError):
            answers.append(await reader.readline())
        # Hold the socket open (the stall) until cancelled.
        with contextlib.suppress(OSError):
            await reader.read()
        await asyncio.Event().wait()
    finally:
        writer.close()


PORT = [0]


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    command = [sys.executable, __file__, "--serve"]
    if args.keepalive_timeout is not None:
        command += ["--keepalive-timeout", str(args.keepalive_timeout)]
    if args.max_headers is not None:
        command += ["--max-headers", str(args.max_headers)]
    child = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])])},
    )  # fmt: skip
    assert child.stdin is not None
    assert child.stdout is not None
    ready = json.loads(await child.stdout.readline())
    PORT[0] = ready["port"]
    await asyncio.sleep(1)  # let the child settle (key load, first allocations)
    before = _memory_kib(child.pid)
    if args.stall_in == "headers":
        request = _unfinished_head(args.max_headers or 128)
    else:
        sent = args.size - 1 if args.sent is None else args.sent
        request = _request_head(args.size, ready["token"] if args.token else None) + b" " * sent
    answers: list[bytes] = []
    started = time.monotonic()
    clients = [asyncio.ensure_future(stall(request, answers)) for _ in range(args.connections)]
    samples = []
    while time.monotonic() - started < args.hold:
        await asyncio.sleep(0.5)
        rss = _memory_kib(child.pid)["VmRSS"]
        samples.append((time.monotonic() - started, rss, _open_connections(child.pid, PORT[0])))
    after = _memory_kib(child.pid)
    for client in clients:
        client.cancel()
    await asyncio.gather(*clients, return_exceptions=True)
    child.stdin.close()
    stats = json.loads(await child.stdout.readline())["stats"]
    await child.wait()
    statuses: dict[str, int] = {}
    for line in answers:
        status = line.split(b" ")[1].decode() if line.startswith(b"HTTP/") else "closed"
        statuses[status] = statuses.get(status, 0) + 1
    return {
        "connections": args.connections,
        "stall_in": args.stall_in,
        "request_bytes_each": len(request),
        "token": args.token,
        "keepalive_timeout": args.keepalive_timeout,
        "max_headers": args.max_headers,
        "rss_before_mib": round(before["VmRSS"] / 1024, 1),
        "rss_peak_mib": round(after["VmHWM"] / 1024, 1),
        "rss_end_mib": round(after["VmRSS"] / 1024, 1),
        "peak_over_before_mib": round((after["VmHWM"] - before["VmRSS"]) / 1024, 1),
        "answers": statuses,
        "receiver_stats": {name: count for name, count in stats.items() if count},
        "samples": samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--stall-in", choices=["body", "headers"], default="body")
    parser.add_argument("--size", type=int, default=MIB, help="declared body size")
    parser.add_argument("--sent", type=int, help="body bytes sent before the stall (size - 1)")
    parser.add_argument("--token", action="store_true", help="send a valid token")
    parser.add_argument("--keepalive-timeout", type=float, help="the server's (aiohttp's default)")
    parser.add_argument("--max-headers", type=int, help="the server's (aiohttp's default: 128)")
    parser.add_argument("--hold", type=float, default=15.0, help="seconds to keep stalling")
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.keepalive_timeout, args.max_headers))
        return
    result = asyncio.run(measure(args))
    samples = result.pop("samples")
    print(json.dumps(result, indent=2))
    print("  at s   RSS MiB  connections held")
    for at, rss_kib, held in samples:
        print(f"{at:6.1f} {rss_kib / 1024:9.1f} {held:17d}")


if __name__ == "__main__":
    main()
