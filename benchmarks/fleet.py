"""Comparison 8: a fleet on Redis (``graphcomms.fleet``), on a throwaway redis-server.

- **wrong instance**: a completion fed to the instance that does not own the operation
  (forwarded through the owner's inbox stream) against one fed to the owner, time until
  the owner's tracker resolves, p50 and p99;
- **forwarding**: bodies whose item belongs to another instance handed over by one
  receiving instance (``client.deliver``, 64 at a time) against local ingestion of the
  same bodies (``client.feed``);
- **relay on/off**: ``play_prompt`` at concurrency 64 with the relay on (each action's
  record stored before its POST) against off, against the in-process fake Graph and
  against a loopback Graph in another process; each round's trackers are completed,
  untimed, after it;
- **recovery**: a restarted instance taking back 10,000 pending trackers: seconds from
  entering ``async with CommsClient(...)`` to the recovery hook, and the memory it
  allocated (tracemalloc peak).

Skipped, saying why, without ``redis-server`` on PATH or the ``redis`` extra.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks._fakegraph import FakeGraphSession
from benchmarks._harness import Row, Series, Sizes, Target, interleave, paired, timed_async
from benchmarks._payloads import PROMPT_URI
from benchmarks._tracking import TOKEN, completions
from graphcomms import CommsClient, MediaPrompt, TrackingSettings

__all__ = ["run_fleet"]

CALL_ID = "421f4c00-4436-4c3a-9d9a-c4924b1e5e5f"
_CALL_KEY = CALL_ID.replace("-", "")
# Longer than the relay's write-behind delay (flush_interval, 50 ms by default).
_SETTLE = 0.1
_TITLES = {
    "fleet.wrong_instance.p50": "8. fleet: on the wrong instance, p50 to resolve vs on the owner",
    "fleet.wrong_instance.p99": "8. fleet: on the wrong instance, p99 to resolve vs on the owner",
    "fleet.forwarding": "8. fleet: forwarded notif/s through one instance vs local ingestion",
    "fleet.relay_on_off": "8. fleet: play_prompt at concurrency 64, in process, relay on vs off",
    "fleet.relay_on_off.loopback": "8. fleet: play_prompt at concurrency 64, loopback Graph,"
    " relay on vs off",
    "fleet.recover": "8. fleet: recover 10,000 pending trackers after a restart",
}


def _skipped(reason: str) -> list[Row]:
    return [Row(key=k, title=t, target=None, skipped=reason) for k, t in _TITLES.items()]


def run_fleet(sizes: Sizes) -> list[Row]:
    if shutil.which("redis-server") is None:
        return _skipped("redis-server is not on PATH")
    try:
        import redis  # noqa: F401
    except ImportError:
        return _skipped("the redis extra is not installed")
    from graphcomms.testing import RedisServer

    with RedisServer() as server:
        return asyncio.run(_run(sizes, server.url))


def _client(url: str | None, instance: str, **relay: Any) -> CommsClient:
    from graphcomms.fleet import Relay

    fleet = None if url is None else Relay(url, app="bench", instance=instance, **relay)
    return CommsClient(
        TOKEN,
        session=FakeGraphSession().as_session(),
        tracking=TrackingSettings(late_result_grace=3600.0, reconcile_after=None),
        fleet=fleet,
    )


async def _run(sizes: Sizes, url: str) -> list[Row]:
    rows = [*await _wrong_instance(sizes, url), await _forwarding(sizes, url)]
    rows.append(await _relay_on_off(sizes, url))
    rows.append(await _relay_on_off_loopback(sizes, url))
    rows.append(await _recover(sizes, url))
    return rows


async def _play(client: CommsClient, count: int, concurrency: int) -> list[Any]:
    call = client.call(CALL_ID)
    trackers: list[Any] = []

    async def worker(share: int) -> None:
        for _ in range(share):
            trackers.append(await call.play_prompt([MediaPrompt.from_uri(PROMPT_URI)]))

    shares = [count // concurrency + (i < count % concurrency) for i in range(concurrency)]
    await asyncio.gather(*(worker(n) for n in shares if n))
    return trackers


async def _wrong_instance(sizes: Sizes, url: str) -> list[Row]:
    n = sizes.fleet_n
    async with _client(url, "owner") as owner, _client(url, "other") as other:
        wrong, right = Series("wrong instance", "ms"), Series("owner", "ms")
        wrong99, right99 = Series("wrong instance", "ms"), Series("owner", "ms")

        def round_(via: CommsClient, p50: Series, p99: Series) -> Callable[[], Awaitable[float]]:
            async def one() -> float:
                trackers = await _play(owner, n, 1)
                bodies = completions([_CALL_KEY] * n, trackers)
                latencies = []
                for body, tracker in zip(bodies, trackers, strict=True):
                    start = time.perf_counter()
                    await via.deliver(json.loads(body))
                    await tracker.wait()
                    latencies.append((time.perf_counter() - start) * 1000)
                latencies.sort()
                p99.samples.append(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))])
                return statistics.median(latencies)

            return one

        # interleave() fills the p50 series; the p99 ones are filled alongside (the
        # warm-up round's first, dropped below).
        await interleave(
            [(wrong, round_(other, wrong, wrong99)), (right, round_(owner, right, right99))],
            repeats=sizes.repeats,
        )
        for series in (wrong99, right99):
            del series.samples[0]
    rows = []
    for key, subject, baseline in (
        ("fleet.wrong_instance.p50", wrong, right),
        ("fleet.wrong_instance.p99", wrong99, right99),
    ):
        row = Row(
            key=key,
            title=_TITLES[key],
            target=None,
            ratio_meaning="wrong-instance latency / owner latency",
        )
        row.subject, row.baseline = subject, baseline
        row.ratios = paired(subject, baseline, lambda s, b: s / b)
        row.extra["n_per_round"] = n
        rows.append(row)
    return rows


async def _forwarding(sizes: Sizes, url: str) -> Row:
    n = sizes.fleet_n * 4
    row = Row(
        key="fleet.forwarding",
        title=_TITLES["fleet.forwarding"],
        target=None,
        ratio_meaning="forwarded notif/s / local notif/s",
    )
    async with _client(url, "receiver") as receiver:

        def body(owner: str, i: int) -> dict[str, Any]:
            item = {
                "changeType": "deleted",
                "resourceUrl": f"/communications/calls/{CALL_ID}/operations/{i:032x}",
                "resourceData": {
                    "@odata.type": "#microsoft.graph.playPromptOperation",
                    "clientContext": f"{owner}.0.{os.urandom(8).hex()}",
                    "status": "completed",
                },
            }
            return {"value": [item]}

        async def forwarded() -> float:
            bodies = [body("elsewhere", i) for i in range(n)]
            queue = iter(bodies)

            async def worker() -> None:
                for document in queue:
                    await receiver.deliver(document)

            seconds = await timed_async(lambda: asyncio.gather(*(worker() for _ in range(64))))
            return n / seconds

        async def local() -> float:
            bodies = [json.dumps(body("receiver", i)).encode() for i in range(n)]
            feed = receiver.feed

            async def all_() -> None:
                for document in bodies:
                    feed(document)

            return n / await timed_async(all_)

        forwarded_series = Series("forwarded", "notif/s")
        local_series = Series("local", "notif/s")
        await interleave(
            [(forwarded_series, forwarded), (local_series, local)], repeats=sizes.repeats
        )
    row.subject, row.baseline = forwarded_series, local_series
    row.ratios = paired(forwarded_series, local_series, lambda s, b: s / b)
    row.extra["n_per_round"] = n
    return row


async def _relay_on_off(sizes: Sizes, url: str) -> Row:
    n = sizes.action_n
    # No target here: against the in-process fake an action costs the client ~25 us,
    # and one Redis round trip per flush is a large share of that; the loopback row
    # below, where an action includes its HTTP round trip, holds the target.
    row = Row(
        key="fleet.relay_on_off",
        title=_TITLES["fleet.relay_on_off"],
        target=None,
        ratio_meaning="relay on actions/s / relay off actions/s",
    )
    async with _client(url, "actions") as on, _client(None, "") as off:

        def round_(client: CommsClient) -> Callable[[], Awaitable[float]]:
            async def one() -> float:
                trackers: list[Any] = []

                async def run() -> None:
                    trackers.extend(await _play(client, n, sizes.concurrency))

                seconds = await timed_async(run)
                for document in completions([_CALL_KEY] * len(trackers), trackers):
                    client.feed(document)  # untimed: none pending at the next round
                return n / seconds

            return one

        on_series, off_series = Series("relay on", "actions/s"), Series("relay off", "actions/s")
        await interleave(
            [(on_series, round_(on)), (off_series, round_(off))], repeats=sizes.repeats
        )
    row.subject, row.baseline = on_series, off_series
    row.ratios = paired(on_series, off_series, lambda s, b: s / b)
    row.extra["n_per_round"] = n
    row.extra["concurrency"] = sizes.concurrency
    return row


async def _relay_on_off_loopback(sizes: Sizes, url: str) -> Row:
    """The same actions against a loopback Graph in another process (the server of
    the roundtrip rows), each client opened once.

    Each round's trackers are completed after it, untimed, as the in-process row does:
    a bot's pending work comes and goes. Left pending, 40,000 trackers per client piled
    up over the rounds, and every full garbage collection walked them all: a cost of
    the benchmark's heap, which no running bot has."""
    from benchmarks._procs import Child
    from graphcomms.fleet import Relay

    n, concurrency = sizes.roundtrip_n_concurrent, sizes.concurrency
    row = Row(
        key="fleet.relay_on_off.loopback",
        title=_TITLES["fleet.relay_on_off.loopback"],
        target=Target(">=", 0.8),
        ratio_meaning="relay on actions/s / relay off actions/s",
    )
    with Child("benchmarks._server", {"kind": "action", "deadline_s": 3600}) as server:
        base = f"http://127.0.0.1:{server.receive(timeout=60)['port']}/v1.0/"
        relay = Relay(url, app="bench", instance="loopback")
        async with (
            CommsClient(TOKEN, base_url=base, fleet=relay) as on,
            CommsClient(TOKEN, base_url=base) as off,
        ):

            def round_(client: CommsClient) -> Callable[[], Awaitable[float]]:
                call = client.call(CALL_ID)

                async def one() -> float:
                    remaining = n
                    trackers: list[Any] = []

                    async def worker() -> None:
                        nonlocal remaining
                        while remaining > 0:
                            remaining -= 1
                            prompt = [MediaPrompt.from_uri(PROMPT_URI)]
                            trackers.append(await call.play_prompt(prompt))

                    started = time.perf_counter()
                    await asyncio.gather(*(worker() for _ in range(concurrency)))
                    seconds = time.perf_counter() - started
                    for document in completions([_CALL_KEY] * len(trackers), trackers):
                        client.feed(document)  # untimed: none pending at the next round
                    await asyncio.sleep(_SETTLE)  # the relay's write-behind, untimed
                    return n / seconds

                return one

            on_series, off_series = Series("relay on", "req/s"), Series("relay off", "req/s")
            await interleave(
                [(on_series, round_(on)), (off_series, round_(off))],
                repeats=sizes.network_repeats,
            )
    row.subject, row.baseline = on_series, off_series
    row.ratios = paired(on_series, off_series, lambda s, b: s / b)
    row.extra["n_per_round"] = n
    row.extra["concurrency"] = concurrency
    return row


