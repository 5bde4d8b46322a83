"""Helpers for the integration tests: our client, through the real webhook with token
validation on, against the Graph emulator (``graphcomms.testing``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web

from graphcomms import CallHandle, CommsClient, IdentitySet, InvitationParticipantInfo
from graphcomms.testing import EmulatedBot, GraphEmulator
from graphcomms.webhook import (
    NotificationReceiver,
    TokenValidationSettings,
    TokenValidator,
    make_app,
)

CALLEE = InvitationParticipantInfo(identity=IdentitySet.for_phone("+14255550100"))


@asynccontextmanager
async def bot_on(
    emulator: GraphEmulator, base_url: str, *, path: str = "/callback", **options: Any
) -> AsyncIterator[EmulatedBot]:
    """What ``graphcomms.testing.emulated_bot`` does, with a base URL of our choice
    (``emulated_bot`` itself always uses the emulator's v1.0 URL)."""
    async with CommsClient("emulator-app-token", base_url=base_url, **options) as client:
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


async def place_call(client: CommsClient) -> CallHandle:
    """An outbound call, established."""
    call = await client.create_call(targets=[CALLEE])
    await call.wait_for_state("established", timeout=5)
    return call
