"""``CommsClient``: lifecycle, call handles, and the path of every action."""

from __future__ import annotations

import asyncio
import logging
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from graphcomms._call import CallHandle
from graphcomms._converter import (
    structure_call,
    structure_operation,
    structure_participant,
    unstructure,
)
from graphcomms._events import CallbackRunner, Channel, cancel_and_wait
from graphcomms._http import GRAPH_V1, HttpResponse, HttpTransport, RetryPolicy
from graphcomms._ingest import Ingestor
from graphcomms._reconcile import Reconciler
from graphcomms._registry import ClientStats, LateResultHook, OperationRegistry
from graphcomms._routing import ResourceKind, normalize_id, parse_resource_path
from graphcomms._tracker import CancelHook, OperationTracker
from graphcomms.auth import as_token_provider
from graphcomms.errors import ClientClosedError, DeserializationError, InvalidRequestError
from graphcomms.models import (
    ActionRequest,
    Call,
    CallState,
    ChangeType,
    ChatInfo,
    CommsOperation,
    IncomingCallOptions,
    InvitationParticipantInfo,
    MediaConfig,
    MeetingInfo,
    Modality,
    OperationRequest,
    OutgoingCallOptions,
    Participant,
    ParticipantInfo,
    RecordOperation,
    ServiceHostedMediaConfig,
)
from graphcomms.typing import NotificationPayload, NotificationSource, TokenLike

if TYPE_CHECKING:
    import aiohttp

__all__ = ["CommsClient"]

OpT = TypeVar("OpT", bound=CommsOperation)
T = TypeVar("T")

_log = logging.getLogger("graphcomms.client")

IncomingCallback = Callable[[CallHandle], Any]


