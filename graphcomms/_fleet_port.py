"""The seam between a client and a fleet relay (``graphcomms.fleet``), Redis-free.

A client made with ``fleet=relay`` tells the relay what to persist as it happens
(:class:`FleetPort`: an operation registered, bound, finished; a call owned, ended) and
hands it a :class:`FleetHost`: the few things a relay may do to the client (feed a
body, ask who owns an item, put back a recovered tracker or call, read back an
operation). With ``fleet=None`` nothing here runs: each hook site is one ``is None``
check, off the per-notification path except at a tracker's end.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from graphcomms._routing import ResourceRef, normalize_id
from graphcomms._tracker import OperationTracker
from graphcomms.errors import GraphCommsError, NotFoundError
from graphcomms.models import Call, ChangeType, CommsOperation
from graphcomms.models import operations as ops
from graphcomms.typing import NotificationPayload

if TYPE_CHECKING:
    from graphcomms._actions import ActionSender
    from graphcomms._call import CallHandle
    from graphcomms._calls import CallTable
    from graphcomms._ingest import Ingestor
    from graphcomms._registry import OperationRegistry

__all__ = ["FleetHost", "FleetPort"]

_log = logging.getLogger("graphcomms.fleet")

# Media actions: a recovered tracker of these can still be cancelled.
_MEDIA = frozenset({"PlayPromptOperation", "RecordOperation", "SendDtmfTonesOperation"})


class FleetPort(Protocol):
    """What a client tells its fleet relay. Every method but ``start``, ``aclose``
    and ``deliver`` is synchronous, does no I/O and must not raise: persistence is
    write-behind."""

    def new_client_context(self) -> str:
        """A unique ``clientContext`` that names this instance as its owner."""
        ...

    def hinted_callback(self, url: str) -> str:
        """``url`` naming this instance's incarnation (the affinity hint Graph echoes
        back), asked each time a call is placed or answered."""
        ...

    def operation_registered(
        self, tracker: OperationTracker[Any], *, call_id: str, deadline: float | None
    ) -> Awaitable[None] | None:
        """A tracker is registered, its POST not yet sent: the sender awaits what
        this returns (the record stored, within a bound) before sending. ``call_id``
        is the call's id as Graph spells it; ``deadline`` the tracker's own, as
        wall-clock seconds (``time.time()``), or None."""
        ...

    def operation_bound(
        self, tracker: OperationTracker[Any], *, call_id: str, deadline: float | None
    ) -> None:
        """Graph answered the action: the tracker has its operation id."""
        ...

    def operation_finished(self, tracker: OperationTracker[Any]) -> None: ...

    def call_owned(self, handle: CallHandle) -> None: ...

    def call_ended(self, key: str) -> None: ...

    async def start(self, host: FleetHost) -> None:
        """Take this instance's identity, recover its work, start relaying."""
        ...

    async def aclose(self) -> None:
        """Flush what is persisted, stop relaying, give the identity up. Pending work
        stays persisted for the next process under the same identity."""
        ...

    async def deliver(self, payload: Mapping[str, Any], hint: str | None) -> int:
        """A validated body: this instance's items applied at once, the others
        handed to their owners; raises ``RelayUnavailableError`` when they could not
        be (the webhook answers 503)."""
        ...


