"""DTMF after subscribeToTone (graphcomms._tones): the per-call tone buffer, what
``tones()`` iterators and ``collect_tones`` take from it, and when ``await
subscribe_to_tone()`` returns. Graph is mocked (only the request shape matters here) and
notifications are fed in the order a test needs; the emulator-driven flows (barge-in,
keys during and after a prompt, faults) are in tests/integration/test_integration_tones.py.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses
from yarl import URL

from graphcomms import (
    CallHandle,
    ClientClosedError,
    CollectReason,
    CommsClient,
    InvalidRequestError,
    Limits,
    ToneCollection,
)
from graphcomms.models import SubscribeToToneOperation, Tone, ToneInfo
from graphcomms.testing import make_notification, make_operation

GRAPH = "https://graph.test/v1.0/"
CALL_ID = "421f0000-d7f2-4d9a-9e0e-6e4c9a5b0001"
CALL_URL = f"{GRAPH}communications/calls/{CALL_ID}"
OP_ID = "9a0b0000-1111-2222-3333-444455556666"
T = 5  # a failure bound, never a measured duration
KEYS = {"#": "pound", "*": "star", **{str(d): f"tone{d}" for d in range(10)}}


@pytest.fixture
def graph(mock_graph: aioresponses) -> aioresponses:
    return mock_graph


@pytest.fixture
async def client(graph: aioresponses) -> AsyncIterator[CommsClient]:
    async with CommsClient("secret-token", base_url=GRAPH, callback_uri="https://bot/cb") as c:
        yield c


def subscribe_answers(graph: aioresponses, status: str = "completed", **options: Any) -> None:
    graph.post(
        f"{CALL_URL}/subscribeToTone",
        payload={
            "@odata.type": "#microsoft.graph.subscribeToToneOperation",
            "id": OP_ID,
            "status": status,
        },
        headers={"Location": f"{CALL_URL}/operations/{OP_ID}"},
        **options,
    )


def tone(sequence_id: int | None, key: str) -> dict[str, Any]:
    info: dict[str, Any] = {"@odata.type": "#microsoft.graph.toneInfo", "tone": KEYS[key]}
    if sequence_id is not None:
        info["sequenceId"] = sequence_id
    return call_item("updated", state="established", toneInfo=info)


def call_item(change: str, **data: Any) -> dict[str, Any]:
    return {
        "value": [
            {
                "changeType": change,
                "resourceUrl": f"/communications/calls/{CALL_ID}",
                "resourceData": {"@odata.type": "#microsoft.graph.call", **data},
            }
        ]
    }


def press(client: CommsClient, keys: str, first: int = 1) -> None:
    """The caller's keys as Graph reports them: one notification each, in order."""
    for n, key in enumerate(keys, start=first):
        client.feed(tone(n, key))


async def subscribed(client: CommsClient, graph: aioresponses) -> CallHandle:
    subscribe_answers(graph)
    call = client.call(CALL_ID)
    tracker = await call.subscribe_to_tone()
    assert tracker.succeeded()
    return call


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition`` holds (bounded: a failure, not a wait)."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0)

    await asyncio.wait_for(poll(), T)


def sent(graph: aioresponses, action: str) -> list[Any]:
    calls = graph.requests.get(("POST", URL(f"{CALL_URL}/{action}")), [])
    return [json.loads(c.kwargs["data"]) for c in calls]


# -- subscribe_to_tone ---------------------------------------------------------------------


async def test_subscribe_returns_only_once_its_operation_has_ended(
    client: CommsClient, graph: aioresponses
) -> None:
    subscribe_answers(graph, status="running")
    call = client.call(CALL_ID)
    pending = asyncio.ensure_future(call.subscribe_to_tone())
    await until(lambda: client.stats.pending == 1)
    assert sent(graph, "subscribeToTone") != []
    for _ in range(20):
        await asyncio.sleep(0)
    assert not pending.done()  # accepted is not effective
    client.feed(
        make_notification(
            make_operation(SubscribeToToneOperation, status="completed", id=OP_ID),
            call_id=CALL_ID,
        )
    )
    tracker = await asyncio.wait_for(pending, T)
    assert tracker.done()
    assert tracker.succeeded()
    assert type(tracker.operation) is SubscribeToToneOperation


