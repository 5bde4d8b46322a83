"""DTMF collection against the emulator, through the real webhook: keys pressed before
the subscription, during a prompt (barge-in), after it; reordered and duplicated tone
notifications; the call ending and the collection being cancelled mid-way."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from integration_support import place_call

from graphcomms import CallHandle, CollectReason, MediaPrompt, OperationStatus
from graphcomms.models import CompletionReason
from graphcomms.testing import EmulatedBot, GraphEmulator

MENU = MediaPrompt.from_uri("https://media.example.com/ivr/menu.wav")
T = 10  # a failure bound, never a measured duration
# Long enough that a prompt only ends early because something stopped it.
FOREVER = 60.0


async def until(condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), T)


def _coro_name(task: asyncio.Task[object]) -> str:
    return getattr(task.get_coro(), "__qualname__", "")


@pytest.fixture
def emulator(emulated_bot: EmulatedBot) -> GraphEmulator:
    return emulated_bot.emulator


async def test_keys_before_the_subscription_are_dropped_as_graph_does(
    emulator: GraphEmulator, call: CallHandle
) -> None:
    await emulator.press_keys(call.id, "99")  # not subscribed: Graph reports nothing
    tracker = await call.subscribe_to_tone()
    assert tracker.succeeded()  # effective: what is pressed from now on is kept
    await emulator.press_keys(call.id, "12#")
    got = await asyncio.wait_for(call.collect_tones(first_tone_timeout=T), T)
    assert (got.keys, got.reason) == ("12", CollectReason.STOP_TONE)


async def test_keys_typed_while_a_menu_plays_are_collected_after_it(
    emulator: GraphEmulator, call: CallHandle
) -> None:
    """The issue's lost digits: nobody reads while the menu plays."""
    await call.subscribe_to_tone()
    await emulator.press_keys(call.id, "42#", during_prompt=True)
    menu = await call.play_prompt([MENU])
    assert (await asyncio.wait_for(menu, T)).status is OperationStatus.COMPLETED
    got = await asyncio.wait_for(call.collect_tones(first_tone_timeout=T), T)
    assert (got.keys, got.reason, got.stop_tone) == ("42", CollectReason.STOP_TONE, "#")


async def test_the_first_key_barges_in_on_the_prompt(
    emulator: GraphEmulator, call: CallHandle
) -> None:
    await call.subscribe_to_tone()
    emulator.prompt_seconds = FOREVER
    await emulator.press_keys(call.id, "7", during_prompt=True)
    got = await asyncio.wait_for(call.collect_tones(max_tones=1, prompt=MENU), T)
    assert (got.keys, got.reason) == ("7", CollectReason.MAX_TONES)
    assert got.prompt is not None
    # cancelMediaProcessing stopped it; its canceled result is not raised from collect.
    stopped = await got.prompt.wait(timeout=T)
    assert stopped.status is OperationStatus.FAILED
    assert stopped.completion_reason is CompletionReason.MEDIA_OPERATION_CANCELED
    assert stopped.result_info is not None
    assert (stopped.result_info.code, stopped.result_info.subcode) == (400, 8508)
    ops = list(emulator.calls[call.id].operations.values())
    assert [op.odata_type for op in ops].count("cancelMediaProcessingOperation") == 1
    assert emulator.calls[call.id].playing is None


