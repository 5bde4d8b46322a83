"""The pytest plugin, as a user's test suite sees it: installed through the pytest11
entry point, fixtures usable from a plain ``async def`` test."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_TEST = '''
import pytest
from graphcomms import CallState, MediaPrompt, OperationStatus

pytestmark = pytest.mark.asyncio

async def test_a_bot_answers_and_plays(emulated_bot):
    client, emulator = emulated_bot.client, emulated_bot.emulator
    calls = client.incoming_calls()
    await emulator.simulate_incoming_call(callback_uri=emulated_bot.callback_uri)
    call = await calls.__anext__()
    await call.answer()
    await call.wait_for_state(CallState.ESTABLISHED, timeout=5)
    op = await call.play_prompt([MediaPrompt.from_uri("https://example.com/hi.wav")])
    assert (await op).status == OperationStatus.COMPLETED
    assert emulated_bot.receiver.stats.accepted >= 3

async def test_graph_client_is_the_bots_client(graph_client, emulated_bot):
    assert graph_client is emulated_bot.client
    assert graph_client.callback_uri.startswith("http://127.0.0.1:")

async def test_graph_emulator_alone(graph_emulator):
    assert graph_emulator.graph_url.endswith("/v1.0/")
'''


def test_plugin_fixtures_work_in_a_users_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TEST)
    # strict mode, as a user who never configured pytest-asyncio would have it
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-W", "error",
                                           "-o", "asyncio_mode=strict",
                                           "-o", "asyncio_default_fixture_loop_scope=function")
    result.assert_outcomes(passed=3)
