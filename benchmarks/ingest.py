"""Comparisons 1 and 5: notification ingest in process, and its cost at scale.

What is measured is what a bot pays when Graph's notification comes:
``client.feed(bytes)``, the tracker resolved, and the task in ``await tracker`` woken
and finished. Everything before is untimed ``prepare``: pending trackers made the
way a bot makes them (``await call.play_prompt(...)`` against the in-process fake
Graph, one operation pending per call), a task awaiting each, and the §5.4
completed-playPrompt bodies. The client is in steady state before the first round:
its finished-work memory is full (:func:`benchmarks._tracking.fill_finished`), so every
measured resolution evicts an old entry, as in a bot that has run for a while.

The floors do the least any code could do for the same job, with the same waiting
tasks: decode (``orjson.loads``, the decoder graphcomms itself uses when the ``fast``
extra is installed, or ``json.loads``), pop the pending future by ``resourceUrl``,
``set_result``, and wake the task awaiting it. The SDK variant reads each body into
msgraph-beta-sdk's models, then pops and resolves the same way.

Two more orjson variants are lower bounds, counted in instructions only: the floor that
also reads each ``resourceData`` into the typed ``PlayPromptOperation`` graphcomms hands
a bot (with graphcomms' own reader), and that one also parsing the ``resourceUrl`` with
graphcomms' own path parser. No typed ingest written in Python can cost less than the
first; the rows say how much of the 2x budget those two parts alone take.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

from benchmarks import _peers
from benchmarks._fakegraph import FakeGraphSession
from benchmarks._harness import (
    Row,
    Series,
    Sizes,
    Target,
    Workload,
    interleave,
    paired,
    workload_round,
)
from benchmarks._instructions import CountSpec, Variant, counted_rows
from benchmarks._payloads import completed_play_prompt, new_ids, notification_url
from benchmarks._tracking import (
    CallPool,
    await_each,
    bot_client,
    completions,
    fill_finished,
    finished_remembered,
    play_prompts,
)
from graphcomms import CommsClient
from graphcomms._converter import structure_operation
from graphcomms._routing import parse_resource_path
from graphcomms.models import PlayPromptOperation

__all__ = [
    "FloorIngest",
    "GraphcommsIngest",
    "ScalePool",
    "run_ingest",
    "run_scale",
]

# Issue 16: at most twice the orjson floor in instructions, and 0.4x of it in time.
ORJSON_TARGET = Target(">=", 0.4)
ORJSON_INSTRUCTIONS_TARGET = Target(">=", 0.5)
JSON_TARGET = Target(">=", 0.75)
SDK_TARGET = Target(">=", 1000)
SCALE_TARGET = Target("<=", 1.3)


def _check_tasks(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        if not task.done():
            raise RuntimeError("a waiting task was not woken by its notification")
        task.result()  # a failed operation or a stray exception fails the round


class GraphcommsIngest:
    """``client.feed(bytes)`` -> tracker resolved -> its awaiting task woken."""

    item = "notif"

    def __init__(self, *, finished_limit: int | None = None) -> None:
        self._finished_limit = finished_limit
        self.facts: dict[str, Any] = {}
        self._calls = CallPool()
        self._bodies: list[bytes] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._client: CommsClient | None = None

    @property
    def client(self) -> CommsClient:
        assert self._client is not None, "open() first"
        return self._client

    async def open(self) -> None:
        self._client, limit = bot_client(FakeGraphSession(), finished_limit=self._finished_limit)
        started = time.perf_counter()
        await fill_finished(self.client, self._calls, limit)
        self.facts.update(
            finished_limit=limit,
            fill_seconds=round(time.perf_counter() - started, 2),
            finished_remembered_at_start=[],
        )

    async def prepare(self, count: int) -> None:
        ids, keys = self._calls.first(count)
        started = time.perf_counter()
        trackers = await play_prompts(self.client, ids)
        self._bodies = completions(keys, trackers)
        self._tasks = await await_each(trackers)
        # What making one pending tracker and its waiting task costs (untimed setup).
        self.facts["setup_us_per_item"] = round((time.perf_counter() - started) / count * 1e6, 1)
        remembered = finished_remembered(self.client)
        self.facts["finished_remembered_at_start"].append(remembered)
        if remembered is not None and remembered < self.facts["finished_limit"]:
            raise RuntimeError(f"finished-work memory not full: {remembered}")

    async def run(self, count: int) -> None:
        feed = self.client.feed
        for body in self._bodies:
            feed(body)
        # The tasks wake in the order their trackers resolved: the last one done, all are.
        await self._tasks[-1]

    def check(self) -> None:
        _check_tasks(self._tasks)
        if self.client.stats.pending != 0:
            raise RuntimeError(f"{self.client.stats.pending} trackers still pending")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class FloorIngest:
    """The least any code does: decode, pop the future, ``set_result``, wake the task.

    ``decoder`` is ``"orjson"``, ``"json"``, or ``"sdk"`` (msgraph-beta-sdk's parse
    into its models instead of a plain decode). ``adds`` (orjson only) is what the
    floor also does, for the lower-bound rows: ``"typed"`` reads each ``resourceData``
    as graphcomms reads a terminal snapshot, ``"typed+path"`` parses its
    ``resourceUrl`` too.
    """

    item = "notif"

    def __init__(self, *, decoder: str, adds: str = "") -> None:
        if decoder not in ("orjson", "json", "sdk"):
            raise ValueError(f"unknown decoder {decoder!r}")
        if adds not in ("", "typed", "typed+path") or (adds and decoder != "orjson"):
            raise ValueError(f"unknown addition {adds!r} to the {decoder} floor")
        self.decoder = decoder
        self.adds = adds
        self.facts: dict[str, Any] = {}
        self._calls = CallPool()
        self._pending: dict[str, asyncio.Future[Any]] = {}
        self._bodies: list[bytes] = []
        self._tasks: list[asyncio.Task[Any]] = []

    async def open(self) -> None:
        if self.decoder == "sdk":
            from benchmarks._sdk import notification_parser

            self._parse = notification_parser()
        elif self.decoder == "orjson":
            import orjson

            self._loads = orjson.loads
        else:
            self._loads = json.loads

    async def prepare(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        _, keys = self._calls.first(count)
        pending: dict[str, asyncio.Future[Any]] = {}
        bodies = []
        for key in keys:
            operation, context = new_ids()
            pending[notification_url(key, operation)] = loop.create_future()
            bodies.append(completed_play_prompt(key, operation, context))
        self._pending, self._bodies = pending, bodies
        self._tasks = await await_each(list(pending.values()))

    async def run(self, count: int) -> None:
        pending = self._pending
        if self.decoder == "sdk":
            parse = self._parse
            for body in self._bodies:
                for note in parse(body):
                    pending.pop(note.resource_url or "").set_result(note.resource_data)
        elif not self.adds:
            loads = self._loads
            for body in self._bodies:
                item = loads(body)["value"][0]
                pending.pop(item["resourceUrl"]).set_result(item["resourceData"])
        elif self.adds == "typed":
            loads, read = self._loads, structure_operation
            for body in self._bodies:
                item = loads(body)["value"][0]
                pending.pop(item["resourceUrl"]).set_result(
                    read(item["resourceData"], PlayPromptOperation)
                )
        else:
            loads, read, parse_path = self._loads, structure_operation, parse_resource_path
            for body in self._bodies:
                item = loads(body)["value"][0]
                url = item["resourceUrl"]
                parse_path(url)
                pending.pop(url).set_result(read(item["resourceData"], PlayPromptOperation))
        await self._tasks[-1]

    def check(self) -> None:
        _check_tasks(self._tasks)
        if self._pending:
            raise RuntimeError("the floor left futures pending")
        if self.adds and not all(
            isinstance(task.result(), PlayPromptOperation) for task in self._tasks
        ):
            raise RuntimeError("a lower-bound variant woke a task without a typed snapshot")

    async def aclose(self) -> None:
        return None


# -- comparison 1 ----------------------------------------------------------------------


def _gc_variant(finished_limit: int | None) -> Variant:
    return Variant(
        "graphcomms", "benchmarks.ingest:GraphcommsIngest", {"finished_limit": finished_limit}
    )


def _floor_variant(decoder: str, adds: str = "") -> Variant:
    if not adds:
        return Variant(f"{decoder} floor", "benchmarks.ingest:FloorIngest", {"decoder": decoder})
    return Variant(
        f"{decoder} floor + {adds}",
        "benchmarks.ingest:FloorIngest",
        {"decoder": decoder, "adds": adds},
    )


async def _opened(*workloads: Workload) -> None:
    for workload in workloads:
        await workload.open()


def run_ingest(sizes: Sizes) -> list[Row]:
    """graphcomms against the orjson and json floors (interleaved in the same rounds),
    then against the SDK (fewer per round: it is three orders slower, and a
    per-notification cost does not depend on n); then, with ``--instructions``, the
    two floors in instructions."""
    meaning = "graphcomms throughput / floor throughput"
    orjson_row = Row(
        key="ingest.orjson",
        title="1. ingest: feed(bytes)->resolved->task woken vs orjson.loads+pop+set_result",
        target=ORJSON_TARGET,
        ratio_meaning=meaning,
    )
    json_row = Row(
        key="ingest.json",
        title="1. ingest: feed(bytes)->resolved->task woken vs json.loads+pop+set_result",
        target=JSON_TARGET,
        ratio_meaning=meaning,
    )
    sdk_row = Row(
        key="ingest.sdk",
        title="1. ingest: feed(bytes)->resolved->task woken vs msgraph-beta-sdk parse+resolve",
        target=SDK_TARGET,
        ratio_meaning="graphcomms throughput / SDK throughput",
    )
    rows: list[Row] = []

    async def main() -> None:
        ours = GraphcommsIngest(finished_limit=sizes.finished_limit)
        orjson_floor, json_floor = FloorIngest(decoder="orjson"), FloorIngest(decoder="json")
        try:
            await _opened(ours, orjson_floor, json_floor)
            n = sizes.ingest_n
            subject = Series("graphcomms", "notif/s")
            by_orjson, by_json = Series("orjson floor", "notif/s"), Series("json floor", "notif/s")
            await interleave(
                [
                    (subject, workload_round(ours, n)),
                    (by_orjson, workload_round(orjson_floor, n)),
                    (by_json, workload_round(json_floor, n)),
                ],
                repeats=sizes.repeats,
            )
            for row, floor in ((orjson_row, by_orjson), (json_row, by_json)):
                row.subject, row.baseline = subject, floor
                row.ratios = paired(subject, floor, lambda s, b: s / b)
                row.extra.update(n_per_round=n, graphcomms=dict(ours.facts))
            rows.extend([orjson_row, json_row])

            rows.append(sdk_row)
            sdk_row.skipped = _peers.skip_reason(sizes.peers)
            if sdk_row.skipped is not None:
                return
            sdk = FloorIngest(decoder="sdk")
            await sdk.open()
            ours_small, theirs = Series("graphcomms", "notif/s"), Series(_peers.PACKAGE, "notif/s")
            m = sizes.ingest_sdk_n
            await interleave(
                [(ours_small, workload_round(ours, m)), (theirs, workload_round(sdk, m))],
                repeats=sizes.repeats,
            )
            sdk_row.subject, sdk_row.baseline = ours_small, theirs
            sdk_row.ratios = paired(ours_small, theirs, lambda s, b: s / b)
            sdk_row.extra["n_per_round"] = m
        finally:
            await ours.aclose()

    if sizes.timing:
        asyncio.run(main())
    if sizes.instructions:
        rows.extend(_ingest_counts(sizes))
    return rows


def _ingest_counts(sizes: Sizes) -> list[Row]:
    ours = _gc_variant(sizes.instr_finished_limit)
    orjson_floor = _floor_variant("orjson")
    common = {"n": sizes.instr_n, "warmup": sizes.instr_warmup}
    meaning = "floor instructions / graphcomms instructions (0.5: twice the floor)"
    bound_meaning = "floor instructions / the lower bound's (0.5: twice the floor)"
    return counted_rows(
        [
            CountSpec(
                key="ingest.orjson.instructions",
                title="1. ingest, instructions: feed->resolved->task woken vs orjson floor",
                target=ORJSON_INSTRUCTIONS_TARGET,
                subject=ours,
                baseline=orjson_floor,
                ratio_meaning=meaning,
                **common,
            ),
            CountSpec(
                key="ingest.lower_bound.typed.instructions",
                title="1. ingest lower bound, instructions: orjson floor + typed read vs floor",
                target=None,
                subject=_floor_variant("orjson", adds="typed"),
                baseline=orjson_floor,
                ratio_meaning=bound_meaning,
                **common,
            ),
            CountSpec(
                key="ingest.lower_bound.typed_path.instructions",
                title="1. ingest lower bound, instructions: floor + typed read + path vs floor",
                target=None,
                subject=_floor_variant("orjson", adds="typed+path"),
                baseline=orjson_floor,
                ratio_meaning=bound_meaning,
                **common,
            ),
            CountSpec(
                key="ingest.json.instructions",
                title="1. ingest, instructions: feed->resolved->task woken vs json floor",
                target=None,
                subject=ours,
                baseline=_floor_variant("json"),
                ratio_meaning=meaning,
                **common,
            ),
        ],
        sizes,
    )


# -- comparison 5 ----------------------------------------------------------------------


class ScalePool:
    """A client holding ``pending`` pending trackers (each on a call of its own) at the
    start of every round; a round resolves ``count`` of them, picked at random (the
    notification for a tracker made long ago touches memory no longer in cache, as in
    a busy bot), with a task awaiting each of those."""

    item = "notif"

    def __init__(self, *, pending: int, finished_limit: int | None = None) -> None:
        self.size = pending
        self._finished_limit = finished_limit
        self.facts: dict[str, Any] = {}
        self._calls = CallPool()
        self._free: list[tuple[str, str]] = []  # (call id, key) with nothing pending
        self._pool: list[tuple[Any, bytes, tuple[str, str]]] = []
        self._random = random.Random(pending)
        self._bodies: list[bytes] = []
        self._tasks: list[asyncio.Task[Any]] = []
        self._client: CommsClient | None = None

    @property
    def client(self) -> CommsClient:
        assert self._client is not None, "open() first"
        return self._client

    async def open(self) -> None:
        self._client, limit = bot_client(FakeGraphSession(), finished_limit=self._finished_limit)
        await fill_finished(self.client, self._calls, limit)
        ids, keys = self._calls.first(max(self.size, 1))
        self._free = list(zip(ids, keys, strict=True))
        self.facts["finished_limit"] = limit

    async def _top_up(self) -> None:
        missing = self.size - len(self._pool)
        if missing <= 0:
            return
        calls = [self._free.pop() for _ in range(missing)]
        trackers = await play_prompts(self.client, [c for c, _ in calls])
        bodies = completions([k for _, k in calls], trackers)
        self._pool.extend(zip(trackers, bodies, calls, strict=True))

    async def prepare(self, count: int) -> None:
        await self._top_up()
        if count > len(self._pool):
            raise ValueError(f"cannot take {count} of {len(self._pool)} pending")
        pool, taken = self._pool, []
        for _ in range(count):
            index = self._random.randrange(len(pool))
            pool[index], pool[-1] = pool[-1], pool[index]
            taken.append(pool.pop())
        self._free.extend(call for _, _, call in taken)
        self._bodies = [body for _, body, _ in taken]
        self._tasks = await await_each([tracker for tracker, _, _ in taken])

    async def run(self, count: int) -> None:
        feed = self.client.feed
        for body in self._bodies:
            feed(body)
        await self._tasks[-1]

    def check(self) -> None:
        _check_tasks(self._tasks)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


def run_scale(sizes: Sizes) -> list[Row]:
    """Per-notification cost with ``scale_big`` pending against ``scale_small``."""
    row = Row(
        key="scale",
        title=f"5. scale: cost per notification, {sizes.scale_big:,} vs {sizes.scale_small:,}",
        target=SCALE_TARGET,
        ratio_meaning="cost with many pending / cost with few pending",
    )
    rows: list[Row] = []

    async def main() -> None:
        big = ScalePool(pending=sizes.scale_big, finished_limit=sizes.finished_limit)
        small = ScalePool(pending=sizes.scale_small, finished_limit=sizes.finished_limit)
        batch = min(sizes.scale_batch, sizes.scale_small)
        try:
            await _opened(big, small)
            many = Series(f"{sizes.scale_big:,} pending", "µs/notif")
            few = Series(f"{sizes.scale_small:,} pending", "µs/notif")
            await interleave(
                [
                    (many, workload_round(big, batch, per_item_us=True)),
                    (few, workload_round(small, batch, per_item_us=True)),
                ],
                repeats=sizes.repeats,
            )
            row.subject, row.baseline = many, few
            row.ratios = paired(many, few, lambda s, b: s / b)
            row.extra.update(batch=batch, finished_limit=big.facts["finished_limit"])
        finally:
            await big.aclose()
            await small.aclose()

    if sizes.timing:
        asyncio.run(main())
        rows.append(row)
    if sizes.instructions:
        big, small = sizes.instr_scale_big, sizes.instr_scale_small

        def pool(pending: int) -> Variant:
            params = {"pending": pending, "finished_limit": sizes.instr_finished_limit}
            return Variant(f"{pending:,} pending", "benchmarks.ingest:ScalePool", params)

        rows.extend(
            counted_rows(
                [
                    CountSpec(
                        key="scale.instructions",
                        title=f"5. scale, instructions: per notification, {big:,} vs {small:,}",
                        target=SCALE_TARGET,
                        subject=pool(big),
                        baseline=pool(small),
                        n=sizes.instr_scale_n,
                        warmup=sizes.instr_warmup,
                        ratio="subject/baseline",
                        ratio_meaning="instructions with many pending / with few pending",
                    )
                ],
                sizes,
            )
        )
    return rows
