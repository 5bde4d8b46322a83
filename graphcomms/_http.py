"""Outbound HTTP to Microsoft Graph: the only module that touches ``aiohttp.ClientSession``.

One :class:`HttpTransport` per client. It resolves paths against the base URL, adds the
bearer token, a fresh ``client-request-id`` and the JSON headers, retries only where a
retry cannot run an action twice, and turns every failure into the :mod:`graphcomms.errors`
hierarchy through :mod:`graphcomms._http_errors`. Nothing from aiohttp reaches the
caller.

Tokens never leave this module except in the ``Authorization`` header: they are not
logged, not in any repr and not in any exception message.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import attrs
from multidict import CIMultiDictProxy

from graphcomms._http_errors import (
    ci_headers,
    error_from_response,
    translate_transport_error,
    transport_errors,
)
from graphcomms._json import dumps, loads
from graphcomms._settings import RetryPolicy
from graphcomms._version import __version__
from graphcomms.errors import (
    ClientClosedError,
    DeserializationError,
    GraphCommsError,
    InvalidRequestError,
    ResponseError,
    ResponseTooLargeError,
    TransportError,
)
from graphcomms.typing import TokenProvider

if TYPE_CHECKING:
    import aiohttp

__all__ = ["GRAPH_BETA", "GRAPH_V1", "HttpResponse", "HttpTransport"]

GRAPH_V1: Final = "https://graph.microsoft.com/v1.0/"
GRAPH_BETA: Final = "https://graph.microsoft.com/beta/"

DEFAULT_USER_AGENT: Final = f"graphcomms/{__version__}"

logger = logging.getLogger("graphcomms.http")

# Methods that may be sent twice without doing the work twice. Graph comms uses GET and
# DELETE; the others are here because RFC 9110 says so, not because we send them.
_IDEMPOTENT: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})

# What a Graph request accepts; a recording download accepts anything.
_DEFAULT_ACCEPT: Final = "application/json"

def _request_id() -> str:
    """A random GUID for ``client-request-id``; os.urandom is cheaper than uuid4()
    per request, and the form (8-4-4-4-12 hex) is the same."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


# What one attempt can end in, short of success.
_Failure: TypeAlias = "TransportError | ResponseError"


@attrs.define(kw_only=True)  # not frozen: one is built per request, and frozen attrs
class HttpResponse:  # classes cost three times as much to build
    """An answer from Graph: what :meth:`HttpTransport.request` returns (a 2xx), and
    what the retry loop looks at for any status.

    ``body`` is the decoded JSON of a 2xx answer to :meth:`HttpTransport.request`;
    ``None`` when the body was empty (202, 204) or, on a success, not JSON at all (a
    warning is logged). A 2xx means Graph took the request, so an unreadable body is no
    reason to pretend it failed: the caller still has the status and the ``Location``
    header. ``content`` is the body as received. Neither is in the repr: an operation
    body can carry a ``recordingAccessToken``.
    """

    status: int
    headers: CIMultiDictProxy[str]
    content: bytes = attrs.field(repr=False)
    client_request_id: str
    request_id: str | None
    body: Any = attrs.field(default=None, repr=False)

    @property
    def location(self) -> str | None:
        """The ``Location`` header: the operation URL after an action, the call URL after
        creating a call."""
        return self.headers.get("Location")


