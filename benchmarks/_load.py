"""The load generator for comparison 3, in a process of its own (``python -m
benchmarks._load``).

It plays Graph's calling platform: ``concurrency`` keep-alive connections, each with
one notification POST in flight at a time, the same bearer token on every request.
It speaks HTTP/1.1 straight from ``asyncio.Protocol`` with every request prebuilt, so
that it costs a fraction of what the server spends per request and the server is what
gets measured, not this process.

Config: ``{"port", "token", "call_id", "concurrency"}``; then each
``{"path", "start", "count"}`` answers ``{"seconds", "busy", "statuses"}`` for ``count``
notifications about the operations ``start, start+1, ...`` of
:func:`benchmarks._payloads.sequenced_ids`.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

from benchmarks._payloads import completed_play_prompt, sequenced_ids
from benchmarks._procs import Inbox, reply

__all__: list[str] = []

_HEADER_END = b"\r\n\r\n"
_CONTENT_LENGTH = b"\r\ncontent-length:"


class _Connection(asyncio.Protocol):
    """Sends the next request when the previous answer is complete."""

    def __init__(self, requests: Iterator[bytes], statuses: Counter[int]) -> None:
        self._requests = requests
        self._statuses = statuses
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def start(self) -> None:
        self._send_next()

    def _send_next(self) -> None:
        request = next(self._requests, None)
        if request is None:
            if not self.done.done():
                self.done.set_result(None)
            return
        assert self._transport is not None
        self._transport.write(request)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(_HEADER_END)
            if end < 0:
                return
            head = self._buffer[:end].lower()
            status = int(head[9:12])
            at = head.find(_CONTENT_LENGTH)
            if at < 0:
                self._fail("answer without Content-Length")
                return
            line_end = head.find(b"\r\n", at + 2)
            length = int(head[at + len(_CONTENT_LENGTH) : line_end if line_end > 0 else None])
            total = end + len(_HEADER_END) + length
            if len(self._buffer) < total:
                return
            self._buffer = self._buffer[total:]
            self._statuses[status] += 1
            self._send_next()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self._fail(f"connection lost: {exc!r}")

    def _fail(self, reason: str) -> None:
        if not self.done.done():
            self.done.set_exception(RuntimeError(reason))
        if self._transport is not None:
            self._transport.close()


def _requests(config: dict[str, Any], path: str, start: int, count: int) -> list[bytes]:
    call_id = uuid.UUID(hex=config["call_id"])
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{config['port']}\r\n"
        f"Authorization: Bearer {config['token']}\r\n"
        "Content-Type: application/json\r\n"
        "User-Agent: Microsoft-Skype/3.0,(Calling/1.0)\r\n"
    )
    built = []
    for index in range(start, start + count):
        operation_id, context = sequenced_ids(index)
        body = completed_play_prompt(call_id.hex, operation_id.hex, context)
        built.append(f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return built


async def _run(config: dict[str, Any], path: str, start: int, count: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    requests = iter(_requests(config, path, start, count))
    statuses: Counter[int] = Counter()
    connections: list[_Connection] = []
    for _ in range(min(config["concurrency"], count)):
        _, connection = await loop.create_connection(
            lambda: _Connection(requests, statuses), "127.0.0.1", config["port"]
        )
        connections.append(connection)
    try:
        started, cpu_started = time.perf_counter(), time.process_time()
        for connection in connections:
            connection.start()
        await asyncio.wait_for(asyncio.gather(*(c.done for c in connections)), 300)
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    finally:
        for connection in connections:
            if connection._transport is not None:
                connection._transport.close()
    return {
        "seconds": seconds,
        # How busy this process was: near 1.0 would mean the load, not the server, limits.
        "busy": cpu_seconds / seconds,
        "statuses": {str(k): v for k, v in statuses.items()},
    }


async def main() -> None:
    inbox = await Inbox.open()
    try:
        config = await inbox.get(time.monotonic() + 60)
        if config is None:
            return
        deadline = time.monotonic() + float(config.get("deadline_s", 900))
        reply({"ready": True})
        while (message := await inbox.get(deadline)) is not None:
            try:
                reply(await _run(config, message["path"], message["start"], message["count"]))
            except Exception as exc:
                reply({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        inbox.close()


if __name__ == "__main__":
    asyncio.run(main())
