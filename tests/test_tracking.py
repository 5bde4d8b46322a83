"""The tracking contract of DESIGN.md §3, one test (at least) per row."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aioresponses import CallbackResult, aioresponses
from async_support import holds_nothing, settle

from graphcomms import (
    CallEndedError,
    ClientClosedError,
    CommsClient,
    InvalidRequestError,
    Limits,
    MediaPrompt,
    OperationFailedError,
    OperationStatus,
    OperationTimeoutError,
    PlayPromptOperation,
    RecordOperation,
    ResultInfo,
    TrackingSettings,
)
from graphcomms._converter import unstructure
from graphcomms._events import CallbackRunner
from graphcomms._registry import OperationRegistry
from graphcomms._stats import ClientStats
from graphcomms._tracker import OperationTracker
from graphcomms.models import (
    Call,
    CallState,
    CompletionReason,
    SendDtmfTonesOperation,
    SubscribeToToneOperation,
)
from graphcomms.testing import make_notification, make_operation

GRAPH = "https://graph.test/v1.0/"
CALL_ID = "421f1100-f2f4-4b8f-9d8c-4e2b6d8b8f1c"
OP_ID = "0fe0623f-d628-42ed-b4bd-8ac290072cc5"
CALL_URL = f"{GRAPH}communications/calls/{CALL_ID}"
PROMPT = MediaPrompt.from_uri("https://cdn.test/hello.wav")


def upper_nohyphens(value: str) -> str:
    return value.replace("-", "").upper()


@pytest.fixture
def graph(mock_graph: aioresponses) -> aioresponses:
    return mock_graph


@pytest.fixture
async def client(graph: aioresponses) -> AsyncIterator[CommsClient]:
    async with CommsClient("secret-token", base_url=GRAPH, callback_uri="https://bot.test/cb") as c:
        yield c


def respond(
    graph: aioresponses,
    action: str,
    body: dict[str, Any] | None,
    *,
    status: int = 200,
    location: str | None = OP_ID,
    callback: Any = None,
) -> None:
    headers = {}
    if location is not None:
        headers["Location"] = f"{CALL_URL}/operations/{location}"
    graph.post(
        f"{CALL_URL}/{action}", status=status, payload=body, headers=headers, callback=callback
    )


def running(kind: str = "playPromptOperation", **extra: Any) -> dict[str, Any]:
    return {"@odata.type": f"#microsoft.graph.{kind}", "id": OP_ID, "status": "running", **extra}


def sent_body(graph: aioresponses, action: str) -> dict[str, Any]:
    (key,) = [k for k in graph.requests if str(k[1]).endswith(action)]
    kwargs = graph.requests[key][-1].kwargs
    return request_json(kwargs)


def request_json(kwargs: dict[str, Any]) -> dict[str, Any]:
    if kwargs.get("json") is not None:
        return kwargs["json"]  # type: ignore[no-any-return]
    return json.loads(kwargs["data"])  # type: ignore[no-any-return]


def sent_context(graph: aioresponses, action: str) -> str:
    return sent_body(graph, action)["clientContext"]  # type: ignore[no-any-return]


def completion(ctx: str | None, *, op_id: str = OP_ID, **fields: Any) -> dict[str, Any]:
    op = make_operation(
        PlayPromptOperation, status="completed", id=op_id, client_context=ctx, **fields
    )
    return make_notification(op, call_id=CALL_ID)


# -- the action's response --------------------------------------------------------


async def test_response_already_completed_resolves_at_once(
    client: CommsClient, graph: aioresponses
) -> None:
    body = {
        "@odata.type": "#microsoft.graph.subscribeToToneOperation",
        "id": OP_ID,
        "status": "completed",
        "resultInfo": {"code": 200, "subcode": 0},
    }
    respond(graph, "subscribeToTone", body)
    tracker = await client.call(CALL_ID).subscribe_to_tone()
    assert tracker.done()
    op = await tracker
    assert isinstance(op, SubscribeToToneOperation)
    assert client.stats.pending == 0
    assert holds_nothing(client)


async def test_response_already_failed_raises_with_the_operation(
    client: CommsClient, graph: aioresponses
) -> None:
    body = running(
        "subscribeToToneOperation",
        status="failed",
        resultInfo={"code": 500, "subcode": 9999, "message": "boom"},
    )
    respond(graph, "subscribeToTone", body)
    tracker = await client.call(CALL_ID).subscribe_to_tone()
    with pytest.raises(OperationFailedError) as info:
        await tracker
    assert info.value.operation.status is OperationStatus.FAILED
    assert info.value.result_info == ResultInfo(code=500, subcode=9999, message="boom")
    assert (await tracker.wait()).status is OperationStatus.FAILED


@pytest.mark.parametrize("status", ["notStarted", "running", "Running", None])
async def test_non_terminal_response_stays_pending_until_terminal_notification(
    client: CommsClient, graph: aioresponses, status: str | None
) -> None:
    body = running()
    if status is None:
        del body["status"]
    else:
        body["status"] = status
    respond(graph, "playPrompt", body)
    tracker = await client.call(CALL_ID).play_prompt([PROMPT])
    assert not tracker.done()
    assert client.stats.pending == 1
    client.feed(completion(sent_context(graph, "playPrompt")))
    op = await tracker
    assert isinstance(op, PlayPromptOperation)
    assert op.status is OperationStatus.COMPLETED
    assert holds_nothing(client)


async def test_response_without_id_takes_it_from_location(
    client: CommsClient, graph: aioresponses
) -> None:
    body = {"@odata.type": "#microsoft.graph.startTranscriptionOperation", "status": "running"}
    respond(graph, "startTranscription", body, status=202)
    tracker = await client.call(CALL_ID).start_transcription()
    assert tracker.operation_id == OP_ID.replace("-", "")
    # The completion names the operation only by URL: no id, no clientContext.
    op = make_operation(status="completed", id=None, client_context=None)
    op_notification = make_notification(op, call_id=CALL_ID, operation_id=upper_nohyphens(OP_ID))
    op_notification["value"][0]["resourceData"]["@odata.type"] = (
        "#microsoft.graph.startTranscriptionOperation"
    )
    client.feed(op_notification)
    assert (await tracker).status is OperationStatus.COMPLETED


async def test_response_without_id_or_location_tracks_by_client_context(
    client: CommsClient, graph: aioresponses
) -> None:
    body = {"status": "running"}
    respond(graph, "playPrompt", body, location=None)
    tracker = await client.call(CALL_ID).play_prompt([PROMPT], client_context="my-context")
    assert tracker.operation_id is None
    client.feed(completion("my-context"))
    assert (await tracker).client_context == "my-context"


# -- notifications ----------------------------------------------------------------


async def test_non_terminal_notification_updates_snapshot_and_updates_iterator(
    client: CommsClient, graph: aioresponses
) -> None:
    respond(graph, "playPrompt", running(status="notStarted"))
    tracker = await client.call(CALL_ID).play_prompt([PROMPT])
    ctx = tracker.client_context
    seen: list[OperationStatus | str | None] = []

    async def follow() -> None:
        async for snapshot in tracker.updates():
            seen.append(snapshot.status)

    follower = asyncio.create_task(follow())
    await settle()
    update = make_operation(status="running", id=OP_ID, client_context=ctx)
    client.feed(make_notification(update, call_id=CALL_ID))
    assert tracker.status is OperationStatus.RUNNING
    assert not tracker.done()
    client.feed(completion(ctx))
    await asyncio.wait_for(follower, 1)
    assert seen == [OperationStatus.RUNNING, OperationStatus.COMPLETED]


@pytest.mark.parametrize("status", ["completed", "Completed", "COMPLETED"])
async def test_terminal_status_in_any_casing_resolves(
    client: CommsClient, graph: aioresponses, status: str
) -> None:
    respond(graph, "playPrompt", running())
    tracker = await client.call(CALL_ID).play_prompt([PROMPT])
    note = completion(tracker.client_context)
    note["value"][0]["resourceData"]["status"] = status
    note["value"][0]["changeType"] = "updated"
    client.feed(note)
    assert (await tracker).status is OperationStatus.COMPLETED


# Graph's usual URL takes the ingestion's short path; the others its general route.
URL_SPELLINGS = [
    "/communications/calls/{call}/operations/{op}",
    "communications/calls/{call}/operations/{op}",
    "https://graph.microsoft.com/beta/communications/calls/{call}/operations/{op}",
]


@pytest.mark.parametrize("spelling", URL_SPELLINGS)
@pytest.mark.parametrize("change", ["deleted", "Deleted", "DELETED"])
async def test_deleted_operation_notification_resolves_whatever_its_status(
    client: CommsClient, graph: aioresponses, spelling: str, change: str
) -> None:
    respond(graph, "playPrompt", running())
    tracker = await client.call(CALL_ID).play_prompt([PROMPT])
    op = make_operation(status="running", id=OP_ID, client_context=tracker.client_context)
    note = make_notification(op, call_id=CALL_ID, change_type=change)
    note["value"][0]["resourceUrl"] = spelling.format(
        call=upper_nohyphens(CALL_ID), op=upper_nohyphens(OP_ID)
    )
    client.feed(note)
    assert tracker.done()
    # Deleted but never said completed: done, and not a success.
    with pytest.raises(OperationFailedError):
        await tracker


async def test_duplicates_and_later_notifications_after_terminal_are_ignored(
    client: CommsClient, graph: aioresponses
) -> None:
    respond(graph, "playPrompt", running())
    tracker = await client.call(CALL_ID).play_prompt([PROMPT])
    ctx = tracker.client_context
    client.feed(completion(ctx))
    final = tracker.operation
    client.feed(completion(ctx))
    failed = make_operation(status="failed", id=OP_ID, client_context=ctx)
    client.feed(make_notification(failed, call_id=CALL_ID))
    regress = make_operation(status="running", id=OP_ID, client_context=ctx)
    client.feed(make_notification(regress, call_id=CALL_ID))
    assert tracker.operation is final
    assert (await tracker).status is OperationStatus.COMPLETED
    assert client.stats.duplicates == 3
    assert client.stats.early_pending == 0
    assert holds_nothing(client)


async def test_notification_overtaking_the_response_by_client_context(
    client: CommsClient, graph: aioresponses
) -> None:
    def overtake(url: Any, **kwargs: Any) -> CallbackResult:
        client.feed(completion(request_json(kwargs)["clientContext"]))
        return CallbackResult(
            status=200, payload=running(), headers={"Location": f"{CALL_URL}/operations/{OP_ID}"}
        )

    respond(graph, "playPrompt", None, callback=overtake)
    tracker = await client.call(CALL_ID).play_prompt([PROMPT])
    # The late "running" response must not regress the terminal snapshot.
    assert tracker.done()
    assert (await tracker).status is OperationStatus.COMPLETED
    assert holds_nothing(client)


async def test_unknown_operation_is_buffered_and_applied_when_it_binds(
    client: CommsClient, graph: aioresponses
) -> None:
    def overtake(url: Any, **kwargs: Any) -> CallbackResult:
        # No clientContext in the notification: only the operation id can match it.
        client.feed(completion(None, op_id=upper_nohyphens(OP_ID)))
        return CallbackResult(
            status=200, payload=running(), headers={"Location": f"{CALL_URL}/operations/{OP_ID}"}
        )

    respond(graph, "playPrompt", None, callback=overtake)
    tracker = await client.call(CALL_ID).play_prompt([PROMPT])
    assert client.stats.early_buffered == 1
    assert tracker.done()
    assert client.stats.early_applied == 1
    assert client.stats.early_pending == 0


async def test_early_notification_for_no_tracker_expires_silently() -> None:
    async with CommsClient(
        "t",
        base_url=GRAPH,
        tracking=TrackingSettings(reconcile_after=0.01, reconcile_interval=0.01),
        limits=Limits(early_ttl=0.02),
    ) as client:
        client.feed(completion("nobody", op_id="ffffffff-0000-0000-0000-000000000000"))
        assert client.stats.early_pending == 1
        # Nothing else happens: the client's periodic pass lets it go.
        for _ in range(100):
            await asyncio.sleep(0.01)
            if not client.stats.early_pending:
                break
        assert client.stats.early_pending == 0
        assert client.stats.early_expired == 1
        assert holds_nothing(client)


async def test_early_buffer_is_bounded_in_count() -> None:
    async with CommsClient("t", base_url=GRAPH, limits=Limits(early_notifications=3)) as small:
        for n in range(10):
            small.feed(completion(f"ctx-{n}", op_id=f"{n:08d}-0000-0000-0000-000000000000"))
        assert small.stats.early_pending == 3
        assert small.stats.early_expired == 7


# -- the call ---------------------------------------------------------------------


@pytest.mark.parametrize("how", ["deleted", "terminated"])
async def test_call_end_fails_every_pending_tracker_with_its_result_info(
    client: CommsClient, graph: aioresponses, how: str
) -> None:
    respond(graph, "playPrompt", running())
    respond(
        graph,
        "recordResponse",
        running("recordOperation", id="11111111-2222-3333-4444-555555555555"),
        location="11111111-2222-3333-4444-555555555555",
    )
    call = client.call(CALL_ID)
    play = await call.play_prompt([PROMPT])
    record = await call.record_response(max_record_duration=10)
    ended = Call(
        state=CallState.TERMINATED,
        result_info=ResultInfo(code=200, subcode=4097, message="Caller hung up"),
    )
    change = "deleted" if how == "deleted" else "updated"
    client.feed(make_notification(ended, call_id=upper_nohyphens(CALL_ID), change_type=change))
    for tracker in (play, record):
        with pytest.raises(CallEndedError) as info:
            await tracker
        assert info.value.result_info == ResultInfo(
            code=200, subcode=4097, message="Caller hung up"
        )
        assert info.value.operation is not None
    assert call.ended
    assert client.stats.call_ended == 2
    assert holds_nothing(client)


# -- waiting ----------------------------------------------------------------------


async def test_local_timeout_raises_builtin_timeout_and_keeps_tracking(
    client: CommsClient, graph: aioresponses
) -> None:
    respond(graph, "playPrompt", running())
    tracker = await client.call(CALL_ID).play_prompt([PROMPT])
    with pytest.raises(TimeoutError):
        await tracker.wait(timeout=0.01)
    assert not tracker.done()
    assert client.stats.pending == 1
    client.feed(completion(tracker.client_context))
    assert (await tracker.wait(timeout=1)).status is OperationStatus.COMPLETED


async def test_cancelling_one_waiter_leaves_the_operation_and_other_waiters(
    client: CommsClient, graph: aioresponses
) -> None:
    respond(graph, "playPrompt", running())
    tracker = await client.call(CALL_ID).play_prompt([PROMPT])
    first = asyncio.create_task(tracker.wait())
    second = asyncio.ensure_future(tracker)
    await settle()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert not tracker.done()
    client.feed(completion(tracker.client_context))
    assert (await asyncio.wait_for(second, 1)).status is OperationStatus.COMPLETED


async def test_own_deadline_fails_then_late_result_is_recorded_and_reported(
    graph: aioresponses,
) -> None:
    late: list[Any] = []
    async with CommsClient(
        "t",
        base_url=GRAPH,
        tracking=TrackingSettings(operation_timeout=0.02),
        on_late_result=lambda t, op: late.append(op),
    ) as client:
        respond(graph, "playPrompt", running())
        tracker = await client.call(CALL_ID).play_prompt([PROMPT])
        with pytest.raises(OperationTimeoutError):
            await tracker
        assert isinstance(OperationTimeoutError("x", operation=None), TimeoutError)
        client.feed(completion(tracker.client_context))
        await settle()
        assert tracker.late_operation is not None
        assert tracker.late_operation.status is OperationStatus.COMPLETED
        assert [op.status for op in late] == [OperationStatus.COMPLETED]
        assert client.stats.late_results == 1
        assert client.stats.timed_out == 1


# -- cancelling -------------------------------------------------------------------


def respond_record_and_cancel(graph: aioresponses) -> None:
    """recordResponse answers running; cancelMediaProcessing answers completed."""
    respond(graph, "recordResponse", running("recordOperation"))
    respond(
        graph,
        "cancelMediaProcessing",
        running(
            "cancelMediaProcessingOperation",
            id="99999999-0000-0000-0000-000000000000",
            status="completed",
        ),
        location=None,
    )


async def test_cancel_sends_cancel_media_processing_and_resolves_from_notification(
    client: CommsClient, graph: aioresponses
) -> None:
    respond_record_and_cancel(graph)
    tracker = await client.call(CALL_ID).record_response()
    assert await tracker.cancel() is True
    assert any(str(k[1]).endswith("cancelMediaProcessing") for k in graph.requests)
    assert not tracker.done()
    cancelled = make_operation(
        RecordOperation,
        status="failed",
        id=OP_ID,
        client_context=tracker.client_context,
        result_info=ResultInfo(code=400, subcode=8508, message="cancelled"),
        completion_reason=CompletionReason.OPERATION_CANCELED,
    )
    client.feed(make_notification(cancelled, call_id=CALL_ID))
    op = await tracker.wait()
    assert op.completion_reason is CompletionReason.OPERATION_CANCELED
    assert await tracker.cancel() is False


async def test_async_with_cancels_server_side_when_block_exits_early(
    client: CommsClient, graph: aioresponses
) -> None:
    respond_record_and_cancel(graph)
    with pytest.raises(RuntimeError, match="caller walked away"):
        async with client.call(CALL_ID).record_response(max_record_duration=10) as rec:
            assert not rec.done()
            raise RuntimeError("caller walked away")
    assert any(str(k[1]).endswith("cancelMediaProcessing") for k in graph.requests)


async def test_async_with_does_not_cancel_a_finished_operation(
    client: CommsClient, graph: aioresponses
) -> None:
    respond(graph, "playPrompt", running())
    async with client.call(CALL_ID).play_prompt([PROMPT]) as op:
        client.feed(completion(op.client_context))
        await op
    assert not any(str(k[1]).endswith("cancelMediaProcessing") for k in graph.requests)


async def test_non_media_operation_cannot_be_cancelled(
    client: CommsClient, graph: aioresponses
) -> None:
    respond(graph, "participants/invite", running("inviteParticipantsOperation"))
    from graphcomms import IdentitySet, InvitationParticipantInfo

    tracker = await client.call(CALL_ID).invite(
        [InvitationParticipantInfo(identity=IdentitySet.for_user("u1"))]
    )
    with pytest.raises(InvalidRequestError):
        await tracker.cancel()


# -- closing ----------------------------------------------------------------------


async def test_close_fails_pending_trackers_and_leaks_no_task(graph: aioresponses) -> None:
    client = CommsClient("t", base_url=GRAPH)
    respond(graph, "playPrompt", running())
    tracker = await client.call(CALL_ID).play_prompt([PROMPT])
    waiter = asyncio.ensure_future(tracker.wait())
    await settle()
    before = asyncio.all_tasks()
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await waiter
    with pytest.raises(ClientClosedError):
        await tracker
    await client.aclose()  # idempotent
    assert client.stats.closed == 1
    assert holds_nothing(client)
    assert asyncio.all_tasks() <= before
    with pytest.raises(ClientClosedError):
        await client.call(CALL_ID).play_prompt([PROMPT])


# -- done is not success ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "succeeded"),
    [
        ({}, True),
        ({"result_info": ResultInfo(code=500, subcode=7000)}, False),
        ({"completion_reason": CompletionReason.MEDIA_OPERATION_CANCELED}, False),
        ({"completion_reason": CompletionReason.UNKNOWN}, False),
        ({"completion_reason": CompletionReason.COMPLETED_SUCCESSFULLY}, True),
    ],
)
async def test_completed_is_not_success_without_2xx_and_a_good_reason(
    client: CommsClient, graph: aioresponses, fields: dict[str, Any], succeeded: bool
) -> None:
    respond(graph, "sendDtmfTones", running("sendDtmfTonesOperation"))
    tracker = await client.call(CALL_ID).send_dtmf_tones("12#")
    assert sent_tones(graph) == ["tone1", "tone2", "pound"]
    op = make_operation(
        SendDtmfTonesOperation,
        status="completed",
        id=OP_ID,
        client_context=tracker.client_context,
        **fields,
    )
    client.feed(make_notification(op, call_id=CALL_ID))
    assert (await tracker.wait()).status is OperationStatus.COMPLETED
    assert tracker.succeeded() is succeeded
    if succeeded:
        await tracker
    else:
        with pytest.raises(OperationFailedError):
            await tracker


def sent_tones(graph: aioresponses) -> list[str]:
    return sent_body(graph, "sendDtmfTones")["tones"]  # type: ignore[no-any-return]


# -- callbacks --------------------------------------------------------------------


async def test_done_callbacks_sync_and_async_and_a_raising_one_is_isolated(
    client: CommsClient, graph: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    respond(graph, "playPrompt", running())
    tracker = await client.call(CALL_ID).play_prompt([PROMPT])
    calls: list[str] = []

    def broken(t: Any) -> None:
        raise ValueError("user bug")

    async def async_cb(t: Any) -> None:
        await asyncio.sleep(0)
        calls.append("async")

    tracker.add_done_callback(broken)
    tracker.add_done_callback(lambda t: calls.append("sync"))
    tracker.add_done_callback(async_cb)
    with caplog.at_level(logging.ERROR, logger="graphcomms"):
        assert client.feed(completion(tracker.client_context)) == 1  # feed never raises for it
        await settle()
    assert sorted(calls) == ["async", "sync"]
    assert "user bug" in caplog.text
    assert client.stats.callback_errors == 1
    # A callback added after the end still runs, once.
    tracker.add_done_callback(lambda t: calls.append("late"))
    await settle()
    assert calls.count("late") == 1


# -- input ------------------------------------------------------------------------


async def test_client_context_over_256_is_refused_before_sending(
    client: CommsClient, graph: aioresponses
) -> None:
    with pytest.raises(InvalidRequestError, match="256"):
        await client.call(CALL_ID).play_prompt([PROMPT], client_context="x" * 257)
    assert graph.requests == {}


async def test_client_context_in_use_by_a_pending_operation_is_refused(
    client: CommsClient, graph: aioresponses
) -> None:
    respond(graph, "playPrompt", running())
    await client.call(CALL_ID).play_prompt([PROMPT], client_context="same")
    with pytest.raises(InvalidRequestError, match="unique"):
        await client.call(CALL_ID).play_prompt([PROMPT], client_context="same")


async def test_a_failed_post_leaves_nothing_registered(
    client: CommsClient, graph: aioresponses
) -> None:
    graph.post(
        f"{CALL_URL}/playPrompt",
        status=404,
        payload={"error": {"code": "NotFound", "message": "no call"}},
    )
    from graphcomms.errors import NotFoundError

    with pytest.raises(NotFoundError):
        await client.call(CALL_ID).play_prompt([PROMPT])
    assert holds_nothing(client)
    assert client.stats.pending == 0


async def test_envelope_with_a_bad_item_applies_the_good_ones(
    client: CommsClient, graph: aioresponses
) -> None:
    respond(graph, "playPrompt", running())
    tracker = await client.call(CALL_ID).play_prompt([PROMPT])
    good = completion(tracker.client_context)["value"][0]
    bad = {
        "changeType": "deleted",
        "resourceUrl": f"/communications/calls/{CALL_ID}/operations/x",
        "resourceData": {"status": {"not": "a status"}, "resultInfo": "nonsense"},
    }
    assert client.feed({"value": [bad, "not even an object", good]}) == 3
    assert tracker.done()
    assert client.stats.bad_items == 2


@pytest.mark.parametrize("spelling", URL_SPELLINGS)
async def test_unreadable_snapshot_of_a_pending_operation_is_a_bad_item(
    client: CommsClient, graph: aioresponses, spelling: str, caplog: pytest.LogCaptureFixture
) -> None:
    respond(graph, "playPrompt", running())
    tracker = await client.call(CALL_ID).play_prompt([PROMPT])
    bad = {
        "changeType": "deleted",
        "resourceUrl": spelling.format(call=CALL_ID, op=OP_ID),
        "resourceData": {"status": {"not": "a status"}},
    }
    with caplog.at_level(logging.WARNING, "graphcomms.ingest"):
        assert client.feed({"value": [bad]}) == 1
    assert not tracker.done()
    assert client.stats.bad_items == 1
    # The log says where, in wire names, and never quotes the payload.
    assert "status" in caplog.text
    assert "a status" not in caplog.text
    client.feed(completion(tracker.client_context))
    assert (await tracker).status is OperationStatus.COMPLETED


# -- the registry on its own ---------------------------------------------------------


@pytest.fixture
async def runner() -> AsyncIterator[CallbackRunner]:
    callbacks = CallbackRunner()
    yield callbacks
    await callbacks.aclose()


def registry_of(
    runner: CallbackRunner, now: list[float] | None = None, **options: Any
) -> OperationRegistry:
    if now is not None:
        options["clock"] = lambda: now[0]
    return OperationRegistry(stats=ClientStats(), runner=runner, **options)


def expect(
    registry: OperationRegistry, runner: CallbackRunner, ctx: str
) -> OperationTracker[PlayPromptOperation]:
    """A pending playPrompt tracker on call ``c``, registered as before its POST."""
    tracker: OperationTracker[PlayPromptOperation] = OperationTracker(
        call_id="c", client_context=ctx, snapshot=PlayPromptOperation(), runner=runner
    )
    registry.expect(tracker)
    return tracker


def finish(
    registry: OperationRegistry, runner: CallbackRunner, ctx: str, op_id: str
) -> OperationTracker[PlayPromptOperation]:
    """A tracker whose action's response was already terminal."""
    tracker = expect(registry, runner, ctx)
    registry.bind(tracker, op_id, PlayPromptOperation(id=op_id, status="completed"))
    return tracker