class FleetHost:
    """What a relay may do to its client: built by ``CommsClient``."""

    def __init__(
        self,
        *,
        ingestor: Ingestor,
        registry: OperationRegistry,
        calls: CallTable,
        actions: ActionSender,
        operation_timeout: float | None,
    ) -> None:
        self._ingestor = ingestor
        self._registry = registry
        self._calls = calls
        self._actions = actions
        self._operation_timeout = operation_timeout

    def run_callback(self, fn: Any, *args: Any) -> None:
        """Run user code ``fn(*args)`` (sync or async) outside ingestion."""
        self._actions.runner.run(fn, *args)

    def raw_call_id(self, key: str) -> str:
        """The call's id as Graph spelled it, for a normalised one."""
        handle = self._calls.get(key)
        return handle.id if handle is not None else key

    def feed(self, payload: NotificationPayload) -> int:
        """Apply a body here, as ``client.feed`` does."""
        return self._ingestor.feed(payload)

    def apply_item(self, item: Any, ref: ResourceRef | None = None) -> None:
        """Apply one notification item here, as ``feed`` applies each of a body's
        (counted; a bad one logged and counted, not raised). ``ref``: its resource
        path, when the relay parsed it to route the item."""
        self._ingestor.take(item, ref)

    def time_left(self, tracker: OperationTracker[Any]) -> float | None:
        """Seconds until the tracker's own deadline; None if it has none."""
        return self._registry.time_left(tracker)

    def owns_operation(self, operation_id: str | None, client_context: str | None) -> bool:
        """True if a tracker here is pending under this id or context, or finished
        work here remembers it."""
        return self._registry.knows(operation_id, client_context)

    def owns_call(self, key: str) -> bool:
        """True if this client tracks the call (normalised id)."""
        return self._calls.get(key) is not None

    def restore_operation(
        self,
        *,
        call_id: str,
        client_context: str,
        operation_id: str | None,
        type_name: str,
        status: str | None,
        remaining: float | None,
    ) -> OperationTracker[Any] | None:
        """Put a persisted pending operation back as a tracker marked ``recovered``;
        ``None`` if it is already tracked here. Nothing is sent to Graph. Its deadline
        is ``remaining`` seconds from now, else the client's ``operation_timeout``."""
        if self._registry.knows(operation_id, client_context):
            return None
        kind = getattr(ops, type_name, None)
        if not (isinstance(kind, type) and issubclass(kind, CommsOperation)):
            kind = CommsOperation
        handle = self._calls.handle(call_id)
        snapshot = kind(id=operation_id, client_context=client_context, status=status)
        tracker: OperationTracker[Any] = OperationTracker(
            call_id=normalize_id(call_id),
            client_context=client_context,
            snapshot=snapshot,
            runner=self._actions.runner,
            cancel_hook=handle._cancel_hook if type_name in _MEDIA else None,
        )
        tracker.recovered = True
        timeout = remaining if remaining is not None else self._operation_timeout
        self._registry.expect(tracker, timeout=None if timeout is None else max(timeout, 0.001))
        # Recovered work reads as silent: the next reconciliation pass asks Graph.
        self._registry.mark_silent(tracker)
        self._registry.bind(tracker, operation_id, snapshot)
        return tracker

    def call_handle(self, call_id: str) -> CallHandle:
        """The call's handle, tracked here (not owned: another instance may own it)."""
        return self._calls.handle(call_id)

    def restore_call(self, call_id: str, state: str | None) -> CallHandle:
        """Put a persisted owned call back, marked ``recovered``, kept alive."""
        handle = self._calls.handle(call_id)
        handle.recovered = True
        if state and handle.state is None:
            self._calls.apply(handle.key, handle.id, ChangeType.UPDATED, Call(state=state))
        self._calls.own(handle)
        return handle

    async def read_back(self, tracker: OperationTracker[Any]) -> bool:
        """Ask Graph for a recovered operation (where Graph serves it) and apply the
        answer as a notification would be; True if Graph answered."""
        if tracker.done() or tracker.operation_id is None:
            return False
        handle = self._calls.get(tracker.call_id)
        raw_call = handle.id if handle is not None else tracker.call_id
        try:
            data = await self._actions.read_operation(raw_call, tracker.operation_id)
        except NotFoundError:
            return False
        except (GraphCommsError, OSError, asyncio.TimeoutError) as exc:
            _log.info("reading back recovered operation failed: %s", type(exc).__name__)
            return False
        try:
            self._registry.apply(tracker.call_id, tracker.operation_id, data, deleted=False)
        except ValueError:
            return False
        return True

    async def refresh_call(self, handle: CallHandle) -> None:
        """Read a recovered call back; a call Graph no longer has ends here."""
        try:
            await handle.refresh()
        except NotFoundError:
            self._calls.apply_read(handle, None)
        except (GraphCommsError, OSError, asyncio.TimeoutError) as exc:
            _log.info("reading back recovered call failed: %s", type(exc).__name__)
