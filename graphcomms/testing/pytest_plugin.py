"""pytest fixtures for testing a bot against the Graph emulator.

Registered through the ``pytest11`` entry point, so installing ``graphcomms[testing]``
makes them available:

- ``graph_emulator``: a running :class:`~graphcomms.testing.GraphEmulator` (seed 0,
  10 ms prompts).
- ``emulated_bot``: an :class:`~graphcomms.testing.EmulatedBot`: a ``CommsClient``
  connected to that emulator, its notifications arriving through the real webhook
  receiver with token validation on.
- ``graph_client``: just that client.

They are asyncio fixtures (pytest-asyncio), usable from ``async def`` tests.
"""

from __future__ import annotations

import importlib.util
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

_HAS_PYTEST_ASYNCIO = importlib.util.find_spec("pytest_asyncio") is not None

if TYPE_CHECKING:
    from graphcomms._client import CommsClient
    from graphcomms.testing._emulator import GraphEmulator
    from graphcomms.testing._harness import EmulatedBot

if _HAS_PYTEST_ASYNCIO:  # without pytest-asyncio there are no async fixtures to offer
    import pytest_asyncio

    @pytest_asyncio.fixture
    async def graph_emulator() -> AsyncIterator[GraphEmulator]:
        from graphcomms.testing._emulator import GraphEmulator

        async with GraphEmulator(seed=0, prompt_seconds=0.01) as emulator:
            yield emulator

    @pytest_asyncio.fixture(name="emulated_bot")
    async def emulated_bot_fixture(graph_emulator: GraphEmulator) -> AsyncIterator[EmulatedBot]:
        from graphcomms.testing._harness import emulated_bot

        async with emulated_bot(graph_emulator) as bot:
            yield bot

    @pytest_asyncio.fixture
    async def graph_client(emulated_bot: EmulatedBot) -> CommsClient:
        return emulated_bot.client
