"""Recovering lost notifications.

Graph does not promise to deliver every notification (reference §5.6; users report
ones that never arrive). A tracker Graph has been silent about for ``after`` seconds is
reconciled by reading its operation back (``GET .../operations/{id}``). Graph documents
that read for addLargeGalleryView only, so an operation type whose read-back Graph
refuses (404, 400, 405, 501) is not asked again: for those, the call is read instead,
and the tracker ends when the call does or at its own deadline (``operation_timeout``).
A call somebody waits on (``wait_for_state``) or hung up is read back too, so a lost
``established`` or ``deleted`` is recovered; a 404 on the call means it is gone. Each
call is reconciled at most once per ``min_interval``, at most ``max_concurrent``
read-backs at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any, TypeVar

from graphcomms._actions import ActionSender
from graphcomms._calls import CallTable
from graphcomms._events import cancel_and_wait
from graphcomms._registry import OperationRegistry
from graphcomms._stats import ClientStats
from graphcomms._tracker import OperationTracker, log_extra
from graphcomms.errors import GraphCommsError, NotFoundError, ResponseError
from graphcomms.models import AddLargeGalleryViewOperation, CommsOperation, is_terminal

__all__ = ["Reconciler"]

T = TypeVar("T")

_log = logging.getLogger("graphcomms.reconcile")

# Answers that say "this type cannot be read back", as opposed to a failed request.
_UNREADABLE = frozenset({400, 404, 405, 501})
# The one type Graph documents the read for (reference §7): a 404 there means "gone".
_DOCUMENTED = (AddLargeGalleryViewOperation,)


class Reconciler:
    """Owned by the client; ``run()`` is its task, ``reconcile_once()`` one pass."""

    def __init__(
        self,
        *,
        registry: OperationRegistry,
        calls: CallTable,
        actions: ActionSender,
        stats: ClientStats,
        after: float,
        min_interval: float,
        max_concurrent: int = 8,
    ) -> None:
        self._registry = registry
        self._calls = calls
        self._actions = actions
        self._stats = stats
        self.after = after
        self.min_interval = min_interval
        self.max_concurrent = max_concurrent
        self._next_allowed: dict[str, float] = {}
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._gate: asyncio.Semaphore | None = None
        # Operation types Graph refused to read back: asked no more (bounded: a class).
        self._unreadable: set[type[CommsOperation]] = set()

    async def run(self) -> None:
        # Waking at a fraction of `after` bounds how late a silent tracker is noticed
        # without a timer per tracker. A pass only starts work: a slow Graph (or an
        # overloaded bot) must not hold the next pass behind a barrier.
        tick = max(min(self.after, self.min_interval) / 2, 0.01)
        while True:
            await asyncio.sleep(tick)
            try:
                self._start_pass()
            except Exception:
                _log.exception("reconciliation pass failed")

    async def reconcile_once(self) -> int:
        """Reconcile every due call now and wait for it; returns how many calls."""
        started = self._start_pass()
        if started:
            await asyncio.gather(*started, return_exceptions=True)
        return len(started)

    async def aclose(self) -> None:
        await cancel_and_wait(self._tasks)

    def _start_pass(self) -> list[asyncio.Task[None]]:
        """Start reconciling each call that has silent trackers or a long state waiter
        and is neither rate-limited nor already being reconciled."""
        now = self._registry.clock()
        self._registry.sweep()  # early notifications and memory past their age go too
        silent = self._registry.silent(now - self.after)
        for call_id in [c for c in self._next_allowed if c not in silent]:
            if self._next_allowed[call_id] <= now and call_id not in self._busy:
                del self._next_allowed[call_id]
        waiting = {h.key: h.id for h in self._calls.waiting(time.monotonic() - self.after)}
        started = []
        for call_id in [*silent, *(c for c in waiting if c not in silent)]:
            if call_id in self._busy or self._next_allowed.get(call_id, 0.0) > now:
                continue
            self._next_allowed[call_id] = now + self.min_interval
            handle = self._calls.get(call_id)
            raw_id = handle.id if handle is not None else waiting.get(call_id, call_id)
            trackers = silent.get(call_id)
            work = (
                self._reconcile_operations(call_id, raw_id, trackers)
                if trackers
                else self._reconcile_call(call_id, raw_id)
            )
            task = asyncio.get_running_loop().create_task(self._one_call(call_id, work))
            self._busy.add(call_id)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started.append(task)
        return started

    async def _one_call(self, call_id: str, work: Awaitable[object]) -> None:
        try:
            await work
        except Exception:
            _log.exception("reconciling call %s failed", call_id)
        finally:
            self._busy.discard(call_id)

    async def _read(self, read: Awaitable[T]) -> T:
        # A cap on read-backs in flight: after a burst of losses (or under overload,
        # when everything looks silent) reconciliation must not multiply the load.
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.max_concurrent)
        async with self._gate:
            return await read

    async def _reconcile_operations(
        self, call_id: str, raw_call: str, trackers: list[OperationTracker[Any]]
    ) -> None:
        read_call = False
        # Types whose read-back Graph answered 404: unreadable only if the call turns out
        # to be alive (a 404 on an ended call's operation says nothing about the type).
        refused: dict[type[CommsOperation], int] = {}
        for tracker in trackers:
            if tracker.done():
                continue
            self._registry.touch(tracker)
            kind = type(tracker.operation)
            op_id = tracker.operation.id or tracker.operation_id
            if op_id is None or kind in self._unreadable:
                read_call = True
                continue
            self._stats.reconciliations += 1
            try:
                data = await self._read(self._actions.read_operation(raw_call, op_id))
            except ResponseError as exc:
                if exc.status in _UNREADABLE and not issubclass(kind, _DOCUMENTED):
                    refused[kind] = exc.status
                # Not readable, or gone: the call says whether anything is alive.
                read_call = True
                continue
            except GraphCommsError as exc:
                _log.warning("reconciling operation %s failed: %s", op_id, exc)
                continue
            if tracker.done():
                continue
            self._registry.apply(call_id, tracker.operation_id, data, deleted=False)
            if tracker.done() and is_terminal(tracker.status):
                self._stats.reconciled += 1
                _log.info(
                    "operation %s recovered by reading it back: %s",
                    op_id,
                    tracker.status,
                    extra=log_extra(tracker),
                )
        if read_call and await self._reconcile_call(call_id, raw_call):
            for kind, status in refused.items():
                self._not_readable(kind, status)

    def _not_readable(self, kind: type[CommsOperation], status: int) -> None:
        if kind not in self._unreadable:
            self._unreadable.add(kind)
            _log.info(
                "Graph does not read back %s (%d): a lost notification for one ends it"
                " only when its call ends or at its own deadline (operation_timeout)",
                kind.__name__,
                status,
            )

    async def _reconcile_call(self, call_id: str, raw_call: str) -> bool:
        """Read the call back and apply it; True when Graph says it is still live."""
        handle = self._calls.get(call_id)
        if handle is None:
            return False
        self._stats.reconciliations += 1
        try:
            call = await self._read(self._actions.get_call(raw_call))
        except NotFoundError:
            _log.info("call %s is gone (404); failing its operations", raw_call)
            self._calls.apply_read(handle, None)
            return False
        except GraphCommsError as exc:
            _log.warning("reconciling call %s failed: %s", raw_call, exc)
            return False
        self._calls.apply_read(handle, call)
        return not handle.ended
