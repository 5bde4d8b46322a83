"""Comparison 2: an action's round trip, ``play_prompt`` against a loopback Graph.

The server (``benchmarks._server``, kind ``action``) runs in its own process and
answers every variant with the same handler. Each round opens a fresh client, warms its
connection pool with ``concurrency`` untimed requests, times ``n`` requests spread over
``concurrency`` tasks, and closes the client; the graphcomms trackers stay pending (the
answer says ``running``) until that close fails them, as they would in a bot whose
notifications have not come yet.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from benchmarks import _peers
from benchmarks._harness import Row, Series, Sizes, Target, compare
from benchmarks._payloads import PROMPT_URI, play_prompt_request
from benchmarks._procs import Child
from graphcomms import CommsClient, MediaPrompt

__all__ = ["run_roundtrip"]

RAW_TARGET = Target(">=", 0.8)
SDK_TARGET = Target(">=", 50)

TOKEN = "benchmark-token"
CALL_ID = "421f4c00-4436-4c3a-9d9a-c4924b1e5e5f"

One = Callable[[], Awaitable[object]]
Opened = tuple[One, Callable[[], Awaitable[None]]]


async def _drive(n: int, concurrency: int, one: One) -> float:
    """Requests per second for ``n`` requests, ``concurrency`` in flight at a time."""
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await one()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return n / (time.perf_counter() - started)


def _round(open_client: Callable[[], Opened], n: int, concurrency: int) -> Callable[[], Any]:
    async def round_() -> float:
        one, aclose = open_client()
        try:
            await _drive(concurrency, concurrency, one)  # connections up, untimed
            return await _drive(n, concurrency, one)
        finally:
            await aclose()

    return round_


def _graphcomms(base: str) -> Opened:
    client = CommsClient(TOKEN, base_url=f"{base}/v1.0/")
    call = client.call(CALL_ID)

    async def one() -> object:
        return await call.play_prompt([MediaPrompt.from_uri(PROMPT_URI)])

    return one, client.aclose


def _raw_aiohttp(base: str) -> Opened:
    session = aiohttp.ClientSession()
    url = f"{base}/v1.0/communications/calls/{CALL_ID}/playPrompt"
    headers = {"Authorization": f"Bearer {TOKEN}"}

    async def one() -> object:
        body = play_prompt_request(uuid.uuid4().hex)
        async with session.post(url, json=body, headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"answered {response.status}")
            return await response.json()

    return one, session.close


def _sdk(base: str) -> Opened:
    from benchmarks._sdk import play_prompt_client

    post, aclose = play_prompt_client(f"{base}/beta", TOKEN, CALL_ID, PROMPT_URI)

    async def one() -> object:
        return await post(uuid.uuid4().hex)

    return one, aclose


def run_roundtrip(sizes: Sizes) -> list[Row]:
    c = sizes.concurrency
    raw_rows = {
        level: Row(
            key=f"roundtrip.c{level}.aiohttp",
            title=f"2. play_prompt, concurrency {level}, vs raw aiohttp post+json",
            target=RAW_TARGET,
            ratio_meaning="graphcomms throughput / raw aiohttp throughput",
        )
        for level in (1, c)
    }
    sdk_rows = {
        level: Row(
            key=f"roundtrip.c{level}.sdk",
            title=f"2. play_prompt, concurrency {level}, vs msgraph-beta-sdk",
            target=SDK_TARGET,
            ratio_meaning="graphcomms throughput / SDK throughput",
        )
        for level in (1, c)
    }
    sdk_skip = _peers.skip_reason(sizes.peers)
    with Child("benchmarks._server", {"kind": "action", "deadline_s": 1800}) as server:
        base = f"http://127.0.0.1:{server.receive(timeout=60)['port']}"

        async def main() -> None:
            for level, n in ((1, sizes.roundtrip_n), (c, sizes.roundtrip_n_concurrent)):
                row = raw_rows[level]
                await compare(
                    row,
                    (Series("graphcomms", "req/s"), _round(lambda: _graphcomms(base), n, level)),
                    (Series("raw aiohttp", "req/s"), _round(lambda: _raw_aiohttp(base), n, level)),
                    repeats=sizes.repeats,
                )
                row.extra["n_per_round"] = n
            if sdk_skip is not None:
                for row in sdk_rows.values():
                    row.skipped = sdk_skip
                return
            for level, n in ((1, sizes.roundtrip_sdk_n), (c, sizes.roundtrip_sdk_n_concurrent)):
                row = sdk_rows[level]
                await compare(
                    row,
                    (Series("graphcomms", "req/s"), _round(lambda: _graphcomms(base), n, level)),
                    (Series(_peers.PACKAGE, "req/s"), _round(lambda: _sdk(base), n, level)),
                    repeats=sizes.repeats,
                )
                row.extra["n_per_round"] = n

        asyncio.run(main())
    return [raw_rows[1], raw_rows[c], sdk_rows[1], sdk_rows[c]]
