"""Helper processes (the loopback servers and the load generator), spoken to in JSON
lines over stdin/stdout.

A helper reads its configuration as the first line, answers each later line, and ends
when its stdin closes -- so it also ends when this process dies -- or when its own
deadline passes, whichever comes first. Every read here has a timeout: a helper that
hangs fails the comparison instead of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["Child", "Inbox", "reply"]

_ROOT = Path(__file__).resolve().parent.parent


class Child:
    """``python -m module`` with a JSON-lines conversation; a context manager that
    always reaps the process and closes its pipes."""

    def __init__(self, module: str, config: Mapping[str, Any]) -> None:
        env = dict(os.environ)
        # The helpers import this package: make it importable wherever we were started.
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
        self.module = module
        self._proc = subprocess.Popen(
            [sys.executable, "-m", module],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=_ROOT,
            env=env,
        )
        self._buffer = b""
        try:
            self.send(config)
        except BaseException:
            self.close()  # a helper that died at once must still be reaped
            raise

    def __enter__(self) -> Child:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def send(self, message: Mapping[str, Any]) -> None:
        stdin = self._proc.stdin
        assert stdin is not None
        stdin.write(json.dumps(message).encode() + b"\n")
        stdin.flush()

    def receive(self, timeout: float) -> dict[str, Any]:
        """The next line, decoded; raises ``RuntimeError`` if none comes in ``timeout``."""
        stdout = self._proc.stdout
        assert stdout is not None
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RuntimeError(f"{self.module} did not answer within {timeout} s")
            ready, _, _ = select.select([stdout], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(stdout.fileno(), 65536)
            if not chunk:
                raise RuntimeError(f"{self.module} exited (code {self._proc.poll()})")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        if "error" in message:
            raise RuntimeError(f"{self.module}: {message['error']}")
        return message

    def request(self, message: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        self.send(message)
        return self.receive(timeout)

    def close(self) -> None:
        """End the helper: EOF first, a kill if it does not go within 10 s."""
        proc = self._proc
        if proc.stdin is not None and not proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError):  # it is gone already
                proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


# -- the helper's side -----------------------------------------------------------------


class Inbox:
    """The helper's stdin, one JSON message per line, read without blocking its loop."""

    def __init__(self, reader: asyncio.StreamReader, transport: asyncio.BaseTransport) -> None:
        self._reader = reader
        self._transport = transport

    @classmethod
    async def open(cls) -> Inbox:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**20)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), sys.stdin.buffer
        )
        return cls(reader, transport)

    async def get(self, deadline: float) -> dict[str, Any] | None:
        """The next message; ``None`` at EOF or once ``deadline`` (monotonic) passed."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            print("benchmark helper: deadline passed, stopping", file=sys.stderr)
            return None
        try:
            line = await asyncio.wait_for(self._reader.readline(), remaining)
        except asyncio.TimeoutError:
            print("benchmark helper: deadline passed, stopping", file=sys.stderr)
            return None
        if not line:
            return None
        message: dict[str, Any] = json.loads(line)
        return message

    def close(self) -> None:
        self._transport.close()


def reply(message: Mapping[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()
