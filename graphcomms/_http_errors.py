"""The one translation boundary: what Graph or aiohttp says, as a graphcomms error.

A non-2xx answer becomes a :class:`~graphcomms.errors.ResponseError` subclass through
:func:`error_from_response`; an aiohttp exception becomes a
:class:`~graphcomms.errors.TransportError` (or ``InvalidRequestError`` /
``ClientClosedError``) through :func:`translate_transport_error`, with ``sent`` saying
whether the request may have reached the service. Nothing from aiohttp reaches the
caller, and no message holds a token or a URL's query string.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import math
import re
import time
from collections.abc import Mapping
from contextlib import suppress
from typing import Any, Final

from multidict import CIMultiDict, CIMultiDictProxy

from graphcomms._json import loads
from graphcomms.errors import (
    BadRequestError,
    ClientClosedError,
    ConflictError,
    DeserializationError,
    ForbiddenError,
    InvalidRequestError,
    NotFoundError,
    RequestTimeoutError,
    ResponseError,
    ServerError,
    ThrottledError,
    TransportError,
    UnauthorizedError,
)

__all__ = [
    "ci_headers",
    "error_from_response",
    "transport_errors",
    "translate_transport_error",
]

# How much of a non-JSON error body an exception keeps. Proxies answer with whole HTML
# pages; the first couple of kilobytes say what went wrong.
_MAX_ERROR_TEXT: Final = 2000


@functools.cache
def _connect_timeouts() -> tuple[type[BaseException], ...]:
    # Connect timeouts have their own class from aiohttp 3.10; before that they cannot
    # be told from read timeouts and count as possibly sent.
    import aiohttp

    found = getattr(aiohttp, "ConnectionTimeoutError", None)
    return (found,) if found is not None else ()


_STATUS_ERRORS: Final[Mapping[int, type[ResponseError]]] = {
    400: BadRequestError,
    401: UnauthorizedError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
}


def ci_headers(headers: Mapping[str, str]) -> CIMultiDictProxy[str]:
    if isinstance(headers, CIMultiDictProxy):
        return headers
    return CIMultiDictProxy(CIMultiDict(headers))


def _parse_retry_after(headers: Mapping[str, str]) -> float | None:
    """``Retry-After`` in seconds (delay-seconds or HTTP-date), ``None`` if absent or junk.

    A date is measured against the response's own ``Date`` header when there is one, so
    a skewed local clock does not stretch or shrink the wait.
    """
    value = headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = time.time()
    date = headers.get("Date")
    if date is not None:
        with suppress(TypeError, ValueError):
            now = email.utils.parsedate_to_datetime(date).timestamp()
    return max(0.0, when.timestamp() - now)


def _get_ci(mapping: Mapping[Any, Any], key: str) -> Any:
    """``mapping[key]`` ignoring case: Graph writes both ``innerError`` and ``innererror``."""
    if key in mapping:
        return mapping[key]
    lowered = key.lower()
    for name, value in mapping.items():
        if isinstance(name, str) and name.lower() == lowered:
            return value
    return None


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def error_from_response(
    *,
    status: int,
    headers: Mapping[str, str],
    text: str,
    method: str,
    url: str,
    client_request_id: str | None,
) -> ResponseError:
    """The typed exception for a non-2xx answer. Never raises, whatever the body holds.

    Reads Graph's error body (``error.code``, ``error.message``, the most specific
    ``innerError.code``, ``request-id`` and ``client-request-id``); a body that is not
    that shape still gives the typed error, with the raw text (cut to a sane length) in
    ``.text``. The ``request-id`` response header wins over the body's copy; the
    ``client-request-id`` we sent wins over the one the service echoed.
    """
    headers = ci_headers(headers)
    code = message = inner_code = body_request_id = body_client_request_id = None
    error: object = None
    try:
        decoded = loads(text) if text else None
    except DeserializationError:
        decoded = None
    if isinstance(decoded, Mapping):
        error = _get_ci(decoded, "error")
    if isinstance(error, Mapping):
        code = _str_or_none(_get_ci(error, "code"))
        message = _str_or_none(_get_ci(error, "message"))
        inner = _get_ci(error, "innerError")
        depth = 0
        while isinstance(inner, Mapping) and depth < 16:
            inner_code = _str_or_none(_get_ci(inner, "code")) or inner_code
            body_request_id = body_request_id or _str_or_none(_get_ci(inner, "request-id"))
            body_client_request_id = body_client_request_id or _str_or_none(
                _get_ci(inner, "client-request-id")
            )
            inner = _get_ci(inner, "innerError")
            depth += 1
    raw_text = None if isinstance(error, Mapping) or not text else text[:_MAX_ERROR_TEXT]
    fields: dict[str, Any] = {
        "status": status,
        "method": method,
        "url": url,
        "code": code,
        "message": message,
        "inner_code": inner_code,
        "request_id": headers.get("request-id") or body_request_id,
        "client_request_id": client_request_id
        or body_client_request_id
        or headers.get("client-request-id"),
        "text": raw_text,
        "headers": headers,
    }
    if status == 429:
        return ThrottledError(retry_after=_parse_retry_after(headers), **fields)
    if 500 <= status <= 599:
        return ServerError(retry_after=_parse_retry_after(headers), **fields)
    return _STATUS_ERRORS.get(status, ResponseError)(**fields)


@functools.cache
def transport_errors() -> tuple[type[BaseException], ...]:
    """What :func:`translate_transport_error` takes: aiohttp's errors and timeouts.

    aiohttp is imported where it is used, not with graphcomms: importing it costs a
    third of a cold start (it builds SSL contexts), and `import graphcomms` should not.
    """
    import aiohttp

    return (aiohttp.ClientError, asyncio.TimeoutError)


@functools.cache
def _redirect_errors() -> tuple[type[BaseException], ...]:
    # A redirect to an unusable URL has a class of its own from aiohttp 3.10.
    import aiohttp

    found = getattr(aiohttp, "RedirectClientError", None)
    return (found,) if found is not None else ()


def translate_transport_error(
    exc: BaseException, method: str, url: str, *, closing: bool
) -> Exception:
    """The one place aiohttp's exceptions become ours (raise the result ``from exc``).

    ``sent`` is False only where the request cannot have reached the service: the
    connection was never made (refused, DNS, TLS, connect timeout). Anything later — a
    reset, a disconnect, a broken body, a read timeout — may have come after the service
    acted on it.
    """
    import aiohttp

    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidRequestError(f"invalid URL for {method} {url}")
    if closing:
        return ClientClosedError("the HTTP transport was closed during the request")
    if isinstance(exc, (aiohttp.TooManyRedirects, *_redirect_errors())):
        # Where the service sent us, not a lost connection: asking again leads there again.
        return TransportError(
            f"{method} {url}: {type(exc).__name__}: the redirects lead nowhere usable",
            method=method,
            url=url,
            sent=True,
            transient=False,
        )
    kind = type(exc).__name__
    if isinstance(exc, _connect_timeouts()):
        return RequestTimeoutError(
            f"{method} {url}: timed out connecting ({kind})", method=method, url=url, sent=False
        )
    if isinstance(exc, asyncio.TimeoutError):
        return RequestTimeoutError(
            f"{method} {url}: timed out ({kind})", method=method, url=url, sent=True
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return TransportError(
            f"{method} {url}: could not connect ({kind}: {exc.os_error})",
            method=method,
            url=url,
            sent=False,
        )
    detail = _QUERY.sub("?…", str(exc))  # a redirect's or a signed URL's query stays out
    return TransportError(
        f"{method} {url}: {kind}: {detail}", method=method, url=url, sent=True
    )


_QUERY: Final = re.compile(r"\?[^\s'\"<>]*")


