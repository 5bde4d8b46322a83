"""The aiohttp.web adapter: read the body within the limit, let the receiver decide."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import StreamReader, web

from graphcomms.webhook._receiver import NotificationReceiver, ReceiverResult

__all__ = ["add_routes", "make_app", "make_handler"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _read_body(content: StreamReader, limit: int) -> bytes:
    """A body without ``Content-Length`` (chunked): at most ``limit + 1`` bytes, enough
    for the receiver to see it is too big. With ``Content-Length`` the handler reads it
    in one exact read: aiohttp's parser stops there, and the length was checked
    against the limit."""
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


def make_handler(receiver: NotificationReceiver) -> Handler:
    """An aiohttp request handler that answers notification POSTs with ``receiver``."""

    async def handle_notification(request: web.Request) -> web.StreamResponse:
        declared = request.content_length
        limit = receiver.max_body_size
        if declared is not None and declared > limit:
            body = b""  # the receiver refuses on the header alone; nothing is read
        elif declared is not None:
            # The usual request: read here rather than through _read_body, one
            # coroutine fewer per notification.
            try:
                body = await request.content.readexactly(declared)
            except asyncio.IncompleteReadError as exc:
                body = exc.partial
        else:
            body = await _read_body(request.content, limit)
        return _response(await receiver.handle(body, request.headers))

    return handle_notification


def add_routes(
    app: web.Application, receiver: NotificationReceiver, path: str = "/callback"
) -> None:
    """Serve ``receiver`` on ``POST path`` of ``app``.

    Also loads the signing keys when ``app`` starts (a failure only logs a warning) and
    closes the receiver when ``app`` cleans up.
    """
    app.router.add_post(path, make_handler(receiver))

    async def load_keys(_: web.Application) -> None:
        if receiver.validator is not None:
            await receiver.validator.refresh_keys()

    async def close(_: web.Application) -> None:
        await receiver.aclose()

    app.on_startup.append(load_keys)
    app.on_cleanup.append(close)


def make_app(receiver: NotificationReceiver, path: str = "/callback") -> web.Application:
    """A new ``web.Application`` serving ``receiver`` on ``POST path``; see :func:`add_routes`."""
    app = web.Application()
    add_routes(app, receiver, path)
    return app