async def test_subscribe_posts_its_exact_body_with_a_unique_or_given_context(
    client: CommsClient, graph: aioresponses
) -> None:
    subscribe_answers(graph, repeat=True)
    call = client.call(CALL_ID)
    first = await call.subscribe_to_tone()
    second = await call.subscribe_to_tone()
    given = await call.subscribe_to_tone(client_context="bot-ctx-42")
    bodies = sent(graph, "subscribeToTone")
    assert bodies == [
        {"clientContext": first.client_context},
        {"clientContext": second.client_context},
        {"clientContext": "bot-ctx-42"},
    ]
    assert first.client_context != second.client_context
    assert all(0 < len(b["clientContext"]) <= 256 for b in bodies)
    assert given.client_context == "bot-ctx-42"


async def test_a_failed_subscription_returns_its_failed_tracker(
    client: CommsClient, graph: aioresponses
) -> None:
    subscribe_answers(graph, status="failed")
    tracker = await client.call(CALL_ID).subscribe_to_tone()
    assert tracker.done()
    assert not tracker.succeeded()


async def test_a_tone_that_overtakes_the_subscriptions_answer_is_kept(
    client: CommsClient, graph: aioresponses
) -> None:
    def answer(url: URL, **kwargs: Any) -> CallbackResult:
        client.feed(tone(1, "7"))  # Graph's first tone arrives before its HTTP answer
        return CallbackResult(
            payload={"id": OP_ID, "status": "completed"},
            headers={"Location": f"{CALL_URL}/operations/{OP_ID}"},
        )

    graph.post(f"{CALL_URL}/subscribeToTone", callback=answer)
    call = client.call(CALL_ID)
    await call.subscribe_to_tone()
    got = await call.collect_tones(max_tones=1, first_tone_timeout=T)
    assert (got.keys, got.reason) == ("7", CollectReason.MAX_TONES)


async def test_tones_before_the_subscription_was_sent_are_not_buffered(
    client: CommsClient, graph: aioresponses
) -> None:
    call = client.call(CALL_ID)
    press(client, "9")  # Graph drops keys before the subscription; none kept here either
    subscribe_answers(graph)
    await call.subscribe_to_tone()
    press(client, "1", first=2)
    got = await call.collect_tones(max_tones=1, first_tone_timeout=T)
    assert got.keys == "1"


# -- the buffer ---------------------------------------------------------------------------


async def test_keys_typed_before_collect_tones_are_collected(
    client: CommsClient, graph: aioresponses
) -> None:
    call = await subscribed(client, graph)
    press(client, "42#")  # no reader yet: a menu was playing
    got = await call.collect_tones(first_tone_timeout=T)
    assert got == ToneCollection(
        keys="42",
        reason=CollectReason.STOP_TONE,
        stop_tone="#",
        tones=(
            ToneInfo(sequence_id=1, tone=Tone.TONE4),
            ToneInfo(sequence_id=2, tone=Tone.TONE2),
            ToneInfo(sequence_id=3, tone=Tone.POUND),
        ),
    )


async def test_keys_after_the_stop_tone_stay_for_the_next_reader(
    client: CommsClient, graph: aioresponses
) -> None:
    call = await subscribed(client, graph)
    press(client, "12#34")
    first = await call.collect_tones()
    second = await call.collect_tones(max_tones=2)
    assert (first.keys, first.reason) == ("12", CollectReason.STOP_TONE)
    assert (second.keys, second.reason) == ("34", CollectReason.MAX_TONES)


async def test_the_buffer_is_bounded_and_counts_what_it_drops(graph: aioresponses) -> None:
    async with CommsClient(
        "t", base_url=GRAPH, callback_uri="https://bot/cb", limits=Limits(buffered_tones=3)
    ) as client:
        call = await subscribed(client, graph)
        press(client, "12345")
        assert client.stats.tones_dropped == 2
        assert call.tones_dropped == 2
        got = await call.collect_tones(max_tones=3)
        assert got.keys == "345"  # the oldest went first


async def test_without_max_tones_a_collection_still_ends_at_the_buffer_size(
    graph: aioresponses,
) -> None:
    async with CommsClient(
        "t", base_url=GRAPH, callback_uri="https://bot/cb", limits=Limits(buffered_tones=3)
    ) as client:
        call = await subscribed(client, graph)
        collecting = asyncio.ensure_future(call.collect_tones())  # until '#', no max
        buffer = call._tone_buffer
        assert buffer is not None
        for n, key in enumerate("123", start=1):
            press(client, key, first=n)  # each taken before the next comes
            await until(lambda: len(buffer) == 0 or collecting.done())
        press(client, "45", first=4)
        got = await asyncio.wait_for(collecting, T)
        assert (got.keys, got.reason) == ("123", CollectReason.MAX_TONES)
        assert (await call.collect_tones(max_tones=2)).keys == "45"
        assert client.stats.tones_dropped == 0


