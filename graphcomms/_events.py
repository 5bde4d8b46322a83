"""Fan-out of events to user callbacks and async iterators.

One mechanism serves tracker updates, call states, tones, roster changes and incoming
calls. User code never runs inside ingestion: sync callbacks are queued with
``loop.call_soon``, async ones become tasks that the client owns and cancels on close.
A callback that raises is logged, never propagated.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Generic, Protocol, TypeVar

__all__ = ["CallbackRunner", "Channel", "cancel_and_wait"]

T = TypeVar("T")

_log = logging.getLogger("graphcomms.callbacks")


class _ErrorCounter(Protocol):
    """Where failed callbacks are counted: the client's ``ClientStats``."""

    callback_errors: int


class CallbackRunner:
    """Runs user callbacks outside the caller's stack and keeps their tasks."""

    __slots__ = ("_stats", "_tasks")

    def __init__(self, stats: _ErrorCounter | None = None) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stats = stats

    def run(self, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` on the next loop iteration; never raises."""
        asyncio.get_running_loop().call_soon(self._invoke, fn, args)

    def _invoke(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            result = fn(*args)
        except Exception:
            self._count_error()
            _log.exception("callback %r raised", fn)
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self._count_error()
            _log.error("async callback raised", exc_info=exc)

    def _count_error(self) -> None:
        if self._stats is not None:
            self._stats.callback_errors += 1

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def aclose(self, *, grace: float = 0.0) -> None:
        """Let the callbacks queued so far start, give those still running up to
        ``grace`` seconds, then cancel what is left and wait for it to end."""
        await asyncio.sleep(0)  # callbacks queued with call_soon run before this returns
        if self._tasks and grace > 0:
            await asyncio.wait(set(self._tasks), timeout=grace)
        await cancel_and_wait(self._tasks)
        self._tasks.clear()


_END = object()


class Channel(Generic[T]):
    """Publishes items to callbacks and to any number of async-iterator subscribers.

    Subscribers see items published after they subscribed. ``close(exc)`` ends every
    iterator, raising ``exc`` in it when given. Cheap when unused: it allocates nothing
    until the first subscriber or callback.
    """

    __slots__ = ("_callbacks", "_closed", "_queues", "_runner")

    def __init__(self, runner: CallbackRunner) -> None:
        self._runner = runner
        self._callbacks: list[Callable[[T], Any]] | None = None
        self._queues: list[_Subscription[T]] | None = None
        self._closed: tuple[BaseException | None] | None = None

    def add_callback(self, fn: Callable[[T], Any]) -> None:
        if self._callbacks is None:
            self._callbacks = []
        self._callbacks.append(fn)

    def remove_callback(self, fn: Callable[[T], Any]) -> bool:
        if self._callbacks and fn in self._callbacks:
            self._callbacks.remove(fn)
            return True
        return False

    def publish(self, item: T) -> None:
        if self._callbacks:
            for fn in self._callbacks:
                self._runner.run(fn, item)
        if self._queues:
            for sub in self._queues:
                sub.push(item)

    def close(self, exc: BaseException | None = None) -> None:
        if self._closed is not None:
            return
        self._closed = (exc,)
        if self._queues:
            for sub in self._queues:
                sub.push(_END)
        self._queues = None
        self._callbacks = None

    @property
    def closed(self) -> bool:
        return self._closed is not None

    def subscribe(self) -> _Subscription[T]:
        """An iterator of the items published from now on; ends when the channel closes.
        ``close()`` (or ``aclose()``) unsubscribes it."""
        sub: _Subscription[T] = _Subscription(self)
        if self._closed is not None:
            sub.push(_END)
        else:
            if self._queues is None:
                self._queues = []
            self._queues.append(sub)
        return sub

    def _unsubscribe(self, sub: _Subscription[T]) -> None:
        if self._queues and sub in self._queues:
            self._queues.remove(sub)

    def _end_error(self) -> BaseException | None:
        return self._closed[0] if self._closed is not None else None


class _Subscription(AsyncIterator[T]):
    __slots__ = ("_channel", "_items", "_waiter")

    def __init__(self, channel: Channel[T]) -> None:
        self._channel = channel
        self._items: deque[Any] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def push(self, item: Any) -> None:
        self._items.append(item)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> _Subscription[T]:
        return self

    async def __anext__(self) -> T:
        while not self._items:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        item = self._items.popleft()
        if item is _END:
            self._items.appendleft(_END)  # stay ended for any further __anext__
            exc = self._channel._end_error()
            if exc is not None:
                raise exc
            raise StopAsyncIteration
        return item  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Stop receiving; frees the subscription at once."""
        self.close()

    def close(self) -> None:
        """``aclose()`` without the await, for a finalizer."""
        self._channel._unsubscribe(self)
        self._items.clear()
        self._items.append(_END)


async def cancel_and_wait(tasks: Iterable[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait until each has ended, whatever it ended with: what every
    ``aclose()`` does with the tasks it started."""
    tasks = list(tasks)
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
