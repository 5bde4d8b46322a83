"""Helper processes (the loopback servers, the load generator, the counted children of
``--instructions``), spoken to in JSON lines over stdin/stdout.

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

__all__ = ["SYS_PATH_SETUP", "Child", "Inbox", "child_env", "python_command", "reply"]

_ROOT = Path(__file__).resolve().parent.parent

# A helper imports exactly what this process imported: this process's sys.path, in its
# order, replaces the child's own (whose first entry would be its working directory).
# So a run against another checkout of the library (PYTHONPATH=/that/checkout, started
# outside this one) measures that library in every process, not this one's.
SYS_PATH_VAR = "GRAPHCOMMS_BENCH_SYS_PATH"
#: The line a child runs first to take our sys.path (it imports nothing new).
SYS_PATH_SETUP = f"import os, sys; sys.path[:] = os.environ.pop({SYS_PATH_VAR!r}).split(os.pathsep)"
_BOOT = (
    f"{SYS_PATH_SETUP}; import runpy; sys.argv = sys.argv[1:]; "
    "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)"
)


def python_command(module: str, *args: str) -> list[str]:
    """``python -m module args...``, with this process's import path (see
    :func:`child_env`)."""
    return [sys.executable, "-c", _BOOT, module, *args]


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for :func:`python_command`: ours, plus our ``sys.path``."""
    env = dict(os.environ)
    env[SYS_PATH_VAR] = os.pathsep.join(p for p in sys.path if p)
    if extra:
        env.update(extra)
    return env


class Child:
    """``python -m module`` with a JSON-lines conversation; a context manager that
    always reaps the process and closes its pipes."""

    def __init__(self, module: str, config: Mapping[str, Any]) -> None:
        self.module = module
        self._proc = subprocess.Popen(
            python_command(module),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=_ROOT,
            env=child_env(),
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
