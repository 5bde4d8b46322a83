"""Helpers for the integration tests: our client, through the real webhook with token
validation on, against the Graph emulator (``graphcomms.testing``)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any

from graphcomms import CallHandle, CommsClient, IdentitySet, InvitationParticipantInfo
from graphcomms.testing import EmulatedBot, GraphEmulator, emulated_bot

CALLEE = InvitationParticipantInfo(identity=IdentitySet.for_phone("+14255550100"))


def bot_on(
    emulator: GraphEmulator, base_url: str, *, path: str = "/callback", **options: Any
) -> AbstractAsyncContextManager[EmulatedBot]:
    """``graphcomms.testing.emulated_bot`` with a base URL of our choice (v1.0 or beta)."""
    return emulated_bot(emulator, path=path, base_url=base_url, **options)


async def place_call(client: CommsClient) -> CallHandle:
    """An outbound call, established."""
    call = await client.create_call(targets=[CALLEE])
    await call.wait_for_state("established", timeout=5)
    return call