class CommsClient:
    """An asyncio client for Graph's calling API.

    Use it as ``async with CommsClient(token, ...) as client``, or call
    :meth:`aclose` yourself; a closed client cannot be reopened.

    ``token`` is a fixed bearer token, an async callable returning one, or a
    :class:`~graphcomms.typing.TokenProvider` (see :mod:`graphcomms.auth`).
    ``base_url`` is Graph v1.0 by default; pass ``GRAPH_BETA``, a national cloud, or
    the emulator's URL. ``notifications`` is any async iterable of notification bodies
    the client consumes in a task it owns; a webhook instead calls :meth:`feed`.

    ``operation_timeout`` (seconds, default none) is each tracker's own deadline, after
    which it fails with ``OperationTimeoutError``; a terminal snapshot arriving within
    ``late_result_grace`` after that is kept on the tracker and passed to
    ``on_late_result``. Notifications for operations not yet known are kept up to
    ``early_ttl`` seconds, at most ``early_limit`` of them.

    Graph can lose notifications. A tracker Graph has been silent about for
    ``reconcile_after`` seconds is reconciled by reading its operation (or, failing
    that, its call) back from Graph, at most once per ``reconcile_interval`` per call;
    ``reconcile_after=None`` switches this off.
    """

    def __init__(
        self,
        token: TokenLike,
        *,
        base_url: str = GRAPH_V1,
        callback_uri: str | None = None,
        notifications: NotificationSource | None = None,
        session: aiohttp.ClientSession | None = None,
        retry: RetryPolicy | None = None,
        request_timeout: float = 30.0,
        operation_timeout: float | None = None,
        late_result_grace: float = 300.0,
        on_late_result: LateResultHook | None = None,
        early_limit: int = 10_000,
        early_ttl: float = 60.0,
        reconcile_after: float | None = 60.0,
        reconcile_interval: float = 30.0,
    ) -> None:
        self.callback_uri = callback_uri
        self.operation_timeout = operation_timeout
        self.stats = ClientStats()
        self._http = HttpTransport(
            base_url=base_url,
            token_provider=as_token_provider(token),
            session=session,
            retry=retry if retry is not None else RetryPolicy(),
            timeout=request_timeout,
        )
        self._runner = CallbackRunner(self.stats)
        self._registry = OperationRegistry(
            stats=self.stats,
            early_limit=early_limit,
            early_ttl=early_ttl,
            late_grace=late_result_grace,
            on_late_result=on_late_result,
        )
        self._ingestor = Ingestor(self._registry, self, self.stats)
        self._calls: dict[str, CallHandle] = {}
        # Ended calls' handles, so a straggling notification is not taken for a new
        # call and client.call(id) still says the call ended. Bounded.
        self._ended_calls: OrderedDict[str, CallHandle] = OrderedDict()
        self._incoming: Channel[CallHandle] = Channel(self._runner)
        self._source = notifications
        self._source_task: asyncio.Task[None] | None = None
        self._reconciler = (
            Reconciler(
                registry=self._registry,
                stats=self.stats,
                get_operation=self._get_operation,
                get_call=self._get_call,
                call_read=self._call_reconciled,
                waiting_calls=self._calls_waiting,
                raw_call_id=self._raw_call_id,
                after=reconcile_after,
                min_interval=reconcile_interval,
            )
            if reconcile_after is not None
            else None
        )
        self._reconciler_task: asyncio.Task[None] | None = None
        self._started = False
        self._closed = False

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> CommsClient:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def start(self) -> None:
        """Start the client's tasks: consuming ``notifications`` and reconciling silent
        operations. Done by ``async with`` and by the first request. Idempotent."""
        if self._closed:
            raise ClientClosedError("the client is closed and cannot be reopened")
        if self._started:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        if self._source is not None:
            self._source_task = loop.create_task(
                self.run(self._source), name="graphcomms-notifications"
            )
        if self._reconciler is not None:
            self._reconciler_task = loop.create_task(
                self._reconciler.run(), name="graphcomms-reconcile"
            )

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Stop the notification task, fail every pending tracker and state waiter with
        ``ClientClosedError``, end every iterator, and close the HTTP session if the
        client made it. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        await cancel_and_wait(
            t for t in (self._source_task, self._reconciler_task) if t is not None
        )
        if self._reconciler is not None:
            await self._reconciler.aclose()
        self._registry.close()
        closed = ClientClosedError("the client was closed")
        for handle in list(self._calls.values()):
            handle._end(closed)
        self._calls.clear()
        self._incoming.close()
        # Let the done-callbacks queued by the failures above start, then end them.
        await asyncio.sleep(0)
        await self._runner.aclose()
        await self._http.aclose()

    # -- notifications -------------------------------------------------------------

    def feed(self, payload: NotificationPayload) -> int:
        """Apply one notification body (bytes as POSTed, or decoded JSON).

        Synchronous, no I/O, no user code: callbacks it triggers run later. Returns
        the number of items in the envelope. Raises ``DeserializationError`` and
        applies nothing when the body is not a ``commsNotifications`` envelope, and
        ``ClientClosedError`` once the client is closed (nothing is tracked any more).
        """
        if self._closed:
            raise ClientClosedError("the client is closed")
        return self._ingestor.feed(payload)

    async def run(self, source: NotificationSource) -> None:
        """Feed every body ``source`` yields until it is exhausted or the client
        closes. A malformed body is logged and skipped; an error raised by the source
        itself ends the run and is logged."""
        try:
            async for payload in source:
                try:
                    self._ingestor.feed(payload)
                except DeserializationError as exc:
                    self.stats.bad_items += 1
                    _log.warning("malformed notification body skipped: %s", exc)
        except asyncio.CancelledError:
            raise
        except Exception:
            _log.exception("notification source failed; no more notifications from it")

    def incoming_calls(self) -> AsyncIterator[CallHandle]:
        """Calls Graph offers the bot (``created``, state ``incoming``), from now on."""
        return self._incoming.subscribe()

    def on_incoming_call(self, fn: IncomingCallback) -> None:
        """Call ``fn(call)`` (sync or async) for each incoming call."""
        self._incoming.add_callback(fn)

    # CallRouter, used by the ingestor.
    def on_call(self, call_id: str, raw_id: str, change: ChangeType | str, call: Call) -> None:
        """Every call snapshot goes through here: notifications, ``refresh()`` and
        reconciliation. A snapshot that ends the call fails its pending operations."""
        if change is ChangeType.DELETED or call.state is CallState.TERMINATED:
            try:
                self._apply_call(call_id, raw_id, change, call)
            finally:
                # After the handle took the end, so its state already says terminated.
                self._registry.fail_call(call_id, call.result_info)
        else:
            self._apply_call(call_id, raw_id, change, call)

    def _apply_call(self, call_id: str, raw_id: str, change: ChangeType | str, call: Call) -> None:
        if call_id in self._ended_calls:
            self.stats.duplicates += 1
            return
        handle = self._calls.get(call_id)
        if handle is None:
            # A notification for a call this client did not create: an incoming call,
            # or one created elsewhere whose callbacks route here.
            handle = CallHandle(self, call.id or raw_id, self._runner)
            self._calls[call_id] = handle
            if change is ChangeType.CREATED or call.state is CallState.INCOMING:
                handle._apply(change, call)
                self._incoming.publish(handle)
                return
        handle._apply(change, call)
        if handle.ended:
            self._forget_call(call_id)

    def on_roster(self, call_id: str, participants: Sequence[Participant], deleted: bool) -> None:
        handle = self._calls.get(call_id)
        if handle is None:
            self.stats.unmatched += 1
            return
        handle._apply_roster(participants, deleted)

    def _forget_call(self, key: str) -> None:
        handle = self._calls.pop(key, None)
        if handle is not None:
            self._ended_calls[key] = handle
        if len(self._ended_calls) > 10_000:
            self._ended_calls.popitem(last=False)

    # -- calls ---------------------------------------------------------------------

    def call(self, call_id: str) -> CallHandle:
        """The handle of a call by id (one handle per call while it lives)."""
        key = normalize_id(call_id)
        handle = self._calls.get(key) or self._ended_calls.get(key)
        if handle is None:
            handle = self._calls[key] = CallHandle(self, call_id, self._runner)
        return handle

    async def create_call(
        self,
        *,
        targets: Iterable[InvitationParticipantInfo] | None = None,
        callback_uri: str | None = None,
        media_config: MediaConfig | None = None,
        requested_modalities: Iterable[Modality | str] = (Modality.AUDIO,),
        source: ParticipantInfo | None = None,
        tenant_id: str | None = None,
        subject: str | None = None,
        meeting_info: MeetingInfo | None = None,
        chat_info: ChatInfo | None = None,
        call_options: OutgoingCallOptions | IncomingCallOptions | None = None,
    ) -> CallHandle:
        """Place a call (``targets``) or join a meeting (``meeting_info``/``chat_info``).

        Returns the handle once Graph created it (201, state ``establishing``);
        ``await call.wait_for_state("established")`` to know it connected.
        """
        callback = callback_uri or self.callback_uri
        if not callback:
            raise InvalidRequestError("create_call needs a callback_uri (or the client's)")
        body = Call(
            callback_uri=callback,
            targets=None if targets is None else tuple(targets),
            requested_modalities=tuple(requested_modalities),
            media_config=media_config or ServiceHostedMediaConfig(),
            source=source,
            tenant_id=tenant_id,
            subject=subject,
            meeting_info=meeting_info,
            chat_info=chat_info,
            call_options=call_options,
        )
        response = await self._request("POST", "communications/calls", json=unstructure(body))
        created = self._structure(structure_call, response)
        call_id = created.id or _id_from_location(response, ResourceKind.CALL)
        if not call_id:
            raise DeserializationError("create call: Graph returned no call id", payload=None)
        handle = self.call(call_id)
        handle.delta_roster = bool(call_options and call_options.is_delta_roster_enabled)
        handle._apply(ChangeType.CREATED, created)
        return handle

    async def download_recording(self, operation: RecordOperation) -> bytes:
        """Fetch a finished recording with its own access token (not the Graph token).

        Download promptly: Graph discards recordings soon after the call ends.
        """
        if not operation.recording_location or not operation.recording_access_token:
            raise InvalidRequestError("the operation has no recording location and token")
        self._check_open()
        return await self._http.request_bytes(
            operation.recording_location, bearer=operation.recording_access_token
        )

    # -- used by the handles -------------------------------------------------------

    async def _request(
        self, method: str, path: str, *, json: Mapping[str, Any] | None = None
    ) -> HttpResponse:
        self._check_open()
        return await self._http.request(method, path, json=json)

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("the client is closed")
        if not self._started:
            self.start()

    def _raw_call_id(self, key: str) -> str:
        handle = self._calls.get(key)
        return handle.id if handle is not None else key

    def _call_read(self, key: str, raw_id: str, call: Call) -> None:
        """A call read back from Graph (``refresh``): applied as a notification is."""
        ended = call.state is CallState.TERMINATED
        self.on_call(key, raw_id, ChangeType.DELETED if ended else ChangeType.UPDATED, call)

    def _call_reconciled(self, key: str, call: Call | None) -> None:
        """The reconciler read the call: ``None`` means Graph answered 404 (gone)."""
        self._call_read(key, self._raw_call_id(key), call or Call(state=CallState.TERMINATED))

    def _calls_waiting(self, since: float) -> list[str]:
        """Live calls whose state somebody awaits, or that were hung up, since before
        ``since``: a lost state notification matters to them."""
        return [
            key
            for key, handle in self._calls.items()
            if (handle.waiting_since is not None and handle.waiting_since <= since)
            or (handle.hung_up_at is not None and handle.hung_up_at <= since)
        ]

    async def reconcile(self) -> int:
        """Run one reconciliation pass now (the client also runs them on its own);
        returns how many calls it looked at."""
        if self._reconciler is None:
            return 0
        return await self._reconciler.reconcile_once()

    async def _post_action(
        self,
        call: CallHandle,
        request: ActionRequest,
        *,
        participant_id: str | None = None,
        body: Mapping[str, Any] | None = None,
    ) -> HttpResponse:
        return await self._request(
            "POST",
            _action_path(call, request, participant_id),
            json=body if body is not None else unstructure(request),
        )

    async def _send_operation(
        self,
        call: CallHandle,
        request: OperationRequest[OpT],
        *,
        participant_id: str | None = None,
        timeout: float | None = None,
        cancel_hook: CancelHook | None = None,
    ) -> OperationTracker[OpT]:
        """The path of every operation action: register the tracker under its client
        context, POST, then bind the response (resolving at once if it is terminal)."""
        self._check_open()
        body = unstructure(request)
        ctx = request.client_context
        if ctx is None:
            # Into the body, not through attrs.evolve: that would build (and validate)
            # the whole request again on every action.
            ctx = body["clientContext"] = os.urandom(16).hex()
        kind = request.returns
        tracker: OperationTracker[OpT] = OperationTracker(
            call_id=call.key,
            client_context=ctx,
            snapshot=kind(client_context=ctx),  # type: ignore[arg-type]
            runner=self._runner,
            cancel_hook=cancel_hook,
        )
        self._registry.expect(
            tracker, timeout=timeout if timeout is not None else self.operation_timeout
        )
        try:
            # Straight to the transport (open was checked above): one coroutine fewer.
            response = await self._http.request(
                "POST", _action_path(call, request, participant_id), json=body
            )
            body = response.body
            snapshot = (
                structure_operation(body, default=kind)
                if isinstance(body, Mapping)
                else kind(client_context=ctx)
            )
        except BaseException:
            self._registry.discard(tracker)
            raise
        op_id = (
            normalize_id(snapshot.id)
            if snapshot.id
            else _id_from_location(response, ResourceKind.OPERATION)
        )
        if _log.isEnabledFor(logging.DEBUG):  # the extra dict is not free
            _log.debug(
                "%s issued on call %s: status %s",
                type(snapshot).__name__,
                call.id,
                snapshot.status,
                extra={
                    "call_id": call.key,
                    "operation_id": op_id,
                    "client_request_id": response.client_request_id,
                },
            )
        self._registry.bind(tracker, op_id, snapshot)
        return tracker

    async def _get_call(self, call_id: str) -> Call:
        response = await self._request("GET", f"communications/calls/{call_id}")
        return self._structure(structure_call, response)

    async def _list_participants(self, call_id: str) -> list[Participant]:
        response = await self._request("GET", f"communications/calls/{call_id}/participants")
        body = response.body
        items = body.get("value") if isinstance(body, Mapping) else None
        if not isinstance(items, list):
            raise DeserializationError("participants: no 'value' list", payload=body)
        return [structure_participant(item) for item in items]

    async def _get_operation(self, call_id: str, operation_id: str) -> CommsOperation:
        response = await self._request(
            "GET", f"communications/calls/{call_id}/operations/{operation_id}"
        )
        return self._structure(structure_operation, response)

    @staticmethod
    def _structure(fn: Callable[[Mapping[str, Any]], T], response: HttpResponse) -> T:
        if not isinstance(response.body, Mapping):
            raise DeserializationError("expected a JSON object from Graph", payload=response.body)
        return fn(response.body)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<CommsClient {self._http.base_url} {state} pending={self.stats.pending}>"


def _action_path(call: CallHandle, request: ActionRequest, participant_id: str | None) -> str:
    path = request.path.format(participant_id=participant_id)
    return f"communications/calls/{call.id}/{path}"


def _id_from_location(response: HttpResponse, kind: ResourceKind) -> str | None:
    ref = parse_resource_path(response.location)
    if ref is None or ref.kind is not kind:
        return None
    # A call id goes back into request paths: keep Graph's own spelling.
    return ref.item_id if kind is ResourceKind.OPERATION else ref.raw_call_id
