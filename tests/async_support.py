"""Helpers the async tests share (imported as ``async_support``: pytest puts this
folder on the path)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TypeVar

from graphcomms import CommsClient

T = TypeVar("T")


async def collect(items: AsyncIterator[T]) -> list[T]:
    """Everything ``items`` yields until it ends; fails instead of hanging."""

    async def drain() -> list[T]:
        return [item async for item in items]

    return await asyncio.wait_for(drain(), 1)


async def settle() -> None:
    """Let what is ready on the loop (callbacks, woken waiters) run."""
    for _ in range(5):
        await asyncio.sleep(0)


def holds_nothing(client: CommsClient) -> bool:
    """The client tracks nothing any more: no pending operation and no early
    notification (finished-work memory aside: it is bounded and expires). The registry's
    own tests hold these counters to what it holds."""
    return client.stats.pending == 0 and client.stats.early_pending == 0
