"""``OperationTracker``: one Graph operation, from its action's response to its end.

The tracker is resolved exactly once: with a terminal snapshot (success or failure), or
with an error when the call ends, the client closes, or its own deadline passes. It
composes an ``asyncio.Future`` (created only when somebody waits) and never
subclasses one, so cancelling a waiter never cancels the operation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from types import TracebackType
from typing import Any, Generic, TypeVar

from graphcomms._events import CallbackRunner, Channel
from graphcomms.errors import InvalidRequestError, OperationFailedError
from graphcomms.models import CommsOperation, OperationStatus, is_success

__all__ = ["CancelHook", "DoneCallback", "OperationTracker", "log_extra"]

OpT = TypeVar("OpT", bound=CommsOperation)

DoneCallback = Callable[["OperationTracker[Any]"], Any]
"""``fn(tracker)``, sync or async; called once when the tracker resolves."""

CancelHook = Callable[[], Awaitable[object]]

_log = logging.getLogger("graphcomms.tracking")


class OperationTracker(Generic[OpT]):
    """Follows one operation to its terminal status.

    You get one by awaiting (or entering) the :class:`~graphcomms.PendingAction` an
    action method returns, once Graph has accepted the action.

    ``await tracker`` returns the terminal operation when it succeeded and raises
    :class:`~graphcomms.errors.OperationFailedError` (carrying it) when it did not.
    ``await tracker.wait()`` returns the terminal operation either way. Both raise
    :class:`~graphcomms.errors.CallEndedError` when the call ended first and
    :class:`~graphcomms.errors.ClientClosedError` when the client closed first.
    """

    __slots__ = (
        "__weakref__",
        "_callbacks",
        "_cancel_hook",
        "_outcome",
        "_runner",
        "_snapshot",
        "_updates",
        "_waiters",
        "call_id",
        "client_context",
        "late_operation",
        "operation_id",
        "recovered",
    )

    def __init__(
        self,
        *,
        call_id: str,
        client_context: str,
        snapshot: OpT,
        runner: CallbackRunner,
        cancel_hook: CancelHook | None = None,
    ) -> None:
        self.call_id = call_id
        """The call's id, normalised (lower case, no hyphens)."""
        self.client_context = client_context
        self.operation_id: str | None = None
        """Graph's operation id, normalised; ``None`` until known (or never, see Graph's
        beta transcription actions), in which case ``client_context`` correlates.
        """
        self.late_operation: OpT | None = None
        """A terminal snapshot that arrived after the tracker's own deadline had failed
        it; recorded so that a late outcome is never silently dropped.
        """
        self.recovered = False
        """True for a tracker a fleet instance recovered after a restart or adopted
        from a lost instance: its outcome may have been seen before the crash."""
        self._snapshot: OpT = snapshot
        self._runner = runner
        self._cancel_hook = cancel_hook
        self._outcome: OpT | BaseException | None = None
        # One future per waiting task, made when it starts waiting: cancelling one task
        # cancels only its own future, never the operation or another waiter.
        self._waiters: list[asyncio.Future[None]] | None = None
        self._callbacks: list[DoneCallback] | None = None
        self._updates: Channel[OpT] | None = None

    # -- reading -------------------------------------------------------------------

    @property
    def operation(self) -> OpT:
        """The latest snapshot Graph sent (the terminal one once done)."""
        return self._snapshot

    @property
    def status(self) -> OperationStatus | str | None:
        return self._snapshot.status

    def done(self) -> bool:
        return self._outcome is not None

    def succeeded(self) -> bool:
        """True when done with a terminal snapshot that is a success."""
        outcome = self._outcome
        return isinstance(outcome, CommsOperation) and is_success(outcome)

    def result(self) -> OpT:
        """The terminal operation if it succeeded; raises as ``await`` does.

        Raises ``asyncio.InvalidStateError`` while not done.
        """
        outcome = self._outcome
        if outcome is None:
            raise asyncio.InvalidStateError("operation is not done")
        if isinstance(outcome, BaseException):
            raise outcome
        if not is_success(outcome):
            raise OperationFailedError(outcome)
        return outcome

    # -- waiting -------------------------------------------------------------------

    async def wait(self, timeout: float | None = None) -> OpT:
        """The terminal operation, success or failure. No hidden default timeout.

        Raises the builtin ``TimeoutError`` when ``timeout`` seconds pass first; the
        operation goes on being tracked and a later ``wait`` can still see its end.
        Cancelling the waiting task cancels only that wait.
        """
        if self._outcome is None:
            waiter = self._new_waiter()
            try:
                if timeout is None:
                    await waiter
                else:
                    done, _ = await asyncio.wait((waiter,), timeout=timeout)
                    if not done:
                        raise TimeoutError(
                            f"operation {self.operation_id or self.client_context} on call "
                            f"{self.call_id} not done after {timeout} s (still tracked)"
                        )
            finally:
                self._forget_waiter(waiter)
        outcome = self._outcome
        assert outcome is not None
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def __await__(self) -> Generator[Any, None, OpT]:
        # A generator rather than a coroutine around wait(): one frame fewer per await.
        if self._outcome is None:
            waiter = self._new_waiter()
            try:
                yield from waiter
            finally:
                self._forget_waiter(waiter)
        return self.result()

    def _new_waiter(self) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = [waiter]
        else:
            self._waiters.append(waiter)
        return waiter

    def _forget_waiter(self, waiter: asyncio.Future[None]) -> None:
        waiters = self._waiters
        if waiters is not None:  # still pending: this waiter gave up (cancelled, timed out)
            waiters.remove(waiter)
            waiter.cancel()

    def add_done_callback(self, fn: DoneCallback) -> None:
        """Call ``fn(tracker)`` once resolved (at once, soon, when already done).

        ``fn`` may be sync or async. It runs outside notification ingestion; if it
        raises, the error is logged and nothing else is affected.
        """
        if self._outcome is not None:
            self._runner.run(fn, self)
            return
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(fn)

    def remove_done_callback(self, fn: DoneCallback) -> bool:
        if self._callbacks and fn in self._callbacks:
            self._callbacks.remove(fn)
            return True
        return False

    def updates(self) -> AsyncIterator[OpT]:
        """Every snapshot from now on, ending after the terminal one.

        Ends by raising ``CallEndedError`` or ``ClientClosedError`` when the tracker
        is resolved by those instead. Already done: yields the terminal snapshot once.
        """
        if self._outcome is not None:
            return _replay(self._outcome)
        if self._updates is None:
            self._updates = Channel(self._runner)
        return self._updates.subscribe()

    # -- cancelling ----------------------------------------------------------------

    @property
    def cancellable(self) -> bool:
        return self._cancel_hook is not None

    async def cancel(self) -> bool:
        """Ask Graph to stop this media operation (``cancelMediaProcessing``).

        Graph cancels *every* queued or running media operation on the call. The
        tracker resolves from the notification that follows, as a failure. Returns
        ``False`` when already done. Raises ``InvalidRequestError`` for operations that
        ``cancelMediaProcessing`` does not stop.
        """
        if self._outcome is not None:
            return False
        if self._cancel_hook is None:
            raise InvalidRequestError(
                f"{type(self._snapshot).__name__} cannot be cancelled by cancelMediaProcessing"
            )
        await self._cancel_hook()
        return True

    async def __aenter__(self) -> OperationTracker[OpT]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Leaving the block before the operation ended cancels it server-side."""
        if self._outcome is None and self._cancel_hook is not None:
            try:
                await self.cancel()
            except Exception:
                # The block's own exception matters more than a failed cleanup.
                _log.warning(
                    "cancelMediaProcessing failed on leaving the block",
                    exc_info=True,
                    extra=log_extra(self),
                )

    # -- driven by the registry ----------------------------------------------------

    def _bind(self, operation_id: str) -> None:
        """Graph named the operation (normalised id)."""
        self.operation_id = operation_id

    def _record_late(self, snapshot: OpT) -> None:
        """A terminal snapshot after the tracker's own deadline failed it."""
        self.late_operation = snapshot

    def _update(self, snapshot: OpT) -> None:
        """A newer non-terminal snapshot."""
        self._snapshot = snapshot
        if self._updates is not None:
            self._updates.publish(snapshot)

    def _resolve(self, outcome: OpT | BaseException) -> None:
        """Resolve exactly once; the registry guarantees the once, this asserts it."""
        assert self._outcome is None, "tracker resolved twice"
        self._outcome = outcome
        updates = self._updates
        if isinstance(outcome, CommsOperation):
            self._snapshot = outcome
            if updates is not None:
                updates.publish(outcome)
                updates.close()
        elif updates is not None:
            updates.close(outcome)
        waiters = self._waiters
        if waiters is not None:
            self._waiters = None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)
        callbacks = self._callbacks
        if callbacks:
            self._callbacks = None
            for fn in callbacks:
                self._runner.run(fn, self)

    def __repr__(self) -> str:
        state = "done" if self._outcome is not None else "pending"
        return (
            f"<OperationTracker {type(self._snapshot).__name__} {state} "
            f"status={self.status!s} call={self.call_id} id={self.operation_id} "
            f"context={self.client_context}>"
        )


def log_extra(tracker: OperationTracker[Any]) -> dict[str, Any]:
    """The ids a log record about ``tracker``'s operation carries as attributes."""
    return {
        "call_id": tracker.call_id,
        "operation_id": tracker.operation_id,
        "client_context": tracker.client_context,
    }


async def _replay(outcome: OpT | BaseException) -> AsyncIterator[OpT]:
    if isinstance(outcome, BaseException):
        raise outcome
    yield outcome