def snapshot(**fields: Any) -> dict[str, Any]:
    """An operation as a notification's resourceData carries it."""
    return unstructure(PlayPromptOperation(**fields))


async def test_finished_work_memory_expires_without_a_sweeper(runner: CallbackRunner) -> None:
    now = [0.0]
    registry = registry_of(runner, now, late_grace=10.0)
    finish(registry, runner, "first", "op1")
    assert registry.remembers(operation_id="op1")
    assert registry.remembers(client_context="first")
    now[0] = 11.0  # past the grace window: the next resolution lets it go
    finish(registry, runner, "second", "op2")
    assert not registry.remembers(operation_id="op1")
    assert not registry.remembers(client_context="first")
    assert registry.remembers(operation_id="op2")
    assert registry.finished_remembered == 1
    assert registry.holds_nothing


async def test_unclaimed_early_notification_expires_when_other_work_resolves(
    runner: CallbackRunner,
) -> None:
    now = [0.0]
    registry = registry_of(runner, now, limits=Limits(early_ttl=5.0))
    registry.apply("c", "nobody", snapshot(status="completed"), deleted=True)
    assert registry.stats.early_pending == 1
    now[0] = 6.0  # no other early notification arrives; a resolution lets it go
    finish(registry, runner, "ctx", "op")
    assert registry.stats.early_pending == 0
    assert registry.stats.early_expired == 1
    assert registry.holds_nothing