async def _recover(sizes: Sizes, url: str) -> Row:
    import redis.asyncio as aioredis

    from graphcomms.fleet import Recovery

    count = sizes.fleet_recover
    row = Row(
        key="fleet.recover",
        title=_TITLES["fleet.recover"].replace("10,000", f"{count:,}"),
        target=Target("<=", 1.0, "s"),
    )
    direct = aioredis.Redis.from_url(url)
    records = {
        f"o:rec.0.{i:024x}": json.dumps(
            {
                "c": CALL_ID,
                "x": f"rec.0.{i:024x}",
                "i": None,
                "t": "PlayPromptOperation",
                "s": "running",
                "g": f"step {i}",
            }
        )
        for i in range(count)
    }
    seconds = Series("recovery", "s")
    peaks: list[int] = []
    try:
        # A warm-up round, the timed ones, then one more under tracemalloc (slower).
        for round_number in range(sizes.repeats + 2):
            await direct.delete("gc:{bench}:state:rec")
            await direct.hset("gc:{bench}:state:rec", mapping=records)
            got: list[Recovery] = []
            measure = round_number == sizes.repeats + 1
            if measure:
                tracemalloc.start()
            start = time.perf_counter()
            # Entering takes the identity and recovers; leaving keeps the records.
            async with _client(url, "rec", on_recovered=got.append, lock_wait=0.0):
                while not got:  # noqa: ASYNC110 - the hook runs on one of the next turns
                    await asyncio.sleep(0)
                elapsed = time.perf_counter() - start
                if measure:
                    peaks.append(tracemalloc.get_traced_memory()[1])
                    tracemalloc.stop()
                if len(got[0].operations) != count:
                    raise RuntimeError("not every record came back")
            if 0 < round_number <= sizes.repeats:
                seconds.samples.append(elapsed)
    finally:
        await direct.delete("gc:{bench}:state:rec")
        await direct.aclose()
    row.subject = seconds
    row.extra["pending"] = count
    row.extra["tracemalloc_peak_bytes"] = peaks[0] if peaks else None
    row.detail = f"peak {peaks[0] / 1e6:.1f} MB allocated while recovering" if peaks else ""
    return row
