"""Comparison 4: bytes held per pending tracker, with many pending and nobody waiting.

``tracemalloc`` counts what is still allocated after the trackers are made, against
what was allocated before: the tracker, its snapshot and ids, and its share of the
registry's indexes. Each tracker is made as a bot makes one, ``await
call.play_prompt(...)`` against the in-process fake Graph (which keeps nothing). The
call handles exist before counting starts: a bot has its calls whether or not an
operation is pending on them. Each tracker is on a call of its own, the costliest
spread for the per-call index.
"""

from __future__ import annotations

import asyncio
import gc
import tracemalloc

from benchmarks._fakegraph import FakeGraphSession
from benchmarks._harness import Row, Series, Sizes, Target
from benchmarks._payloads import PROMPT_URI
from benchmarks._tracking import CallPool, bot_client
from graphcomms import MediaPrompt

__all__ = ["run_memory"]

MEMORY_TARGET = Target("<=", 1024, "B")


async def _bytes_per_tracker(pending: int) -> float:
    client, _ = bot_client(FakeGraphSession())
    try:
        calls, _ = CallPool().first(pending)
        for call_id in calls:
            client.call(call_id)
        gc.collect()
        # The collector would walk every traced object again and again as they pile up;
        # off while building, one collection before reading frees what was garbage.
        gc.disable()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for call_id in calls:
                # The tracker is dropped here: the client holds what a pending one needs.
                await client.call(call_id).play_prompt([MediaPrompt.from_uri(PROMPT_URI)])
            gc.collect()
            held = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
            gc.enable()
        if client.stats.pending != pending:
            raise RuntimeError(f"expected {pending} pending, found {client.stats.pending}")
        return held / pending
    finally:
        await client.aclose()


def run_memory(sizes: Sizes) -> list[Row]:
    row = Row(
        key="memory",
        title=f"4. memory per pending tracker, {sizes.memory_pending:,} pending",
        target=MEMORY_TARGET,
    )
    series = Series("graphcomms", "B")

    async def main() -> None:
        # Five, whatever --repeats says: the count hardly moves between rounds, and a
        # round with 100,000 traced trackers takes a while.
        for _ in range(5):
            series.samples.append(await _bytes_per_tracker(sizes.memory_pending))

    asyncio.run(main())
    row.subject = series
    return [row]
