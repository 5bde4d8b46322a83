"""Pending trackers, early notifications, and the memory of recently finished work.

Every method is O(1) in the number of pending operations (dict and ordered-dict
operations only), so the cost of a notification does not grow with the load.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Any

import attrs

from graphcomms._routing import normalize_id
from graphcomms._tracker import OperationTracker
from graphcomms.errors import (
    CallEndedError,
    ClientClosedError,
    InvalidRequestError,
    OperationTimeoutError,
)
from graphcomms.models import TERMINAL_STATUSES, CommsOperation, ResultInfo, is_success

__all__ = ["ClientStats", "OperationRegistry"]

_log = logging.getLogger("graphcomms.tracking")

LateResultHook = Callable[[OperationTracker[Any], CommsOperation], Any]


@attrs.define(slots=True)
class ClientStats:
    """Counters an operator reads to see what the notification stream is doing.

    ``pending`` and ``early_pending`` are current sizes; the rest count since start.
    """

    pending: int = 0
    resolved: int = 0  # terminal and a success
    failed: int = 0  # terminal and not a success
    call_ended: int = 0  # failed with CallEndedError
    timed_out: int = 0  # failed at the tracker's own deadline
    closed: int = 0  # failed because the client closed
    duplicates: int = 0  # operation notifications after the operation had finished
    early_buffered: int = 0  # notifications for an operation not yet known
    early_applied: int = 0
    early_expired: int = 0  # dropped from the early buffer by age or by its size limit
    early_pending: int = 0
    late_results: int = 0  # terminal snapshots after the tracker's deadline
    notifications: int = 0  # items fed
    unmatched: int = 0  # items about resources graphcomms does not follow
    bad_items: int = 0  # items that could not be parsed (logged)
    callback_errors: int = 0
    reconciliations: int = 0  # GETs made for trackers Graph had gone silent about
    reconciled: int = 0  # trackers those GETs resolved (lost notifications recovered)


@attrs.define(slots=True, eq=False)
class _Early:
    call_id: str
    operation_id: str | None
    client_context: str | None
    snapshots: list[tuple[CommsOperation, bool]]
    born: float


class _CallTrackers:
    """One call's trackers, for failing them when the call ends.

    A tracker is appended when registered and not removed when it finishes: only
    ``live`` goes down. That spares every resolution a write into a large table; the
    list is compacted when finished trackers outnumber live ones, so it stays within
    twice the call's pending count (amortised O(1) per registration).
    """

    __slots__ = ("live", "trackers")

    def __init__(self) -> None:
        self.trackers: list[OperationTracker[Any]] = []
        self.live = 0


class OperationRegistry:
    """Where the ingestion finds the tracker a notification is about."""

    def __init__(
        self,
        *,
        stats: ClientStats | None = None,
        early_limit: int = 10_000,
        early_ttl: float = 60.0,
        recent_limit: int = 100_000,
        late_grace: float = 300.0,
        on_late_result: LateResultHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stats = stats if stats is not None else ClientStats()
        self._early_limit = early_limit
        self._early_ttl = early_ttl
        self._recent_limit = recent_limit
        self._late_grace = late_grace
        self._on_late_result = on_late_result
        self._clock = clock
        # Pending trackers by operation id and by client context; and, for the grace
        # window, finished work: an entry whose value is a float (its expiry time) in
        # place of the tracker, so that a late duplicate is counted rather than buffered
        # as early. Overwriting the entry the lookup has just found costs a good deal
        # less than deleting it and inserting the key into another dict, and this is on
        # every resolution. One deque holds the finished entries' order of expiry.
        self._by_id: dict[str, OperationTracker[Any] | float] = {}
        self._by_context: dict[str, OperationTracker[Any] | float] = {}
        self._by_call: dict[str, _CallTrackers] = {}
        self._timers: dict[OperationTracker[Any], asyncio.TimerHandle] = {}
        # Keys are ("i", operation id) and ("c", client context).
        self._early: dict[tuple[str, str], _Early] = {}
        self._early_order: OrderedDict[int, _Early] = OrderedDict()
        # Flat triples (expiry, operation id or None, client context): no tuple, which
        # the cyclic GC would track, per resolution.
        self._recent_order: deque[Any] = deque()
        # Timed-out trackers, by both keys, for the late-result grace window.
        self._timed_out: dict[str, OperationTracker[Any]] = {}
        self._closed = False

    # -- registering ---------------------------------------------------------------

    def expect(self, tracker: OperationTracker[Any], *, timeout: float | None = None) -> None:
        """Register ``tracker`` under its client context, before its POST is sent, so a
        notification that overtakes the HTTP response still finds it."""
        if self._closed:
            raise ClientClosedError("the client is closed")
        ctx = tracker.client_context
        held = self._by_context.get(ctx)
        if held is not None and not isinstance(held, float):
            raise InvalidRequestError(
                f"clientContext {ctx!r} is already in use by a pending operation; it must be unique"
            )
        self._by_context[ctx] = tracker
        tracker._touched = self._clock()
        of_call = self._by_call.get(tracker.call_id)
        if of_call is None:
            of_call = self._by_call[tracker.call_id] = _CallTrackers()
        elif len(of_call.trackers) > 2 * of_call.live + 16:
            of_call.trackers = [t for t in of_call.trackers if self._pending(t)]
        of_call.trackers.append(tracker)
        of_call.live += 1
        self.stats.pending += 1
        if timeout is not None:
            self._timers[tracker] = asyncio.get_running_loop().call_later(
                timeout, self._deadline, tracker, timeout
            )

    def discard(self, tracker: OperationTracker[Any]) -> None:
        """Forget a tracker whose request failed; it was never handed to the user."""
        if not tracker.done() and self._forget(tracker, None):
            self.stats.pending -= 1

    def bind(
        self, tracker: OperationTracker[Any], operation_id: str | None, response: CommsOperation
    ) -> None:
        """Apply the action's response, index the operation id, replay early snapshots.

        A response that is already terminal resolves the tracker now: Graph sends no
        notification for it.
        """
        if tracker.done():
            # Resolved before its response (a notification overtook it, or the call
            # ended): what was buffered under its id is now a duplicate.
            for early in self._take_early(operation_id, tracker.client_context):
                self.stats.duplicates += len(early.snapshots)
            return
        if operation_id is not None and tracker.operation_id is None:
            tracker.operation_id = operation_id
            self._by_id[operation_id] = tracker
        self.advance(tracker, response, deleted=False)
        for early in self._take_early(operation_id, tracker.client_context):
            self.stats.early_applied += 1
            for snapshot, deleted in early.snapshots:
                if tracker.done():
                    self.stats.duplicates += 1
                else:
                    self.advance(tracker, snapshot, deleted)

    # -- notifications -------------------------------------------------------------

    def apply(
        self, call_id: str, operation_id: str | None, snapshot: CommsOperation, *, deleted: bool
    ) -> None:
        """Route one operation snapshot from a notification.

        ``operation_id`` comes from the resource URL (normalised); the snapshot's own
        ``id`` and ``clientContext`` are the fallbacks.
        """
        by_id = self._by_id
        held = by_id.get(operation_id) if operation_id is not None else None
        finished = isinstance(held, float)
        tracker = None if isinstance(held, float) else held
        if tracker is None and snapshot.id:
            # The URL named no operation we know (or none at all): try the body's id.
            body_id = normalize_id(snapshot.id)
            if body_id != operation_id:
                held = by_id.get(body_id)
                if isinstance(held, float):
                    finished = True
                else:
                    tracker = held
            if operation_id is None:
                operation_id = body_id
        ctx = snapshot.client_context
        if tracker is None and ctx:
            held = self._by_context.get(ctx)
            if isinstance(held, float):
                finished = True
            else:
                tracker = held
        if tracker is not None:
            if tracker.operation_id is None and operation_id is not None:
                tracker.operation_id = operation_id
                by_id[operation_id] = tracker
            self.advance(tracker, snapshot, deleted)
            return
        if finished:
            late = self._timed_out.get(ctx) if ctx else None
            if late is None and operation_id is not None:
                late = self._timed_out.get(operation_id)
            self._after_finish(late, snapshot, deleted)
            return
        self._buffer(call_id, operation_id, ctx, snapshot, deleted)

    def pending_by_id(self, operation_id: str) -> OperationTracker[Any] | None:
        """The pending tracker bound to ``operation_id`` (normalised), if any."""
        held = self._by_id.get(operation_id)
        return None if isinstance(held, float) else held

    def advance(
        self, tracker: OperationTracker[Any], snapshot: CommsOperation, deleted: bool
    ) -> None:
        """Apply a snapshot to a pending tracker: finish it when terminal. A ``deleted``
        operation notification is Graph's "this operation is over", whatever its status
        says."""
        if deleted or snapshot.status in TERMINAL_STATUSES:
            self._finish(tracker, snapshot)
        else:
            tracker._touched = self._clock()
            tracker._update(snapshot)

    def fail_call(self, call_id: str, result_info: ResultInfo | None) -> int:
        """Fail every pending tracker of the call with ``CallEndedError``."""
        of_call = self._by_call.get(call_id)
        if of_call is None:
            return 0
        failed = 0
        for tracker in [t for t in of_call.trackers if self._pending(t)]:
            self.stats.call_ended += 1
            self._finish(
                tracker,
                CallEndedError(
                    call_id=call_id, result_info=result_info, operation=tracker.operation
                ),
            )
            failed += 1
        return failed

    def close(self) -> None:
        """Fail everything pending with ``ClientClosedError`` and hold nothing more."""
        if self._closed:
            return
        self._closed = True
        for held in list(self._by_context.values()):
            if not isinstance(held, float):
                self.stats.closed += 1
                self._finish(held, ClientClosedError("the client was closed"))
        self._early.clear()
        self._early_order.clear()
        self._by_id.clear()
        self._by_context.clear()
        self._recent_order.clear()
        self._timed_out.clear()
        self.stats.early_pending = 0

    def sweep(self) -> None:
        """Drop early snapshots and finished-work memory past their age."""
        now = self._clock()
        self._expire_early(now)
        self._expire_recent(now)

    def silent(self, older_than: float) -> dict[str, list[OperationTracker[Any]]]:
        """Pending trackers, by call, that heard nothing since ``older_than`` (registry
        clock). A periodic scan, not a per-notification cost."""
        found: dict[str, list[OperationTracker[Any]]] = {}
        for call_id, of_call in self._by_call.items():
            quiet = [t for t in of_call.trackers if t._touched <= older_than and self._pending(t)]
            if quiet:
                found[call_id] = quiet
        return found

    def touch(self, tracker: OperationTracker[Any]) -> None:
        tracker._touched = self._clock()

    @property
    def clock(self) -> Callable[[], float]:
        return self._clock

    @property
    def holds_nothing(self) -> bool:
        """True when no tracker, timer or early snapshot is held (finished-work memory
        aside: it is bounded and expires). A scan, for tests and diagnostics."""
        if self._by_call or self._timers or self._early:
            return False
        return all(
            held.__class__ is float
            for held in (*self._by_id.values(), *self._by_context.values())
        )

    # -- internals -----------------------------------------------------------------

    def _finish(
        self, tracker: OperationTracker[Any], outcome: CommsOperation | BaseException
    ) -> None:
        expires = self._clock() + self._late_grace
        if not self._forget(tracker, expires):
            return
        stats = self.stats
        stats.pending -= 1
        op_id, ctx = tracker.operation_id, tracker.client_context
        if isinstance(outcome, CommsOperation):
            if is_success(outcome):
                stats.resolved += 1
            else:
                stats.failed += 1
        elif isinstance(outcome, OperationTimeoutError):
            # Kept by both keys for the grace window: a late result may name either.
            self._timed_out[ctx] = tracker
            if op_id is not None:
                self._timed_out[op_id] = tracker
        # Queue the memory _forget left, and expire what is due: lazily, here, on every
        # resolution (O(1) amortised), so the grace window holds without a sweeper task;
        # and bound the count besides.
        order = self._recent_order
        now = expires - self._late_grace
        if order and order[0] <= now:
            self._expire_recent(now)
        if self._early_order:
            # Early notifications nobody claimed expire here too, not only when another
            # early one arrives.
            self._expire_early(now)
        order.append(expires)
        order.append(op_id)
        order.append(ctx)
        if len(order) > 3 * self._recent_limit:  # three entries each
            popleft = order.popleft
            self._forget_recent(popleft(), popleft(), popleft())
        if _log.isEnabledFor(logging.DEBUG):  # the extra dict is not free
            _log.debug(
                "operation %s on call %s resolved: %s",
                op_id or ctx,
                tracker.call_id,
                outcome if isinstance(outcome, BaseException) else outcome.status,
                extra=tracker._log_extra(),
            )
        tracker._resolve(outcome)

    def _pending(self, tracker: OperationTracker[Any]) -> bool:
        return self._by_context.get(tracker.client_context) is tracker

    def _forget(self, tracker: OperationTracker[Any], expires: float | None) -> bool:
        """Unregister a pending tracker: its index entries become finished-work memory
        that expires at ``expires``, or go at once when that is ``None``. False when
        the tracker was not pending."""
        by_context, ctx = self._by_context, tracker.client_context
        if by_context.get(ctx) is not tracker:
            return False
        op_id = tracker.operation_id
        if op_id is not None:
            held = self._by_id.get(op_id)
            if held is tracker or held is None or held.__class__ is float:
                if expires is not None:
                    self._by_id[op_id] = expires
                elif held is not None:
                    del self._by_id[op_id]
        if expires is not None:
            by_context[ctx] = expires
        else:
            del by_context[ctx]
        of_call = self._by_call.get(tracker.call_id)
        if of_call is not None:
            of_call.live -= 1
            if of_call.live <= 0:
                del self._by_call[tracker.call_id]
        if self._timers:
            timer = self._timers.pop(tracker, None)
            if timer is not None:
                timer.cancel()
        return True

    def _expire_recent(self, now: float) -> None:
        order = self._recent_order
        popleft = order.popleft
        while order and order[0] <= now:
            self._forget_recent(popleft(), popleft(), popleft())

    def _forget_recent(self, expires: float, op_id: str | None, ctx: str) -> None:
        # Only the very entry this one made: an id or context remembered again since,
        # or pending again (a reused context), holds another object.
        by_id, by_context, timed_out = self._by_id, self._by_context, self._timed_out
        if op_id is not None and by_id.get(op_id) is expires:
            del by_id[op_id]
            if timed_out:
                timed_out.pop(op_id, None)
        if by_context.get(ctx) is expires:
            del by_context[ctx]
            if timed_out:
                timed_out.pop(ctx, None)

    def _after_finish(
        self, tracker: OperationTracker[Any] | None, snapshot: CommsOperation, deleted: bool
    ) -> None:
        if (
            tracker is not None
            and tracker.late_operation is None
            and (deleted or snapshot.status in TERMINAL_STATUSES)
        ):
            tracker.late_operation = snapshot
            self.stats.late_results += 1
            _log.warning(
                "operation %s ended after its deadline: %s",
                tracker.operation_id or tracker.client_context,
                snapshot.status,
                extra=tracker._log_extra(),
            )
            if self._on_late_result is not None:
                tracker._runner.run(self._on_late_result, tracker, snapshot)
            return
        self.stats.duplicates += 1

    def _deadline(self, tracker: OperationTracker[Any], timeout: float) -> None:
        self._timers.pop(tracker, None)
        if tracker.done():
            return
        self.stats.timed_out += 1
        self._finish(
            tracker,
            OperationTimeoutError(
                f"operation {tracker.operation_id or tracker.client_context} on call "
                f"{tracker.call_id} had no terminal status after {timeout} s",
                operation=tracker.operation,
            ),
        )

    def _buffer(
        self,
        call_id: str,
        operation_id: str | None,
        ctx: str | None,
        snapshot: CommsOperation,
        deleted: bool,
    ) -> None:
        keys = []
        if operation_id is not None:
            keys.append(("i", operation_id))
        if ctx:
            keys.append(("c", ctx))
        if not keys:
            self.stats.unmatched += 1
            return
        now = self._clock()
        self._expire_early(now)
        entry = next((e for k in keys if (e := self._early.get(k)) is not None), None)
        if entry is not None:
            entry.snapshots.append((snapshot, deleted))
            return
        entry = _Early(call_id, operation_id, ctx, [(snapshot, deleted)], now)
        for key in keys:
            self._early[key] = entry
        self._early_order[id(entry)] = entry
        self.stats.early_buffered += 1
        self.stats.early_pending += 1
        if len(self._early_order) > self._early_limit:
            self._drop_early(next(iter(self._early_order.values())))

    def _expire_early(self, now: float) -> None:
        limit = now - self._early_ttl
        while self._early_order:
            oldest = next(iter(self._early_order.values()))
            if oldest.born > limit:
                break
            self._drop_early(oldest)

    def _drop_early(self, entry: _Early) -> None:
        self._unlink_early(entry)
        self.stats.early_expired += 1

    def _unlink_early(self, entry: _Early) -> None:
        self._early_order.pop(id(entry), None)
        if entry.operation_id is not None:
            self._early.pop(("i", entry.operation_id), None)
        if entry.client_context:
            self._early.pop(("c", entry.client_context), None)
        self.stats.early_pending -= 1

    def _take_early(self, operation_id: str | None, ctx: str) -> list[_Early]:
        if not self._early:
            return []
        found: list[_Early] = []
        for key in (("i", operation_id) if operation_id else None, ("c", ctx)):
            if key is None:
                continue
            entry = self._early.get(key)
            if entry is not None and entry not in found:
                found.append(entry)
                self._unlink_early(entry)
        return found
