"""The one fan-out mechanism (``Channel`` and ``CallbackRunner``) and what a tracker
gives before, during and after its end: the paths the contract tests pass by."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aioresponses import aioresponses
from async_support import collect, settle

from graphcomms import (
    CallEndedError,
    CommsClient,
    InvalidRequestError,
    MediaPrompt,
    PlayPromptOperation,
    ResultInfo,
)
from graphcomms._events import CallbackRunner, Channel
from graphcomms._stats import ClientStats
from graphcomms.models import Call, CallState
from graphcomms.testing import make_notification, make_operation

GRAPH = "https://graph.test/v1.0/"
CALL_ID = "c0ffee00-0000-4000-8000-000000000001"
OP_ID = "0fe0623f-d628-42ed-b4bd-8ac290072cc5"
CALL_URL = f"{GRAPH}communications/calls/{CALL_ID}"


# -- CallbackRunner ----------------------------------------------------------------


async def test_a_failing_async_callback_is_counted_and_logged_never_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stats = ClientStats()
    runner = CallbackRunner(stats)

    async def broken(item: int) -> None:
        raise RuntimeError(f"boom {item}")

    with caplog.at_level(logging.ERROR, logger="graphcomms.callbacks"):
        runner.run(broken, 7)
        await settle()
    assert stats.callback_errors == 1
    assert runner.pending == 0  # its task was reaped
    assert any("async callback raised" in r.getMessage() for r in caplog.records)
    assert "boom 7" in caplog.text


async def test_a_cancelled_async_callback_is_no_error() -> None:
    stats = ClientStats()
    runner = CallbackRunner(stats)
    started = asyncio.Event()

    async def forever(_: int) -> None:
        started.set()
        await asyncio.Event().wait()

    runner.run(forever, 1)
    await started.wait()
    assert runner.pending == 1
    await runner.aclose(grace=0.01)  # it does not end by itself: cancelled
    assert runner.pending == 0
    assert stats.callback_errors == 0


async def test_a_runner_without_stats_still_logs_a_failing_callback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    runner = CallbackRunner()

    def broken(_: int) -> None:
        raise ValueError("sync boom")

    with caplog.at_level(logging.ERROR, logger="graphcomms.callbacks"):
        runner.run(broken, 1)
        await settle()
    assert "sync boom" in caplog.text


# -- Channel -----------------------------------------------------------------------


async def test_a_removed_callback_is_not_called_and_removing_twice_says_so() -> None:
    channel: Channel[int] = Channel(CallbackRunner())
    seen: list[int] = []
    channel.add_callback(seen.append)
    channel.publish(1)
    await settle()
    assert channel.remove_callback(seen.append) is True
    assert channel.remove_callback(seen.append) is False
    channel.publish(2)
    await settle()
    assert seen == [1]


async def test_subscribing_to_a_closed_channel_ends_at_once_with_its_error() -> None:
    ended: Channel[int] = Channel(CallbackRunner())
    ended.close()
    ended.close(RuntimeError("a second close changes nothing"))
    assert ended.closed
    assert await collect(ended.subscribe()) == []

    failed: Channel[int] = Channel(CallbackRunner())
    failed.close(CallEndedError(call_id="c1", result_info=None))
    iterator = failed.subscribe()
    with pytest.raises(CallEndedError):
        await iterator.__anext__()
    with pytest.raises(CallEndedError):  # stays ended, with the same error
        await iterator.__anext__()


async def test_an_iterator_closed_by_its_reader_receives_nothing_more() -> None:
    channel: Channel[int] = Channel(CallbackRunner())
    first = channel.subscribe()
    second = channel.subscribe()
    channel.publish(1)
    assert await first.__anext__() == 1
    await first.aclose()  # type: ignore[attr-defined]
    channel.publish(2)
    channel.close()
    assert await collect(first) == []
    assert await collect(second) == [1, 2]


async def test_an_iterator_waiting_for_an_item_is_woken_by_it() -> None:
    channel: Channel[str] = Channel(CallbackRunner())
    iterator: AsyncIterator[str] = channel.subscribe()
    reader = asyncio.ensure_future(iterator.__anext__())
    await settle()
    assert not reader.done()
    channel.publish("tone")
    assert await asyncio.wait_for(reader, 1) == "tone"


# -- a tracker's public surface --------------------------------------------------


@pytest.fixture
async def client(mock_graph: aioresponses) -> AsyncIterator[CommsClient]:
    async with CommsClient("secret-token", base_url=GRAPH, callback_uri="https://bot.test/cb") as c:
        yield c


def _respond(graph: aioresponses, action: str, kind: str) -> None:
    graph.post(
        f"{CALL_URL}/{action}",
        payload={"@odata.type": f"#microsoft.graph.{kind}", "id": OP_ID, "status": "running"},
        headers={"Location": f"{CALL_URL}/operations/{OP_ID}"},
    )


async def test_a_pending_tracker_has_no_result_and_a_removed_callback_never_runs(
    client: CommsClient, mock_graph: aioresponses
) -> None:
    _respond(mock_graph, "playPrompt", "playPromptOperation")
    tracker = await client.call(CALL_ID).play_prompt([MediaPrompt.from_uri("https://x.test/a.wav")])
    with pytest.raises(asyncio.InvalidStateError):
        tracker.result()
    assert "pending" in repr(tracker)
    assert "PlayPromptOperation" in repr(tracker)
    called: list[Any] = []
    tracker.add_done_callback(called.append)
    assert tracker.remove_done_callback(called.append) is True
    assert tracker.remove_done_callback(called.append) is False
    done = make_operation(
        PlayPromptOperation, status="completed", id=OP_ID, client_context=tracker.client_context
    )
    client.feed(make_notification(done, call_id=CALL_ID))
    await settle()
    assert called == []
    assert tracker.result().status == done.status
    assert "done" in repr(tracker)
    # Done: updates() replays the terminal snapshot once, and cancel() has nothing to do.
    assert [op.status for op in await collect(tracker.updates())] == [done.status]
    assert await tracker.cancel() is False


async def test_a_tracker_failed_by_the_call_end_replays_the_error_to_new_readers(
    client: CommsClient, mock_graph: aioresponses
) -> None:
    _respond(mock_graph, "playPrompt", "playPromptOperation")
    call = client.call(CALL_ID)
    tracker = await call.play_prompt([MediaPrompt.from_uri("https://x.test/a.wav")])
    ended = Call(
        id=CALL_ID,
        state=CallState.TERMINATED,
        result_info=ResultInfo(code=0, subcode=5000, message="hung up"),
    )
    client.feed(make_notification(ended, call_id=CALL_ID, change_type="deleted"))
    with pytest.raises(CallEndedError):
        await tracker
    with pytest.raises(CallEndedError):
        await collect(tracker.updates())
    with pytest.raises(CallEndedError):
        tracker.result()


async def test_cancel_on_an_action_media_processing_cannot_stop_says_so(
    client: CommsClient, mock_graph: aioresponses
) -> None:
    _respond(mock_graph, "unmute", "unmuteParticipantOperation")
    tracker = await client.call(CALL_ID).unmute()
    assert not tracker.cancellable
    with pytest.raises(InvalidRequestError, match="cannot be cancelled"):
        await tracker.cancel()


async def test_a_failed_cancel_on_leaving_the_block_is_logged_and_the_block_error_kept(
    client: CommsClient, mock_graph: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    _respond(mock_graph, "recordResponse", "recordOperation")
    mock_graph.post(f"{CALL_URL}/cancelMediaProcessing", status=500, repeat=True)
    with (
        caplog.at_level(logging.WARNING, logger="graphcomms"),
        pytest.raises(RuntimeError, match="the bot's own error"),
    ):
        async with client.call(CALL_ID).record_response(max_record_duration=10):
            raise RuntimeError("the bot's own error")
    assert "cancelMediaProcessing failed on leaving the block" in caplog.text
