"""Bearer tokens for outbound Graph requests.

Every provider satisfies :class:`graphcomms.typing.TokenProvider`. The transport awaits
``get_token()`` before each request, and ``get_token(force_refresh=True)`` once after
Graph answered 401. No provider puts its token in a repr, a log record or an exception
message.

Azure identity is optional: :class:`AzureIdentityTokenProvider` takes any object shaped
like an ``azure.identity.aio`` credential and never imports ``azure`` itself.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from graphcomms.typing import TokenLike, TokenProvider

__all__ = [
    "AccessTokenLike",
    "AsyncTokenCredential",
    "AzureIdentityTokenProvider",
    "CallableTokenProvider",
    "StaticTokenProvider",
    "as_token_provider",
]

GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"


class StaticTokenProvider:
    """Always the same token: for scripts, tests and tokens refreshed elsewhere.

    ``force_refresh`` cannot help here, so a 401 is re-sent once with the same token and
    then raised.
    """

    __slots__ = ("_token",)

    def __init__(self, token: str) -> None:
        if not isinstance(token, str):
            raise TypeError(f"token must be a str, not {type(token).__name__}")
        if not token:
            raise ValueError("token must not be empty")
        self._token = token

    def __repr__(self) -> str:
        return "StaticTokenProvider(token=<redacted>)"

    async def get_token(self, *, force_refresh: bool = False) -> str:
        return self._token


class CallableTokenProvider:
    """Awaits ``fn()`` for every request; ``fn`` does its own caching and refreshing.

    ``force_refresh`` is not passed on, since ``fn`` takes no arguments: a callable that
    must react to a 401 should be wrapped in a :class:`~graphcomms.typing.TokenProvider`
    of its own instead.
    """

    __slots__ = ("_fn",)

    def __init__(self, fn: Callable[[], Awaitable[str]]) -> None:
        if not callable(fn):
            raise TypeError(f"fn must be an async callable, not {type(fn).__name__}")
        self._fn = fn

    def __repr__(self) -> str:
        name = getattr(self._fn, "__qualname__", type(self._fn).__name__)
        return f"CallableTokenProvider(fn={name})"

    async def get_token(self, *, force_refresh: bool = False) -> str:
        """The token ``fn`` returns. Raises :class:`TypeError` when ``fn`` is not async or
        does not produce a non-empty ``str``."""
        result: object = self._fn()
        if not inspect.isawaitable(result):
            raise TypeError(
                "the token callable must be async (return an awaitable), "
                f"it returned {type(result).__name__}"
            )
        token = await result
        if not isinstance(token, str) or not token:
            raise TypeError(
                f"the token callable must produce a non-empty str, got {type(token).__name__}"
            )
        return token


class AccessTokenLike(Protocol):
    """What an azure credential's ``get_token`` returns (``azure.core.credentials.AccessToken``)."""

    @property
    def token(self) -> str: ...

    @property
    def expires_on(self) -> int:
        """Expiry as Unix time in seconds."""
        ...


class AsyncTokenCredential(Protocol):
    """An ``azure.identity.aio`` credential, as far as graphcomms uses it."""

    async def get_token(self, *scopes: str) -> AccessTokenLike: ...


