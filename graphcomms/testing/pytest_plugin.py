"""pytest fixtures for testing a bot against the Graph emulator.

Registered through the ``pytest11`` entry point, so installing ``graphcomms[testing]``
(which brings pytest and pytest-asyncio) makes them available with no configuration:

- ``graph_emulator``: a running :class:`~graphcomms.testing.GraphEmulator` (seed 0,
  10 ms prompts).
- ``emulated_bot``: an :class:`~graphcomms.testing.EmulatedBot`: a ``CommsClient``
  connected to that emulator, its notifications arriving through the real webhook
  receiver with token validation on.
- ``graph_client``: just that client.

They are asyncio fixtures (pytest-asyncio), for ``async def`` tests. In pytest-asyncio's
strict mode (its default) an ``async def`` test needs ``@pytest.mark.asyncio``; this
plugin adds that mark to an unmarked ``async def`` test that uses one of these fixtures,
so the test runs in strict and in auto mode alike. A test that already has an
``asyncio`` mark (say with a ``loop_scope``), or an ``anyio`` or ``trio`` mark, is left
as it is. The fixtures' event loop scope follows pytest-asyncio's
``asyncio_default_fixture_loop_scope`` (unset: the fixture's own scope, ``function``).

Without pytest-asyncio the fixtures still exist, and fail with what to install; without
the ``testing`` extra's PyJWT, so does the emulator.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Generator
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from graphcomms._client import CommsClient
    from graphcomms.testing import EmulatedBot, GraphEmulator

# The fixtures this plugin provides: an ``async def`` test using any of them (directly or
# through a fixture of its own) is an asyncio test.
_FIXTURES = frozenset({"graph_emulator", "emulated_bot", "graph_client"})

_INSTALL = 'pip install "graphcomms[testing]"'
# Marks of the other async test runners: a test carrying one is theirs, not asyncio's.
_OTHER_RUNNERS = ("anyio", "trio")

try:
    import pytest_asyncio
except ImportError:  # the fixtures below then say what to install
    _HAS_PYTEST_ASYNCIO = False
else:
    _HAS_PYTEST_ASYNCIO = True


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_pycollect_makeitem(
    collector: pytest.Module | pytest.Class, name: str, obj: object
) -> Generator[None, object, object]:
    # trylast: the innermost wrapper, so the mark is on the item before pytest-asyncio's
    # own wrapper looks for it (that wrapper turns marked coroutines into its items).
    result = yield
    if inspect.iscoroutinefunction(obj) and collector.config.pluginmanager.has_plugin("asyncio"):
        for item in result if isinstance(result, list) else (result,):
            if (
                isinstance(item, pytest.Function)
                and not _FIXTURES.isdisjoint(item.fixturenames)
                and item.get_closest_marker("asyncio") is None
                and not any(item.get_closest_marker(m) for m in _OTHER_RUNNERS)
            ):
                item.add_marker(pytest.mark.asyncio)
    return result


if _HAS_PYTEST_ASYNCIO:

    @pytest_asyncio.fixture
    async def graph_emulator() -> AsyncIterator[GraphEmulator]:
        from graphcomms.testing import GraphEmulator

        async with GraphEmulator(seed=0, prompt_seconds=0.01) as emulator:
            yield emulator

    @pytest_asyncio.fixture(name="emulated_bot")
    async def emulated_bot_fixture(graph_emulator: GraphEmulator) -> AsyncIterator[EmulatedBot]:
        from graphcomms.testing import emulated_bot

        async with emulated_bot(graph_emulator) as bot:
            yield bot

    @pytest_asyncio.fixture
    async def graph_client(emulated_bot: EmulatedBot) -> CommsClient:
        return emulated_bot.client

else:

    def _no_pytest_asyncio() -> NoReturn:
        pytest.fail(
            "graphcomms's fixtures (graph_emulator, emulated_bot, graph_client) run on "
            f"pytest-asyncio, which is not installed: {_INSTALL}",
            pytrace=False,
        )

    @pytest.fixture(name="graph_emulator")
    def _graph_emulator_needs_pytest_asyncio() -> NoReturn:
        _no_pytest_asyncio()

    @pytest.fixture(name="emulated_bot")
    def _emulated_bot_needs_pytest_asyncio() -> NoReturn:
        _no_pytest_asyncio()

    @pytest.fixture(name="graph_client")
    def _graph_client_needs_pytest_asyncio() -> NoReturn:
        _no_pytest_asyncio()
