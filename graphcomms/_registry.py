"""Where ingestion finds the tracker a notification is about.

The registry owns one record per pending operation, indexed by normalised operation id,
by client context and by call; a memory of recently finished work (so that a
redelivered notification is counted as a duplicate, never mistaken for an early one);
and a bounded buffer of notifications for operations not yet known. Every method that
runs per notification is O(1) in the number of pending operations.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from graphcomms._converter import structure_operation
from graphcomms._events import CallbackRunner
from graphcomms._routing import normalize_id
from graphcomms._settings import Limits
from graphcomms._stats import ClientStats
from graphcomms._tracker import OperationTracker, log_extra
from graphcomms.errors import (
    CallEndedError,
    ClientClosedError,
    InvalidRequestError,
    OperationTimeoutError,
)
from graphcomms.models import (
    MAX_CLIENT_CONTEXT_LENGTH,
    TERMINAL_STATUSES,
    CommsOperation,
    ResultInfo,
    is_success,
)

if TYPE_CHECKING:
    from graphcomms._fleet_port import FleetPort
    from graphcomms._tracing import Tracing

__all__ = ["LateResultHook", "OperationRegistry"]

_log = logging.getLogger("graphcomms.tracking")

LateResultHook = Callable[[OperationTracker[Any], CommsOperation], Any]
"""``fn(tracker, snapshot)``, sync or async: a terminal snapshot after the deadline."""

Tracker = OperationTracker[Any]


class _Pending:
    """The registry's record of one pending operation."""

    __slots__ = ("deadline", "touched", "tracker")

    def __init__(self, tracker: Tracker, touched: float) -> None:
        self.tracker = tracker
        #: When Graph last said anything about it (registry clock): drives reconciling.
        self.touched = touched
        self.deadline: asyncio.TimerHandle | None = None


class _CallRecords:
    """One call's records, for failing them when the call ends.

    A record is appended when registered and not removed when it finishes: only
    ``live`` goes down. That spares every resolution a write into a large table; the
    list is compacted when finished records outnumber live ones, so it stays within
    twice the call's pending count (amortised O(1) per registration).
    """

    __slots__ = ("live", "records")

    def __init__(self) -> None:
        self.records: list[_Pending] = []
        self.live = 0


class FinishedWork:
    """Operation ids and client contexts of work that ended, each for ``grace`` seconds
    after it ended, at most ``limit`` of them (the oldest go first); and the trackers
    that ended at their own deadline, for a late result in that window."""

    __slots__ = ("_contexts", "_grace", "_ids", "_limit", "_order", "_timed_out")

    def __init__(self, *, grace: float, limit: int) -> None:
        self._grace = grace
        self._limit = limit
        self._ids: dict[str, float] = {}
        self._contexts: dict[str, float] = {}
        # Flat triples (expiry, operation id or None, client context), oldest first:
        # no tuple per entry for the cyclic GC to track.
        self._order: deque[Any] = deque()
        self._timed_out: dict[str, Tracker] = {}

    def __len__(self) -> int:
        return len(self._order) // 3

    def remember(
        self, now: float, operation_id: str | None, ctx: str, timed_out: Tracker | None
    ) -> None:
        """Remember finished work, and forget what is past its grace (O(1) amortised:
        the window holds without a sweeper task)."""
        order = self._order
        while order and order[0] <= now:
            self._forget_oldest()
        expires = now + self._grace
        if operation_id is not None:
            self._ids[operation_id] = expires
        self._contexts[ctx] = expires
        if timed_out is not None:
            # By both keys: a late result may name either.
            self._timed_out[ctx] = timed_out
            if operation_id is not None:
                self._timed_out[operation_id] = timed_out
        order.append(expires)
        order.append(operation_id)
        order.append(ctx)
        if len(order) > 3 * self._limit:
            self._forget_oldest()

    def has_id(self, operation_id: str) -> bool:
        return operation_id in self._ids

    def has_context(self, ctx: str) -> bool:
        return ctx in self._contexts

    def timed_out(self, key: str) -> Tracker | None:
        """The tracker that ended at its deadline under this id or context, if any."""
        return self._timed_out.get(key) if self._timed_out else None

    def expire(self, now: float) -> None:
        order = self._order
        while order and order[0] <= now:
            self._forget_oldest()

    def clear(self) -> None:
        self._ids.clear()
        self._contexts.clear()
        self._order.clear()
        self._timed_out.clear()

    def _forget_oldest(self) -> None:
        popleft = self._order.popleft
        expires, operation_id, ctx = popleft(), popleft(), popleft()
        # Only the entry this one made (`is`: the very float it stored): a context used
        # again since, and finished again, expires later.
        if operation_id is not None and self._ids.get(operation_id) is expires:
            del self._ids[operation_id]
            self._timed_out.pop(operation_id, None)
        if self._contexts.get(ctx) is expires:
            del self._contexts[ctx]
            self._timed_out.pop(ctx, None)