async def test_without_a_subscription_nothing_is_buffered_or_counted(
    client: CommsClient,
) -> None:
    call = client.call(CALL_ID)
    tones = call.tones()
    press(client, "1")
    assert (await asyncio.wait_for(tones.__anext__(), T)).tone is Tone.TONE1
    assert call.tones_dropped == 0
    assert client.stats.tones_dropped == 0


@pytest.mark.parametrize("bad", [0, -1, True, 2.5, "256"])
def test_limits_refuse_a_tone_buffer_that_is_not_a_positive_int(bad: Any) -> None:
    with pytest.raises(ValueError, match="buffered_tones"):
        Limits(buffered_tones=bad)


# -- tones() iterators and callbacks -------------------------------------------------------


async def test_a_new_iterator_first_yields_the_unread_tones_and_takes_what_it_yields(
    client: CommsClient, graph: aioresponses
) -> None:
    call = await subscribed(client, graph)
    press(client, "12")
    first = call.tones()
    assert [(await first.__anext__()).tone for _ in range(2)] == [Tone.TONE1, Tone.TONE2]
    press(client, "3", first=3)
    second = call.tones()  # made after 1 and 2 were read: it starts at 3
    assert (await asyncio.wait_for(second.__anext__(), T)).tone is Tone.TONE3
    got = await call.collect_tones(max_tones=1, first_tone_timeout=0.01)
    assert got.reason is CollectReason.FIRST_TONE_TIMEOUT  # nothing left unread


async def test_an_iterator_that_has_not_yielded_a_tone_leaves_it_for_collect_tones(
    client: CommsClient, graph: aioresponses
) -> None:
    call = await subscribed(client, graph)
    idle = call.tones()  # made, never read
    press(client, "5")
    got = await call.collect_tones(max_tones=1)
    assert got.keys == "5"
    assert (await asyncio.wait_for(idle.__anext__(), T)).tone is Tone.TONE5  # still sees it


async def test_on_tone_watches_without_taking(client: CommsClient, graph: aioresponses) -> None:
    call = await subscribed(client, graph)
    seen: list[str] = []
    call.on_tone(lambda t: seen.append(t.tone.key if isinstance(t.tone, Tone) else "?"))
    press(client, "8")
    got = await call.collect_tones(max_tones=1)
    await asyncio.sleep(0)
    assert (got.keys, seen) == ("8", ["8"])


async def test_an_iterator_closed_early_frees_its_subscription(
    client: CommsClient, graph: aioresponses
) -> None:
    call = await subscribed(client, graph)
    press(client, "1")
    tones = call.tones()
    await tones.aclose()  # type: ignore[attr-defined]
    with pytest.raises(StopAsyncIteration):
        await tones.__anext__()
    assert (await call.collect_tones(max_tones=1)).keys == "1"


async def test_an_iterator_left_by_break_stops_receiving(
    client: CommsClient, graph: aioresponses
) -> None:
    call = await subscribed(client, graph)
    for menu in range(3):  # a fresh iterator per menu, each left with break
        press(client, str(menu + 1), first=menu + 1)
        async for got in call.tones():
            assert got.sequence_id == menu + 1
            break
    gc.collect()  # CPython frees them at once; other interpreters need a collection
    assert not call._tones._queues  # no queue per menu left filling up
    press(client, "9", first=4)
    assert (await call.collect_tones(max_tones=1)).keys == "9"


# -- duplicates and reordering ------------------------------------------------------------


async def test_a_repeated_sequence_id_is_collected_once(
    client: CommsClient, graph: aioresponses
) -> None:
    call = await subscribed(client, graph)
    client.feed(tone(1, "1"))
    client.feed(tone(1, "1"))
    client.feed(tone(2, "#"))
    client.feed(tone(2, "#"))
    got = await call.collect_tones()
    assert (got.keys, got.reason) == ("1", CollectReason.STOP_TONE)
    assert len(got.tones) == 2


