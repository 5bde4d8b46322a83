"""The fleet tests' load balancer: a refused backend is skipped, one that takes a
request and drops it gives 502 (never an unhandled error, never a second delivery)."""

from __future__ import annotations

import asyncio
import logging
import socket

import aiohttp
import pytest
from aiohttp import web

from graphcomms.testing import RoundRobinProxy


async def _dropping_backend() -> tuple[asyncio.Server, str, list[bytes]]:
    """Reads a request, then closes the connection without an answer (a killed bot)."""
    seen: list[bytes] = []

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(65536))
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", seen


def _refusing_backend() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed: connections are refused


async def test_a_backend_that_drops_the_request_gives_502_and_no_second_delivery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    server, dropping, seen = await _dropping_backend()
    answered: list[str] = []

    async def ok(request: web.Request) -> web.Response:
        answered.append(request.path)
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/callback", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    healthy = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        async with RoundRobinProxy([dropping, healthy]) as proxy, aiohttp.ClientSession() as http:
            with caplog.at_level(logging.ERROR):
                async with http.post(f"{proxy.url}/callback", data=b"{}") as first:
                    assert first.status == 502
                async with http.post(f"{proxy.url}/callback", data=b"{}") as second:
                    assert second.status == 202
            assert proxy.broken == 1
            assert len(seen) == 1  # the dropped request went nowhere else
            assert answered == ["/callback"]
            assert "Traceback" not in caplog.text
            assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    finally:
        server.close()
        await server.wait_closed()
        await runner.cleanup()


async def test_a_refused_backend_is_skipped_for_the_next() -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/callback", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        healthy = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with RoundRobinProxy([_refusing_backend(), healthy]) as proxy:
            async with (
                aiohttp.ClientSession() as http,
                http.post(f"{proxy.url}/callback", data=b"{}") as answer,
            ):
                assert answer.status == 202
            assert proxy.refused == 1
            assert proxy.broken == 0
    finally:
        await runner.cleanup()
