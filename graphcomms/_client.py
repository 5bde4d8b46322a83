"""``CommsClient``: lifecycle, notification entry points and call creation.

The client wires the parts and gets out of the way: the HTTP transport, the registry
of pending operations, the call table, the action sender the call handles hold, the
ingestion that feeds the registry and the table, the reconciler, and the keepAlive
scheduler.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO

from graphcomms._actions import ActionSender, call_id_from_location
from graphcomms._call import CallHandle
from graphcomms._calls import CallTable
from graphcomms._converter import structure_call, unstructure
from graphcomms._events import CallbackRunner, cancel_and_wait
from graphcomms._fleet_port import FleetHost, FleetPort
from graphcomms._http import GRAPH_V1, HttpTransport
from graphcomms._ingest import Ingestor
from graphcomms._json import loads
from graphcomms._keepalive import KeepAlive, KeptCall
from graphcomms._reconcile import Reconciler
from graphcomms._registry import LateResultHook, OperationRegistry
from graphcomms._settings import KeepAliveSettings, Limits, RetryPolicy, TrackingSettings
from graphcomms._stats import ClientStats
from graphcomms.auth import as_token_provider
from graphcomms.errors import ClientClosedError, DeserializationError, InvalidRequestError
from graphcomms.models import (
    Call,
    ChangeType,
    ChatInfo,
    IncomingCallOptions,
    InvitationParticipantInfo,
    MediaConfig,
    MeetingInfo,
    Modality,
    OutgoingCallOptions,
    ParticipantInfo,
    RecordOperation,
    ServiceHostedMediaConfig,
)
from graphcomms.typing import NotificationPayload, NotificationSource, TokenLike

if TYPE_CHECKING:
    import aiohttp
    from opentelemetry.trace import TracerProvider

__all__ = ["CommsClient"]

_log = logging.getLogger("graphcomms.client")

IncomingCallback = Callable[[CallHandle], Any]

DEFAULT_RECORDING_MAX_SIZE = 32 * 1024 * 1024
"""``download_recording``'s default ``max_size``."""


