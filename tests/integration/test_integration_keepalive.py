"""keepAlive end to end: our client, through the real webhook, against an emulator that
ends calls nobody keeps alive (408/8537) as Graph does after 45 minutes. Time is
scaled down: the emulator's window is a second, the client's interval a fifth of it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable

import pytest
import pytest_asyncio
from integration_support import bot_on, place_call

from graphcomms import (
    CallEndedError,
    CallState,
    KeepAliveSettings,
    MediaPrompt,
    TrackingSettings,
)
from graphcomms.errors import ServerError
from graphcomms.testing import GraphEmulator

WINDOW = 1.0
KEEP_ALIVE = KeepAliveSettings(interval=0.2, window=WINDOW, retry_delay=0.05, max_retry_delay=0.1)
OFF = KeepAliveSettings(enabled=False)
# Nobody reads lost notifications back here: what keepAlive finds is keepAlive's doing.
NO_RECONCILE = TrackingSettings(reconcile_after=None)
PROMPT = MediaPrompt.from_uri("https://example.com/long.wav")


@pytest_asyncio.fixture
async def emulator() -> AsyncIterator[GraphEmulator]:
    async with GraphEmulator(prompt_seconds=0.01, keep_alive_window=WINDOW) as emulator:
        yield emulator


def keep_alives(emulator: GraphEmulator) -> list[str]:
    return [r.path for r in emulator.requests if r.path.endswith("/keepAlive")]


async def eventually(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.01)

    await asyncio.wait_for(poll(), timeout)


async def test_a_call_nobody_keeps_alive_ends_with_408_8537(emulator: GraphEmulator) -> None:
    async with bot_on(emulator, emulator.graph_url, keep_alive=OFF) as bot:
        call = await place_call(bot.client)
        ended = await call.wait_for_state(CallState.TERMINATED, timeout=5 * WINDOW)
        assert ended.result_info is not None
        assert (ended.result_info.code, ended.result_info.subcode) == (408, 8537)
        assert keep_alives(emulator) == []
        assert bot.client.stats.keep_alives_sent == 0


async def test_the_same_call_kept_alive_survives_well_past_the_window(
    emulator: GraphEmulator,
) -> None:
    async with bot_on(emulator, emulator.graph_url, keep_alive=KEEP_ALIVE) as bot:
        call = await place_call(bot.client)
        assert bot.client.stats.kept_alive_calls == 1
        await asyncio.sleep(4 * WINDOW)
        assert call.state is CallState.ESTABLISHED
        assert emulator.calls[call.id].state == "established"
        sent = bot.client.stats.keep_alives_sent
        assert sent >= 10  # about one per 0.2 s over 4 s
        assert emulator.calls[call.id].keep_alives == sent
        # Each is Graph's keepAlive: a POST with no body on the call.
        request = next(r for r in emulator.requests if r.path.endswith("/keepAlive"))
        assert (request.method, request.json) == ("POST", None)
        assert request.path == f"/v1.0/communications/calls/{call.id}/keepAlive"
        await call.hang_up()
        await call.wait_for_state(CallState.TERMINATED, timeout=5)
        assert bot.client.stats.kept_alive_calls == 0
        before = len(keep_alives(emulator))
        await asyncio.sleep(3 * KEEP_ALIVE.interval)
        assert len(keep_alives(emulator)) == before  # an ended call is kept no more


async def test_an_answered_incoming_call_is_kept_alive(emulator: GraphEmulator) -> None:
    async with bot_on(emulator, emulator.graph_url, keep_alive=KEEP_ALIVE) as bot:
        incoming = bot.client.incoming_calls()
        await emulator.simulate_incoming_call(callback_uri=bot.callback_uri)
        call = await asyncio.wait_for(incoming.__anext__(), 5)
        assert bot.client.stats.kept_alive_calls == 0  # offered, not yet ours
        await call.answer()
        assert bot.client.stats.kept_alive_calls == 1
        await call.wait_for_state("established", timeout=5)
        await asyncio.sleep(2.5 * WINDOW)
        assert call.state is CallState.ESTABLISHED
        assert emulator.calls[call.id].keep_alives >= 5


async def test_a_call_only_acted_on_by_id_is_kept_alive_by_its_owner_not_here(
    emulator: GraphEmulator,
) -> None:
    async with (
        bot_on(emulator, emulator.graph_url, keep_alive=KEEP_ALIVE) as owner,
        bot_on(emulator, emulator.graph_url, keep_alive=KEEP_ALIVE, path="/other") as other,
    ):
        call = await place_call(owner.client)
        elsewhere = other.client.call(call.id)
        # Acted on (Graph answers subscribeToTone completed), tracked: not owned.
        await (await elsewhere.subscribe_to_tone()).wait(timeout=5)
        assert other.client.stats.live_calls == 1
        await asyncio.sleep(2 * WINDOW)
        assert other.client.stats.keep_alives_sent == 0
        assert other.client.stats.kept_alive_calls == 0
        assert owner.client.stats.keep_alives_sent >= 5
        assert call.state is CallState.ESTABLISHED


async def test_a_lost_terminated_notification_is_found_by_keepalive_within_an_interval(
    emulator: GraphEmulator,
) -> None:
    # The soak's leak: the caller hangs up, the `deleted` notification is lost, and
    # nobody awaits the call's state. Without keepAlive the handle stays live forever.
    async with bot_on(
        emulator, emulator.graph_url, keep_alive=KEEP_ALIVE, tracking=NO_RECONCILE
    ) as bot:
        call = await place_call(bot.client)
        emulator.prompt_seconds = 60.0  # the prompt is still playing when the call ends
        tracker = await call.play_prompt(PROMPT)
        waiter = asyncio.create_task(call.wait_for_state(CallState.TRANSFERRING))
        emulator.drop_next_notification(call_id=call.id, change_type="deleted")
        await emulator.caller_hangs_up(call.id)
        await emulator.drain()
        loop = asyncio.get_running_loop()
        hung_up_at = loop.time()
        await eventually(lambda: call.ended, timeout=5)
        found_after = loop.time() - hung_up_at
        assert found_after < KEEP_ALIVE.interval * (1 + KEEP_ALIVE.jitter) + 0.5
        with pytest.raises(CallEndedError):
            await tracker
        with pytest.raises(CallEndedError):
            await asyncio.wait_for(waiter, 1)
        stats = bot.client.stats
        assert (stats.live_calls, stats.kept_alive_calls, stats.pending) == (0, 0, 0)
        assert stats.calls_found_gone == 1


async def test_without_keepalive_that_lost_notification_leaves_the_call_live(
    emulator: GraphEmulator,
) -> None:
    # The same story with keepAlive off: the leak the test above closes.
    async with bot_on(emulator, emulator.graph_url, keep_alive=OFF, tracking=NO_RECONCILE) as bot:
        call = await place_call(bot.client)
        emulator.drop_next_notification(call_id=call.id, change_type="deleted")
        await emulator.caller_hangs_up(call.id)
        await emulator.drain()
        await asyncio.sleep(3 * KEEP_ALIVE.interval)
        assert not call.ended
        assert bot.client.stats.live_calls == 1


async def test_failed_keepalives_are_retried_and_the_call_survives(
    emulator: GraphEmulator, caplog: pytest.LogCaptureFixture
) -> None:
    async with bot_on(emulator, emulator.graph_url, keep_alive=KEEP_ALIVE) as bot:
        call = await place_call(bot.client)
        # A bare 503 and a 500: a POST the HTTP layer does not re-send by itself.
        emulator.fail_next(503, path_contains="/keepAlive")
        emulator.fail_next(500, path_contains="/keepAlive")
        with caplog.at_level(logging.WARNING, logger="graphcomms.keepalive"):
            await eventually(lambda: bot.client.stats.keep_alives_sent >= 3)
        stats = bot.client.stats
        assert stats.keep_alives_failed == 2
        assert stats.calls_found_gone == 0
        assert sum("trying again" in r.getMessage() for r in caplog.records) == 2
        await asyncio.sleep(2 * WINDOW)
        assert call.state is CallState.ESTABLISHED


async def test_a_throttled_keepalive_is_re_sent_by_the_http_layer(
    emulator: GraphEmulator,
) -> None:
    async with bot_on(emulator, emulator.graph_url, keep_alive=KEEP_ALIVE) as bot:
        await place_call(bot.client)
        emulator.fail_next(429, retry_after=0, path_contains="/keepAlive")
        await eventually(lambda: bot.client.stats.keep_alives_sent >= 2)
        assert bot.client.stats.keep_alives_failed == 0  # a 429 is a retry, not a failure
        assert len(keep_alives(emulator)) >= 3


async def test_closing_the_client_stops_keepalives(emulator: GraphEmulator) -> None:
    async with bot_on(emulator, emulator.graph_url, keep_alive=KEEP_ALIVE) as bot:
        call = await place_call(bot.client)
        await eventually(lambda: bot.client.stats.keep_alives_sent >= 2)
    before = len(keep_alives(emulator))
    await asyncio.sleep(3 * KEEP_ALIVE.interval)
    assert len(keep_alives(emulator)) == before
    assert bot.client.stats.kept_alive_calls == 0
    # Graph, not the client, ends the call later: closing a client does not hang up.
    assert emulator.calls[call.id].state == "established"
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "graphcomms-keepalive"]


async def test_hanging_up_stops_keepalives_so_the_end_keeps_its_reason(
    emulator: GraphEmulator,
) -> None:
    # keepAlives all but constantly on the wire: without stopping them at the hang-up,
    # one answered 404 would end the call before the `terminated` notification that
    # carries why (200/7000), and that notification would be dropped as a duplicate.
    busy = KeepAliveSettings(interval=0.005, window=WINDOW, jitter=0.0)
    async with bot_on(emulator, emulator.graph_url, keep_alive=busy) as bot:
        for _ in range(10):
            call = await place_call(bot.client)
            await asyncio.sleep(0.02)
            await call.hang_up()
            assert bot.client.stats.kept_alive_calls == 0
            ended = await call.wait_for_state(CallState.TERMINATED, timeout=5)
            assert ended.result_info is not None
            assert (ended.result_info.code, ended.result_info.subcode) == (200, 7000)
        assert bot.client.stats.calls_found_gone == 0
        assert bot.client.stats.keep_alives_sent > 10


async def test_a_hang_up_graph_refused_keeps_the_call_alive(emulator: GraphEmulator) -> None:
    async with bot_on(emulator, emulator.graph_url, keep_alive=KEEP_ALIVE) as bot:
        call = await place_call(bot.client)
        emulator.fail_next(500, method="DELETE")
        with pytest.raises(ServerError):
            await call.hang_up()
        assert bot.client.stats.kept_alive_calls == 1
        await asyncio.sleep(2 * WINDOW)
        assert call.state is CallState.ESTABLISHED
