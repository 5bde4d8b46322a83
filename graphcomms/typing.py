"""Protocols and aliases for the things users hand to graphcomms."""

from __future__ import annotations

from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeAlias, runtime_checkable

__all__ = [
    "JSONObject",
    "NotificationPayload",
    "NotificationSource",
    "TokenLike",
    "TokenProvider",
]

JSONObject: TypeAlias = Mapping[str, Any]
"""A decoded JSON object, as ``json.loads`` returns it."""

NotificationPayload: TypeAlias = "bytes | str | JSONObject"
"""One notification POST body: raw bytes as received, or already decoded."""

NotificationSource: TypeAlias = AsyncIterable[NotificationPayload]
"""Any async iterable of notification bodies: a queue reader, a relay, a test fake."""


@runtime_checkable
class TokenProvider(Protocol):
    """Supplies the bearer token for outbound Graph requests.

    ``get_token`` is awaited before every request, so it must be cheap when the token
    is cached; ``force_refresh`` is set after Graph answered 401 with the last token.
    """

    async def get_token(self, *, force_refresh: bool = False) -> str: ...


TokenLike: TypeAlias = "str | TokenProvider | Callable[[], Awaitable[str]]"
"""What ``CommsClient`` accepts as credentials: a fixed token, a provider, or an async
callable returning a token."""