async def test_a_finished_operations_context_can_be_reused_and_its_memory_spares_the_new_one(
    runner: CallbackRunner,
) -> None:
    now = [0.0]
    registry = registry_of(runner, now, late_grace=10.0)
    first = finish(registry, runner, "same", "op1")
    assert first.done()
    # Pending work may not share a context; finished work does not block it.
    second = expect(registry, runner, "same")
    with pytest.raises(InvalidRequestError, match="already in use"):
        expect(registry, runner, "same")
    registry.bind(second, "op2", PlayPromptOperation(id="op2", status="running"))
    # The first one's memory expires; the second, pending under the same context,
    # is still found by it.
    now[0] = 11.0
    registry.sweep()
    assert not registry.remembers(operation_id="op1")
    registry.apply("c", None, snapshot(client_context="same", status="completed"), deleted=False)
    assert second.done()
    assert second.status == OperationStatus.COMPLETED
    # A late duplicate of either is counted, not buffered as early.
    registry.apply("c", "op2", snapshot(status="completed"), deleted=True)
    assert registry.stats.duplicates == 1
    assert registry.stats.early_pending == 0


async def test_a_late_duplicate_of_finished_work_never_resolves_its_contexts_new_owner(
    runner: CallbackRunner,
) -> None:
    """A context reused after its first operation finished, then Graph redelivers the
    first operation's (failed) outcome: an id that names finished work is a duplicate,
    whatever the context says."""
    registry = registry_of(runner)
    finish(registry, runner, "main-menu", "op1")
    second = expect(registry, runner, "main-menu")
    registry.bind(second, "op2", PlayPromptOperation(id="op2", status="running"))
    registry.apply(
        "c", "op1", snapshot(id="op1", client_context="main-menu", status="failed"), deleted=True
    )
    assert not second.done()
    assert registry.stats.duplicates == 1
    # ... also when only the body names the old id.
    registry.apply(
        "c", None, snapshot(id="op1", client_context="main-menu", status="failed"), deleted=True
    )
    assert not second.done()
    assert registry.stats.duplicates == 2
    registry.apply("c", "op2", snapshot(status="completed"), deleted=True)
    assert second.succeeded()