class AzureIdentityTokenProvider:
    """Adapter for ``azure.identity.aio`` credentials (install the ``azure`` extra).

    The token is cached until ``refresh_margin`` seconds before it expires (at most half
    its lifetime, so a short-lived token is not fetched on every request). Concurrent
    ``get_token`` calls share one fetch. ``force_refresh`` bypasses the cache, but calls
    that were already waiting for a fetch take its result rather than fetching again,
    so a burst of 401s costs one refresh. A failed fetch is not cached: the next call
    tries again.

    A fetch that has given no token after ``timeout`` seconds (default 30, as an HTTP
    request; ``None``: no bound) is abandoned with the builtin :class:`TimeoutError`.
    Without it a credential waits as long as azure-core lets it: its token endpoint
    refusing the connection fails after about 4.8 s of retries (measured,
    ``ClientSecretCredential``, azure-identity 1.27), but one that accepts and never
    answers was still waiting after 40 s (azure-core's default read timeout is 300 s
    per attempt). Sent
    through a client, any failure of the fetch reaches the caller as
    :class:`~graphcomms.errors.TokenAcquisitionError`, with this one as its cause.

    The credential stays the caller's: this adapter never closes it.
    """

    def __init__(
        self,
        credential: AsyncTokenCredential,
        *,
        scopes: Sequence[str] = (GRAPH_DEFAULT_SCOPE,),
        refresh_margin: float = 300.0,
        timeout: float | None = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(scopes, str):
            raise TypeError("scopes must be a sequence of str, not a single str")
        if not scopes:
            raise ValueError("scopes must not be empty")
        if not refresh_margin >= 0 or math.isinf(refresh_margin):
            raise ValueError(f"refresh_margin must be a finite number >= 0, got {refresh_margin!r}")
        if timeout is not None and not 0 < timeout < math.inf:
            raise ValueError(f"timeout must be a finite number > 0 or None, got {timeout!r}")
        self._timeout = timeout
        self._credential = credential
        self._scopes = tuple(scopes)
        self._refresh_margin = refresh_margin
        self._clock = clock
        self._lock: asyncio.Lock | None = None
        self._token: str | None = None
        self._refresh_at = -math.inf
        # Bumped on every successful fetch: a caller that waited on the lock while the
        # generation moved knows a fetch happened after it asked.
        self._generation = 0

    def __repr__(self) -> str:
        credential = type(self._credential).__name__
        return f"AzureIdentityTokenProvider(credential={credential}, scopes={self._scopes!r})"

    async def get_token(self, *, force_refresh: bool = False) -> str:
        if not force_refresh and self._fresh():
            assert self._token is not None
            return self._token
        if self._lock is None:
            self._lock = asyncio.Lock()
        asked_at = self._generation
        async with self._lock:
            # Someone else fetched while we waited: that token is as new as ours would be.
            if (not force_refresh or self._generation != asked_at) and self._fresh():
                assert self._token is not None
                return self._token
            return await self._fetch()

    def _fresh(self) -> bool:
        return self._token is not None and self._clock() < self._refresh_at

    async def _fetch(self) -> str:
        fetched_at = self._clock()
        fetch = self._credential.get_token(*self._scopes)
        if self._timeout is None:
            access = await fetch
        else:
            try:
                access = await asyncio.wait_for(fetch, self._timeout)
            except asyncio.TimeoutError as exc:
                # wait_for's own timeout comes from the cancellation it made; a
                # TimeoutError the credential raised itself goes on as it is.
                if not isinstance(exc.__cause__, asyncio.CancelledError):
                    raise
                raise TimeoutError(
                    f"{type(self._credential).__name__}.get_token gave no token within"
                    f" {self._timeout} s"
                ) from None
        token: object = access.token  # duck-typed credential: check what came back
        expires_on = float(access.expires_on)
        if not isinstance(token, str) or not token:
            raise TypeError("the credential returned an empty or non-str token")
        margin = min(self._refresh_margin, max(0.0, expires_on - fetched_at) / 2)
        self._token = token
        self._refresh_at = expires_on - margin
        self._generation += 1
        return token


def _looks_like_azure_credential(obj: object) -> bool:
    """An azure credential also has ``get_token``, but takes ``*scopes``, not
    ``force_refresh``; calling it as a provider would fail on the first request."""
    method = getattr(obj, "get_token", None)
    if method is None:
        return False
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)


def as_token_provider(token: TokenLike) -> TokenProvider:
    """Turn what a user hands us into a :class:`~graphcomms.typing.TokenProvider`.

    A ``str`` becomes a :class:`StaticTokenProvider`, a provider is returned as is, any
    other callable becomes a :class:`CallableTokenProvider` (it must be async: a sync one
    fails on the first request); an empty ``str`` raises :class:`ValueError`. Anything
    else raises :class:`TypeError`, as does an
    ``azure.identity`` credential passed bare (wrap it in
    :class:`AzureIdentityTokenProvider`).
    """
    obj: Any = token
    if isinstance(obj, str):
        return StaticTokenProvider(obj)
    # A class has get_token too (unbound), and is callable: never take one for a provider.
    if not isinstance(obj, type):
        if _looks_like_azure_credential(obj):
            raise TypeError(
                f"{type(obj).__name__} looks like an azure.identity credential; "
                "wrap it: AzureIdentityTokenProvider(credential)"
            )
        if isinstance(obj, TokenProvider):
            return obj
        if callable(obj):
            return CallableTokenProvider(obj)
    what = f"the class {obj.__qualname__}" if isinstance(obj, type) else type(obj).__name__
    raise TypeError(
        "token must be a str, a TokenProvider (async get_token(*, force_refresh=False)) "
        f"or an async callable returning str, not {what}"
    )