class _Early:
    """Notifications for one operation not yet known."""

    __slots__ = ("born", "call_id", "client_context", "operation_id", "snapshots")

    def __init__(
        self, call_id: str, operation_id: str | None, ctx: str | None, born: float
    ) -> None:
        self.call_id = call_id
        self.operation_id = operation_id
        self.client_context = ctx
        self.snapshots: list[tuple[Mapping[str, Any], bool]] = []
        self.born = born


class EarlyBuffer:
    """Notifications that overtook their action's response, by operation id and by
    client context: at most ``limit`` operations (the oldest go first), each for
    ``ttl`` seconds, each with at most ``per_operation`` snapshots."""

    __slots__ = ("_by_key", "entries", "limit", "per_operation", "stats", "ttl")

    def __init__(self, stats: ClientStats, limits: Limits) -> None:
        self.stats = stats
        self.limit = limits.early_notifications
        self.per_operation = limits.early_snapshots_per_operation
        self.ttl = limits.early_ttl
        # Keys are ("i", operation id) and ("c", client context).
        self._by_key: dict[tuple[str, str], _Early] = {}
        # Insertion order is age order: the oldest entry is first.
        self.entries: dict[int, _Early] = {}

    def add(
        self,
        now: float,
        *,
        call_id: str,
        operation_id: str | None,
        ctx: str | None,
        snapshot: Mapping[str, Any],
        deleted: bool,
    ) -> bool:
        """Keep ``snapshot``; ``False`` when it names no id or context to wait for."""
        keys = []
        if operation_id is not None:
            keys.append(("i", operation_id))
        if ctx:
            keys.append(("c", ctx))
        if not keys:
            return False
        self.expire(now)
        entry = next((e for k in keys if (e := self._by_key.get(k)) is not None), None)
        if entry is None:
            entry = _Early(call_id, operation_id, ctx, now)
            for key in keys:
                self._by_key[key] = entry
            self.entries[id(entry)] = entry
            self.stats.early_buffered += 1
            self.stats.early_pending += 1
            if len(self.entries) > self.limit:
                self._drop(next(iter(self.entries.values())))
        if len(entry.snapshots) >= self.per_operation:
            self.stats.early_dropped += 1
            return True
        entry.snapshots.append((snapshot, deleted))
        return True

    def take(self, operation_id: str | None, ctx: str) -> list[_Early]:
        """What was kept for this operation (and is not about another one)."""
        if not self.entries:
            return []
        found: list[_Early] = []
        by_id = self._by_key.get(("i", operation_id)) if operation_id else None
        if by_id is not None:
            found.append(by_id)
            self._unlink(by_id)
        by_context = self._by_key.get(("c", ctx))
        # The same context under another operation's id is another operation's.
        if by_context is not None and by_context.operation_id in (None, operation_id):
            found.append(by_context)
            self._unlink(by_context)
        return found

    def expire(self, now: float) -> None:
        limit = now - self.ttl
        while self.entries:
            oldest = next(iter(self.entries.values()))
            if oldest.born > limit:
                break
            self._drop(oldest)

    def clear(self) -> None:
        self._by_key.clear()
        self.entries.clear()
        self.stats.early_pending = 0

    def _drop(self, entry: _Early) -> None:
        self._unlink(entry)
        self.stats.early_expired += 1

    def _unlink(self, entry: _Early) -> None:
        del self.entries[id(entry)]
        if entry.operation_id is not None:
            self._by_key.pop(("i", entry.operation_id), None)
        if entry.client_context:
            self._by_key.pop(("c", entry.client_context), None)
        self.stats.early_pending -= 1


