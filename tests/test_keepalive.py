"""keepAlive: the schedule (pure, explicit times) and the one task that sends them.

The scheduler's calls here are stand-ins whose ``keep_alive()`` the test controls; the
client end to end, against the emulator, is in tests/integration/test_integration_keepalive.py.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import random
import tracemalloc
from collections import Counter
from collections.abc import AsyncIterator, Callable

import pytest

from graphcomms import KeepAliveSettings
from graphcomms._keepalive import KeepAlive, KeepAliveSchedule, KeptCall
from graphcomms._stats import ClientStats
from graphcomms.errors import ClientClosedError, NotFoundError, ServerError, TransportError

FAST = KeepAliveSettings(interval=0.02, window=1.0, retry_delay=0.01, max_retry_delay=0.02)


class FakeCall:
    """A call whose keepAlive answers what the test says: ``None`` (200) or an error."""

    def __init__(self, n: int, answer: Callable[[], BaseException | None] = lambda: None) -> None:
        self.id = f"Call-{n}"
        self.key = f"call{n}"
        self.answer = answer
        self.sent = 0
        self.gate: asyncio.Event | None = None

    async def keep_alive(self) -> None:
        self.sent += 1
        if self.gate is not None:
            await self.gate.wait()
        error = self.answer()
        if error is not None:
            raise error


def not_found() -> BaseException:
    return NotFoundError(status=404, method="POST", url="calls/x/keepAlive", code="itemNotFound")


def server_error() -> BaseException:
    return ServerError(status=500, method="POST", url="calls/x/keepAlive", code="UnknownError")


def schedule(settings: KeepAliveSettings | None = None, seed: int = 7) -> KeepAliveSchedule:
    return KeepAliveSchedule(settings or KeepAliveSettings(), random.Random(seed))


def drain_due(plan: KeepAliveSchedule, now: float) -> list[tuple[float, str]]:
    """Every (due time, key) due by ``now``, earliest first, taken off the schedule."""
    out = []
    while (entry := plan.pop_due(now)) is not None:
        out.append((entry.due, entry.key))
    return out


# -- settings ------------------------------------------------------------------------------


def test_defaults_follow_graphs_recommendation() -> None:
    settings = KeepAliveSettings()
    assert (settings.enabled, settings.interval, settings.window) == (True, 900.0, 2700.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interval": 0},
        {"interval": float("nan")},
        {"interval": 2700.0},  # not shorter than Graph's window
        {"jitter": 0.6},
        {"jitter": -0.1},
        {"retry_delay": 400.0},  # over max_retry_delay
        {"max_in_flight": 0},
        {"max_in_flight": True},
    ],
)
def test_settings_refuse_what_cannot_keep_a_call_alive(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        KeepAliveSettings(**kwargs)  # type: ignore[arg-type]


# -- the schedule --------------------------------------------------------------------------


def test_first_due_times_are_spread_over_the_interval() -> None:
    # 10,000 calls created in the same second must not send in the same second.
    plan = schedule()
    for n in range(10_000):
        assert plan.add(FakeCall(n), now=0.0)
    due = drain_due(plan, now=900.0)
    assert len(due) == 10_000
    assert [t for t, _ in due] == sorted(t for t, _ in due)
    assert all(0.0 <= t < 900.0 for t, _ in due)
    per_10_seconds = Counter(int(t // 10) for t, _ in due)
    assert len(per_10_seconds) == 90
    # Uniform: 111 per bucket expected; a burst would put thousands in one.
    assert max(per_10_seconds.values()) < 170
    assert min(per_10_seconds.values()) > 60


def test_a_call_is_added_once() -> None:
    plan = schedule()
    call = FakeCall(1)
    assert plan.add(call, now=0.0)
    assert not plan.add(call, now=5.0)
    assert len(plan) == 1
    assert len(drain_due(plan, now=900.0)) == 1


def test_after_an_accepted_keepalive_the_next_is_an_interval_away_within_jitter() -> None:
    plan = schedule()
    for n in range(1_000):
        plan.add(FakeCall(n), now=0.0)
    now = 900.0
    entries = []
    while (entry := plan.pop_due(now)) is not None:
        entries.append(entry)
    for entry in entries:
        plan.accepted(entry, now)
    assert plan.pop_due(now + 809.0) is None  # nothing sooner than interval - 10%
    later = drain_due(plan, now + 991.0)
    assert len(later) == 1_000  # everything by interval + 10%
    assert all(now + 810.0 <= t <= now + 990.0 for t, _ in later)
    assert max(t for t, _ in later) - min(t for t, _ in later) > 100  # still spread


def test_failures_back_off_doubling_to_the_cap_and_overdue_is_reported_once() -> None:
    settings = KeepAliveSettings(jitter=0.0, retry_delay=30.0, max_retry_delay=300.0)
    plan = schedule(settings)
    plan.add(FakeCall(1), now=0.0)
    now = 900.0
    entry = plan.pop_due(now)
    assert entry is not None
    delays, overdue = [], []
    for _ in range(12):
        delay, newly_overdue = plan.failed(entry, now)
        delays.append(delay)
        overdue.append(newly_overdue)
        now += delay
        assert plan.pop_due(now) is entry
    assert delays[:6] == [30.0, 60.0, 120.0, 240.0, 300.0, 300.0]
    # Every retry lands inside Graph's 45 minutes until the window has passed.
    tries = [900.0 + sum(delays[:i]) for i in range(len(delays))]
    assert sum(1 for t in tries if t < 2700.0) >= 8
    # Overdue once: when the call first went 2,700 s without an accepted keepAlive.
    assert overdue.count(True) == 1
    first_overdue = overdue.index(True)
    assert tries[first_overdue] >= 2700.0 > tries[first_overdue - 1]
    # Accepted again: the backoff and the overdue flag start over.
    plan.accepted(entry, now)
    entry = plan.pop_due(now + 900.0)
    assert entry is not None
    assert plan.failed(entry, now + 900.0) == (30.0, False)


def test_a_removed_call_is_never_due_again() -> None:
    plan = schedule()
    calls = [FakeCall(n) for n in range(100)]
    for call in calls:
        plan.add(call, now=0.0)
    for call in calls[1:]:
        assert plan.remove(call.key)
    assert not plan.remove(calls[1].key)
    assert [key for _, key in drain_due(plan, now=10_000.0)] == [calls[0].key]
    assert plan.next_due() is None


def test_an_answer_for_a_removed_call_does_not_bring_it_back() -> None:
    plan = schedule()
    call = FakeCall(1)
    plan.add(call, now=0.0)
    entry = plan.pop_due(900.0)
    assert entry is not None
    plan.remove(call.key)
    plan.accepted(entry, 900.0)
    assert plan.failed(entry, 900.0) == (0.0, False)
    assert call.key not in plan
    assert plan.next_due() is None
    plan.add(call, now=1000.0)  # kept again: a new entry, not the stale one
    assert not plan.current(entry)


def test_churn_does_not_grow_the_schedule() -> None:
    # Calls that end before their due time leave stale heap items behind; the heap is
    # rebuilt before they can pile up.
    plan = schedule()
    kept = [FakeCall(n) for n in range(10)]
    for call in kept:
        plan.add(call, now=0.0)
    churn = [FakeCall(n) for n in range(10, 1_010)]

    def cycle() -> None:
        for call in churn:
            plan.add(call, now=0.0)
            plan.remove(call.key)

    cycle()  # warm up: allocations that stay whatever the churn
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(100):  # 100,000 calls come and go
            cycle()
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 50_000, grown
    assert len(plan) == 10
    assert len(drain_due(plan, now=900.0)) == 10


# -- the task ------------------------------------------------------------------------------


@pytest.fixture
async def keeper() -> AsyncIterator[tuple[KeepAlive, ClientStats, list[KeptCall]]]:
    stats = ClientStats()
    gone: list[KeptCall] = []
    keep = KeepAlive(FAST, stats=stats, gone=gone.append, rng=random.Random(1))
    task = asyncio.create_task(keep.run())
    yield keep, stats, gone
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await keep.aclose()


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


async def test_every_kept_call_is_sent_keepalives_until_released(
    keeper: tuple[KeepAlive, ClientStats, list[KeptCall]],
) -> None:
    keep, stats, _ = keeper
    calls = [FakeCall(n) for n in range(20)]
    for call in calls:
        keep.keep(call)
    assert stats.kept_alive_calls == 20
    await wait_until(lambda: all(call.sent >= 3 for call in calls))
    keep.release(calls[0].key)
    assert stats.kept_alive_calls == 19
    await asyncio.sleep(0.01)  # one in flight may still land
    sent = calls[0].sent
    await wait_until(lambda: all(call.sent >= sent + 3 for call in calls[1:]))
    assert calls[0].sent == sent
    assert stats.keep_alives_sent >= 20 * 3


async def test_one_task_for_any_number_of_calls() -> None:
    stats = ClientStats()
    keep = KeepAlive(KeepAliveSettings(), stats=stats, gone=lambda call: None)
    before = asyncio.all_tasks()
    task = asyncio.create_task(keep.run())
    gate = asyncio.Event()  # a keepAlive sent now stays on the wire: its task is counted
    calls = [FakeCall(n) for n in range(5_000)]
    for call in calls:
        call.gate = gate
        keep.keep(call)
    await asyncio.sleep(0.05)
    # The scheduler, and a task per keepAlive due in the first 50 ms (one created just
    # now may not have started its request yet): nothing per waiting call.
    extra = asyncio.all_tasks() - before - {task}
    assert all(t.get_name().startswith("graphcomms-keepalive-") for t in extra), extra
    assert len(extra) < 5
    assert sum(call.sent for call in calls) <= len(extra)
    assert stats.kept_alive_calls == 5_000
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await keep.aclose()
    assert stats.kept_alive_calls == 0


async def test_at_most_max_in_flight_keepalives_on_the_wire() -> None:
    stats = ClientStats()
    settings = KeepAliveSettings(interval=0.01, window=1.0, max_in_flight=3)
    keep = KeepAlive(settings, stats=stats, gone=lambda call: None)
    gate = asyncio.Event()
    calls = [FakeCall(n) for n in range(50)]
    for call in calls:
        call.gate = gate
        keep.keep(call)
    before = len(asyncio.all_tasks())
    task = asyncio.create_task(keep.run())
    await wait_until(lambda: sum(call.sent for call in calls) == 3)
    await asyncio.sleep(0.05)  # every call is due by now; still only three are sent
    assert sum(call.sent for call in calls) == 3
    assert len(asyncio.all_tasks()) == before + 1 + 3
    gate.set()
    await wait_until(lambda: all(call.sent >= 1 for call in calls))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await keep.aclose()
    assert len(asyncio.all_tasks()) == before


async def test_a_404_ends_the_call_once_and_stops_its_keepalives(
    keeper: tuple[KeepAlive, ClientStats, list[KeptCall]],
) -> None:
    keep, stats, gone = keeper
    ended = FakeCall(1, not_found)
    alive = FakeCall(2)
    keep.keep(ended)
    keep.keep(alive)
    await wait_until(lambda: alive.sent >= 5)
    assert gone == [ended]
    assert ended.sent == 1
    assert ended.key not in keep
    assert (stats.calls_found_gone, stats.kept_alive_calls) == (1, 1)
    assert stats.keep_alives_failed == 0


async def test_a_404_for_a_call_released_meanwhile_is_ignored(
    keeper: tuple[KeepAlive, ClientStats, list[KeptCall]],
) -> None:
    keep, stats, gone = keeper
    call = FakeCall(1, not_found)
    call.gate = asyncio.Event()
    keep.keep(call)
    await wait_until(lambda: call.sent == 1)
    keep.release(call.key)  # its terminated notification arrived first
    call.gate.set()
    await asyncio.sleep(0.05)
    assert gone == []
    assert stats.calls_found_gone == 0


@pytest.mark.parametrize(
    "error",
    [
        server_error,
        lambda: TransportError("connection reset", method="POST", url="u", sent=True),
        lambda: RuntimeError("a bug"),
    ],
)
async def test_a_failed_keepalive_is_tried_again_and_logged(
    keeper: tuple[KeepAlive, ClientStats, list[KeptCall]],
    caplog: pytest.LogCaptureFixture,
    error: Callable[[], BaseException],
) -> None:
    keep, stats, gone = keeper
    answers: list[BaseException | None] = [error(), error(), None]
    call = FakeCall(1, lambda: answers.pop(0) if answers else None)
    with caplog.at_level(logging.WARNING, logger="graphcomms.keepalive"):
        keep.keep(call)
        await wait_until(lambda: stats.keep_alives_sent >= 2)
    assert stats.keep_alives_failed == 2
    assert gone == []
    assert call.key in keep
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert all("Call-1" in r.getMessage() and "trying again" in r.getMessage() for r in warnings)


async def test_a_call_past_the_window_is_reported_overdue_once_and_tried_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stats = ClientStats()
    settings = KeepAliveSettings(interval=0.01, window=0.05, retry_delay=0.01, max_retry_delay=0.01)
    keep = KeepAlive(settings, stats=stats, gone=lambda call: None)
    call = FakeCall(1, server_error)
    task = asyncio.create_task(keep.run())
    with caplog.at_level(logging.ERROR, logger="graphcomms.keepalive"):
        keep.keep(call)
        await wait_until(lambda: stats.keep_alives_failed >= 15)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await keep.aclose()
    assert stats.keep_alives_overdue == 1
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "Call-1" in record.getMessage()
    assert "408/8537" in record.getMessage()


async def test_a_closed_client_ends_sending_quietly(
    keeper: tuple[KeepAlive, ClientStats, list[KeptCall]],
) -> None:
    keep, stats, gone = keeper
    call = FakeCall(1, lambda: ClientClosedError("closed"))
    keep.keep(call)
    await wait_until(lambda: call.sent >= 1)
    await asyncio.sleep(0.05)
    assert call.sent == 1  # not retried: the client is going away
    assert (stats.keep_alives_failed, stats.calls_found_gone, gone) == (0, 0, [])


async def test_aclose_cancels_keepalives_on_the_wire() -> None:
    stats = ClientStats()
    keep = KeepAlive(FAST, stats=stats, gone=lambda call: None)
    call = FakeCall(1)
    call.gate = asyncio.Event()  # never set: the request hangs
    keep.keep(call)
    before = len(asyncio.all_tasks())
    task = asyncio.create_task(keep.run())
    await wait_until(lambda: call.sent == 1)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await keep.aclose()
    assert len(asyncio.all_tasks()) == before
    assert call.key not in keep
    assert stats.kept_alive_calls == 0