class HttpTransport:
    """Sends requests to Graph and returns :class:`HttpResponse` or raises.

    The aiohttp session is created on the first request (inside the running loop) unless
    one is given; a borrowed session is used as is (it should have no ``base_url``) and
    never closed here. After :meth:`aclose` every request raises
    :class:`~graphcomms.errors.ClientClosedError`; a transport is not reopened.

    Retries (DESIGN §5) never risk running an action twice:

    * 429: Graph refused the request without processing it, so any method is re-sent,
      after ``Retry-After`` (or backoff when absent).
    * 503: GET/DELETE always. A POST only when ``Retry-After`` is present: the service
      then says "not processed, come back"; a bare 503 may come from a gateway after
      the action already ran.
    * 504: GET/DELETE only: the gateway gave up waiting, the action may well have run.
    * Transport errors: never connected (refused, DNS, TLS, connect timeout) -> any
      method; after connecting (disconnect, reset, broken body, read timeout) ->
      GET/DELETE only, a POST raises ``TransportError(sent=True)`` at once.
    * 401: the token is refreshed (``get_token(force_refresh=True)``) and the request
      re-sent once; a second 401 is raised.

    When the attempts run out, the error of the last attempt is raised. Each attempt
    carries a new ``client-request-id``; the retry warning names the failed one and the
    next attempt's debug record names the new one.
    """

    def __init__(
        self,
        *,
        base_url: str,
        token_provider: TokenProvider,
        session: aiohttp.ClientSession | None = None,
        retry: RetryPolicy | None = None,
        timeout: float = 30.0,
        user_agent: str = DEFAULT_USER_AGENT,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if not base_url.startswith(("https://", "http://")):
            raise ValueError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0, got {timeout!r}")
        self._base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._tokens = token_provider
        self._session = session
        self._owns_session = session is None
        self._retry = retry if retry is not None else RetryPolicy()
        import aiohttp

        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._user_agent = user_agent
        self._constant_headers = {"Accept": _DEFAULT_ACCEPT, "User-Agent": user_agent}
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter, not crypto
        self._closed = False
        self._closing: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        return f"HttpTransport(base_url={self._base_url!r}, closed={self._closed})"

    @property
    def base_url(self) -> str:
        """The URL relative paths are resolved against; always ends in ``/``."""
        return self._base_url

    @property
    def closed(self) -> bool:
        return self._closed

    async def aclose(self) -> None:
        """Close the session if this transport created it. Safe to call more than once."""
        self._closed = True
        if self._closing is not None and not self._closing.done():
            self._closing.set_result(None)  # wakes any retry back-off
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    def request(
        self, method: str, path_or_url: str, *, json: Mapping[str, Any] | None = None
    ) -> Coroutine[Any, Any, HttpResponse]:
        """Send one Graph request; return the 2xx answer or raise.

        ``path_or_url`` is relative to the base URL (``communications/calls/{id}``) or an
        absolute http(s) URL (a ``Location``). ``json`` is sent compactly encoded.

        Raises :class:`~graphcomms.errors.ResponseError` subclasses for non-2xx answers,
        :class:`~graphcomms.errors.TransportError` when no answer came,
        :class:`~graphcomms.errors.ClientClosedError` after :meth:`aclose`, and whatever
        the token provider raises.

        Not itself a coroutine function: it returns the retry loop's coroutine, so a
        request is one coroutine deep. A bad URL raises when this is called.
        """
        url = self._resolve(path_or_url)
        return self._send(
            method.upper(),
            url,
            data=None if json is None else dumps(json),
            accept=_DEFAULT_ACCEPT,
            bearer=None,
            log_url=url,
            allow_redirects=False,
        )

    async def request_bytes(
        self, url: str, *, bearer: str, max_size: int | None = None
    ) -> bytes:
        """GET a recording (``recordingLocation``) with its own ``recordingAccessToken``,
        at most ``max_size`` bytes of it (else :class:`ResponseTooLargeError`).

        No Graph token is sent. Errors map as for :meth:`request`; a 401 is not retried,
        since this token cannot be refreshed. Redirects are followed (aiohttp drops the
        ``Authorization`` header when one leaves the origin). Only https is fetched,
        unless the client itself talks plain http to its base URL (the emulator). The
        query string is left out of our log records and messages, in case the location
        is a signed URL.
        """
        answer = await self._send(
            "GET",
            self._recording_url(url),
            data=None,
            accept="*/*",
            bearer=bearer,
            log_url=url.split("?", 1)[0],
            allow_redirects=True,
            consume=None if max_size is None else lambda r: _read_capped(r, max_size),
        )
        return answer.content

    async def stream_to(
        self,
        url: str,
        *,
        bearer: str,
        sink: Callable[[bytes], Awaitable[object] | object],
        max_size: int | None = None,
    ) -> int:
        """GET a recording as :meth:`request_bytes` does, handing each chunk to ``sink``
        (sync or async) as it arrives; returns how many bytes it handed over. Once a
        chunk went to the sink, a failure is raised rather than retried (the sink would
        get the start twice)."""
        written = 0

        async def consume(response: aiohttp.ClientResponse) -> bytes:
            nonlocal written
            _refuse_declared(response, max_size)
            try:
                async for chunk in response.content.iter_chunked(_CHUNK):
                    written += len(chunk)
                    if max_size is not None and written > max_size:
                        raise _too_large(response, max_size)
                    result = sink(chunk)
                    if inspect.isawaitable(result):
                        await result
            except transport_errors() as exc:
                if written:
                    raise _Final(exc) from exc
                raise
            return b""

        await self._send(
            "GET",
            self._recording_url(url),
            data=None,
            accept="*/*",
            bearer=bearer,
            log_url=url.split("?", 1)[0],
            allow_redirects=True,
            consume=consume,
        )
        return written

    def _recording_url(self, url: str) -> str:
        if url.startswith("https://") or (
            url.startswith("http://") and self._base_url.startswith("http://")
        ):
            return url
        # The recording access token must not cross the network in clear text.
        raise InvalidRequestError(
            "recording URL must be an absolute https URL"
            + (" (plain http only when the client's own base URL is http)" if "://" in url else "")
        )

    def _resolve(self, path_or_url: str) -> str:
        if path_or_url.startswith(("https://", "http://")):
            return path_or_url
        if "://" in path_or_url:
            raise InvalidRequestError(f"only http(s) URLs are supported, got {path_or_url!r}")
        return self._base_url + path_or_url.lstrip("/")

    def _ensure_session(self) -> aiohttp.ClientSession:
        import aiohttp

        if self._closed:
            raise ClientClosedError("the HTTP transport is closed")
        if self._session is None:
            # The headers every request carries are the session's own, so that aiohttp
            # does not merge them into each request again (a borrowed session gets
            # them per request instead: see _send).
            self._session = aiohttp.ClientSession(
                timeout=self._timeout, headers=self._constant_headers
            )
        elif self._session.closed:
            raise ClientClosedError("the aiohttp session given to graphcomms is closed")
        return self._session

    async def _send(
        self,
        method: str,
        url: str,
        *,
        data: bytes | None,
        accept: str,
        bearer: str | None,
        log_url: str,
        allow_redirects: bool,
        consume: Consume | None = None,
    ) -> HttpResponse:
        """The retry loop. Returns the 2xx answer; raises the mapped error otherwise.

        ``bearer`` is a fixed token (a recording's, never refreshed); ``None`` means a
        Graph request: the token provider is asked before each attempt, a 401 is sent
        once more with a refreshed token, and the body is JSON.
        """
        graph_request = bearer is None
        attempt = 0
        refreshed = False
        force_refresh = False
        while True:
            attempt += 1
            session = self._ensure_session()  # fail fast when closed, before a token
            token = (
                bearer
                if bearer is not None
                else await self._tokens.get_token(force_refresh=force_refresh)
            )
            force_refresh = False
            try:
                outcome = await self._attempt(
                    session,
                    method=method,
                    url=url,
                    data=data,
                    token=token,
                    accept=accept,
                    log_url=log_url,
                    allow_redirects=allow_redirects,
                    attempt=attempt,
                    consume=consume or _read,
                )
            except _Final as final:
                raise final.error from None
            if isinstance(outcome, HttpResponse):
                if graph_request:
                    outcome.body = _decode_body(outcome, method, log_url)
                return outcome
            failure = outcome
            retry_after: float | None = None
            if isinstance(failure, TransportError):
                retryable = failure.transient and (not failure.sent or method in _IDEMPOTENT)
            else:
                if failure.status == 401 and graph_request and not refreshed:
                    # Not a transient failure: the token expired or was revoked early.
                    # One re-send with a fresh token, not counted against max_attempts.
                    logger.info(
                        "%s %s -> 401; refreshing the token and sending once more"
                        " (client-request-id=%s)",
                        method,
                        log_url,
                        failure.client_request_id,
                        extra={
                            "client_request_id": failure.client_request_id,
                            "request_id": failure.request_id,
                        },
                    )
                    refreshed = force_refresh = True
                    attempt -= 1
                    continue
                retry_after = getattr(failure, "retry_after", None)
                retryable = _status_retryable(failure.status, method, retry_after)
            if not retryable or attempt >= self._retry.max_attempts:
                raise failure
            delay = self._retry.delay(attempt, retry_after=retry_after, rng=self._rng)
            client_request_id = getattr(failure, "client_request_id", None)
            logger.warning(
                "%s %s failed (%s); retrying in %.2f s, attempt %d of %d (client-request-id=%s)",
                method,
                log_url,
                _reason(failure),
                delay,
                attempt + 1,
                self._retry.max_attempts,
                client_request_id,
                extra={
                    "client_request_id": client_request_id,
                    "request_id": getattr(failure, "request_id", None),
                    "retry_delay": delay,
                },
            )
            await self._back_off(delay)

    async def _attempt(
        self,
        session: aiohttp.ClientSession,
        *,
        method: str,
        url: str,
        data: bytes | None,
        token: str,
        accept: str,
        log_url: str,
        allow_redirects: bool,
        attempt: int,
        consume: Consume,
    ) -> HttpResponse | _Failure:
        """One exchange: the 2xx answer, or the error that says what went wrong."""
        client_request_id = _request_id()
        headers = self._headers(token, client_request_id, accept, has_body=data is not None)
        started = time.perf_counter()
        try:
            async with session.request(
                method,
                url,
                headers=headers,
                data=data,
                timeout=self._timeout,
                raise_for_status=False,
                allow_redirects=allow_redirects,
            ) as response:
                answer_headers = ci_headers(response.headers)
                ok = 200 <= response.status <= 299
                answer = HttpResponse(
                    status=response.status,
                    headers=answer_headers,
                    content=await (consume(response) if ok else _read_error(response)),
                    client_request_id=client_request_id,
                    request_id=answer_headers.get("request-id"),
                )
        except _Final as final:
            final.error = self._translated(final.error, method, log_url, url)
            raise
        except transport_errors() as exc:
            error = self._translated(exc, method, log_url, url)
            if not isinstance(error, TransportError):
                raise error from None
            _log_attempt(
                method=method,
                url=log_url,
                status=None,
                started=started,
                client_request_id=client_request_id,
                request_id=None,
                attempt=attempt,
                error=error,
            )
            return error
        _log_attempt(
            method=method,
            url=log_url,
            status=answer.status,
            started=started,
            client_request_id=client_request_id,
            request_id=answer.request_id,
            attempt=attempt,
        )
        if 200 <= answer.status <= 299:
            return answer
        return error_from_response(
            status=answer.status,
            headers=answer.headers,
            text=answer.content.decode("utf-8", errors="replace"),
            method=method,
            url=log_url,
            client_request_id=client_request_id,
        )

    def _translated(self, exc: BaseException, method: str, log_url: str, url: str) -> Exception:
        """Ours for an aiohttp error. Its cause is kept, unless the URL has a query
        string (a signed recording location) that the cause's own text could show."""
        if isinstance(exc, GraphCommsError):
            return exc
        error = translate_transport_error(exc, method, log_url, closing=self._closed)
        if "?" not in url:
            error.__cause__ = exc
        return error

    def _headers(
        self, token: str, client_request_id: str, accept: str, *, has_body: bool
    ) -> dict[str, str]:
        """One attempt's headers. An owned session sends Accept and User-Agent as its
        defaults (see _ensure_session); a borrowed one gets them here."""
        headers = {"Authorization": f"Bearer {token}", "client-request-id": client_request_id}
        if accept != _DEFAULT_ACCEPT or not self._owns_session:
            headers["Accept"] = accept
        if not self._owns_session:
            headers["User-Agent"] = self._user_agent
        if has_body:
            headers["Content-Type"] = "application/json"
        return headers

    async def _back_off(self, delay: float) -> None:
        """Sleep ``delay`` before a retry, but wake at once if the transport is closed
        meanwhile: aclose() must not wait out a Retry-After of up to max_delay."""
        loop = asyncio.get_running_loop()
        if self._closing is None:
            self._closing = loop.create_future()
        sleeper = asyncio.ensure_future(self._sleep(delay))
        try:
            await asyncio.wait((sleeper, self._closing), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not sleeper.done():
                sleeper.cancel()
                await asyncio.gather(sleeper, return_exceptions=True)
        if self._closed:
            raise ClientClosedError("the client was closed during a retry back-off")


Consume = Callable[["aiohttp.ClientResponse"], Awaitable[bytes]]
"""How a 2xx answer's body is read (while the response is open)."""

_CHUNK: Final = 64 * 1024


class _Final(Exception):
    """An error that must not be retried (raised from inside a body read)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__()
        self.error = error


async def _read(response: aiohttp.ClientResponse) -> bytes:
    return await response.read()


async def _read_capped(response: aiohttp.ClientResponse, max_size: int) -> bytes:
    """The body, refused (ResponseTooLargeError) once it passes ``max_size`` bytes."""
    _refuse_declared(response, max_size)
    chunks = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > max_size:
            raise _Final(_too_large(response, max_size))
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_error(response: aiohttp.ClientResponse) -> bytes:
    # An error body is kept only in part (see _http_errors); a proxy's may be huge.
    return await response.content.read(_MAX_ERROR_BODY)


def _refuse_declared(response: aiohttp.ClientResponse, max_size: int | None) -> None:
    declared = response.content_length
    if max_size is not None and declared is not None and declared > max_size:
        raise _Final(_too_large(response, max_size))


def _too_large(response: aiohttp.ClientResponse, max_size: int) -> ResponseTooLargeError:
    url = str(response.url).split("?", 1)[0]
    return ResponseTooLargeError(
        f"GET {url}: the body is larger than max_size ({max_size} bytes)",
        method="GET",
        url=url,
        sent=True,
    )


_MAX_ERROR_BODY: Final = 64 * 1024


def _status_retryable(status: int, method: str, retry_after: float | None) -> bool:
    if status == 429:
        return True
    if status == 503:
        return method in _IDEMPOTENT or retry_after is not None
    if status == 504:
        return method in _IDEMPOTENT
    return False


def _reason(error: _Failure) -> str:
    if isinstance(error, ResponseError):
        return f"{error.status} {error.code or ''}".rstrip()
    return type(error).__name__


def _decode_body(answer: HttpResponse, method: str, url: str) -> Any:
    if not answer.content.strip():
        return None
    try:
        return loads(answer.content)
    except DeserializationError:
        logger.warning(
            "%s %s -> %d with a body that is not JSON (%s, %d bytes); body ignored",
            method,
            url,
            answer.status,
            answer.headers.get("Content-Type", "no Content-Type"),
            len(answer.content),
            extra={
                "client_request_id": answer.client_request_id,
                "request_id": answer.headers.get("request-id"),
            },
        )
        return None


def _log_attempt(
    *,
    method: str,
    url: str,
    status: int | None,
    started: float,
    client_request_id: str,
    request_id: str | None,
    attempt: int,
    error: TransportError | None = None,
) -> None:
    if not logger.isEnabledFor(logging.DEBUG):
        return
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    outcome = str(status) if error is None else f"failed: {type(error).__name__}"
    logger.debug(
        "%s %s -> %s in %.1f ms (attempt %d, client-request-id=%s, request-id=%s)",
        method,
        url,
        outcome,
        elapsed_ms,
        attempt,
        client_request_id,
        request_id,
        extra={
            "client_request_id": client_request_id,
            "request_id": request_id,
            "http_method": method,
            "http_url": url,
            "http_status": status,
            "elapsed_ms": elapsed_ms,
            "attempt": attempt,
        },
    )
