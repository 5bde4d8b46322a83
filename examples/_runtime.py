"""Where the examples' bot runs: against the embedded Graph emulator (the default), or
against real Microsoft Graph when a tenant's settings are in the environment.

Real Graph needs (with ``pip install "graphcomms[webhook,azure]"``):

    GRAPHCOMMS_TENANT_ID      the tenant the bot's app is registered in
    GRAPHCOMMS_CLIENT_ID      the bot's Microsoft App ID
    GRAPHCOMMS_CLIENT_SECRET  its client secret
    GRAPHCOMMS_CALLBACK_URL   the public https URL that reaches this process's webhook
    GRAPHCOMMS_LISTEN_PORT    the local port the webhook listens on (default 8080)
    GRAPHCOMMS_TARGET_USER    for outbound calls: the Teams user id to call
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from typing import Any

import attrs
from aiohttp import web

from graphcomms import CommsClient, IdentitySet, InvitationParticipantInfo
from graphcomms.testing import GraphEmulator, emulated_bot


@attrs.frozen
class Runtime:
    client: CommsClient
    #: The emulator, or None against real Graph (then a person is on the other end).
    emulator: GraphEmulator | None
    target: InvitationParticipantInfo


def real_graph() -> bool:
    return "GRAPHCOMMS_CLIENT_SECRET" in os.environ


@asynccontextmanager
async def runtime(**client_options: Any) -> AsyncGenerator[Runtime, None]:
    if not real_graph():
        async with (
            GraphEmulator(prompt_seconds=0.05) as emulator,
            emulated_bot(emulator, **client_options) as bot,
        ):
            yield Runtime(
                bot.client,
                emulator,
                InvitationParticipantInfo(identity=IdentitySet.for_phone("+14255550100")),
            )
        return

    from azure.identity.aio import ClientSecretCredential

    from graphcomms.auth import AzureIdentityTokenProvider
    from graphcomms.webhook import (
        NotificationReceiver,
        TokenValidationSettings,
        TokenValidator,
        make_app,
    )

    env = os.environ
    credential = ClientSecretCredential(
        env["GRAPHCOMMS_TENANT_ID"], env["GRAPHCOMMS_CLIENT_ID"], env["GRAPHCOMMS_CLIENT_SECRET"]
    )
    async with (
        credential,
        CommsClient(
            AzureIdentityTokenProvider(credential),
            callback_uri=env["GRAPHCOMMS_CALLBACK_URL"],
            **client_options,
        ) as client,
    ):
        validator = TokenValidator(
            TokenValidationSettings(
                app_id=env["GRAPHCOMMS_CLIENT_ID"], allowed_tenants={env["GRAPHCOMMS_TENANT_ID"]}
            )
        )
        runner = web.AppRunner(
            make_app(
                NotificationReceiver(client, validator), path=_path(env["GRAPHCOMMS_CALLBACK_URL"])
            )
        )
        await runner.setup()
        await web.TCPSite(runner, "0.0.0.0", int(env.get("GRAPHCOMMS_LISTEN_PORT", "8080"))).start()  # noqa: S104
        try:
            target = InvitationParticipantInfo(
                identity=IdentitySet.for_user(
                    env.get("GRAPHCOMMS_TARGET_USER", ""), tenant_id=env["GRAPHCOMMS_TENANT_ID"]
                )
            )
            yield Runtime(client, None, target)
        finally:
            await runner.cleanup()


def _path(url: str) -> str:
    from yarl import URL

    return URL(url).path or "/callback"
