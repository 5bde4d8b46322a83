"""Keeping the calls a client owns alive: one scheduler for all of them.

Graph ends a call that has had no ``POST .../keepAlive`` for 45 minutes (``408/8537``)
and answers 404 once a call has ended (reference §9.2). :class:`KeepAlive` sends one for
every call the call table hands it (:meth:`KeepAlive.keep`) until the table takes the
call back (:meth:`KeepAlive.release`). However many calls there are, it is one task that
sleeps until the earliest due time in a heap (:class:`KeepAliveSchedule`: O(log n) per
call and per keepAlive, nothing per call while it waits), with at most ``max_in_flight``
requests on the wire.

Due times are spread: a call's first keepAlive falls at a random point within the
interval, so calls created or recovered together do not all send in the same second,
and each later one is an interval after the last accepted one, moved by the jitter.

What the HTTP transport retries by itself (429, 503 with ``Retry-After``) it retries
within one send. What it gives up on, or never re-sends for a POST (another 5xx, a lost
connection), is tried again here after a backoff: a second keepAlive does no harm, and
Graph allows 45 minutes. A 404 ends the call here as a read-back of "gone" does.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import random
import time
from collections.abc import Callable
from typing import Protocol

from graphcomms._settings import KeepAliveSettings
from graphcomms._stats import ClientStats
from graphcomms.errors import ClientClosedError, GraphCommsError, NotFoundError

__all__ = ["KeepAlive", "KeepAliveSchedule", "KeptCall"]

_log = logging.getLogger("graphcomms.keepalive")

# A heap this much larger than the calls it schedules is rebuilt: entries of calls that
# ended are otherwise dropped only when their due time comes round.
_SLACK = 64


class KeptCall(Protocol):
    """What the scheduler needs of a call: its ids and its keepAlive request
    (``graphcomms._call.CallHandle``)."""

    @property
    def id(self) -> str: ...

    @property
    def key(self) -> str: ...

    async def keep_alive(self) -> None: ...


class _Entry:
    """One call being kept alive. ``seq`` names its item in the heap; -1 while its
    keepAlive is on the wire (it is then in no heap item)."""

    __slots__ = ("call", "due", "failures", "key", "last_accepted", "overdue", "seq")

    def __init__(self, call: KeptCall, now: float) -> None:
        self.call = call
        self.key = call.key
        self.due = now
        self.seq = -1
        self.failures = 0
        # Graph's window runs from the call's start or its last accepted keepAlive.
        self.last_accepted = now
        self.overdue = False


class KeepAliveSchedule:
    """Due times of the calls being kept alive: a heap with lazy deletion. Pure: every
    method takes the time it is asked at, and nothing here sleeps or sends."""

    def __init__(self, settings: KeepAliveSettings, rng: random.Random) -> None:
        self.settings = settings
        self._rng = rng
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[float, int, _Entry]] = []
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def add(self, call: KeptCall, now: float) -> bool:
        """Keep ``call`` alive from ``now``; False if it already is."""
        if call.key in self._entries:
            return False
        entry = _Entry(call, now)
        self._entries[entry.key] = entry
        self._push(entry, now + self.settings.interval * self._rng.random())
        return True

    def remove(self, key: str) -> bool:
        """Stop keeping a call alive (its heap item goes stale); False if it was not."""
        return self._entries.pop(key, None) is not None

    def clear(self) -> None:
        self._entries.clear()
        self._heap.clear()

    def current(self, entry: _Entry) -> bool:
        """``entry`` is still the one for its call (not removed, not replaced)."""
        return self._entries.get(entry.key) is entry

    def next_due(self) -> float | None:
        """The earliest due time, or None when nothing is scheduled."""
        heap = self._heap
        while heap and not self._valid(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> _Entry | None:
        """The call whose keepAlive is due by ``now`` (the earliest), taken off the heap
        until :meth:`accepted` or :meth:`failed` puts it back; None if none is due."""
        due = self.next_due()
        if due is None or due > now:
            return None
        _, _, entry = heapq.heappop(self._heap)
        entry.seq = -1
        return entry

    def accepted(self, entry: _Entry, now: float) -> None:
        """Graph took the keepAlive: the next one an interval (± jitter) from now."""
        if not self.current(entry):
            return
        entry.last_accepted = now
        entry.failures = 0
        entry.overdue = False
        self._push(entry, now + self._spread(self.settings.interval))

    def failed(self, entry: _Entry, now: float) -> tuple[float, bool]:
        """The keepAlive failed: tried again after a backoff. Returns the delay, and
        whether the call has just gone past Graph's window without an accepted one."""
        if not self.current(entry):
            return 0.0, False
        settings = self.settings
        entry.failures += 1
        exponent = min(entry.failures - 1, 32)
        delay = self._spread(min(settings.retry_delay * 2.0**exponent, settings.max_retry_delay))
        self._push(entry, now + delay)
        newly_overdue = not entry.overdue and now - entry.last_accepted >= settings.window
        entry.overdue = entry.overdue or newly_overdue
        return delay, newly_overdue

    def since_accepted(self, entry: _Entry, now: float) -> float:
        return now - entry.last_accepted

    def _spread(self, seconds: float) -> float:
        jitter = self.settings.jitter
        return seconds * (1.0 + self._rng.uniform(-jitter, jitter))

    def _valid(self, item: tuple[float, int, _Entry]) -> bool:
        entry = item[2]
        return item[1] == entry.seq and self._entries.get(entry.key) is entry

    def _push(self, entry: _Entry, due: float) -> None:
        entry.due = due
        entry.seq = next(self._seq)
        heapq.heappush(self._heap, (due, entry.seq, entry))
        if len(self._heap) > 2 * len(self._entries) + _SLACK:
            self._heap = [item for item in self._heap if self._valid(item)]
            heapq.heapify(self._heap)