async def test_late_tones_take_their_place_in_the_buffer(
    client: CommsClient, graph: aioresponses
) -> None:
    call = await subscribed(client, graph)
    client.feed(tone(3, "3"))
    client.feed(tone(1, "1"))
    client.feed(tone(2, "2"))
    assert (await call.collect_tones(max_tones=3)).keys == "123"


async def test_a_stop_tone_that_overtook_a_key_waits_for_it(
    client: CommsClient, graph: aioresponses
) -> None:
    call = await subscribed(client, graph)
    collecting = asyncio.ensure_future(call.collect_tones(reorder_grace=T))
    client.feed(tone(1, "1"))
    client.feed(tone(3, "#"))  # the '2' is late
    for _ in range(20):
        await asyncio.sleep(0)
    assert not collecting.done()
    client.feed(tone(2, "2"))
    got = await asyncio.wait_for(collecting, T)
    assert (got.keys, got.reason) == ("12", CollectReason.STOP_TONE)


async def test_a_hole_that_never_fills_ends_after_the_grace(
    client: CommsClient, graph: aioresponses
) -> None:
    call = await subscribed(client, graph)
    client.feed(tone(1, "1"))
    client.feed(tone(3, "#"))  # 2 is lost for good
    got = await asyncio.wait_for(call.collect_tones(reorder_grace=0.01), T)
    assert (got.keys, got.reason) == ("1", CollectReason.STOP_TONE)


async def test_tones_without_a_sequence_id_keep_their_arrival_order(
    client: CommsClient, graph: aioresponses
) -> None:
    call = await subscribed(client, graph)
    for key in "21#":
        client.feed(tone(None, key))
    assert (await call.collect_tones()).keys == "21"


# -- why collection stops --------------------------------------------------------------------


async def test_stops_at_max_tones(client: CommsClient, graph: aioresponses) -> None:
    call = await subscribed(client, graph)
    collecting = asyncio.ensure_future(call.collect_tones(max_tones=2, stop_tones=()))
    press(client, "987")
    got = await asyncio.wait_for(collecting, T)
    assert (got.keys, got.reason, got.stop_tone) == ("98", CollectReason.MAX_TONES, None)


@pytest.mark.parametrize("stop_tones", [("#", "*"), "#*", [Tone.STAR, "pound"], "star", Tone.STAR])
async def test_stops_at_any_stop_tone_however_it_is_named(
    client: CommsClient, graph: aioresponses, stop_tones: Any
) -> None:
    call = await subscribed(client, graph)
    press(client, "5*")
    got = await call.collect_tones(stop_tones=stop_tones)
    assert (got.keys, got.reason, got.stop_tone) == ("5", CollectReason.STOP_TONE, "*")


async def test_a_stop_tone_before_max_tones_wins(client: CommsClient, graph: aioresponses) -> None:
    call = await subscribed(client, graph)
    press(client, "#")
    got = await call.collect_tones(max_tones=4)
    assert (got.keys, got.reason, got.stop_tone) == ("", CollectReason.STOP_TONE, "#")


async def test_stops_when_no_first_tone_comes(client: CommsClient, graph: aioresponses) -> None:
    call = await subscribed(client, graph)
    got = await asyncio.wait_for(call.collect_tones(first_tone_timeout=0.01), T)
    assert (got.keys, got.reason, got.timed_out) == ("", CollectReason.FIRST_TONE_TIMEOUT, True)


async def test_stops_when_no_further_tone_comes(client: CommsClient, graph: aioresponses) -> None:
    call = await subscribed(client, graph)
    press(client, "4")
    got = await asyncio.wait_for(
        call.collect_tones(first_tone_timeout=T, inter_tone_timeout=0.01), T
    )
    assert (got.keys, got.reason) == ("4", CollectReason.INTER_TONE_TIMEOUT)


async def test_stops_with_the_keys_so_far_when_the_call_ends(
    client: CommsClient, graph: aioresponses
) -> None:
    call = await subscribed(client, graph)
    collecting = asyncio.ensure_future(call.collect_tones())
    press(client, "12")
    await until(lambda: call._tone_buffer is not None and len(call._tone_buffer) == 0)
    client.feed(call_item("deleted", state="terminated"))
    got = await asyncio.wait_for(collecting, T)
    assert (got.keys, got.reason) == ("12", CollectReason.CALL_ENDED)
    # An ended call still gives what it buffered, then says it ended.
    assert (await call.collect_tones()).reason is CollectReason.CALL_ENDED


