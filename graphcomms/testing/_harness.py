"""A bot wired to the emulator: a ``CommsClient`` whose notifications come through the
real webhook receiver, with token validation on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
from aiohttp import web

from graphcomms._client import CommsClient
from graphcomms.testing._emulator import GraphEmulator
from graphcomms.webhook import (
    NotificationReceiver,
    TokenValidationSettings,
    TokenValidator,
    make_app,
)

__all__ = ["EmulatedBot", "emulated_bot"]


@attrs.frozen
class EmulatedBot:
    """What :func:`emulated_bot` yields."""

    client: CommsClient
    receiver: NotificationReceiver
    callback_uri: str
    emulator: GraphEmulator


@asynccontextmanager
async def emulated_bot(
    emulator: GraphEmulator, *, path: str = "/callback", **client_options: Any
) -> AsyncIterator[EmulatedBot]:
    """Serve a webhook on loopback and connect a client to ``emulator`` through it.

    The receiver validates the emulator's signed tokens exactly as it would Graph's.
    ``client_options`` go to ``CommsClient``. Everything is closed on exit.
    """
    base_url = client_options.pop("base_url", emulator.graph_url)  # beta: emulator.beta_url
    async with CommsClient("emulator-app-token", base_url=base_url, **client_options) as client:
        validator = TokenValidator(
            TokenValidationSettings(
                app_id=emulator.app_id,
                openid_configuration_url=emulator.openid_configuration_url,
                issuers=frozenset({emulator.issuer}),
            )
        )
        receiver = NotificationReceiver(client, validator)
        runner = web.AppRunner(make_app(receiver, path=path), access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            client.callback_uri = f"http://127.0.0.1:{port}{path}"
            yield EmulatedBot(client, receiver, client.callback_uri, emulator)
        finally:
            await runner.cleanup()
