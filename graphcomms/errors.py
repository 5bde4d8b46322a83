"""Every exception graphcomms raises.

::

    GraphCommsError
    ├── ClientClosedError            the client was closed; pending trackers fail with it too
    ├── RelayUnavailableError        a fleet relay could not reach Redis (at start, or to forward)
    ├── InvalidRequestError          refused before sending (also ValueError)
    ├── TokenAcquisitionError        the token provider failed: nothing was sent
    ├── TransportError               no usable HTTP response (wraps aiohttp errors)
    │   ├── RequestTimeoutError      also the builtin TimeoutError
    │   └── ResponseTooLargeError    a body over the size the caller allows
    ├── ResponseError                Graph answered non-2xx: status, code, message, request ids
    │   ├── BadRequestError          400
    │   ├── UnauthorizedError        401
    │   ├── ForbiddenError           403
    │   ├── NotFoundError            404
    │   ├── ConflictError            409
    │   ├── ThrottledError           429, with retry_after
    │   └── ServerError              5xx
    ├── OperationError               an operation did not succeed; carries its latest snapshot
    │   ├── OperationFailedError     terminal but not success (status, code or reason)
    │   ├── CallEndedError           the call ended while the operation was pending
    │   └── OperationTimeoutError    the tracker's own deadline passed (also TimeoutError)
    └── DeserializationError         a payload did not fit the models (also ValueError)

``tracker.wait(timeout=...)`` raises the builtin :class:`TimeoutError`, like
``asyncio.timeout``; it never cancels the operation on the Graph side.

No exception message or repr ever contains a bearer token or a recording access token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from graphcomms._base_errors import GraphCommsError, InvalidRequestError

if TYPE_CHECKING:
    from graphcomms.models import CommsOperation, ResultInfo

__all__ = [
    "BadRequestError",
    "CallEndedError",
    "ClientClosedError",
    "ConflictError",
    "DeserializationError",
    "ForbiddenError",
    "GraphCommsError",
    "InvalidRequestError",
    "NotFoundError",
    "OperationError",
    "OperationFailedError",
    "OperationTimeoutError",
    "RelayUnavailableError",
    "RequestTimeoutError",
    "ResponseError",
    "ResponseTooLargeError",
    "ServerError",
    "ThrottledError",
    "TokenAcquisitionError",
    "TransportError",
    "UnauthorizedError",
]


class ClientClosedError(GraphCommsError):
    """The client is closed: it cannot send, and what it was tracking has been failed."""


class TokenAcquisitionError(GraphCommsError):
    """The token provider raised instead of giving a token, so nothing was sent.

    Whatever the provider raised (an ``azure.core.exceptions.ServiceRequestError``, a
    ``ClientAuthenticationError``, a ``TimeoutError``, your own provider's exception) is
    ``__cause__``; its message is not copied into this one, since a provider's error may
    quote a secret. Cancelling the request is never wrapped: it stays
    ``asyncio.CancelledError``. Never retried here: an Azure credential retries on its
    own, and the next request asks the provider again.

    How long a failing fetch takes is the provider's to decide. An
    ``azure.identity.aio`` credential whose token endpoint refuses the connection raises
    after about 4.8 s of its own retries (measured with ``ClientSecretCredential``,
    azure-identity 1.27); one that accepts and never answers was still waiting after
    40 s (azure-core's default read timeout is 300 s per attempt), so
    :class:`~graphcomms.auth.AzureIdentityTokenProvider` gives up after its ``timeout``
    (30 s by default). A provider of your own is bounded by nothing but itself.

    ``method`` and ``url`` name the request that needed the token; ``refresh`` is True
    when the token was asked for again after Graph answered 401.
    """

    def __init__(self, message: str, *, method: str, url: str, refresh: bool = False) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.refresh = refresh


class RelayUnavailableError(GraphCommsError):
    """A fleet relay could not reach its store (Redis).

    From ``client.deliver`` (the webhook): it could not hand notification items to the
    instance that owns them (Redis unreachable, or its circuit breaker open). This
    instance's own items were applied; the webhook answers 503 so that the platform
    may redeliver. From opening the client: the instance could not join the fleet."""


class TransportError(GraphCommsError):
    """No usable HTTP response: connection refused or reset, DNS, TLS, unreadable body.

    Attributes: ``method`` and ``url`` (its query left out of the message), ``sent``,
    ``transient``. ``sent`` says whether the request may have reached the service; a POST that may
    have reached it is never re-sent automatically. ``transient`` is False where asking
    again cannot help (a redirect loop, a redirect to a URL that is not http): such an
    error is never retried.
    """

    def __init__(
        self, message: str, *, method: str, url: str, sent: bool, transient: bool = True
    ) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.sent = sent
        self.transient = transient


class RequestTimeoutError(TransportError, TimeoutError):
    """The HTTP request timed out."""


class ResponseTooLargeError(TransportError):
    """The answer's body is larger than the caller allows (``max_size``); reading
    stopped there."""


class ResponseError(GraphCommsError):
    """Graph answered with a non-2xx status.

    Attributes: ``status``; ``method`` and ``url``; ``code`` and ``message`` from
    Graph's error body (``error.code`` is the part safe to branch on) and
    ``inner_code`` (``error.innerError.code``); ``request_id`` (Graph's) and
    ``client_request_id`` (the one graphcomms sent): give both to Microsoft support;
    ``text``, the raw body when it was not Graph's JSON shape; ``headers``, the
    answer's headers.
    """

    def __init__(
        self,
        *,
        status: int,
        method: str,
        url: str,
        code: str | None = None,
        message: str | None = None,
        inner_code: str | None = None,
        request_id: str | None = None,
        client_request_id: str | None = None,
        text: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status = status
        self.method = method
        self.url = url
        self.code = code
        self.message = message
        self.inner_code = inner_code
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.text = text
        self.headers: Mapping[str, str] = dict(headers or {})
        super().__init__(self._describe())

    def _describe(self) -> str:
        what = f"{self.code}: {self.message}" if self.code or self.message else (self.text or "")
        what = what[:500]
        return (
            f"{self.method} {self.url} -> {self.status} {what}"
            f" (request-id={self.request_id}, client-request-id={self.client_request_id})"
        )


class BadRequestError(ResponseError):
    """400: Graph refused the request body or parameters."""


class UnauthorizedError(ResponseError):
    """401: the bearer token was missing, expired or not accepted."""


class ForbiddenError(ResponseError):
    """403: the app lacks the permission for this call or action."""


class NotFoundError(ResponseError):
    """404: no such call or operation (keepAlive answers this once the call has ended)."""


class ConflictError(ResponseError):
    """409: the call is not in a state that allows this request."""


class ThrottledError(ResponseError):
    """429: too many requests; ``retry_after`` is Graph's ``Retry-After`` in seconds."""

    def __init__(self, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(**kwargs)


class ServerError(ResponseError):
    """5xx: Graph failed; ``retry_after`` is set when Graph sent ``Retry-After``."""

    def __init__(self, *, retry_after: float | None = None, **kwargs: Any) -> None:
        self.retry_after = retry_after
        super().__init__(**kwargs)


class OperationError(GraphCommsError):
    """An operation did not end in success; ``operation`` is its latest snapshot (the
    terminal one for :class:`OperationFailedError`, ``None`` when there was none)."""

    def __init__(self, message: str, *, operation: CommsOperation | None) -> None:
        super().__init__(message)
        self.operation = operation


class OperationFailedError(OperationError):
    """The operation reached a terminal status that is not success.

    ``completed`` with a non-2xx ``resultInfo.code`` or a failure ``completionReason``
    counts as failure, as does ``failed``. ``operation`` is the terminal snapshot
    (its ``completion_reason`` says why), ``result_info`` its ``resultInfo``.
    """

    operation: CommsOperation

    def __init__(self, operation: CommsOperation) -> None:
        self.result_info: ResultInfo | None = operation.result_info
        reason = getattr(operation, "completion_reason", None)
        info = operation.result_info
        detail = (
            f"code={info.code} subcode={info.subcode} message={info.message!r}"
            if info is not None
            else "no resultInfo"
        )
        super().__init__(
            f"{type(operation).__name__} {operation.id or operation.client_context} "
            f"ended {operation.status}: {detail}"
            + (f", completionReason={reason}" if reason else ""),
            operation=operation,
        )


class CallEndedError(OperationError):
    """The call ended (deleted, terminated, or gone) while the operation was pending.

    ``call_id`` names the call; ``result_info`` is the call's end reason when Graph
    sent one (200/4097: the caller hung up; 408/8537: no keepAlive for 45 minutes);
    ``operation`` is the operation's latest snapshot.
    """

    def __init__(
        self,
        *,
        call_id: str,
        result_info: ResultInfo | None,
        operation: CommsOperation | None = None,
    ) -> None:
        self.call_id = call_id
        self.result_info = result_info
        detail = (
            f" (code={result_info.code} subcode={result_info.subcode}"
            f" message={result_info.message!r})"
            if result_info is not None
            else ""
        )
        super().__init__(f"call {call_id} ended{detail}", operation=operation)


class OperationTimeoutError(OperationError, TimeoutError):
    """The tracker's own deadline (``operation_timeout``) passed with no terminal status.

    The operation may still end on Graph's side: a terminal snapshot arriving within
    the client's grace window is kept on ``tracker.late_operation`` and reported to the
    client's ``on_late_result`` hook.
    """


class DeserializationError(GraphCommsError, ValueError):
    """A payload did not fit the models. Never retried: the same bytes fail again.

    ``payload`` is the offending value, kept for debugging; it is never put in the
    message, since it may hold a recording access token.
    """

    def __init__(self, message: str, *, payload: object = None) -> None:
        super().__init__(message)
        self.payload = payload
