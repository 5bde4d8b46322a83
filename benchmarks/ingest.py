"""Comparisons 1 and 5: notification ingest in process, and its cost at scale.

Each round builds its pending work and its bodies untimed, then times only the loop
that ingests them. Every body is the §5.4 completed-playPrompt envelope and resolves
one pending future: the floor's, the SDK's or a tracker's (which has the future an
``await tracker`` would have made, see :func:`benchmarks._tracking.attach_waiter`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import random
import uuid
from collections.abc import Callable
from typing import Any

from benchmarks import _peers
from benchmarks._harness import Row, Series, Sizes, Target, compare, timed
from benchmarks._payloads import completed_play_prompt, new_ids
from benchmarks._tracking import add_pending, attach_waiter, offline_client
from graphcomms import CommsClient
from graphcomms._tracker import OperationTracker

__all__ = ["run_ingest", "run_scale"]

FLOOR_TARGET = Target(">=", 0.75)
SDK_TARGET = Target(">=", 1000)
SCALE_TARGET = Target("<=", 1.3)

_CALL = uuid.UUID("421f4c00-4436-4c3a-9d9a-c4924b1e5e5f")

Bodies = list[bytes]


def _resource_url(operation_id: uuid.UUID) -> str:
    return f"/communications/calls/{_CALL.hex.upper()}/operations/{operation_id.hex.upper()}"


def _throughput(n: int, seconds: float) -> float:
    return n / seconds


# -- the variants ----------------------------------------------------------------------


def _graphcomms_round(client: CommsClient, n: int) -> Callable[[], float]:
    """``client.feed(bytes)``, each body resolving one pending tracker."""

    def round_() -> float:
        loop = asyncio.get_running_loop()
        trackers: list[OperationTracker[Any]] = []
        bodies: Bodies = []
        for _ in range(n):
            operation_id, context = new_ids()
            tracker = add_pending(client, _CALL, operation_id, context)
            attach_waiter(tracker, loop)
            trackers.append(tracker)
            bodies.append(completed_play_prompt(_CALL, operation_id, context))
        feed = client.feed

        def ingest() -> None:
            for body in bodies:
                feed(body)

        seconds = timed(ingest)
        if not all(tracker.done() for tracker in trackers):
            raise RuntimeError("a notification did not resolve its tracker")
        return _throughput(n, seconds)

    return round_


def _floor_round(n: int) -> Callable[[], float]:
    """The least any library can do: ``json.loads``, pop the future, ``set_result``."""

    def round_() -> float:
        loop = asyncio.get_running_loop()
        pending: dict[str, asyncio.Future[Any]] = {}
        bodies: Bodies = []
        for _ in range(n):
            operation_id, context = new_ids()
            pending[_resource_url(operation_id)] = loop.create_future()
            bodies.append(completed_play_prompt(_CALL, operation_id, context))
        loads = json.loads

        def ingest() -> None:
            for body in bodies:
                item = loads(body)["value"][0]
                pending.pop(item["resourceUrl"]).set_result(item["resourceData"])

        seconds = timed(ingest)
        if pending:
            raise RuntimeError("the floor left futures pending")
        return _throughput(n, seconds)

    return round_


def _sdk_round(n: int) -> Callable[[], float]:
    """msgraph-beta-sdk: its JSON parse node into its models, then pop and resolve."""
    from benchmarks._sdk import notification_parser

    parse = notification_parser()

    def round_() -> float:
        loop = asyncio.get_running_loop()
        pending: dict[str, asyncio.Future[Any]] = {}
        bodies: Bodies = []
        for _ in range(n):
            operation_id, context = new_ids()
            pending[_resource_url(operation_id)] = loop.create_future()
            bodies.append(completed_play_prompt(_CALL, operation_id, context))

        def ingest() -> None:
            for body in bodies:
                for note in parse(body):
                    pending.pop(note.resource_url or "").set_result(note.resource_data)

        seconds = timed(ingest)
        if pending:
            raise RuntimeError("the SDK variant left futures pending")
        return _throughput(n, seconds)

    return round_


def _as_async(fn: Callable[[], float]) -> Callable[[], Any]:
    async def round_() -> float:
        return fn()

    return round_


# -- comparison 1 ----------------------------------------------------------------------


def run_ingest(sizes: Sizes) -> list[Row]:
    """graphcomms ``feed`` against the floor, then against the SDK (fewer per round:
    it is three orders slower, and per-notification cost does not depend on n)."""
    floor_row = Row(
        key="ingest.floor",
        title="1. ingest: feed(bytes) vs json.loads+pop+set_result",
        target=FLOOR_TARGET,
        ratio_meaning="graphcomms throughput / floor throughput",
    )
    sdk_row = Row(
        key="ingest.sdk",
        title="1. ingest: feed(bytes) vs msgraph-beta-sdk parse+resolve",
        target=SDK_TARGET,
        ratio_meaning="graphcomms throughput / SDK throughput",
    )
    rows = [floor_row, sdk_row]

    async def main() -> None:
        client = offline_client()
        try:
            await compare(
                floor_row,
                (
                    Series("graphcomms feed", "notif/s"),
                    _as_async(_graphcomms_round(client, sizes.ingest_n)),
                ),
                (Series("floor", "notif/s"), _as_async(_floor_round(sizes.ingest_n))),
                repeats=sizes.repeats,
            )
            floor_row.extra["n_per_round"] = sizes.ingest_n
            # graphcomms decodes with orjson when the "fast" extra installed it; the floor
            # is json.loads as the issue defines it, so say which one was measured.
            floor_row.extra["orjson_installed"] = importlib.util.find_spec("orjson") is not None

            sdk_row.skipped = _peers.skip_reason(sizes.peers)
            if sdk_row.skipped is not None:
                return
            await compare(
                sdk_row,
                (
                    Series("graphcomms feed", "notif/s"),
                    _as_async(_graphcomms_round(client, sizes.ingest_sdk_n)),
                ),
                (Series(_peers.PACKAGE, "notif/s"), _as_async(_sdk_round(sizes.ingest_sdk_n))),
                repeats=sizes.repeats,
            )
            sdk_row.extra["n_per_round"] = sizes.ingest_sdk_n
        finally:
            await client.aclose()

    asyncio.run(main())
    return rows


# -- comparison 5 ----------------------------------------------------------------------


class _PendingPool:
    """A client kept at exactly ``size`` pending trackers at the start of each round."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.client = offline_client()
        self._pending: list[tuple[OperationTracker[Any], uuid.UUID, str]] = []
        self._random = random.Random(size)

    def top_up(self, loop: asyncio.AbstractEventLoop) -> None:
        while len(self._pending) < self.size:
            operation_id, context = new_ids()
            tracker = add_pending(self.client, _CALL, operation_id, context)
            attach_waiter(tracker, loop)
            self._pending.append((tracker, operation_id, context))

    def take(self, count: int) -> list[tuple[OperationTracker[Any], uuid.UUID, str]]:
        """``count`` trackers picked at random: the notification for a tracker made long
        ago touches memory that is no longer in cache, as in a busy bot."""
        pending = self._pending
        taken = []
        for _ in range(count):
            index = self._random.randrange(len(pending))
            pending[index], pending[-1] = pending[-1], pending[index]
            taken.append(pending.pop())
        return taken

    def round(self, batch: int) -> Callable[[], Any]:
        async def round_() -> float:
            self.top_up(asyncio.get_running_loop())
            taken = self.take(batch)
            bodies = [completed_play_prompt(_CALL, op, ctx) for _, op, ctx in taken]
            feed = self.client.feed

            def ingest() -> None:
                for body in bodies:
                    feed(body)

            seconds = timed(ingest)
            if not all(tracker.done() for tracker, _, _ in taken):
                raise RuntimeError("a notification did not resolve its tracker")
            return seconds / batch * 1e6

        return round_


def run_scale(sizes: Sizes) -> list[Row]:
    """Per-notification cost with ``scale_big`` pending against ``scale_small``."""
    row = Row(
        key="scale",
        title=f"5. scale: cost per notification, {sizes.scale_big:,} vs {sizes.scale_small:,}",
        target=SCALE_TARGET,
        ratio_meaning="cost with many pending / cost with few pending",
    )

    async def main() -> None:
        big, small = _PendingPool(sizes.scale_big), _PendingPool(sizes.scale_small)
        batch = min(sizes.scale_batch, sizes.scale_small)
        try:
            await compare(
                row,
                (Series(f"{sizes.scale_big:,} pending", "µs/notif"), big.round(batch)),
                (Series(f"{sizes.scale_small:,} pending", "µs/notif"), small.round(batch)),
                repeats=sizes.repeats,
            )
            row.extra["batch"] = batch
            row.extra["pending_at_end"] = big.client.stats.pending
        finally:
            await big.client.aclose()
            await small.client.aclose()

    asyncio.run(main())
    return [row]
