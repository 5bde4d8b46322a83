"""Edge cases across the seams: faults combined, reconciliation racing the real
notification, closing with work pending, actions on an ended call, load."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import aiohttp
import pytest
from integration_support import place_call

from graphcomms import (
    CallEndedError,
    CallHandle,
    CallState,
    ClientClosedError,
    IdentitySet,
    InvalidRequestError,
    InvitationParticipantInfo,
    MediaPrompt,
    PlayPromptOperation,
    TrackingSettings,
)
from graphcomms.errors import NotFoundError
from graphcomms.models import OperationStatus
from graphcomms.testing import EmulatedBot, GraphEmulator, emulated_bot

PROMPT = MediaPrompt.from_uri("https://media.example.com/prompt.wav")
T = 5
OPERATIONS = "/operations/"


def assert_completed(op: Any) -> None:
    assert isinstance(op, PlayPromptOperation)
    assert op.status is OperationStatus.COMPLETED
    assert op.succeeded


async def test_early_delivery_with_a_duplicate(emulated_bot: EmulatedBot, call: CallHandle) -> None:
    emulator = emulated_bot.emulator
    emulator.deliver_early_next(path_contains="/playPrompt")
    emulator.fault_next_notification("duplicate", resource_contains=OPERATIONS)
    tracker = await call.play_prompt([PROMPT])
    assert tracker.done()
    await emulator.drain()
    stats = emulated_bot.client.stats
    assert (stats.resolved, stats.duplicates, stats.pending) == (1, 1, 0)
    assert stats.early_pending == 0


async def test_reconciliation_racing_a_delayed_notification(
    graph_emulator: GraphEmulator,
) -> None:
    """The read-back wins; the real notification, arriving later, is a duplicate."""
    graph_emulator.readable_operations = "all"  # a playPrompt read back: beyond §7
    async with emulated_bot(
        graph_emulator, tracking=TrackingSettings(reconcile_after=0.05, reconcile_interval=0.05)
    ) as bot:
        call = await place_call(bot.client)
        graph_emulator.fault_next_notification(
            "delay", resource_contains=OPERATIONS, delay_seconds=0.6
        )
        tracker = await call.play_prompt([PROMPT])
        assert_completed(await asyncio.wait_for(tracker, T))
        assert bot.client.stats.reconciled == 1
        await graph_emulator.drain()
        assert bot.client.stats.duplicates == 1
        assert bot.client.stats.resolved == 1


async def test_reconciling_a_running_operation_leaves_it_pending(
    graph_emulator: GraphEmulator,
) -> None:
    # The read-back must answer "running" for this to test anything: beyond §7.
    graph_emulator.readable_operations = "all"
    # One read-back, then none for this call for 10 s (the interval).
    async with emulated_bot(
        graph_emulator, tracking=TrackingSettings(reconcile_after=0.05, reconcile_interval=10.0)
    ) as bot:
        call = await place_call(bot.client)
        graph_emulator.prompt_seconds = 0.5
        tracker = await call.play_prompt([PROMPT])
        await asyncio.sleep(0.3)
        assert not tracker.done()
        assert tracker.status is OperationStatus.RUNNING
        assert bot.client.stats.reconciliations >= 1
        # From here the notification alone finishes it: the interval keeps a read-back
        # from racing the prompt's end (which would rightly count as a recovery).
        assert_completed(await asyncio.wait_for(tracker, T))
        assert bot.client.stats.reconciled == 0
        assert bot.client.stats.resolved == 1


async def test_closing_the_client_fails_what_is_pending(graph_emulator: GraphEmulator) -> None:
    async with emulated_bot(graph_emulator) as bot:
        call = await place_call(bot.client)
        graph_emulator.prompt_seconds = 30
        tracker = await call.play_prompt([PROMPT])
        tones = call.tones()
        waiting = asyncio.ensure_future(call.wait_for_state(CallState.TERMINATED))
        await bot.client.aclose()
        with pytest.raises(ClientClosedError):
            await tracker.wait(timeout=T)
        with pytest.raises(ClientClosedError):
            await asyncio.wait_for(waiting, T)
        assert [t async for t in tones] == []
        assert bot.client.stats.closed == 1
        with pytest.raises(ClientClosedError):
            await call.play_prompt([PROMPT])
        # The webhook now refuses what Graph sends rather than dropping it silently.
        await graph_emulator.caller_hangs_up(call.id)
        await graph_emulator.drain()
        assert graph_emulator.deliveries[-1].status == 503


async def test_actions_on_an_ended_call_are_not_found(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    await call.hang_up()
    await call.wait_for_state(CallState.TERMINATED, timeout=T)
    with pytest.raises(NotFoundError):
        await call.play_prompt([PROMPT])
    with pytest.raises(NotFoundError):
        await call.refresh()
    assert emulated_bot.client.stats.pending == 0


async def test_transfer_ends_pending_operations_with_its_reason(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulated_bot.emulator.prompt_seconds = 30
    tracker = await call.play_prompt([PROMPT])  # plays for 30 s
    emulated_bot.emulator.prompt_seconds = 0.01  # the transfer takes one step
    await call.transfer(InvitationParticipantInfo(identity=IdentitySet.for_phone("+14255550111")))
    with pytest.raises(CallEndedError) as caught:
        await tracker.wait(timeout=T)
    info = caught.value.result_info
    assert info is not None
    assert (info.code, info.subcode) == (0, 7015)


async def test_a_client_context_in_use_is_refused_before_sending(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulated_bot.emulator.prompt_seconds = 30
    first = await call.play_prompt([PROMPT], client_context="same")
    with pytest.raises(InvalidRequestError):
        await call.play_prompt([PROMPT], client_context="same")
    with pytest.raises(InvalidRequestError):
        await call.play_prompt([PROMPT], client_context="x" * 257)
    sent = [r for r in emulated_bot.emulator.requests if r.path.endswith("/playPrompt")]
    assert len(sent) == 1
    assert not first.done()
    assert emulated_bot.client.stats.pending == 1


async def test_a_finished_client_context_can_be_used_again(call: CallHandle) -> None:
    for _ in range(2):
        assert_completed(
            await asyncio.wait_for(await call.play_prompt([PROMPT], client_context="again"), T)
        )


async def test_many_operations_at_once(emulated_bot: EmulatedBot, call: CallHandle) -> None:
    emulated_bot.emulator.prompt_seconds = 0.002
    trackers = await asyncio.gather(*(call.play_prompt([PROMPT]) for _ in range(40)))
    finals = await asyncio.wait_for(asyncio.gather(*trackers), 10)
    assert all(f.succeeded for f in finals)
    assert len({f.id for f in finals}) == 40
    stats = emulated_bot.client.stats
    assert (stats.resolved, stats.pending, stats.duplicates) == (40, 0, 0)


async def test_cancelling_a_waiter_leaves_the_operation(call: CallHandle) -> None:
    tracker = await call.play_prompt([PROMPT])
    waiter = asyncio.ensure_future(tracker.wait())
    other = asyncio.ensure_future(tracker.wait())
    await asyncio.sleep(0)
    waiter.cancel()
    assert_completed(await asyncio.wait_for(other, T))
    assert waiter.cancelled()
    assert tracker.succeeded()


async def test_malformed_and_oversized_bodies_change_nothing(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulator, receiver = emulated_bot.emulator, emulated_bot.receiver
    before = emulated_bot.client.stats.notifications
    headers = {"Authorization": f"Bearer {emulator.make_token()}"}
    async with aiohttp.ClientSession() as session:
        for body, expected in (
            (b"{not json", 400),
            (b'{"value": 3}', 400),
            (b"[]", 400),
            (b'{"value": ["x"' + b" " * (receiver.max_body_size + 1) + b"]}", 413),
        ):
            data = io.BytesIO(body)
            async with session.post(emulated_bot.callback_uri, data=data, headers=headers) as r:
                assert r.status == expected, body[:20]
    assert emulated_bot.client.stats.notifications == before
    assert call.state is CallState.ESTABLISHED


async def test_a_duplicated_incoming_call_is_offered_once(emulated_bot: EmulatedBot) -> None:
    emulator = emulated_bot.emulator
    offered: list[CallHandle] = []
    emulated_bot.client.on_incoming_call(offered.append)
    emulator.fault_next_notification("duplicate", change_type="created")
    call_id = await emulator.simulate_incoming_call(callback_uri=emulated_bot.callback_uri)
    await emulator.drain()
    await asyncio.sleep(0)
    assert [c.id for c in offered] == [call_id]


async def test_a_reordered_tone_is_not_lost(emulated_bot: EmulatedBot, call: CallHandle) -> None:
    emulator = emulated_bot.emulator
    await call.subscribe_to_tone()
    tones = call.tones()
    emulator.fault_next_notification("reorder", call_id=call.id, change_type="updated")
    await emulator.press_keys(call.id, "12")
    await emulator.drain()
    await call.hang_up()
    keys = [t.tone.key async for t in tones]  # ends when the call does
    assert sorted(keys) == ["1", "2"]
