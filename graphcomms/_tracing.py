"""OpenTelemetry tracing, on when a client is given a tracer provider (``otel`` extra).

Only :class:`~graphcomms.CommsClient` imports this module, and only when it is given a
``tracer_provider``: a client without one imports no ``opentelemetry`` module and its
hot paths pay one ``is None`` check at each seam (the sender, the registry, the HTTP
transport).

What it records:

- a span per operation action (``graphcomms <action>``, e.g. ``graphcomms playPrompt``),
  started when the action is sent and ended at its terminal outcome, however that comes
  (the answer itself, a notification, the call's end, the client's close, the
  tracker's own deadline). Attributes: the call id, the operation type, id and
  clientContext, the client-request-id of the POST, and at the end the status, the
  ``resultInfo`` code, subcode and message, and the completion reason. A failure sets
  the span's status to error and records the exception ``await tracker`` raises
  (``OperationFailedError``, ``CallEndedError``, ...);
- the HTTP request as a child span (``POST`` etc., kind client, one per request with
  its retries inside), with the method, URL, answer status and client-request-id; every
  Graph request the client sends gets one, as a child of whatever span is current;
- each notification that touches the operation as an event on its span
  (``graphcomms.notification``, with the status it carried and ``deleted``).

The spans of pending actions are held by tracker until their end, so they are bounded
exactly as the pending operations are (``client.stats.pending``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from graphcomms._http import HttpResponse
from graphcomms._tracker import OperationTracker
from graphcomms._version import __version__
from graphcomms.errors import OperationFailedError, ResponseError
from graphcomms.models import CommsOperation, OperationRequest, is_success

__all__ = ["Tracing"]

T = TypeVar("T")

# Attribute names: graphcomms' own under its namespace, HTTP ones from OpenTelemetry's
# semantic conventions.
CALL_ID = "graphcomms.call.id"
OPERATION_TYPE = "graphcomms.operation.type"
OPERATION_ID = "graphcomms.operation.id"
CLIENT_CONTEXT = "graphcomms.operation.client_context"
CLIENT_REQUEST_ID = "graphcomms.client_request_id"
REQUEST_ID = "graphcomms.request_id"
STATUS = "graphcomms.operation.status"
RESULT_CODE = "graphcomms.result.code"
RESULT_SUBCODE = "graphcomms.result.subcode"
RESULT_MESSAGE = "graphcomms.result.message"
COMPLETION_REASON = "graphcomms.operation.completion_reason"
DELETED = "graphcomms.notification.deleted"
NOTIFICATION = "graphcomms.notification"


class Tracing:
    """One client's tracer and the spans of its pending actions."""

    __slots__ = ("_spans", "_tracer")

    def __init__(self, provider: TracerProvider) -> None:
        self._tracer = provider.get_tracer("graphcomms", __version__)
        self._spans: dict[OperationTracker[Any], Span] = {}

    # -- an action, from its POST to its end ------------------------------------------

    def start_action(self, request: OperationRequest[Any], tracker: OperationTracker[Any]) -> Span:
        """The action's span, started now (the tracker is registered, not yet sent)."""
        name = request.path.rsplit("/", 1)[-1]
        span = self._tracer.start_span(
            f"graphcomms {name}",
            kind=SpanKind.INTERNAL,
            attributes={
                CALL_ID: tracker.call_id,
                OPERATION_TYPE: type(tracker.operation).__name__,
                CLIENT_CONTEXT: tracker.client_context,
            },
        )
        self._spans[tracker] = span
        return span

    async def within(self, span: Span, work: Awaitable[T]) -> T:
        """Await ``work`` with ``span`` current: the HTTP request's span is its child."""
        token = otel_context.attach(trace.set_span_in_context(span))
        try:
            return await work
        finally:
            otel_context.detach(token)

    def answered(
        self,
        tracker: OperationTracker[Any],
        operation_id: str | None,
        client_request_id: str,
        snapshot: CommsOperation,
    ) -> None:
        """Graph accepted the action (before the answer is applied)."""
        span = self._spans.get(tracker)
        if span is None:
            return
        span.set_attribute(CLIENT_REQUEST_ID, client_request_id)
        if operation_id is not None:
            span.set_attribute(OPERATION_ID, operation_id)
        if snapshot.status is not None:
            span.set_attribute(STATUS, str(snapshot.status))

    def not_sent(self, tracker: OperationTracker[Any], error: BaseException) -> None:
        """The POST failed: the action's span ends with its error."""
        span = self._spans.pop(tracker, None)
        if span is not None:
            if isinstance(error, ResponseError):
                span.set_attribute(CLIENT_REQUEST_ID, error.client_request_id or "")
            _end_with_error(span, error)

    # -- driven by the registry -------------------------------------------------------

    def notified(
        self, tracker: OperationTracker[Any], snapshot: CommsOperation, deleted: bool
    ) -> None:
        """A notification applied to the tracker's operation: an event on its span."""
        span = self._spans.get(tracker)
        if span is not None:
            attributes: dict[str, Any] = {DELETED: deleted}
            if snapshot.status is not None:
                attributes[STATUS] = str(snapshot.status)
            span.add_event(NOTIFICATION, attributes)

    def finished(
        self, tracker: OperationTracker[Any], outcome: CommsOperation | BaseException
    ) -> None:
        """The tracker resolved: its span ends, as an error unless it succeeded."""
        span = self._spans.pop(tracker, None)
        if span is None:
            return
        if tracker.operation_id is not None:
            span.set_attribute(OPERATION_ID, tracker.operation_id)
        if isinstance(outcome, BaseException):
            _describe(span, tracker.operation)
            _end_with_error(span, outcome)
            return
        _describe(span, outcome)
        if is_success(outcome):
            span.set_status(Status(StatusCode.OK))
            span.end()
        else:
            _end_with_error(span, OperationFailedError(outcome))

    # -- the HTTP request -------------------------------------------------------------

    async def http(self, method: str, url: str, send: Awaitable[HttpResponse]) -> HttpResponse:
        """``send`` (one Graph request, retries inside) in a client span of its own."""
        with self._tracer.start_as_current_span(
            method,
            kind=SpanKind.CLIENT,
            attributes={"http.request.method": method, "url.full": url},
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                response = await send
            except BaseException as exc:
                if isinstance(exc, ResponseError):
                    span.set_attribute("http.response.status_code", exc.status)
                    if exc.client_request_id:
                        span.set_attribute(CLIENT_REQUEST_ID, exc.client_request_id)
                _end_with_error(span, exc, end=False)
                raise
            span.set_attribute("http.response.status_code", response.status)
            span.set_attribute(CLIENT_REQUEST_ID, response.client_request_id)
            if response.request_id:
                span.set_attribute(REQUEST_ID, response.request_id)
            return response


def _describe(span: Span, operation: CommsOperation) -> None:
    """The operation's outcome as attributes."""
    if operation.status is not None:
        span.set_attribute(STATUS, str(operation.status))
    info = operation.result_info
    if info is not None:
        attributes: Mapping[str, Any] = {
            RESULT_CODE: info.code,
            RESULT_SUBCODE: info.subcode,
            RESULT_MESSAGE: info.message,
        }
        span.set_attributes({k: v for k, v in attributes.items() if v is not None})
    if operation.completion_reason is not None:
        span.set_attribute(COMPLETION_REASON, str(operation.completion_reason))


def _end_with_error(span: Span, error: BaseException, *, end: bool = True) -> None:
    span.set_attribute("error.type", type(error).__qualname__)
    span.record_exception(error)
    span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
    if end:
        span.end()
