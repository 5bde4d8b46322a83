"""The client's table of calls: one handle per call, fed call snapshots and rosters.

Every call snapshot reaches its handle through :meth:`CallTable.apply`, whether it came
in a notification, from ``refresh()`` or from reconciliation; a snapshot that ends the
call also fails the call's pending operations. Calls the bot created, answered, asked
for or acts on are tracked until they end; calls only notifications told about
(incoming calls not yet answered, calls created elsewhere) are held in a bounded set,
the least recently heard of released first, and ended calls are remembered (bounded)
so that a straggling notification is not taken for a new call.

The calls the client *owns* (it created or answered them, or recovered them from
another instance) are also kept alive. :meth:`CallTable.own` is where a call becomes
ours and live, and :meth:`CallTable._end` where it stops being either.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from graphcomms._call import CallHandle
from graphcomms._events import CallbackRunner, Channel
from graphcomms._registry import OperationRegistry
from graphcomms._routing import normalize_id
from graphcomms._settings import Limits
from graphcomms._stats import ClientStats
from graphcomms.models import Call, CallState, ChangeType, Participant

if TYPE_CHECKING:
    from graphcomms._fleet_port import FleetPort

__all__ = ["CallTable"]

_log = logging.getLogger("graphcomms.calls")


class CallKeeper(Protocol):
    """What keeps owned calls alive (``graphcomms._keepalive.KeepAlive``)."""

    def keep(self, call: CallHandle) -> None: ...

    def release(self, key: str) -> None: ...

    def __contains__(self, key: object) -> bool: ...


class CallTable:
    """Live, untracked and ended call handles of one client."""

    def __init__(
        self,
        *,
        new_handle: Callable[[str], CallHandle],
        registry: OperationRegistry,
        runner: CallbackRunner,
        stats: ClientStats,
        limits: Limits,
        keeper: CallKeeper | None = None,
    ) -> None:
        self._new_handle = new_handle
        self._keeper = keeper
        self._registry = registry
        self._stats = stats
        self._untracked_limit = limits.untracked_calls
        self._ended_limit = limits.ended_calls
        self._live: dict[str, CallHandle] = {}
        # Calls only notifications told about, least recently heard of first.
        self._untracked: OrderedDict[str, CallHandle] = OrderedDict()
        self._ended: OrderedDict[str, CallHandle] = OrderedDict()
        self._incoming: Channel[CallHandle] = Channel(runner)
        #: The fleet relay, told of each call owned and ended.
        self.fleet: FleetPort | None = None

    # -- handles for the bot -------------------------------------------------------

    def handle(self, call_id: str) -> CallHandle:
        """The one handle of a call (``client.call``): tracked from now on."""
        key = normalize_id(call_id)
        found = self._live.get(key) or self._ended.get(key)
        if found is None:
            found = self._untracked.get(key)
            if found is None:
                found = self._new_handle(call_id)
            self.claim(found)
        return found

    def claim(self, handle: CallHandle) -> None:
        """The bot acts on ``handle``: its call is tracked until it ends."""
        key = handle.key
        if key in self._live or handle.ended:
            return
        if self._untracked.pop(key, None) is not None:
            self._stats.untracked_calls -= 1
        self._live[key] = handle
        self._stats.live_calls += 1

    def own(self, handle: CallHandle) -> None:
        """This client owns ``handle``'s call from now on: it created or answered it,
        or took it over from another instance. The call is tracked and kept alive until
        it ends or the client closes; a call that has ended is left alone."""
        if handle.ended:
            return
        self.claim(handle)
        if self._keeper is not None:
            self._keeper.keep(handle)
        if self.fleet is not None:
            self.fleet.call_owned(handle)

    def disown(self, handle: CallHandle) -> bool:
        """Stop keeping ``handle``'s call alive while it stays tracked (the bot is
        hanging up, or another instance takes the call over). True if it was kept."""
        if self._keeper is None or handle.key not in self._keeper:
            return False
        self._keeper.release(handle.key)
        return True

    def incoming_calls(self) -> AsyncIterator[CallHandle]:
        return self._incoming.subscribe()

    def on_incoming_call(self, fn: Callable[[CallHandle], Any]) -> None:
        self._incoming.add_callback(fn)

    # -- snapshots -----------------------------------------------------------------

    def apply(self, key: str, raw_id: str, change: ChangeType | str, call: Call) -> None:
        """A call snapshot: to its handle; a call offered to the bot (``created`` or
        ``incoming``) also to ``incoming_calls()``."""
        if key in self._ended:
            self._stats.duplicates += 1
            return
        handle = self._live.get(key)
        if handle is None:
            handle = self._untracked.get(key)
            if handle is not None:
                self._untracked.move_to_end(key)
            else:
                handle = self._track_untracked(call.id or raw_id)
                if change is ChangeType.CREATED or call.state is CallState.INCOMING:
                    handle._receive(change, call)
                    self._incoming.publish(handle)
                    return
        handle._receive(change, call)
        if handle.ended:
            self._end(handle, call)

    def apply_roster(self, key: str, participants: Sequence[Participant], deleted: bool) -> None:
        handle = self._live.get(key) or self._untracked.get(key)
        if handle is None:
            self._stats.unmatched += 1
            return
        handle._receive_roster(tuple(participants), deleted)

    def apply_read(self, handle: CallHandle, call: Call | None) -> None:
        """A call read back from Graph: applied as a notification would be. ``None``
        means Graph answered 404: the call is gone."""
        if call is None:
            call = Call(state=CallState.TERMINATED)
        change = ChangeType.DELETED if call.state is CallState.TERMINATED else ChangeType.UPDATED
        self.apply(handle.key, handle.id, change, call)

    # -- for reconciliation and closing -------------------------------------------

    def waiting(self, since: float) -> list[CallHandle]:
        """Live calls whose state somebody has awaited, or that were hung up, since
        before ``since`` (monotonic): a lost state notification matters to them."""
        return [
            handle
            for handle in self._live.values()
            if (watched := handle._watched_since()) is not None and watched <= since
        ]

    def get(self, key: str) -> CallHandle | None:
        """The live handle for a normalised call id, if any."""
        return self._live.get(key)

    def close(self, error: BaseException) -> None:
        """End every handle with ``error`` (the client closed) and the incoming stream."""
        for handle in [*self._live.values(), *self._untracked.values()]:
            handle._close(error)
        self._live.clear()
        self._untracked.clear()
        self._stats.live_calls = self._stats.untracked_calls = 0
        self._incoming.close()

    # -- internals -----------------------------------------------------------------

    def _track_untracked(self, call_id: str) -> CallHandle:
        handle = self._new_handle(call_id)
        self._untracked[handle.key] = handle
        self._stats.untracked_calls += 1
        if len(self._untracked) > self._untracked_limit:
            _, released = self._untracked.popitem(last=False)
            self._stats.untracked_calls -= 1
            self._stats.untracked_released += 1
            _log.info(
                "released the handle of call %s: over %d calls nobody here tracks",
                released.id,
                self._untracked_limit,
            )
        return handle

    def _end(self, handle: CallHandle, call: Call) -> None:
        """The call has ended: no longer live, nor owned."""
        key = handle.key
        if self._keeper is not None:
            self._keeper.release(key)
        if self._live.pop(key, None) is not None:
            self._stats.live_calls -= 1
        elif self._untracked.pop(key, None) is not None:
            self._stats.untracked_calls -= 1
        self._ended[key] = handle
        if self.fleet is not None:
            self.fleet.call_ended(key)
        if len(self._ended) > self._ended_limit:
            self._ended.popitem(last=False)
        # After the handle took the end, so its state already says terminated.
        self._registry.fail_call(key, handle.result_info or call.result_info)