class CommsClient:
    """An asyncio client for Graph's calling API.

    Use it as ``async with CommsClient(token, ...) as client``, or call
    :meth:`aclose` yourself; a closed client cannot be reopened.

    - ``token``: a fixed bearer token, an async callable returning one, or a
      :class:`~graphcomms.typing.TokenProvider` (see :mod:`graphcomms.auth`).
    - ``base_url``: the root every request path is resolved against: ``GRAPH_V1``
      (default), ``GRAPH_BETA`` (for the beta actions), a national cloud's root such as
      ``https://graph.microsoft.us/v1.0/``, or the emulator's ``graph_url``. URLs Graph
      returns (``Location``, recordings) are used as given.
    - ``callback_uri``: where Graph sends the notifications of calls this client
      creates or answers (unless the call names another).
    - ``notifications``: any async iterable of notification bodies, consumed in a task
      the client owns; a webhook calls :meth:`feed` instead.
    - ``session``: an ``aiohttp.ClientSession`` to borrow (never closed here).
    - ``request_timeout`` and ``retry``: each HTTP request's total time, and when it
      is sent again (:class:`RetryPolicy`).
    - ``tracking``: operation deadlines, the late-result window and reconciliation
      (:class:`TrackingSettings`); ``limits``: the bounds on what notifications can
      make the client hold (:class:`Limits`).
    - ``keep_alive``: how the calls this client creates or answers are kept alive
      (:class:`KeepAliveSettings`: a keepAlive every 15 minutes by default).
    - ``on_late_result``: ``fn(tracker, snapshot)``, sync or async, for a terminal
      snapshot that arrives after the tracker's own deadline.
    - ``tracer_provider``: an OpenTelemetry ``TracerProvider`` (the ``otel`` extra):
      a span per action from its POST to its outcome, the HTTP requests as child spans,
      notifications as events (pass ``opentelemetry.trace.get_tracer_provider()`` for
      the global one). ``None``, the default, imports nothing of OpenTelemetry.
    - ``fleet``: a relay that makes this client one instance of several
      (``graphcomms.fleet.Relay``, the ``redis`` extra): notifications reach the
      instance that waits for them, pending work survives a restart. Use the client
      as ``async with`` then: entering takes the instance's identity and recovers its
      work. Mount the receiver as usual; it hands bodies to :meth:`deliver`.

    ``stats`` (:class:`~graphcomms.ClientStats`) counts what the client did. What
    :meth:`aclose` ends, fails and waits for is in its own docstring.
    """

    def __init__(
        self,
        token: TokenLike,
        *,
        base_url: str = GRAPH_V1,
        callback_uri: str | None = None,
        notifications: NotificationSource | None = None,
        session: aiohttp.ClientSession | None = None,
        request_timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        tracking: TrackingSettings | None = None,
        limits: Limits | None = None,
        keep_alive: KeepAliveSettings | None = None,
        on_late_result: LateResultHook | None = None,
        tracer_provider: TracerProvider | None = None,
        fleet: FleetPort | None = None,
    ) -> None:
        tracking = tracking if tracking is not None else TrackingSettings()
        limits = limits if limits is not None else Limits()
        keep_alive = keep_alive if keep_alive is not None else KeepAliveSettings()
        self.tracking = tracking
        self.limits = limits
        self.keep_alive = keep_alive
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
            runner=self._runner,
            limits=limits,
            late_grace=tracking.late_result_grace,
            on_late_result=on_late_result,
        )
        tracing = None
        if tracer_provider is not None:
            # Only here: a client without a provider imports nothing of OpenTelemetry.
            from graphcomms._tracing import Tracing

            tracing = Tracing(tracer_provider)
            self._http.tracing = tracing
            self._registry.tracing = tracing
        self._actions = ActionSender(
            http=self._http,
            registry=self._registry,
            runner=self._runner,
            operation_timeout=tracking.operation_timeout,
            check_open=self._check_open,
            tracing=tracing,
        )
        self._actions.callback_uri = callback_uri
        self._keeper = (
            KeepAlive(keep_alive, stats=self.stats, gone=self._call_gone)
            if keep_alive.enabled
            else None
        )
        self._calls = CallTable(
            new_handle=self._new_handle,
            registry=self._registry,
            runner=self._runner,
            stats=self.stats,
            limits=limits,
            keeper=self._keeper,
        )
        self._ingestor = Ingestor(self._registry, self._calls, self.stats)
        self._reconciler = (
            Reconciler(
                registry=self._registry,
                calls=self._calls,
                actions=self._actions,
                stats=self.stats,
                after=tracking.reconcile_after,
                min_interval=tracking.reconcile_interval,
            )
            if tracking.reconcile_after is not None
            else None
        )
        self._fleet = fleet
        if fleet is not None:
            self._registry.fleet = fleet
            self._calls.fleet = fleet
            self._actions.fleet = fleet
        self._source = notifications
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False
        self._closed = False

    @property
    def callback_uri(self) -> str | None:
        """Where Graph sends the notifications of calls this client creates or answers."""
        return self._actions.callback_uri

    @callback_uri.setter
    def callback_uri(self, value: str | None) -> None:
        self._actions.callback_uri = value

    @property
    def fleet(self) -> FleetPort | None:
        """The fleet relay this client is an instance of, if any."""
        return self._fleet

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> CommsClient:
        self.start()
        if self._fleet is not None:
            try:
                await self._fleet.start(self._fleet_host())
            except BaseException:
                await self.aclose()
                raise
        return self

    def _fleet_host(self) -> FleetHost:
        return FleetHost(
            ingestor=self._ingestor,
            registry=self._registry,
            calls=self._calls,
            actions=self._actions,
            operation_timeout=self.tracking.operation_timeout,
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def start(self) -> None:
        """Start the client's tasks: consuming ``notifications``, reconciling silent
        operations, keeping calls alive. Done by ``async with`` and by the first request.
        Idempotent."""
        if self._closed:
            raise ClientClosedError("the client is closed and cannot be reopened")
        if self._started:
            return
        self._started = True
        loop = asyncio.get_running_loop()
        if self._source is not None:
            self._tasks.append(
                loop.create_task(self.run(self._source), name="graphcomms-notifications")
            )
        if self._reconciler is not None:
            self._tasks.append(
                loop.create_task(self._reconciler.run(), name="graphcomms-reconcile")
            )
        if self._keeper is not None:
            self._tasks.append(loop.create_task(self._keeper.run(), name="graphcomms-keepalive"))

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Close the client; safe to call twice.

        Stops the notification, reconciliation and keepAlive tasks, fails every pending tracker
        and state waiter with ``ClientClosedError``, ends every iterator, lets the
        callbacks this queued (and any still running) run for up to
        ``tracking.callback_grace`` seconds, cancels what is left of them, and closes
        the HTTP session if the client made it.
        """
        if self._closed:
            return
        self._closed = True
        if self._fleet is not None:
            # First, and then detached: failing the pending trackers below must not
            # delete their records; the next process under this identity recovers them.
            try:
                await self._fleet.aclose()
            finally:
                self._registry.fleet = self._calls.fleet = self._actions.fleet = None
        await cancel_and_wait(self._tasks)
        if self._reconciler is not None:
            await self._reconciler.aclose()
        if self._keeper is not None:
            await self._keeper.aclose()
        self._registry.close()
        self._calls.close(ClientClosedError("the client was closed"))
        await self._runner.aclose(grace=self.tracking.callback_grace)
        await self._http.aclose()

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("the client is closed")
        if not self._started:
            self.start()

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

    async def deliver(self, payload: NotificationPayload, hint: str | None = None) -> int:
        """Apply a validated notification body, as :meth:`feed` does; with a fleet,
        the items other instances own are handed to them first (``hint``: the
        instance the callback URL named). Raises what :meth:`feed` raises, and
        ``graphcomms.fleet.RelayUnavailableError`` when foreign items could not be
        handed over (this instance's own were applied): answer 503 then."""
        if self._fleet is None:
            return self.feed(payload)
        if self._closed:
            raise ClientClosedError("the client is closed")
        document = payload if isinstance(payload, Mapping) else loads(payload)
        if not isinstance(document, Mapping):
            raise DeserializationError("notification body is not a JSON object", payload=None)
        return await self._fleet.deliver(document, hint)

    async def run(self, source: NotificationSource) -> None:
        """Feed every body ``source`` yields until it is exhausted or the client
        closes. A body that is not a notification is logged, counted
        (``stats.bad_items``) and skipped; an error raised by the source itself ends
        the run and is logged."""
        try:
            async for payload in source:
                if self._closed:
                    return
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
        """Calls Graph offers the bot (``created``, state ``incoming``), from now on.

        Answer (or reject, redirect) each within 15 seconds, Graph's deadline. Ends
        (``StopAsyncIteration``) when the client closes."""
        return self._calls.incoming_calls()

    def on_incoming_call(self, fn: IncomingCallback) -> None:
        """Call ``fn(call)`` (sync or async) for each incoming call."""
        self._calls.on_incoming_call(fn)

    # -- calls ---------------------------------------------------------------------

    def call(self, call_id: str) -> CallHandle:
        """The handle of a call by id (one handle per call while it lives)."""
        return self._calls.handle(call_id)

    def _new_handle(self, call_id: str) -> CallHandle:
        return CallHandle(
            call_id,
            actions=self._actions,
            table=self._calls,
            runner=self._runner,
            stats=self.stats,
            buffered_tones=self.limits.buffered_tones,
        )

    def _call_gone(self, call: KeptCall) -> None:
        """A keepAlive found the call gone (404): it ends as a read-back of "gone" does."""
        handle = self._calls.get(call.key)
        if handle is not None:
            self._calls.apply_read(handle, None)

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
        ``await call.wait_for_state("established")`` to know it connected. The client
        keeps the call alive until it ends (``KeepAliveSettings``).
        """
        callback = self._actions.callback_for(callback_uri)
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
        response = await self._actions.request("POST", "communications/calls", unstructure(body))
        if not isinstance(response.body, dict):
            raise DeserializationError("create call: Graph returned no call", payload=None)
        created = structure_call(response.body)
        call_id = created.id or call_id_from_location(response.location)
        if not call_id:
            raise DeserializationError("create call: Graph returned no call id", payload=None)
        handle = self.call(call_id)
        if created.call_options is None and call_options is not None:
            created = created.merged(Call(call_options=call_options))  # the options we asked
        self._calls.apply(handle.key, handle.id, ChangeType.CREATED, created)
        self._calls.own(handle)
        return handle

    async def download_recording(
        self, operation: RecordOperation, *, max_size: int = DEFAULT_RECORDING_MAX_SIZE
    ) -> bytes:
        """Fetch a finished recording with its own access token (not the Graph token),
        into memory: at most ``max_size`` bytes (default 32 MiB; Graph caps a recording
        at 2 minutes, about 4 MB of WAV), else ``ResponseTooLargeError``. For longer or
        streamed recordings, :meth:`save_recording` writes it as it arrives.

        Download promptly: Graph discards recordings soon after the call ends. Only
        https is fetched, unless the client's own base URL is http (the emulator).
        """
        url, token = _recording(operation)
        self._check_open()
        return await self._http.request_bytes(url, bearer=token, max_size=max_size)

    async def save_recording(
        self,
        operation: RecordOperation,
        destination: str | os.PathLike[str] | BinaryIO | Callable[[bytes], object],
        *,
        max_size: int | None = None,
    ) -> int:
        """Stream a finished recording to ``destination`` as it arrives, never holding
        it whole: a file path (written, replaced if it exists), a binary file object
        (``.write`` is called), or a callable given each chunk (sync or async). Returns
        the number of bytes written. ``max_size`` (default none) stops it with
        ``ResponseTooLargeError``. A failure after the first chunk is raised, not
        retried, so nothing is written twice."""
        url, token = _recording(operation)
        self._check_open()
        if isinstance(destination, (str, os.PathLike)):
            with open(destination, "wb") as file:  # noqa: ASYNC230 - chunk writes are small
                return await self._http.stream_to(
                    url, bearer=token, sink=file.write, max_size=max_size
                )
        sink = destination.write if hasattr(destination, "write") else destination
        return await self._http.stream_to(url, bearer=token, sink=sink, max_size=max_size)

    async def reconcile(self) -> int:
        """Run one reconciliation pass now (the client also runs them on its own);
        returns how many calls it looked at."""
        if self._reconciler is None:
            return 0
        return await self._reconciler.reconcile_once()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<CommsClient {self._http.base_url} {state} pending={self.stats.pending}>"


def _recording(operation: RecordOperation) -> tuple[str, str]:
    if not operation.recording_location or not operation.recording_access_token:
        raise InvalidRequestError("the operation has no recording location and token")
    return operation.recording_location, operation.recording_access_token
