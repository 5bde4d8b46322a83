"""The one path every action takes, and the call's plain requests.

:meth:`ActionSender.send` is the path of every operation action: build the body (with
a generated ``clientContext`` when the caller gave none), register the tracker under
that context *before* the POST (a notification may overtake the answer), POST to the
action's path, read the answer as the action's own operation type, and bind it
(resolving at once when Graph says it already ended). It is typed end to end: a
request of ``OperationRequest[OpT]`` gives a ``PendingAction[OpT]``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from graphcomms._converter import (
    structure_call,
    structure_operation,
    structure_participant,
    unstructure,
)
from graphcomms._events import CallbackRunner
from graphcomms._http import HttpResponse, HttpTransport
from graphcomms._registry import OperationRegistry
from graphcomms._routing import (
    ResourceKind,
    call_path,
    normalize_id,
    parse_resource_path,
    path_segment,
)
from graphcomms._tracker import CancelHook, OperationTracker
from graphcomms.errors import DeserializationError, InvalidRequestError
from graphcomms.models import (
    ActionRequest,
    Call,
    CommsOperation,
    ControlRequest,
    OperationRequest,
    Participant,
)

if TYPE_CHECKING:
    from graphcomms._fleet_port import FleetPort
    from graphcomms._tracing import Tracing

__all__ = ["ActionSender", "PendingAction"]

OpT = TypeVar("OpT", bound=CommsOperation)

_log = logging.getLogger("graphcomms.client")

_PARTICIPANT = "{participant_id}"


class PendingAction(Generic[OpT]):
    """What every action method returns: the action, checked and not yet sent.

    Two awaits, two answers: ``tracker = await call.play_prompt(p)`` sends the action
    and gives its :class:`~graphcomms.OperationTracker` once Graph accepted it; ``await
    tracker`` gives the terminal operation. Or ``async with call.play_prompt(p) as
    tracker:``, which also cancels a media operation server-side when the block exits
    before the operation ended. It is sent once; awaiting it again raises
    ``RuntimeError``.

    Why not a coroutine that returns the tracker: the request is built and checked
    against Graph's limits when the method is called (``InvalidRequestError`` before
    any ``await``), it can be inspected (``request``) and passed around before it is
    sent, one object serves both ``await`` and ``async with``, and an action built but
    never awaited sends nothing and leaves no "never awaited" warning.
    """

    __slots__ = ("_send", "_tracker", "request")

    def __init__(
        self,
        request: OperationRequest[OpT],
        send: Callable[[], Awaitable[OperationTracker[OpT]]],
    ) -> None:
        #: The request model that will be sent.
        self.request = request
        self._send: Callable[[], Awaitable[OperationTracker[OpT]]] | None = send
        self._tracker: OperationTracker[OpT] | None = None

    def _sent_once(self) -> Awaitable[OperationTracker[OpT]]:
        send = self._send
        if send is None:
            raise RuntimeError(
                f"{type(self.request).__name__} was already sent; use the tracker it gave"
            )
        self._send = None
        return send()

    def __await__(self) -> Generator[Any, None, OperationTracker[OpT]]:
        return self._sent_once().__await__()

    async def __aenter__(self) -> OperationTracker[OpT]:
        self._tracker = await self._sent_once()
        return self._tracker

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tracker is not None:
            await self._tracker.__aexit__(exc_type, exc, tb)

    def __repr__(self) -> str:
        state = "unsent" if self._send is not None else "sent"
        return f"<PendingAction {type(self.request).__name__} {state}>"


class ActionSender:
    """Sends a call's actions and requests; the call handles hold one, shared."""

    def __init__(
        self,
        *,
        http: HttpTransport,
        registry: OperationRegistry,
        runner: CallbackRunner,
        operation_timeout: float | None,
        check_open: Callable[[], None],
        tracing: Tracing | None = None,
    ) -> None:
        self._http = http
        self._tracing = tracing
        self._registry = registry
        self._runner = runner
        self._operation_timeout = operation_timeout
        self._check_open = check_open
        #: The callback URL answers and new calls use unless they name another.
        self.callback_uri: str | None = None
        #: The fleet relay, told of each operation registered and bound.
        self.fleet: FleetPort | None = None

    @property
    def runner(self) -> CallbackRunner:
        return self._runner

    def callback_for(self, url: str | None) -> str | None:
        """The callback URL a new or answered call gives Graph: ``url``, else the
        client's; with a fleet relay, naming this instance (the hint its notifications
        are routed by), as the relay names it when the call is placed."""
        url = url or self.callback_uri
        if url and self.fleet is not None:
            return self.fleet.hinted_callback(url)
        return url

    def send(
        self,
        call: CallAddress,
        request: OperationRequest[OpT],
        *,
        participant_id: str | None = None,
        timeout: float | None = None,
        cancel_hook: CancelHook | None = None,
    ) -> PendingAction[OpT]:
        """The operation action ``request`` on ``call``, sent when the result is
        awaited. ``timeout`` overrides the client's ``operation_timeout``;
        ``cancel_hook`` is what ``tracker.cancel()`` does."""
        path = _under(call.path, request, participant_id)  # a bad id raises here
        deadline = timeout if timeout is not None else self._operation_timeout

        def issue() -> Awaitable[OperationTracker[OpT]]:
            return self._issue(call, path, request, deadline, cancel_hook)

        return PendingAction(request, issue)

    async def _issue(
        self,
        call: CallAddress,
        path: str,
        request: OperationRequest[OpT],
        timeout: float | None,
        cancel_hook: CancelHook | None,
    ) -> OperationTracker[OpT]:
        self._check_open()
        body = unstructure(request)
        ctx = request.client_context
        fleet = self.fleet
        if ctx is None:
            # Into the body, not through attrs.evolve: that would build (and validate)
            # the whole request again on every action.
            ctx = body["clientContext"] = (
                os.urandom(16).hex() if fleet is None else fleet.new_client_context()
            )
        kind = request.operation_type()
        tracker = OperationTracker(
            call_id=call.key,
            client_context=ctx,
            snapshot=kind(client_context=ctx),
            runner=self._runner,
            cancel_hook=cancel_hook,
        )
        self._registry.expect(tracker, timeout=timeout)
        tracing = self._tracing
        # The deadline as wall-clock time, for a fleet relay's record (a process's
        # monotonic clock ends with it).
        deadline = None if fleet is None or timeout is None else time.time() + timeout
        try:
            if fleet is not None:
                stored = fleet.operation_registered(tracker, call_id=call.id, deadline=deadline)
                if stored is not None:
                    await stored
            if tracing is None:
                response = await self._http.request("POST", path, json=body)
            else:
                span = tracing.start_action(request, tracker)
                response = await tracing.within(span, self._http.request("POST", path, json=body))
        except BaseException as exc:
            self._registry.discard(tracker)
            if fleet is not None:
                fleet.operation_finished(tracker)
            if tracing is not None:
                tracing.not_sent(tracker, exc)
            raise
        snapshot = self._answer(response, kind, ctx)
        op_id = (
            normalize_id(snapshot.id)
            if snapshot.id
            else operation_id_from_location(response.location)
        )
        if tracing is not None:
            tracing.answered(tracker, op_id, response.client_request_id, snapshot)
        if _log.isEnabledFor(logging.DEBUG):  # the extra dict is not free
            _log.debug(
                "%s issued on call %s: status %s",
                kind.__name__,
                call.id,
                snapshot.status,
                extra={
                    "call_id": tracker.call_id,
                    "operation_id": op_id,
                    "client_request_id": response.client_request_id,
                },
            )
        self._registry.bind(tracker, op_id, snapshot)
        if fleet is not None and not tracker.done():
            fleet.operation_bound(tracker, call_id=call.id, deadline=deadline)
        return tracker

    @staticmethod
    def _answer(response: HttpResponse, kind: type[OpT], ctx: str) -> OpT:
        """The operation Graph answered with; a 2xx without a readable one (no body,
        or one that does not fit) is tracked from its ``Location`` and context, since
        Graph took the action."""
        body = response.body
        if isinstance(body, dict):
            if body.get("clientContext") == ctx:
                # The snapshot, and so the pending tracker, holds the context string we
                # made rather than an equal copy decoded from the answer (81 bytes each).
                body["clientContext"] = ctx
            try:
                return structure_operation(body, kind)
            except DeserializationError as exc:
                _log.warning(
                    "%s accepted (%d) with an answer that does not fit: %s",
                    kind.__name__,
                    response.status,
                    exc,
                    extra={"client_request_id": response.client_request_id},
                )
        return kind(client_context=ctx)

    async def control(
        self, call_id: str, request: ControlRequest, *, participant_id: str | None = None
    ) -> None:
        """POST an action that returns no operation; returns once Graph accepted it."""
        await self.request(
            "POST", action_path(call_id, request, participant_id), unstructure(request)
        )

    async def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> HttpResponse:
        """A request to ``path`` (relative to the base URL), once the client is open."""
        self._check_open()
        return await self._http.request(method, path, json=body)

    async def get_call(self, call_id: str) -> Call:
        return structure_call(_object(await self.request("GET", call_path(call_id))))

    async def list_participants(self, call_id: str) -> list[Participant]:
        body = _object(await self.request("GET", call_path(call_id, "participants")))
        items = body.get("value")
        if not isinstance(items, list):
            raise DeserializationError("participants: no 'value' list", payload=body)
        return [structure_participant(item) for item in items]

    async def get_operation(self, call_id: str, operation_id: str) -> CommsOperation:
        return structure_operation(await self.read_operation(call_id, operation_id), CommsOperation)

    async def read_operation(self, call_id: str, operation_id: str) -> Mapping[str, Any]:
        """``GET .../operations/{id}`` as Graph's JSON (Graph documents it for
        addLargeGalleryView only)."""
        path = call_path(call_id, "operations", path_segment(operation_id, "operation id"))
        return _object(await self.request("GET", path))