async def test_a_context_match_naming_another_operation_is_not_taken(
    runner: CallbackRunner,
) -> None:
    """The context of a pending operation whose id is known, on an item naming another
    (unknown) id, is another operation's: it waits as early, it resolves nothing."""
    registry = registry_of(runner)
    pending = expect(registry, runner, "ctx")
    registry.bind(pending, "op2", PlayPromptOperation(id="op2", status="running"))
    registry.apply("c", "op9", snapshot(client_context="ctx", status="completed"), deleted=True)
    assert not pending.done()
    assert registry.stats.early_pending == 1


async def test_a_discarded_tracker_leaves_no_memory(runner: CallbackRunner) -> None:
    registry = registry_of(runner)
    tracker = expect(registry, runner, "ctx")
    registry.discard(tracker)
    assert registry.stats.pending == 0
    assert not registry.remembers(client_context="ctx")
    assert registry.holds_nothing
    # Its context never reached Graph as far as we know: a notification naming it is
    # early, not a duplicate.
    registry.apply("c", None, snapshot(client_context="ctx", status="running"), deleted=False)
    assert registry.stats.early_pending == 1


async def test_a_long_calls_finished_trackers_do_not_pile_up(runner: CallbackRunner) -> None:
    """Many operations on one call, one after another: the per-call list stays small
    and the call's end fails only what is still pending."""
    registry = registry_of(runner)
    pending = []
    for n in range(1000):
        if n % 100 == 0:
            # One in a hundred is still running at the end.
            pending.append(expect(registry, runner, f"ctx-{n}"))
        else:
            finish(registry, runner, f"ctx-{n}", f"op-{n}")
        assert registry.stats.pending == len(pending)
        assert registry.records_of_call("c") <= 2 * len(pending) + 17
    assert registry.fail_call("c", None) == len(pending) == 10
    for tracker in pending:
        with pytest.raises(CallEndedError):
            tracker.result()
    assert registry.stats.call_ended == 10
    assert registry.records_of_call("c") == 0
    assert registry.holds_nothing


