"""The framework-agnostic receiver: a POST's headers, then its body, in; an HTTP status out.

A request is decided in two phases, in this fixed order:

1. :meth:`NotificationReceiver.check` -- the headers alone, before any body byte is
   read: the declared size (``Content-Length``, 413), the media type and charset
   (``Content-Type``, 415), then the token (``Authorization``, 401/403). A refusal here
   is final: the adapter answers it without reading the body (and without ``100
   Continue``).
2. The adapter reads the body, at most ``max_body_size`` bytes within ``body_timeout``
   seconds (else :meth:`~NotificationReceiver.body_timed_out`: 408, and the connection
   is closed), then :meth:`~NotificationReceiver.accept` -- the real size (413), the
   JSON (400), the shape (400, or 204 for the legacy format), and the sink (202).

:meth:`~NotificationReceiver.handle` is both phases for a body already in hand. Nothing
is read for a request that has not proved it comes from the platform, no body is
decoded with a codec the request names, and nothing reaches the sink unless every
check passed. An adapter for another framework makes the same calls in the same order.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final, Protocol

import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from graphcomms._json import loads
from graphcomms.errors import ClientClosedError, RelayUnavailableError
from graphcomms.typing import NotificationPayload
from graphcomms.webhook._tokens import TokenRejectedError, TokenValidator

__all__ = [
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_MAX_BODY_SIZE",
    "HINT_PARAM",
    "NotificationReceiver",
    "NotificationSink",
    "ReceiverResult",
    "ReceiverStats",
    "is_legacy_notification",
]

logger = logging.getLogger("graphcomms.webhook")


DEFAULT_MAX_BODY_SIZE: Final = 1024 * 1024
#: The callback URL's query parameter that names the fleet instance owning a call
#: (``graphcomms.fleet`` adds it to the callback URLs it gives Graph): a routing hint.
HINT_PARAM: Final = "gcInstance"
# Graph's notification bodies are a few KiB and arrive with their headers; seconds are
# generous for a real sender and short for one that trickles bytes to hold a connection.
DEFAULT_BODY_TIMEOUT: Final = 5.0


class NotificationSink(Protocol):
    """Where accepted notification bodies go: ``CommsClient`` is one.

    ``feed`` must not wait on user code or do I/O, and must raise ``ValueError`` (such
    as ``DeserializationError``) for a body it cannot use, having applied nothing.
    """

    def feed(self, payload: NotificationPayload, /) -> object: ...


class _Relaying(Protocol):
    async def deliver(self, payload: NotificationPayload, hint: str | None = None, /) -> object: ...


@attrs.frozen
class ReceiverResult:
    """What to answer: an HTTP ``status``, a short fixed ``reason`` (never a secret),
    and whether the body was handed to the sink.
    """

    status: int
    reason: str
    dispatched: bool = False


@attrs.define(kw_only=True)
class ReceiverStats:
    """Running counts of what the receiver answered, one counter per outcome."""

    accepted: int = 0
    """202: bodies handed to the sink."""
    legacy: int = 0
    """204: legacy Skype-format bodies (the platform resends them in Graph's format)."""
    rejected_auth: int = 0
    """401: no token, or one that is not a valid platform token."""
    rejected_forbidden: int = 0
    """403: a valid token for another app or tenant (check ``app_id`` and
    ``allowed_tenants``)."""
    too_large: int = 0
    """413: bodies over ``max_body_size``, declared or read."""
    unsupported_media_type: int = 0
    """415: a ``Content-Type`` or charset other than UTF-8 JSON."""
    timed_out: int = 0
    """408: bodies not received within ``body_timeout``."""
    malformed: int = 0
    """400: not JSON, not an object, or not a notification the sink could use."""
    failed: int = 0
    """503/500: no sink attached yet, the client closed, or the sink failed."""
    relay_unavailable: int = 0
    """503: bodies whose foreign items a fleet relay could not hand to their owner
    (this instance's own items were applied)."""


_ACCEPTED: Final = ReceiverResult(202, "accepted", dispatched=True)
_LEGACY: Final = ReceiverResult(204, "legacy notification format; resend in Graph format")
_NO_TOKEN: Final = ReceiverResult(401, "missing or malformed bearer token")
_TOO_LARGE: Final = ReceiverResult(413, "body too large")
_UNSUPPORTED_MEDIA_TYPE: Final = ReceiverResult(415, "body must be application/json in UTF-8")
_TIMED_OUT: Final = ReceiverResult(408, "body not received in time")
_NOT_JSON: Final = ReceiverResult(400, "body is not JSON")
_NOT_OBJECT: Final = ReceiverResult(400, "body is not a JSON object")
_BAD_SHAPE: Final = ReceiverResult(400, "body is not a notification")
_SINK_CLOSED: Final = ReceiverResult(503, "not accepting notifications")
_SINK_FAILED: Final = ReceiverResult(500, "notification could not be applied")
_RELAY_UNAVAILABLE: Final = ReceiverResult(503, "relay unavailable; redeliver later")

# The Skype calling contract's first callback (a `Conversation`) always carries these;
# its later callbacks (`ConversationResult`) carry `operationOutcome`.
_LEGACY_MARKERS: Final = frozenset({"presentedmodalitytypes", "participants", "operationoutcome"})


def is_legacy_notification(document: Mapping[str, object]) -> bool:
    """True for a body in the legacy Skype calling format rather than Graph's.

    The rule: no ``value`` member (so not a ``commsNotifications`` envelope), a
    ``callState``, and at least one of ``presentedModalityTypes``, ``participants`` or
    ``operationOutcome`` -- the required fields of the Skype Bot Platform's
    ``Conversation`` and ``ConversationResult``. Key case is ignored.
    """
    if "value" in document:
        return False
    keys = {key.lower() for key in document}
    return "callstate" in keys and not keys.isdisjoint(_LEGACY_MARKERS) and "value" not in keys


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None and not isinstance(headers, (CIMultiDictProxy, CIMultiDict)):
        lowered = name.lower()
        for key, candidate in headers.items():
            if key.lower() == lowered:
                return candidate
    return value


def _declared_length(headers: Mapping[str, str]) -> int:
    value = _header(headers, "Content-Length")
    if value is None:
        return -1
    try:
        return int(value)
    except ValueError:
        return -1


def _bearer_token(value: str | None) -> str | None:
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    # What is left is checked by the validator, and only on a cache miss: a cached
    # token is an exact string that already passed.
    return token.strip() or None


# A body without a type, or typed as opaque bytes (what HTTP clients send for raw bytes
# when told nothing), is read as JSON too: the bytes are decoded as UTF-8 either way.
_JSON_MEDIA_TYPES: Final = frozenset({"application/json", "application/octet-stream", ""})
# What the platform sends, spelled as it sends it, taken without parsing.
_USUAL_CONTENT_TYPES: Final = frozenset(
    {"application/json", "application/json; charset=utf-8", "application/json; charset=UTF-8"}
)


def _is_utf8_json(content_type: str | None) -> bool:
    """True if ``Content-Type`` allows reading the body as UTF-8 JSON (RFC 8259 §8.1).

    Only the media type and a ``charset`` parameter count, case-insensitively. Any
    other charset is refused rather than decoded: Python would find a codec for
    most names, and some (``punycode``) take quadratic time.
    """
    if content_type is None or content_type in _USUAL_CONTENT_TYPES:
        return True
    media_type, *parameters = content_type.split(";")
    if media_type.strip().lower() not in _JSON_MEDIA_TYPES:
        return False
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() != "utf-8":
            return False
    return True


class NotificationReceiver:
    """Validates, size-checks and parses notification POSTs, then feeds the sink.

    The answers: 202 once the sink has the body, 204 for a legacy Skype-format body
    (the platform then resends in Graph format), 400 for a body that is not a
    notification, 401/403 for a refused token, 408 for a body not received within
    ``body_timeout`` seconds, 413 for a body over ``max_body_size`` bytes, 415 for a
    body that is not declared as UTF-8 JSON, and 503/500 if the sink is closed or fails
    unexpectedly. Only 202 means the sink was fed. It never raises for anything a
    client can send. The module docstring gives the order of the checks.

    The receiver owns ``validator``: ``aclose()`` closes it. ``validate=False`` turns
    token checks off for local development only, and says so loudly.

    ``sink`` may be left out and set later (``receiver.sink = client``): an aiohttp app
    must have its routes before it starts, while its ``CommsClient`` is usually opened
    as it starts (``app.cleanup_ctx``). Until a sink is set, a request whose token
    passed is answered 503 without its body being read (counted in ``stats.failed``);
    a token is still checked first, so nobody learns the state without one.
    """

    def __init__(
        self,
        sink: NotificationSink | None = None,
        validator: TokenValidator | None = None,
        *,
        validate: bool = True,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
    ) -> None:
        if validate and validator is None:
            raise ValueError(
                "a TokenValidator is required; validate=False is only for local development"
            )
        if not validate and validator is not None:
            raise ValueError("pass either a TokenValidator or validate=False, not both")
        if max_body_size < 0:
            raise ValueError("max_body_size must not be negative")
        if not body_timeout > 0:
            raise ValueError("body_timeout must be positive")
        if not validate:
            logger.warning(
                "NotificationReceiver built with validate=False: callback tokens are NOT "
                "checked and anyone who can reach this endpoint can inject notifications. "
                "Never run this outside local development."
            )
        self.sink: NotificationSink | None = sink
        self.validator = validator
        self.max_body_size = max_body_size
        self.body_timeout = body_timeout
        self.stats = ReceiverStats()

    def __repr__(self) -> str:
        checking = "validating" if self.validator is not None else "NOT validating"
        return (
            f"<NotificationReceiver {checking} max_body_size={self.max_body_size}"
            f" body_timeout={self.body_timeout}>"
        )

    async def aclose(self) -> None:
        """Close the validator. Safe to call twice."""
        if self.validator is not None:
            await self.validator.aclose()

    async def handle(self, body: bytes, headers: Mapping[str, str]) -> ReceiverResult:
        """Decide on one POST whose ``body`` is already read: :meth:`check`, then
        :meth:`accept`. A ``body`` over the limit is refused first, as a declared one is.
        """
        if len(body) > self.max_body_size:
            return self._too_large()
        refusal = await self.check(headers)
        if refusal is not None:
            return refusal
        return self.accept(body)

    async def check(self, headers: Mapping[str, str]) -> ReceiverResult | None:
        """The headers phase: ``None`` if the body may be read, else the answer.

        Checks the declared ``Content-Length`` (413), the ``Content-Type`` (415: only
        ``application/json``, ``application/octet-stream`` or none, with no charset but
        UTF-8), then the bearer token (401/403), then that a sink is set (503). A
        refused request's body must not be read. A token already validated and still
        current is checked without awaiting.
        """
        if _declared_length(headers) > self.max_body_size:
            return self._too_large()
        if not _is_utf8_json(_header(headers, "Content-Type")):
            self.stats.unsupported_media_type += 1
            logger.info("refused a notification: %s (415)", _UNSUPPORTED_MEDIA_TYPE.reason)
            return _UNSUPPORTED_MEDIA_TYPE
        validator = self.validator
        if validator is not None:
            token = _bearer_token(_header(headers, "Authorization"))
            if token is None or validator.validated(token) is None:
                refusal = await self._authenticate(validator, token)
                if refusal is not None:
                    return refusal
        if self.sink is None:
            return self._no_sink()
        return None

    def accept(self, body: bytes) -> ReceiverResult:
        """The body phase, only for a request whose headers :meth:`check` let through:
        the body's real size (413), then its JSON (400), its shape (400, or 204 for the
        legacy format), and the sink (202, or 503/500).
        """
        if len(body) > self.max_body_size:
            return self._too_large()
        return self._dispatch(body)

    @property
    def _relay(self) -> _Relaying | None:
        # A client with a fleet relay takes bodies through its async `deliver`: items
        # owned by another instance are handed over before the answer. Without one,
        # the synchronous `feed` path stays exactly as it was. Read per request: the
        # sink may be attached after the receiver was routed.
        sink = self.sink
        if getattr(sink, "fleet", None) is not None and hasattr(sink, "deliver"):
            return sink  # type: ignore[return-value]
        return None

    @property
    def relays(self) -> bool:
        """True when the sink is a fleet instance: adapters call
        :meth:`accept_relayed` instead of :meth:`accept`."""
        return self._relay is not None

    async def accept_relayed(self, body: bytes, hint: str | None = None) -> ReceiverResult:
        """:meth:`accept` for a fleet instance: the same checks, then the sink's
        ``deliver`` (this instance's items applied at once, the others handed to
        their owners). 503 when they could not be handed over. ``hint`` is the
        instance the request's callback URL names, if any."""
        relay = self._relay
        if relay is None:
            return self.accept(body)
        if len(body) > self.max_body_size:
            return self._too_large()
        parsed = self._parse(body)
        if isinstance(parsed, ReceiverResult):
            return parsed
        try:
            await relay.deliver(parsed, hint)
        except RelayUnavailableError:
            self.stats.relay_unavailable += 1
            logger.warning("refused a notification: %s (503)", _RELAY_UNAVAILABLE.reason)
            return _RELAY_UNAVAILABLE
        except Exception as exc:
            return self._sink_error(exc)
        self.stats.accepted += 1
        return _ACCEPTED

    def body_timed_out(self) -> ReceiverResult:
        """The answer (408, counted) for a body that did not arrive within
        ``body_timeout``; the adapter closes the connection after it."""
        self.stats.timed_out += 1
        logger.info("refused a notification: %s (408)", _TIMED_OUT.reason)
        return _TIMED_OUT

    def _no_sink(self) -> ReceiverResult:
        self.stats.failed += 1
        logger.warning("refused a notification: no client is attached yet (503)")
        return _SINK_CLOSED

    def _too_large(self) -> ReceiverResult:
        self.stats.too_large += 1
        logger.info("refused a notification body over %d bytes (413)", self.max_body_size)
        return _TOO_LARGE

    async def _authenticate(
        self, validator: TokenValidator, token: str | None
    ) -> ReceiverResult | None:
        if token is None:
            self.stats.rejected_auth += 1
            logger.info("refused a notification: %s (401)", _NO_TOKEN.reason)
            return _NO_TOKEN
        try:
            await validator.validate(token)
        except TokenRejectedError as exc:
            if exc.status == 403:
                self.stats.rejected_forbidden += 1
                # A platform-signed token for another app or tenant is usually our own
                # misconfiguration (app id, tenant list), so it is worth a warning.
                logger.warning("refused a notification: %s (403)", exc.reason)
            else:
                self.stats.rejected_auth += 1
                logger.info("refused a notification: %s (%d)", exc.reason, exc.status)
            return ReceiverResult(exc.status, exc.reason)
        return None

    def _parse(self, body: bytes) -> dict[str, object] | ReceiverResult:
        try:
            # As JSON, whatever a header said: check() refused any charset but UTF-8.
            document = loads(body)
        except (ValueError, RecursionError):
            return self._malformed(_NOT_JSON)
        if not isinstance(document, dict):
            return self._malformed(_NOT_OBJECT)
        if "value" not in document and is_legacy_notification(document):
            self.stats.legacy += 1
            logger.info("answered a legacy-format notification with 204")
            return _LEGACY
        return document

    def _dispatch(self, body: bytes) -> ReceiverResult:
        document = self._parse(body)
        if isinstance(document, ReceiverResult):
            return document
        sink = self.sink
        if sink is None:
            return self._no_sink()
        try:
            sink.feed(document)
        except Exception as exc:
            return self._sink_error(exc)
        self.stats.accepted += 1
        return _ACCEPTED

    def _sink_error(self, exc: Exception) -> ReceiverResult:
        if isinstance(exc, (ValueError, RecursionError)):
            # The exception's text is not logged: a sink may quote the payload, and the
            # payload may hold a recording access token.
            logger.warning("refused a notification the sink could not use (%s)", type(exc).__name__)
            return self._malformed(_BAD_SHAPE, log=False)
        self.stats.failed += 1
        if isinstance(exc, ClientClosedError):
            logger.warning("refused a notification: the client is closed (503)")
            return _SINK_CLOSED
        # Not a bad body but a bug: the traceback is what finds it.
        logger.error("the notification sink failed unexpectedly; answered 500", exc_info=exc)
        return _SINK_FAILED

    def _malformed(self, result: ReceiverResult, *, log: bool = True) -> ReceiverResult:
        self.stats.malformed += 1
        if log:
            logger.warning("refused a notification: %s (400)", result.reason)
        return result
