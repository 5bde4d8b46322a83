"""Receiving Graph's call notifications: token validation, a framework-agnostic
receiver, an aiohttp.web adapter and an ASGI adapter.

Needs the ``webhook`` extra (PyJWT with cryptography; ``asgi`` is the same)::

    validator = TokenValidator(TokenValidationSettings(app_id=BOT_APP_ID))
    receiver = NotificationReceiver(client, validator)
    web.run_app(make_app(receiver, path="/callback"))  # aiohttp
    app = ASGINotificationApp(receiver, path="/callback")  # any ASGI server
"""

from graphcomms.webhook._aiohttp import add_routes, make_app, make_handler
from graphcomms.webhook._asgi import ASGINotificationApp
from graphcomms.webhook._receiver import (
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_MAX_BODY_SIZE,
    NotificationReceiver,
    NotificationSink,
    ReceiverResult,
    ReceiverStats,
    is_legacy_notification,
)
from graphcomms.webhook._tokens import (
    DEFAULT_ISSUERS,
    DEFAULT_OPENID_CONFIGURATION_URL,
    TokenRejectedError,
    TokenValidationSettings,
    TokenValidator,
    TokenValidatorStats,
    ValidatedToken,
)

__all__ = [
    "ASGINotificationApp",
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_ISSUERS",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_OPENID_CONFIGURATION_URL",
    "NotificationReceiver",
    "NotificationSink",
    "ReceiverResult",
    "ReceiverStats",
    "TokenRejectedError",
    "TokenValidationSettings",
    "TokenValidator",
    "TokenValidatorStats",
    "ValidatedToken",
    "add_routes",
    "is_legacy_notification",
    "make_app",
    "make_handler",
]
