"""Fixtures for the integration tests; the helpers behind them are in
integration_support. The plugin's ``graph_emulator`` / ``emulated_bot`` fixtures give a
v1.0 bot; the beta bot is built with ``bot_on``: ``emulated_bot`` with the emulator's
beta ``base_url``."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from integration_support import bot_on, place_call

from graphcomms import CallHandle
from graphcomms.testing import EmulatedBot, GraphEmulator


@pytest_asyncio.fixture
async def beta_bot(graph_emulator: GraphEmulator) -> AsyncIterator[EmulatedBot]:
    async with bot_on(graph_emulator, graph_emulator.beta_url) as bot:
        yield bot


@pytest_asyncio.fixture
async def call(emulated_bot: EmulatedBot) -> CallHandle:
    """An established outbound call on the v1.0 bot."""
    return await place_call(emulated_bot.client)


@pytest_asyncio.fixture
async def beta_call(beta_bot: EmulatedBot) -> CallHandle:
    """An established outbound call on the beta bot."""
    return await place_call(beta_bot.client)