async def test_on_an_ended_call_buffered_keys_still_count(
    client: CommsClient, graph: aioresponses
) -> None:
    call = await subscribed(client, graph)
    press(client, "3#")
    client.feed(call_item("deleted", state="terminated"))
    got = await call.collect_tones()
    assert (got.keys, got.reason) == ("3", CollectReason.STOP_TONE)


async def test_without_a_subscription_it_subscribes_first(
    client: CommsClient, graph: aioresponses
) -> None:
    subscribe_answers(graph)
    call = client.call(CALL_ID)
    collecting = asyncio.ensure_future(call.collect_tones(max_tones=1))
    await until(lambda: call._tone_buffer is not None and client.stats.pending == 0)
    press(client, "6")
    assert (await asyncio.wait_for(collecting, T)).keys == "6"
    assert len(sent(graph, "subscribeToTone")) == 1


# -- cancellation, closing, refusals ---------------------------------------------------------


async def test_cancelling_returns_the_taken_keys_to_the_buffer(
    client: CommsClient, graph: aioresponses
) -> None:
    call = await subscribed(client, graph)
    collecting = asyncio.ensure_future(call.collect_tones(max_tones=3))
    press(client, "12")
    await until(lambda: call._tone_buffer is not None and len(call._tone_buffer) == 0)
    collecting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await collecting
    assert (await call.collect_tones(max_tones=2)).keys == "12"


async def test_closing_the_client_ends_a_collection_with_client_closed(
    graph: aioresponses,
) -> None:
    client = CommsClient("t", base_url=GRAPH, callback_uri="https://bot/cb")
    async with client:
        call = await subscribed(client, graph)
        collecting = asyncio.ensure_future(call.collect_tones())
        await until(lambda: call._tone_buffer is not None and call._tone_buffer.collecting)
    with pytest.raises(ClientClosedError):
        await asyncio.wait_for(collecting, T)
    with pytest.raises(ClientClosedError):
        await call.collect_tones()


async def test_a_second_collection_on_the_same_call_is_refused(
    client: CommsClient, graph: aioresponses
) -> None:
    call = await subscribed(client, graph)
    first = asyncio.ensure_future(call.collect_tones())
    await until(lambda: call._tone_buffer is not None and call._tone_buffer.collecting)
    with pytest.raises(InvalidRequestError, match="already running"):
        await call.collect_tones()
    press(client, "#")
    assert (await asyncio.wait_for(first, T)).reason is CollectReason.STOP_TONE


BAD_ARGUMENTS = [
    pytest.param({"max_tones": 0}, "max_tones", id="max-0"),
    pytest.param({"max_tones": -1}, "max_tones", id="max-negative"),
    pytest.param({"max_tones": True}, "max_tones", id="max-bool"),
    pytest.param({"max_tones": 1.5}, "max_tones", id="max-float"),
    pytest.param({"stop_tones": ["x"]}, "stop_tones", id="stop-not-a-key"),
    pytest.param({"stop_tones": "tone99"}, "stop_tones", id="stop-not-a-tone"),
    pytest.param({"stop_tones": [1]}, "stop_tones", id="stop-int"),
    pytest.param({"first_tone_timeout": 0}, "first_tone_timeout", id="first-0"),
    pytest.param({"first_tone_timeout": -1}, "first_tone_timeout", id="first-negative"),
    pytest.param({"first_tone_timeout": math.nan}, "first_tone_timeout", id="first-nan"),
    pytest.param({"inter_tone_timeout": math.inf}, "inter_tone_timeout", id="inter-inf"),
    pytest.param({"inter_tone_timeout": "1"}, "inter_tone_timeout", id="inter-str"),
    pytest.param({"reorder_grace": -0.1}, "reorder_grace", id="grace-negative"),
    pytest.param({"stop_tones": ()}, "would only end with the call", id="never-ends"),
    pytest.param({"prompt": []}, "prompts", id="no-prompt"),
]


@pytest.mark.parametrize(("kwargs", "message"), BAD_ARGUMENTS)
async def test_bad_arguments_are_refused_before_anything_is_sent(
    client: CommsClient, graph: aioresponses, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidRequestError, match=message):
        await client.call(CALL_ID).collect_tones(**kwargs)
    assert graph.requests == {}
    assert isinstance(InvalidRequestError("x"), ValueError)