async def test_finished_work_memory_is_bounded_by_count_oldest_first(
    runner: CallbackRunner,
) -> None:
    registry = registry_of(runner, limits=Limits(finished_operations=3), late_grace=1e9)
    for n in range(5):
        finish(registry, runner, f"ctx-{n}", f"op-{n}")
    # The two oldest are forgotten by both keys; the three newest are remembered.
    assert registry.finished_remembered == 3
    remembered = [False, False, True, True, True]
    assert [registry.remembers(operation_id=f"op-{n}") for n in range(5)] == remembered
    assert [registry.remembers(client_context=f"ctx-{n}") for n in range(5)] == remembered
    registry.apply("c", "op-4", snapshot(status="completed"), deleted=True)
    assert registry.stats.duplicates == 1
    registry.apply("c", "op-0", snapshot(status="completed"), deleted=True)
    assert registry.stats.early_pending == 1  # forgotten: it looks early now


async def test_one_unknown_operation_holds_a_bounded_number_of_snapshots(
    runner: CallbackRunner,
) -> None:
    registry = registry_of(runner, limits=Limits(early_snapshots_per_operation=4))
    for _ in range(5000):
        registry.apply("c", "nobody", snapshot(status="running"), deleted=False)
    assert registry.stats.early_pending == 1
    assert registry.stats.early_dropped == 5000 - 4
    tracker = expect(registry, runner, "ctx")
    registry.bind(tracker, "nobody", PlayPromptOperation(id="nobody", status="running"))
    assert registry.stats.early_applied == 1
    assert not tracker.done()


async def test_an_oversized_client_context_in_a_notification_is_ignored(
    runner: CallbackRunner,
) -> None:
    """Graph's limit is 256 characters: a longer one was never ours, and is not kept."""
    registry = registry_of(runner)
    huge = "x" * (512 * 1024)
    registry.apply("c", None, snapshot(client_context=huge, status="running"), deleted=False)
    assert registry.stats.oversized_contexts == 1
    assert registry.stats.early_pending == 0
    assert registry.stats.unmatched == 1