class OperationRegistry:
    """Pending operations, finished work and early notifications of one client."""

    def __init__(
        self,
        *,
        stats: ClientStats,
        runner: CallbackRunner,
        limits: Limits | None = None,
        late_grace: float = 300.0,
        on_late_result: LateResultHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        limits = limits if limits is not None else Limits()
        self.stats = stats
        self._runner = runner
        self._on_late_result = on_late_result
        self.clock = clock
        self._by_id: dict[str, _Pending] = {}
        self._by_context: dict[str, _Pending] = {}
        self._by_call: dict[str, _CallRecords] = {}
        self._finished = FinishedWork(grace=late_grace, limit=limits.finished_operations)
        self._early = EarlyBuffer(stats, limits)
        self._closed = False
        #: Set by a client given a tracer provider: notifications and ends go to spans.
        self.tracing: Tracing | None = None
        #: The fleet relay told of each tracker's end (``graphcomms._fleet_port``).
        self.fleet: FleetPort | None = None

    # -- registering ---------------------------------------------------------------

    def expect(self, tracker: Tracker, *, timeout: float | None = None) -> None:
        """Register ``tracker`` under its client context, before its POST is sent, so a
        notification that overtakes the HTTP response still finds it."""
        if self._closed:
            raise ClientClosedError("the client is closed")
        ctx = tracker.client_context
        if ctx in self._by_context:
            raise InvalidRequestError(
                f"clientContext {ctx!r} is already in use by a pending operation; it must be unique"
            )
        record = _Pending(tracker, self.clock())
        self._by_context[ctx] = record
        of_call = self._by_call.get(tracker.call_id)
        if of_call is None:
            of_call = self._by_call[tracker.call_id] = _CallRecords()
        elif len(of_call.records) > 2 * of_call.live + 16:
            of_call.records = [r for r in of_call.records if self._is_pending(r)]
        of_call.records.append(record)
        of_call.live += 1
        self.stats.pending += 1
        if timeout is not None:
            record.deadline = asyncio.get_running_loop().call_later(
                timeout, self.time_out, tracker, timeout
            )

    def discard(self, tracker: Tracker) -> None:
        """Forget a tracker whose request failed; it was never handed to the user."""
        record = self._by_context.get(tracker.client_context)
        if record is not None and record.tracker is tracker:
            self._unregister(record)

    def bind(self, tracker: Tracker, operation_id: str | None, response: CommsOperation) -> None:
        """Apply the action's response, index the operation id, replay early snapshots.

        A response that is already terminal resolves the tracker now: Graph sends no
        notification for it.
        """
        record = self._by_context.get(tracker.client_context)
        if record is None or record.tracker is not tracker:
            # Resolved before its response (a notification overtook it, or the call
            # ended): what was buffered for it is now a duplicate.
            for early in self._early.take(operation_id, tracker.client_context):
                self.stats.duplicates += len(early.snapshots)
            return
        if operation_id is not None and tracker.operation_id is None:
            self._index(record, operation_id)
        self._advance(record, response, deleted=False)
        for early in self._early.take(operation_id, tracker.client_context):
            self.stats.early_applied += 1
            for data, deleted in early.snapshots:
                if not self._is_pending(record):
                    self.stats.duplicates += 1
                    continue
                try:
                    snapshot = structure_operation(data, type(tracker.operation))
                except ValueError as exc:
                    self.stats.bad_items += 1
                    _log.warning("early notification skipped: %s", exc, extra=log_extra(tracker))
                    continue
                if self.tracing is not None:
                    self.tracing.notified(tracker, snapshot, deleted)
                self._advance(record, snapshot, deleted)

    # -- notifications -------------------------------------------------------------

    def apply(
        self, call_id: str, url_id: str | None, data: Mapping[str, Any], *, deleted: bool
    ) -> None:
        """Route one operation snapshot (``resourceData``) from a notification.

        The operation is the one the resource URL names (``url_id``, normalised), else
        the one the snapshot's ``id`` names, else the pending one its ``clientContext``
        names. An id that names finished work makes the item a duplicate, whatever its
        context says. The snapshot is read as the tracker's own operation type.
        Raises ``DeserializationError`` (the tracker untouched) when it does not fit.
        """
        record = self._by_id.get(url_id) if url_id is not None else None
        if record is not None:
            # The usual item: its URL names a pending operation. The general route
            # below would find the same record first, by the same id.
            snapshot = structure_operation(data, type(record.tracker.operation))
            if self.tracing is not None:
                self.tracing.notified(record.tracker, snapshot, deleted)
            self._advance(record, snapshot, deleted)
            return
        body_id = data.get("id")
        body_id = normalize_id(body_id) if isinstance(body_id, str) and body_id else None
        record = None
        for op_id in (url_id, body_id):
            if op_id is None:
                continue
            record = self._by_id.get(op_id)
            if record is not None:
                break
            if self._finished.has_id(op_id):
                self._after_finish(op_id, data, deleted)
                return
        ctx = data.get("clientContext")
        if not isinstance(ctx, str) or not ctx:
            ctx = None
        elif len(ctx) > MAX_CLIENT_CONTEXT_LENGTH:
            self.stats.oversized_contexts += 1  # not one we sent: Graph's limit is 256
            ctx = None
        named = url_id or body_id
        if record is None and ctx is not None:
            record = self._by_context.get(ctx)
            if record is not None:
                bound = record.tracker.operation_id
                if bound is not None and named is not None and bound != named:
                    record = None  # the same context, but another operation
            elif named is None and self._finished.has_context(ctx):
                self._after_finish(ctx, data, deleted)
                return
        if record is None:
            # Read now, as the base type, only to refuse what will never fit: the
            # tracker that claims it later reads it as its own type.
            structure_operation(data, CommsOperation)
            if not self._early.add(
                self.clock(),
                call_id=call_id,
                operation_id=named,
                ctx=ctx,
                snapshot=data,
                deleted=deleted,
            ):
                self.stats.unmatched += 1
            return
        tracker = record.tracker
        snapshot = structure_operation(data, type(tracker.operation))
        if tracker.operation_id is None and named is not None:
            self._index(record, named)
        if self.tracing is not None:
            self.tracing.notified(tracker, snapshot, deleted)
        self._advance(record, snapshot, deleted)

    def fail_call(self, call_id: str, result_info: ResultInfo | None) -> int:
        """Fail every pending tracker of the call with ``CallEndedError``."""
        of_call = self._by_call.get(call_id)
        if of_call is None:
            return 0
        failed = 0
        for record in [r for r in of_call.records if self._is_pending(r)]:
            tracker = record.tracker
            self.stats.call_ended += 1
            self._finish(
                record,
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
        for record in list(self._by_context.values()):
            self.stats.closed += 1
            self._finish(record, ClientClosedError("the client was closed"))
        self._early.clear()
        self._finished.clear()

    # -- for reconciliation and diagnostics ----------------------------------------

    def sweep(self) -> None:
        """Drop early snapshots and finished-work memory past their age."""
        now = self.clock()
        self._early.expire(now)
        self._finished.expire(now)

    def silent(self, older_than: float) -> dict[str, list[Tracker]]:
        """Pending trackers, by call, that heard nothing since ``older_than`` (registry
        clock). A periodic scan, not a per-notification cost."""
        found: dict[str, list[Tracker]] = {}
        for call_id, of_call in self._by_call.items():
            quiet = [
                r.tracker
                for r in of_call.records
                if r.touched <= older_than and self._is_pending(r)
            ]
            if quiet:
                found[call_id] = quiet
        return found

    def touch(self, tracker: Tracker) -> None:
        """Graph was asked about ``tracker``: it is not silent again before long."""
        record = self._by_context.get(tracker.client_context)
        if record is not None and record.tracker is tracker:
            record.touched = self.clock()

    def remembers(
        self, *, operation_id: str | None = None, client_context: str | None = None
    ) -> bool:
        """True while finished work under this id (or context) is remembered."""
        if operation_id is not None:
            return self._finished.has_id(operation_id)
        return client_context is not None and self._finished.has_context(client_context)

    def knows(self, operation_id: str | None, client_context: str | None) -> bool:
        """True if an operation under this id or context is pending here or is
        finished work remembered here (a fleet relay's "is it mine")."""
        if operation_id is not None and (
            operation_id in self._by_id or self._finished.has_id(operation_id)
        ):
            return True
        return client_context is not None and (
            client_context in self._by_context or self._finished.has_context(client_context)
        )

    def time_left(self, tracker: Tracker) -> float | None:
        """Seconds until ``tracker``'s own deadline, or None if it has none (a fleet
        relay stores it, so that a recovered tracker keeps its deadline)."""
        record = self._by_context.get(tracker.client_context)
        if record is None or record.tracker is not tracker or record.deadline is None:
            return None
        return max(record.deadline.when() - asyncio.get_running_loop().time(), 0.0)

    def mark_silent(self, tracker: Tracker) -> None:
        """Treat ``tracker`` as not heard of for ages: the next reconciliation pass
        reads it back (a recovered tracker)."""
        record = self._by_context.get(tracker.client_context)
        if record is not None and record.tracker is tracker:
            record.touched = float("-inf")

    @property
    def finished_remembered(self) -> int:
        """How many finished operations are remembered now."""
        return len(self._finished)

    def records_of_call(self, call_id: str) -> int:
        """Records held for one call, finished ones not yet compacted away included."""
        of_call = self._by_call.get(call_id)
        return len(of_call.records) if of_call is not None else 0

    @property
    def holds_nothing(self) -> bool:
        """True when no tracker, deadline or early snapshot is held (finished-work
        memory aside: it is bounded and expires)."""
        return not (self._by_context or self._by_id or self._by_call or self._early.entries)

    # -- internals -----------------------------------------------------------------

    def _index(self, record: _Pending, operation_id: str) -> None:
        record.tracker._bind(operation_id)
        self._by_id[operation_id] = record

    def _advance(self, record: _Pending, snapshot: CommsOperation, deleted: bool) -> None:
        """A snapshot for a pending operation: the end when terminal. A ``deleted``
        operation notification is Graph's "this operation is over", whatever its status
        says."""
        if deleted or snapshot.status in TERMINAL_STATUSES:
            self._finish(record, snapshot)
        else:
            record.touched = self.clock()
            record.tracker._update(snapshot)

    def _is_pending(self, record: _Pending) -> bool:
        return self._by_context.get(record.tracker.client_context) is record

    def _unregister(self, record: _Pending) -> None:
        tracker = record.tracker
        del self._by_context[tracker.client_context]
        op_id = tracker.operation_id
        if op_id is not None and self._by_id.get(op_id) is record:
            del self._by_id[op_id]
        of_call = self._by_call[tracker.call_id]
        of_call.live -= 1
        if of_call.live <= 0:
            del self._by_call[tracker.call_id]
        if record.deadline is not None:
            record.deadline.cancel()
        self.stats.pending -= 1

    def _finish(self, record: _Pending, outcome: CommsOperation | BaseException) -> None:
        self._unregister(record)
        tracker = record.tracker
        if self.fleet is not None:
            self.fleet.operation_finished(tracker)
        stats = self.stats
        if isinstance(outcome, CommsOperation):
            if is_success(outcome):
                stats.resolved += 1
            else:
                stats.failed += 1
        now = self.clock()
        # Early notifications nobody claimed expire here too, not only when another early
        # one arrives.
        if self._early.entries:
            self._early.expire(now)
        timed_out = tracker if isinstance(outcome, OperationTimeoutError) else None
        self._finished.remember(now, tracker.operation_id, tracker.client_context, timed_out)
        if _log.isEnabledFor(logging.DEBUG):  # the extra dict is not free
            _log.debug(
                "operation %s on call %s resolved: %s",
                tracker.operation_id or tracker.client_context,
                tracker.call_id,
                outcome if isinstance(outcome, BaseException) else outcome.status,
                extra=log_extra(tracker),
            )
        if self.tracing is not None:
            self.tracing.finished(tracker, outcome)
        tracker._resolve(outcome)

    def _after_finish(self, key: str, data: Mapping[str, Any], deleted: bool) -> None:
        """An item about finished work: a late result if its tracker ended at its
        deadline and it is terminal, else a duplicate."""
        tracker = self._finished.timed_out(key)
        if tracker is not None and tracker.late_operation is None:
            snapshot = structure_operation(data, type(tracker.operation))
            if deleted or snapshot.status in TERMINAL_STATUSES:
                tracker._record_late(snapshot)
                self.stats.late_results += 1
                _log.warning(
                    "operation %s ended after its deadline: %s",
                    tracker.operation_id or tracker.client_context,
                    snapshot.status,
                    extra=log_extra(tracker),
                )
                if self._on_late_result is not None:
                    self._runner.run(self._on_late_result, tracker, snapshot)
                return
        self.stats.duplicates += 1

    def time_out(self, tracker: Tracker, timeout: float) -> None:
        """``tracker``'s own deadline (``timeout`` seconds) passed: fail it with
        ``OperationTimeoutError`` if it is still pending."""
        record = self._by_context.get(tracker.client_context)
        if record is None or record.tracker is not tracker:
            return
        record.deadline = None
        self.stats.timed_out += 1
        unconfirmed = (
            " (recovered, but its previous process died before Graph answered the action:"
            " Graph may never have received it)"
            if tracker.recovered and tracker.operation_id is None
            else ""
        )
        self._finish(
            record,
            OperationTimeoutError(
                f"operation {tracker.operation_id or tracker.client_context} on call "
                f"{tracker.call_id} had no terminal status after {timeout:g} s{unconfirmed}",
                operation=tracker.operation,
            ),
        )
