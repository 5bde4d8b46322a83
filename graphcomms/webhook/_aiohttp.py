"""The aiohttp.web adapter: the receiver's two phases around a bounded, timed body read.

Per request: ``receiver.check(headers)``; a refusal is answered at once, without
reading the body, and the connection is closed. Otherwise ``100 Continue`` if the
client asked for it, then the body (at most ``max_body_size`` bytes, within
``body_timeout`` seconds, else 408 and the connection is closed), then
``receiver.accept(body)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import HttpVersion11, StreamReader, hdrs, web

from graphcomms.webhook._receiver import HINT_PARAM, NotificationReceiver, ReceiverResult

__all__ = ["add_routes", "make_app", "make_handler"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _read_body(content: StreamReader, declared: int | None, limit: int) -> bytes:
    """The body: exactly ``declared`` bytes (the receiver checked them against the
    limit), or without ``Content-Length`` (chunked) at most ``limit + 1``, enough for
    the receiver to see it is too big. A body cut short is returned as it is."""
    if declared is not None and declared <= limit:
        try:
            return await content.readexactly(declared)
        except asyncio.IncompleteReadError as exc:
            return exc.partial
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await content.read(limit + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _response(result: ReceiverResult) -> web.Response:
    if result.status < 300:
        return web.Response(status=result.status)
    response = web.Response(status=result.status, text=result.reason)
    if result.status == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


async def _answer_and_close(request: web.Request, result: ReceiverResult) -> web.Response:
    """Answer, then close the connection at once. aiohttp would otherwise keep reading
    (and discarding) the unread body for up to its ``lingering_time`` (10 s): time and
    bandwidth a refused or too-slow client has no claim to."""
    response = _response(result)
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    request.protocol.force_close()
    return response


def _expects_continue(request: web.Request) -> bool:
    return (
        request.version == HttpVersion11
        and request.headers.get(hdrs.EXPECT, "").lower() == "100-continue"
    )


async def _expect(request: web.Request) -> None:
    """Defer ``100 Continue`` until the headers passed: aiohttp's default sends it
    before the handler runs, which invites the body of a request about to be refused."""
    if request.version == HttpVersion11:
        expect = request.headers.get(hdrs.EXPECT, "")
        if expect.lower() != "100-continue":
            raise web.HTTPExpectationFailed(text="unsupported Expect")


def make_handler(receiver: NotificationReceiver) -> Handler:
    """An aiohttp request handler that answers notification POSTs with ``receiver``.

    Route it with :func:`add_routes`: that also keeps aiohttp from sending ``100
    Continue`` before the headers are checked (routed with aiohttp's default
    ``expect_handler``, a client that asks gets one before and one after the check).
    """

    async def handle_notification(request: web.Request) -> web.StreamResponse:
        refusal = await receiver.check(request.headers)
        if refusal is not None:
            return await _answer_and_close(request, refusal)
        content = request.content
        limit = receiver.max_body_size
        if content.is_eof():
            # The usual notification: the whole body came with the headers. Taken
            # without a coroutine or a timer; limit + 1 bytes tell accept() it is too big.
            body = content.read_nowait(limit + 1)
        else:
            if _expects_continue(request):
                await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                request.writer.output_size = 0  # the response has not started yet
            read = _read_body(content, request.content_length, limit)
            try:
                body = await asyncio.wait_for(read, receiver.body_timeout)
            except asyncio.TimeoutError:
                return await _answer_and_close(request, receiver.body_timed_out())
        if receiver.relays:
            return _response(await receiver.accept_relayed(body, request.query.get(HINT_PARAM)))
        return _response(receiver.accept(body))

    return handle_notification


def add_routes(
    app: web.Application, receiver: NotificationReceiver, path: str = "/callback"
) -> None:
    """Serve ``receiver`` on ``POST path`` of ``app``.

    Also loads the signing keys when ``app`` starts (a failure only logs a warning) and
    closes the receiver when ``app`` cleans up.

    Call it while building ``app``, or while it starts: from ``app.cleanup_ctx`` or
    ``on_startup``, where a ``CommsClient`` opened for the app's lifetime is at hand::

        async def graph(app: web.Application) -> AsyncIterator[None]:
            async with CommsClient(token, callback_uri=CALLBACK_URL) as client:
                add_routes(app, NotificationReceiver(client, validator))
                yield

        app.cleanup_ctx.append(graph)

    Added while the app starts, the keys are loaded with the first notification
    instead. Once the app has started its routes are frozen, and this raises
    :class:`RuntimeError`; a receiver built without a client
    (``NotificationReceiver(validator=...)``) can be routed early and given its client
    later (``receiver.sink = client``).
    """
    # aiohttp freezes on_startup, runs it (cleanup_ctx included), and only then freezes
    # the router and the other signals (AppRunner, 3.9 to 3.14): routes and on_cleanup
    # still take additions while the app starts.
    if app.pre_frozen:
        raise RuntimeError(
            "add_routes() is too late once the app has started (its routes are frozen): "
            "call it while building the app or from cleanup_ctx/on_startup, or route a "
            "NotificationReceiver(validator=...) early and set receiver.sink = client later"
        )
    app.router.add_post(path, make_handler(receiver), expect_handler=_expect)

    async def load_keys(_: web.Application) -> None:
        if receiver.validator is not None:
            await receiver.validator.refresh_keys()

    async def close(_: web.Application) -> None:
        await receiver.aclose()

    if not app.on_startup.frozen:
        app.on_startup.append(load_keys)
    # else: added while the app starts; the validator fetches the keys on first use.
    app.on_cleanup.append(close)


def make_app(receiver: NotificationReceiver, path: str = "/callback") -> web.Application:
    """A new ``web.Application`` serving ``receiver`` on ``POST path``; see :func:`add_routes`."""
    app = web.Application()
    add_routes(app, receiver, path)
    return app
