"""An in-process fleet instance: a CommsClient with a Relay and its webhook, on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
from aiohttp import web

from graphcomms import CommsClient
from graphcomms.fleet import Relay
from graphcomms.testing import GraphEmulator
from graphcomms.webhook import (
    NotificationReceiver,
    TokenValidationSettings,
    TokenValidator,
    make_app,
)


@attrs.frozen
class Instance:
    client: CommsClient
    relay: Relay
    receiver: NotificationReceiver
    url: str


async def serve(receiver: NotificationReceiver, port: int = 0) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(make_app(receiver, path="/callback"), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


def validator_for(emulator: GraphEmulator) -> TokenValidator:
    return TokenValidator(
        TokenValidationSettings(
            app_id=emulator.app_id,
            openid_configuration_url=emulator.openid_configuration_url,
            issuers=frozenset({emulator.issuer}),
        )
    )


@asynccontextmanager
async def instance(
    emulator: GraphEmulator,
    redis_url: str,
    name: str,
    callback_uri: str,
    **relay_options: Any,
) -> AsyncIterator[Instance]:
    relay_options.setdefault("lease", 1.0)
    relay_options.setdefault("adopt_after", 1.0)
    relay = Relay(redis_url, app="test", instance=name, **relay_options)
    async with CommsClient(
        "emulator-app-token", base_url=emulator.graph_url, callback_uri=callback_uri, fleet=relay
    ) as client:
        receiver = NotificationReceiver(client, validator_for(emulator))
        runner, url = await serve(receiver)
        try:
            yield Instance(client, relay, receiver, url)
        finally:
            await runner.cleanup()
