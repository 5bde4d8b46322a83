"""Recovering lost notifications.

Graph does not promise to deliver every notification (reference §5.6; users report
ones that never arrive). A tracker Graph has been silent about for ``after`` seconds is
reconciled: graphcomms reads the operation back (``GET .../operations/{id}``) and,
where Graph will not answer that (it documents the GET for one operation type only),
reads the call. A call somebody has waited on (``wait_for_state``) for ``after``
seconds is read back too, so a lost ``established`` or ``deleted`` is recovered. A
404 on the call means it is gone: its trackers fail with ``CallEndedError``. Each call
is reconciled at most once per ``min_interval``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from graphcomms._events import cancel_and_wait
from graphcomms._registry import OperationRegistry
from graphcomms._tracker import OperationTracker
from graphcomms.errors import GraphCommsError, NotFoundError, ResponseError
from graphcomms.models import Call, CommsOperation, is_terminal

if TYPE_CHECKING:
    from graphcomms._registry import ClientStats

__all__ = ["Reconciler"]

_log = logging.getLogger("graphcomms.reconcile")


class Reconciler:
    """Owned by the client; ``run()`` is its task, ``reconcile_once()`` one pass."""

    def __init__(
        self,
        *,
        registry: OperationRegistry,
        stats: ClientStats,
        get_operation: Callable[[str, str], Awaitable[CommsOperation]],
        get_call: Callable[[str], Awaitable[Call]],
        call_read: Callable[[str, Call | None], None],
        waiting_calls: Callable[[float], list[str]],
        raw_call_id: Callable[[str], str],
        after: float,
        min_interval: float,
        max_concurrent: int = 8,
    ) -> None:
        self._registry = registry
        self._stats = stats
        self._get_operation = get_operation
        self._get_call = get_call
        self._call_read = call_read
        self._waiting_calls = waiting_calls
        self._raw_call_id = raw_call_id
        self.after = after
        self.min_interval = min_interval
        self.max_concurrent = max_concurrent
        self._next_allowed: dict[str, float] = {}
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._gate: asyncio.Semaphore | None = None

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
        silent = self._registry.silent(now - self.after)
        for call_id in [c for c in self._next_allowed if c not in silent]:
            if self._next_allowed[call_id] <= now and call_id not in self._busy:
                del self._next_allowed[call_id]
        waiting = self._waiting_calls(time.monotonic() - self.after)
        started = []
        for call_id in [*silent, *(c for c in waiting if c not in silent)]:
            if call_id in self._busy or self._next_allowed.get(call_id, 0.0) > now:
                continue
            self._next_allowed[call_id] = now + self.min_interval
            trackers = silent.get(call_id)
            work = (
                self._reconcile_call(call_id, trackers)
                if trackers
                else self._reconcile_call_state(call_id, self._raw_call_id(call_id))
            )
            task = asyncio.get_running_loop().create_task(self._one_call(call_id, work))
            self._busy.add(call_id)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            started.append(task)
        return started

    async def _one_call(self, call_id: str, work: Awaitable[None]) -> None:
        try:
            await work
        except Exception:
            _log.exception("reconciling call %s failed", call_id)
        finally:
            self._busy.discard(call_id)

    async def _read(self, read: Awaitable[Any]) -> Any:
        # A cap on read-backs in flight: after a burst of losses (or under overload,
        # when everything looks silent) reconciliation must not multiply the load.
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.max_concurrent)
        async with self._gate:
            return await read

    async def _reconcile_call(self, call_id: str, trackers: list[OperationTracker[Any]]) -> None:
        raw_call = self._raw_call_id(call_id)
        check_call = False
        for tracker in trackers:
            if tracker.done():
                continue
            self._registry.touch(tracker)
            op_id = tracker.operation.id or tracker.operation_id
            if op_id is None:
                check_call = True
                continue
            self._stats.reconciliations += 1
            try:
                snapshot = await self._read(self._get_operation(raw_call, op_id))
            except ResponseError as exc:
                # 404: gone (or never readable); 400/405/501: not supported for this
                # type. Either way the call says whether anything is still alive.
                _log.debug("reading operation %s back failed: %s", op_id, exc.status)
                check_call = True
                continue
            except GraphCommsError as exc:
                _log.warning("reconciling operation %s failed: %s", op_id, exc)
                continue
            if tracker.done():
                continue
            self._registry.apply(call_id, tracker.operation_id, snapshot, deleted=False)
            if tracker.done() and is_terminal(snapshot.status):
                self._stats.reconciled += 1
                _log.info(
                    "operation %s recovered by reading it back: %s",
                    op_id,
                    snapshot.status,
                    extra=tracker._log_extra(),
                )
        if check_call:
            await self._reconcile_call_state(call_id, raw_call)

    async def _reconcile_call_state(self, call_id: str, raw_call: str) -> None:
        self._stats.reconciliations += 1
        try:
            call = await self._read(self._get_call(raw_call))
        except NotFoundError:
            _log.info("call %s is gone (404); failing its operations", raw_call)
            self._call_read(call_id, None)
            return
        except GraphCommsError as exc:
            _log.warning("reconciling call %s failed: %s", raw_call, exc)
            return
        self._call_read(call_id, call)