class KeepAlive:
    """Sends the keepAlives of one client's calls; ``run()`` is its one task.

    ``gone(call)`` is called for a call a keepAlive found ended (404), after the call
    was released here: the call table ends it as if Graph had said so.
    """

    def __init__(
        self,
        settings: KeepAliveSettings,
        *,
        stats: ClientStats,
        gone: Callable[[KeptCall], None],
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._stats = stats
        self._gone = gone
        # Spreads due times; nothing about it is secret.
        self._schedule = KeepAliveSchedule(settings, rng or random.Random())  # noqa: S311
        self._wake = asyncio.Event()
        self._slots: asyncio.Semaphore | None = None
        self._in_flight: set[asyncio.Task[None]] = set()

    def keep(self, call: KeptCall) -> None:
        """Keep ``call`` alive until :meth:`release`; a call kept already is left as is."""
        if self._schedule.add(call, time.monotonic()):
            self._stats.kept_alive_calls = len(self._schedule)
            self._wake.set()

    def release(self, key: str) -> None:
        """Send no more keepAlives for the call (normalised id ``key``); one on the wire
        now is let finish and its answer ignored."""
        if self._schedule.remove(key):
            self._stats.kept_alive_calls = len(self._schedule)

    def __contains__(self, key: object) -> bool:
        return key in self._schedule

    async def run(self) -> None:
        """Send keepAlives as they fall due, until cancelled."""
        slots = self._slots = asyncio.Semaphore(self.settings.max_in_flight)
        loop = asyncio.get_running_loop()
        while True:
            now = time.monotonic()
            entry = self._schedule.pop_due(now)
            if entry is None:
                due = self._schedule.next_due()
                self._wake.clear()
                # A timer, not wait_for: that would be a second task, on Python < 3.12.
                timer = None if due is None else loop.call_later(due - now, self._wake.set)
                try:
                    await self._wake.wait()
                finally:
                    if timer is not None:
                        timer.cancel()
                continue
            await slots.acquire()
            if not self._schedule.current(entry):  # released while waiting for a slot
                slots.release()
                continue
            task = loop.create_task(self._send(entry), name=f"graphcomms-keepalive-{entry.key}")
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def aclose(self) -> None:
        """Stop: keepAlives on the wire are cancelled, and no call is kept any more."""
        tasks = list(self._in_flight)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self._schedule.clear()
        self._stats.kept_alive_calls = 0

    async def _send(self, entry: _Entry) -> None:
        call = entry.call
        try:
            await call.keep_alive()
        except NotFoundError:
            self._found_gone(entry)
        except ClientClosedError:
            return
        except Exception as exc:
            self._failed(entry, exc)
        else:
            self._stats.keep_alives_sent += 1
            self._schedule.accepted(entry, time.monotonic())
        finally:
            assert self._slots is not None
            self._slots.release()
            # Rescheduled (or gone): the runner may be asleep with nothing else due.
            self._wake.set()

    def _found_gone(self, entry: _Entry) -> None:
        if not self._schedule.current(entry):
            return  # it ended here meanwhile
        self.release(entry.key)
        self._stats.calls_found_gone += 1
        _log.info(
            "call %s is gone (keepAlive answered 404): ending it",
            entry.call.id,
            extra={"call_id": entry.key},
        )
        self._gone(entry.call)

    def _failed(self, entry: _Entry, exc: Exception) -> None:
        if not self._schedule.current(entry):
            return
        self._stats.keep_alives_failed += 1
        now = time.monotonic()
        delay, overdue = self._schedule.failed(entry, now)
        silent = self._schedule.since_accepted(entry, now)
        _log.warning(
            "keepAlive for call %s failed (%s); trying again in %.1f s, %.0f s after the"
            " last accepted one",
            entry.call.id,
            exc,
            delay,
            silent,
            # A bug, not Graph's answer: its traceback is the news.
            exc_info=not isinstance(exc, GraphCommsError),
            extra={"call_id": entry.key},
        )
        if overdue:
            self._stats.keep_alives_overdue += 1
            _log.error(
                "call %s has had no accepted keepAlive for %.0f s; Graph ends a call after"
                " %.0f s without one (408/8537)",
                entry.call.id,
                silent,
                self.settings.window,
                extra={"call_id": entry.key},
            )
