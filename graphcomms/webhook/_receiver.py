"""The framework-agnostic receiver: a POST's body and headers in, an HTTP status out.

Order matters and is fixed: size first (cheapest, and before anything is read), then the
token, then the body. Nothing is parsed for a request that has not proved it comes
from the platform, and nothing reaches the sink unless every check passed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final, Protocol

import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from graphcomms._json import loads
from graphcomms.errors import ClientClosedError, DeserializationError
from graphcomms.typing import NotificationPayload
from graphcomms.webhook._tokens import TokenRejectedError, TokenValidator

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "NotificationReceiver",
    "NotificationSink",
    "ReceiverResult",
    "ReceiverStats",
    "is_legacy_notification",
]

logger = logging.getLogger("graphcomms.webhook")


DEFAULT_MAX_BODY_SIZE: Final = 1024 * 1024


class NotificationSink(Protocol):
    """Where accepted notification bodies go: ``CommsClient`` is one.

    ``feed`` must not wait on user code or do I/O, and must raise ``ValueError`` (such
    as ``DeserializationError``) for a body it cannot use, having applied nothing.
    """

    def feed(self, payload: NotificationPayload, /) -> object: ...


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
    legacy: int = 0
    rejected_auth: int = 0
    rejected_forbidden: int = 0
    too_large: int = 0
    malformed: int = 0
    failed: int = 0


_ACCEPTED: Final = ReceiverResult(202, "accepted", dispatched=True)
_LEGACY: Final = ReceiverResult(204, "legacy notification format; resend in Graph format")
_NO_TOKEN: Final = ReceiverResult(401, "missing or malformed bearer token")
_TOO_LARGE: Final = ReceiverResult(413, "body too large")
_NOT_JSON: Final = ReceiverResult(400, "body is not JSON")
_NOT_OBJECT: Final = ReceiverResult(400, "body is not a JSON object")
_BAD_SHAPE: Final = ReceiverResult(400, "body is not a notification")
_SINK_CLOSED: Final = ReceiverResult(503, "not accepting notifications")
_SINK_FAILED: Final = ReceiverResult(500, "notification could not be applied")

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


def _charset(headers: Mapping[str, str]) -> str | None:
    content_type = _header(headers, "Content-Type") or ""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"') or None
    return None


def _decode(body: bytes, headers: Mapping[str, str]) -> object:
    """The JSON document in ``body``; raises ValueError (DeserializationError) if none.

    Decoded as all of graphcomms decodes JSON (``_converter.loads``); only a declared
    charset is tried in addition, once UTF-8 (JSON's own encoding) has failed: one
    logged platform request declared charset=Windows-1252.
    """
    try:
        return loads(body)
    except DeserializationError:
        charset = _charset(headers)
        if charset is None:
            raise
        try:
            text = body.decode(charset)
        except LookupError:
            raise ValueError("unknown charset") from None
        return loads(text)


class NotificationReceiver:
    """Validates, size-checks and parses notification POSTs, then feeds the sink.

    ``handle`` answers 202 once the sink has the body, 204 for a legacy Skype-format
    body (the platform then resends in Graph format), 400 for a body that is not a
    notification, 401/403 for a refused token, 413 for a body over ``max_body_size``,
    and 503/500 if the sink is closed or fails unexpectedly. Only 202 means the sink
    was fed. It never raises for anything a client can send.

    The receiver owns ``validator``: ``aclose()`` closes it. ``validate=False`` turns
    token checks off for local development only, and says so loudly.
    """

    def __init__(
        self,
        sink: NotificationSink,
        validator: TokenValidator | None = None,
        *,
        validate: bool = True,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        if validate and validator is None:
            raise ValueError(
                "a TokenValidator is required; validate=False is only for local development"
            )
        if not validate and validator is not None:
            raise ValueError("pass either a TokenValidator or validate=False, not both")
        if max_body_size < 0:
            raise ValueError("max_body_size must not be negative")
        if not validate:
            logger.warning(
                "NotificationReceiver built with validate=False: callback tokens are NOT "
                "checked and anyone who can reach this endpoint can inject notifications. "
                "Never run this outside local development."
            )
        self.sink = sink
        self.validator = validator
        self.max_body_size = max_body_size
        self.stats = ReceiverStats()

    def __repr__(self) -> str:
        checking = "validating" if self.validator is not None else "NOT validating"
        return f"<NotificationReceiver {checking} max_body_size={self.max_body_size}>"

    async def aclose(self) -> None:
        """Close the validator. Safe to call twice."""
        if self.validator is not None:
            await self.validator.aclose()

    async def handle(self, body: bytes, headers: Mapping[str, str]) -> ReceiverResult:
        """Decide on one POST: ``body`` as received, ``headers`` as sent.

        A ``Content-Length`` header over the limit is refused without looking at
        ``body``, so a caller may pass ``b""`` rather than read such a body.
        """
        limit = self.max_body_size
        if len(body) > limit or _declared_length(headers) > limit:
            self.stats.too_large += 1
            logger.info("refused a notification body over %d bytes (413)", limit)
            return _TOO_LARGE
        validator = self.validator
        if validator is not None:
            token = _bearer_token(_header(headers, "Authorization"))
            # A token already validated and still current is checked without awaiting.
            if token is None or validator.validated(token) is None:
                refusal = await self._authenticate(validator, token)
                if refusal is not None:
                    return refusal
        return self._dispatch(body, headers)

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

    def _dispatch(self, body: bytes, headers: Mapping[str, str]) -> ReceiverResult:
        try:
            document = _decode(body, headers)
        except (ValueError, RecursionError):
            return self._malformed(_NOT_JSON)
        if not isinstance(document, dict):
            return self._malformed(_NOT_OBJECT)
        if "value" not in document and is_legacy_notification(document):
            self.stats.legacy += 1
            logger.info("answered a legacy-format notification with 204")
            return _LEGACY
        try:
            self.sink.feed(document)
        except (ValueError, RecursionError) as exc:
            # The exception's text is not logged: a sink may quote the payload, and the
            # payload may hold a recording access token.
            logger.warning("refused a notification the sink could not use (%s)", type(exc).__name__)
            return self._malformed(_BAD_SHAPE, log=False)
        except ClientClosedError:
            self.stats.failed += 1
            logger.warning("refused a notification: the client is closed (503)")
            return _SINK_CLOSED
        except Exception:
            # Not a bad body but a bug: the traceback is what finds it.
            self.stats.failed += 1
            logger.exception("the notification sink failed unexpectedly; answered 500")
            return _SINK_FAILED
        self.stats.accepted += 1
        return _ACCEPTED

    def _malformed(self, result: ReceiverResult, *, log: bool = True) -> ReceiverResult:
        self.stats.malformed += 1
        if log:
            logger.warning("refused a notification: %s (400)", result.reason)
        return result