class CallAddress(Protocol):
    """A call as the sender needs it (a :class:`~graphcomms.CallHandle` is one)."""

    @property
    def id(self) -> str:
        """As Graph spelled it."""

    @property
    def key(self) -> str:
        """Normalised, as trackers and notifications are matched."""

    @property
    def path(self) -> str:
        """``communications/calls/{id}``, the id encoded (:func:`call_path`)."""


def action_path(call_id: str, request: ActionRequest, participant_id: str | None) -> str:
    """Where ``request`` is POSTed: its path under the call, ids encoded as segments."""
    return _under(call_path(call_id), request, participant_id)


def _under(base: str, request: ActionRequest, participant_id: str | None) -> str:
    path = request.path
    if _PARTICIPANT in path:
        if participant_id is None:
            raise InvalidRequestError(
                f"{type(request).__name__} acts on one participant: "
                "send it through call.participant(id)"
            )
        path = path.replace(_PARTICIPANT, path_segment(participant_id, "participant id"))
    return f"{base}/{path}"


def operation_id_from_location(location: str | None) -> str | None:
    """The normalised operation id a ``Location`` header names, if it names one."""
    ref = parse_resource_path(location)
    return ref.item_id if ref is not None and ref.kind is ResourceKind.OPERATION else None


def call_id_from_location(location: str | None) -> str | None:
    """The call id a ``Location`` header names, as Graph spelled it (it goes back into
    request paths)."""
    ref = parse_resource_path(location)
    return ref.raw_call_id if ref is not None and ref.kind is ResourceKind.CALL else None


def _object(response: HttpResponse) -> Mapping[str, Any]:
    body = response.body
    if not isinstance(body, Mapping):
        raise DeserializationError("expected a JSON object from Graph", payload=body)
    return body
