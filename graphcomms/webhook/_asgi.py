"""The ASGI adapter: the receiver's two phases around a bounded, timed ``receive()`` loop.

A plain ASGI 3 application, so it needs no web framework: run it alone under an ASGI
server, or route to it from Starlette or FastAPI with
``Route("/callback", app, methods=["POST"])``: a ``Mount`` at ``/callback`` answers a
POST to ``/callback`` with a 307 redirect to ``/callback/``, not with the app.

Per request: an unknown ``Expect`` is 417; then ``receiver.check(headers)``, and a
refusal is answered at once, before the first ``receive()``. uvicorn (both its HTTP
protocols) sends ``100 Continue`` only when the application first calls ``receive()``,
so a refused client never gets one (ASGI leaves that to the server). Otherwise the body
(at most ``max_body_size`` bytes, within ``body_timeout`` seconds for the whole of it, else 408),
then ``receiver.accept(body)``. Every answer sent with the body unread carries
``Connection: close``, so the server closes the connection instead of waiting for (or
draining) a body nobody will read. ASGI servers have no body deadline of their own:
this one is the adapter's, around ``receive()``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any, Final

from multidict import CIMultiDict

from graphcomms.webhook._receiver import NotificationReceiver, ReceiverResult

__all__ = ["ASGINotificationApp"]

# The ASGI 3 callable's types, spelled as Starlette spells them, so an instance is an
# ASGIApp wherever a framework asks for one (a Route endpoint, a Mount, a server).
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_CLOSE: Final = (b"connection", b"close")
_TEXT: Final = (b"content-type", b"text/plain; charset=utf-8")
_EMPTY: Final = (b"content-length", b"0")
_NOT_FOUND: Final = ReceiverResult(404, "not found")
_NOT_ALLOWED: Final = ReceiverResult(405, "method not allowed")
_UNSUPPORTED_EXPECT: Final = ReceiverResult(417, "unsupported Expect")


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The body's messages until the last, or ``limit + 1`` bytes (enough for the
    receiver to see it is too big), or a disconnect: a body cut short is returned as it
    is, and the receiver refuses it as it would any incomplete JSON."""
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        message = await receive()
        if message["type"] != "http.request":
            break  # http.disconnect
        chunk: bytes = message.get("body", b"")
        if chunk:
            chunks.append(chunk)
            size += len(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


if sys.version_info >= (3, 11):

    async def _read_body_within(receive: Receive, limit: int, seconds: float) -> bytes:
        """:func:`_read_body` within ``seconds``, else ``TimeoutError``. A third of what
        ``wait_for`` costs on 3.11 (no task), which matters: most bodies are in hand."""
        async with asyncio.timeout(seconds):
            return await _read_body(receive, limit)

else:

    async def _read_body_within(receive: Receive, limit: int, seconds: float) -> bytes:
        """:func:`_read_body` within ``seconds``, else ``asyncio.TimeoutError``."""
        return await asyncio.wait_for(_read_body(receive, limit), seconds)


async def _answer(send: Send, result: ReceiverResult, *, close: bool) -> None:
    """Send ``result``: no body below 300, else its fixed reason as text.
    ``close`` asks the server to close the connection after it."""
    headers: list[tuple[bytes, bytes]] = []
    body = b""
    if result.status >= 300:
        body = result.reason.encode()
        headers += [_TEXT, (b"content-length", str(len(body)).encode())]
        if result.status == 401:
            headers.append((b"www-authenticate", b"Bearer"))
        elif result.status == 405:
            headers.append((b"allow", b"POST"))
    elif result.status != 204:
        headers.append(_EMPTY)
    if close:
        headers.append(_CLOSE)
    await send({"type": "http.response.start", "status": result.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class ASGINotificationApp:
    """An ASGI 3 application that answers notification POSTs with ``receiver``, with
    the same answers as the aiohttp adapter (the receiver's docstring lists them).

    ``path``: when set, any other path is answered 404; leave it ``None`` when a
    framework routes requests to this application. Methods other than POST get 405.

    Run as the top-level application, it also handles the ASGI lifespan: it loads the
    signing keys at startup (a failure only logs a warning) and closes the receiver at
    shutdown. A framework does not forward lifespan events to a route's application,
    so there, enter :meth:`lifespan` from the framework's own lifespan instead (or pass
    it as that lifespan: ``FastAPI(lifespan=app.lifespan)``). WebSocket connections are
    refused.
    """

    def __init__(self, receiver: NotificationReceiver, *, path: str | None = None) -> None:
        self.receiver = receiver
        self.path = path

    def __repr__(self) -> str:
        where = "any path" if self.path is None else repr(self.path)
        return f"<ASGINotificationApp on {where} with {self.receiver!r}>"

    @asynccontextmanager
    async def lifespan(self, app: object = None) -> AsyncGenerator[None, None]:
        """Load the signing keys on entry (a failed fetch only logs a warning: keys are
        fetched again on the first request), close the receiver on exit. ``app`` is
        ignored: it is there so that this method is a framework's lifespan function."""
        validator = self.receiver.validator
        if validator is not None:
            await validator.refresh_keys()
        try:
            yield
        finally:
            await self.receiver.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await send({"type": "websocket.close"})  # before accepting: the server sends 403
        else:
            raise ValueError(f"ASGINotificationApp does not serve {kind!r} connections")

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        result, close = await self._decide(scope, receive)
        await _answer(send, result, close=close)

    async def _decide(self, scope: Scope, receive: Receive) -> tuple[ReceiverResult, bool]:
        """The answer, and whether to close the connection after it (whenever the body,
        or some of it, is left unread)."""
        if self.path is not None and scope["path"] != self.path:
            return _NOT_FOUND, True
        if scope["method"] != "POST":
            return _NOT_ALLOWED, True
        receiver = self.receiver
        # Header names come lower-cased; values are Latin-1 (RFC 9110 §5.5). The first of
        # a repeated header counts, as in aiohttp's request.headers.
        headers = CIMultiDict(
            [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
        )
        expect = headers.get("expect")
        if (
            expect is not None
            and scope.get("http_version") == "1.1"
            and expect.lower() != "100-continue"
        ):
            return _UNSUPPORTED_EXPECT, True
        refusal = await receiver.check(headers)
        if refusal is not None:
            return refusal, True
        limit = receiver.max_body_size
        try:
            body = await _read_body_within(receive, limit, receiver.body_timeout)
        except asyncio.TimeoutError:
            return receiver.body_timed_out(), True
        # Over the limit, the rest of the body is unread.
        return receiver.accept(body), len(body) > limit

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()  # lifespan.startup
        context = self.lifespan()
        try:
            await context.__aenter__()
        except Exception as exc:
            await send({"type": "lifespan.startup.failed", "message": type(exc).__name__})
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        try:
            await context.__aexit__(None, None, None)
        except Exception as exc:
            await send({"type": "lifespan.shutdown.failed", "message": type(exc).__name__})
            return
        await send({"type": "lifespan.shutdown.complete"})
