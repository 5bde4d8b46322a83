"""A FastAPI bot: Graph's call notifications arrive on a FastAPI route, served by uvicorn.

``graphcomms.webhook.ASGINotificationApp`` is a plain ASGI application. Routed at
``POST /callback``, it checks each notification's token from the headers before reading
the body, bounds the body's size and the time it takes to arrive, and feeds the client,
answering as the aiohttp webhook does. The bot answers each incoming call, plays a
greeting and hangs up; ``GET /webhook/stats`` is an ordinary FastAPI route beside it.

Here it runs against the embedded Graph emulator, with uvicorn on loopback::

    pip install "graphcomms[asgi,testing]" fastapi uvicorn
    python examples/fastapi_bot.py

In production, ``create_app`` stays as it is: give it a client with your real token
provider and ``callback_uri``, and ``TokenValidationSettings(app_id=YOUR_APP_ID)``, and
serve the app with uvicorn behind your TLS terminator.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

import aiohttp

from graphcomms import CallHandle, CommsClient, MediaPrompt
from graphcomms.testing import GraphEmulator
from graphcomms.webhook import (
    ASGINotificationApp,
    NotificationReceiver,
    TokenValidationSettings,
    TokenValidator,
)

try:
    import uvicorn
    from fastapi import FastAPI
    from starlette.routing import Route
except ImportError as missing:  # CI installs both (graphcomms's test extra)
    print(f"skipped: {missing.name} is not installed (pip install fastapi uvicorn)")
    print("OK")
    raise SystemExit(0) from None

GREETING = MediaPrompt.from_uri("https://media.example.com/greeting.wav")


async def greet(call: CallHandle) -> None:
    """What the bot does with each incoming call."""
    await call.answer()
    await call.wait_for_state("established", timeout=30)
    await (await call.play_prompt([GREETING]))
    await call.hang_up()


def create_app(client: CommsClient, validation: TokenValidationSettings) -> FastAPI:
    """The bot's FastAPI app: the webhook at POST /callback, and its counters."""
    receiver = NotificationReceiver(client, TokenValidator(validation))
    notifications = ASGINotificationApp(receiver)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncGenerator[None, None]:
        # FastAPI gives a route's ASGI app no lifespan of its own: this loads the
        # signing keys before the first request and closes the receiver at shutdown.
        async with notifications.lifespan(app):
            yield

    # A Route, not app.mount(): a mount at /callback answers a POST to /callback with
    # a redirect to /callback/.
    app = FastAPI(lifespan=lifespan, routes=[Route("/callback", notifications, methods=["POST"])])
    client.on_incoming_call(greet)

    @app.get("/webhook/stats")
    async def webhook_stats() -> dict[str, int]:
        stats = receiver.stats
        return {"accepted": stats.accepted, "refused": stats.rejected_auth + stats.malformed}

    return app


@asynccontextmanager
async def serve(app: FastAPI, sock: socket.socket) -> AsyncGenerator[None, None]:
    """Run ``app`` under uvicorn on ``sock`` (what ``uvicorn bot:app`` does) until exit."""
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            serving.result()  # uvicorn's error, if it failed to start
            raise RuntimeError("uvicorn stopped before it started")
        await asyncio.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        await serving


async def main() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        base = "http://{}:{}".format(*sock.getsockname())
        async with (
            GraphEmulator(prompt_seconds=0.05) as emulator,
            CommsClient(
                "emulator-app-token", base_url=emulator.graph_url, callback_uri=f"{base}/callback"
            ) as client,
        ):
            # The emulator signs its notifications as Graph does, with keys it publishes.
            validation = TokenValidationSettings(
                app_id=emulator.app_id,
                openid_configuration_url=emulator.openid_configuration_url,
                issuers=frozenset({emulator.issuer}),
            )
            async with serve(create_app(client, validation), sock):
                incoming = client.incoming_calls()  # to watch the bot's call from here
                await emulator.simulate_incoming_call(callback_uri=client.callback_uri)
                call = await asyncio.wait_for(incoming.__anext__(), 30)
                ended = await call.wait_for_state("terminated", timeout=30)
                print(f"call {call.id} greeted and ended: {ended.result_info}")
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(f"{base}/webhook/stats") as response,
                ):
                    stats = await response.json()
                print(f"webhook stats: {stats}")
                assert stats["accepted"] > 0, stats
                assert stats["refused"] == 0, stats
    print("OK")


if __name__ == "__main__":
    asyncio.run(main())