async def test_without_interrupt_the_prompt_plays_on_and_timeouts_start_after_it(
    emulator: GraphEmulator, emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    await call.subscribe_to_tone()
    emulator.prompt_seconds = 0.05
    await emulator.press_keys(call.id, "1", during_prompt=True)
    got = await asyncio.wait_for(
        call.collect_tones(max_tones=2, prompt=MENU, interrupt=False, inter_tone_timeout=0.05),
        T,
    )
    assert (got.keys, got.reason) == ("1", CollectReason.INTER_TONE_TIMEOUT)
    assert got.prompt is not None
    assert got.prompt.succeeded()  # played to its end
    sent = [r.path.rsplit("/", 1)[-1] for r in emulator.requests if r.method == "POST"]
    assert "cancelMediaProcessing" not in sent


async def test_keys_typed_ahead_skip_the_prompt(emulator: GraphEmulator, call: CallHandle) -> None:
    await call.subscribe_to_tone()
    await emulator.press_keys(call.id, "3")
    await until(lambda: call._tone_buffer is not None and len(call._tone_buffer) == 1)
    got = await asyncio.wait_for(call.collect_tones(max_tones=1, prompt=MENU), T)
    assert (got.keys, got.prompt) == ("3", None)
    assert not any(r.path.endswith("/playPrompt") for r in emulator.requests)


async def test_a_prompt_still_playing_when_collection_ends_is_stopped(
    emulator: GraphEmulator, call: CallHandle
) -> None:
    await call.subscribe_to_tone()
    emulator.prompt_seconds = FOREVER
    await emulator.press_keys(call.id, "5#", during_prompt=True)
    got = await asyncio.wait_for(call.collect_tones(prompt=MENU, interrupt=False), T)
    assert (got.keys, got.reason) == ("5", CollectReason.STOP_TONE)
    assert got.prompt is not None
    assert (await got.prompt.wait(timeout=T)).status is OperationStatus.FAILED


async def test_a_reordered_tone_takes_its_place(
    emulator: GraphEmulator, emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    await call.subscribe_to_tone()
    collecting = asyncio.ensure_future(call.collect_tones(first_tone_timeout=T))
    await emulator.press_keys(call.id, "1")
    # The '2' is held back behind the '#': the bot hears 1, #, 2.
    emulator.fault_next_notification("reorder", call_id=call.id, change_type="updated")
    await emulator.press_keys(call.id, "2#")
    got = await asyncio.wait_for(collecting, T)
    assert (got.keys, got.reason) == ("12", CollectReason.STOP_TONE)
    await emulator.drain()
    assert any("reorder" in d.faults for d in emulator.deliveries)


async def test_duplicated_tone_notifications_count_once(
    emulator: GraphEmulator, call: CallHandle
) -> None:
    await call.subscribe_to_tone()
    emulator.fault_next_notification("duplicate", times=3, call_id=call.id, change_type="updated")
    await emulator.press_keys(call.id, "123")
    await emulator.drain()
    assert sum("duplicate" in d.faults for d in emulator.deliveries) == 3
    got = await asyncio.wait_for(
        call.collect_tones(max_tones=4, first_tone_timeout=T, inter_tone_timeout=0.05), T
    )
    assert (got.keys, got.reason) == ("123", CollectReason.INTER_TONE_TIMEOUT)


async def test_the_caller_hanging_up_ends_the_collection_with_the_keys_so_far(
    emulator: GraphEmulator, call: CallHandle
) -> None:
    await call.subscribe_to_tone()
    collecting = asyncio.ensure_future(call.collect_tones())
    await emulator.press_keys(call.id, "86")
    await until(lambda: call._tone_buffer is not None and len(call._tone_buffer) == 0)
    await emulator.caller_hangs_up(call.id)
    got = await asyncio.wait_for(collecting, T)
    assert (got.keys, got.reason) == ("86", CollectReason.CALL_ENDED)


async def test_the_call_ending_during_the_prompt_ends_the_collection(
    emulator: GraphEmulator, emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    await call.subscribe_to_tone()
    emulator.prompt_seconds = FOREVER
    collecting = asyncio.ensure_future(call.collect_tones(prompt=MENU, first_tone_timeout=T))
    await until(lambda: emulator.calls[call.id].playing is not None)
    await emulator.caller_hangs_up(call.id)
    got = await asyncio.wait_for(collecting, T)
    assert (got.keys, got.reason) == ("", CollectReason.CALL_ENDED)
    await emulator.drain()
    assert emulated_bot.client.stats.pending == 0


async def test_cancelling_the_collection_stops_its_prompt(
    emulator: GraphEmulator, emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    await call.subscribe_to_tone()
    emulator.prompt_seconds = FOREVER
    collecting = asyncio.ensure_future(call.collect_tones(prompt=MENU))
    await until(lambda: emulator.calls[call.id].playing is not None)
    collecting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await collecting
    # The task that watched the prompt ended with the collection.
    assert [t for t in asyncio.all_tasks() if _coro_name(t) == "OperationTracker.wait"] == []
    [prompt] = [
        op
        for op in emulator.calls[call.id].operations.values()
        if op.odata_type == "playPromptOperation"
    ]
    assert prompt.status == "failed"
    await emulator.drain()
    assert emulated_bot.client.stats.pending == 0


async def test_an_ivr_menu_loop_hears_each_key_once(
    emulator: GraphEmulator, emulated_bot: EmulatedBot
) -> None:
    call = await place_call(emulated_bot.client)
    await call.subscribe_to_tone()
    await emulator.press_keys(call.id, "2", during_prompt=True)
    first = await asyncio.wait_for(call.collect_tones(max_tones=1, prompt=MENU), T)
    await emulator.press_keys(call.id, "1234#", during_prompt=True)
    second = await asyncio.wait_for(call.collect_tones(prompt=MENU), T)
    assert (first.keys, second.keys) == ("2", "1234")
    assert emulated_bot.client.stats.tones_dropped == 0


async def test_keys_during_a_prompt_already_playing_are_pressed_at_once(
    emulator: GraphEmulator, call: CallHandle
) -> None:
    await call.subscribe_to_tone()
    emulator.prompt_seconds = FOREVER
    menu = await call.play_prompt([MENU])
    await until(lambda: emulator.calls[call.id].playing is not None)
    await emulator.press_keys(call.id, "9", during_prompt=True)
    assert emulator.calls[call.id]._keys_for_prompt == ""
    got = await asyncio.wait_for(call.collect_tones(max_tones=1), T)
    assert got.keys == "9"
    assert not menu.done()  # no prompt of its own: collect_tones leaves this one alone
    await menu.cancel()
    assert (await menu.wait(timeout=T)).status is OperationStatus.FAILED


async def test_a_failed_barge_in_is_logged_and_tried_again_when_collection_ends(
    emulator: GraphEmulator, call: CallHandle, caplog: pytest.LogCaptureFixture
) -> None:
    await call.subscribe_to_tone()
    emulator.prompt_seconds = FOREVER
    emulator.fail_next(500, path_contains="/cancelMediaProcessing")
    await emulator.press_keys(call.id, "4", during_prompt=True)
    with caplog.at_level("WARNING", logger="graphcomms.tones"):
        got = await asyncio.wait_for(call.collect_tones(max_tones=1, prompt=MENU), T)
    assert got.keys == "4"
    assert "cancelMediaProcessing failed" in caplog.text
    assert got.prompt is not None
    assert (await got.prompt.wait(timeout=T)).status is OperationStatus.FAILED
    cancels = [r for r in emulator.requests if r.path.endswith("/cancelMediaProcessing")]
    assert len(cancels) == 2
