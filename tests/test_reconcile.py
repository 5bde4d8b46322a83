"""Lost notifications are recovered by reading the operation (or the call) back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aioresponses import aioresponses

from graphcomms import (
    CallEndedError,
    CommsClient,
    MediaPrompt,
    OperationStatus,
    TrackingSettings,
)

GRAPH = "https://graph.test/v1.0/"
CALL_ID = "421f1100-f2f4-4b8f-9d8c-4e2b6d8b8f1c"
OP_ID = "0fe0623f-d628-42ed-b4bd-8ac290072cc5"
CALL_URL = f"{GRAPH}communications/calls/{CALL_ID}"
OP_URL = f"{CALL_URL}/operations/{OP_ID}"
PROMPT = MediaPrompt.from_uri("https://cdn.test/hello.wav")


def running(**extra: Any) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.playPromptOperation",
        "id": OP_ID,
        "status": "running",
        **extra,
    }


@pytest.fixture
async def client(mock_graph: aioresponses) -> AsyncIterator[CommsClient]:
    # reconcile_after=0: every pending tracker counts as silent; the test drives passes.
    async with CommsClient(
        "t", base_url=GRAPH, tracking=TrackingSettings(reconcile_after=0.0, reconcile_interval=3600)
    ) as c:
        yield c


def gets(mock: aioresponses, url: str) -> int:
    return sum(len(v) for k, v in mock.requests.items() if k[0] == "GET" and str(k[1]) == url)


async def start_prompt(client: CommsClient, mock: aioresponses, body: dict[str, Any]) -> Any:
    mock.post(f"{CALL_URL}/playPrompt", payload=body, headers={"Location": OP_URL})
    return await client.call(CALL_ID).play_prompt([PROMPT])


async def test_a_lost_completion_is_recovered_by_reading_the_operation(
    client: CommsClient, mock_graph: aioresponses
) -> None:
    tracker = await start_prompt(client, mock_graph, running())
    mock_graph.get(
        OP_URL, payload=running(status="completed", resultInfo={"code": 200, "subcode": 0})
    )
    assert await client.reconcile() == 1
    assert (await tracker).status is OperationStatus.COMPLETED
    assert client.stats.reconciled == 1
    assert (client.stats.pending, client.stats.early_pending) == (0, 0)


async def test_a_still_running_operation_stays_pending(
    client: CommsClient, mock_graph: aioresponses
) -> None:
    tracker = await start_prompt(client, mock_graph, running())
    mock_graph.get(OP_URL, payload=running())
    await client.reconcile()
    assert not tracker.done()
    assert client.stats.reconciled == 0


async def test_operation_gone_and_call_gone_fails_with_call_ended(
    client: CommsClient, mock_graph: aioresponses
) -> None:
    tracker = await start_prompt(client, mock_graph, running())
    mock_graph.get(OP_URL, status=404, payload={"error": {"code": "NotFound", "message": "x"}})
    mock_graph.get(CALL_URL, status=404, payload={"error": {"code": "NotFound", "message": "x"}})
    await client.reconcile()
    with pytest.raises(CallEndedError):
        await tracker
    assert client.call(CALL_ID).ended


async def test_unreadable_operation_on_a_live_call_stays_pending(
    client: CommsClient, mock_graph: aioresponses
) -> None:
    tracker = await start_prompt(client, mock_graph, running())
    mock_graph.get(OP_URL, status=405, payload={"error": {"code": "MethodNotAllowed"}})
    mock_graph.get(
        CALL_URL,
        payload={"@odata.type": "#microsoft.graph.call", "id": CALL_ID, "state": "established"},
    )
    await client.reconcile()
    assert not tracker.done()
    assert gets(mock_graph, CALL_URL) == 1


OTHER_CALL_ID = "5a6b7c8d-1111-2222-3333-444455556666"
OTHER_OP_ID = "9e8d7c6b-5a4f-4e3d-9c2b-1a0f9e8d7c6b"
OTHER_CALL_URL = f"{GRAPH}communications/calls/{OTHER_CALL_ID}"
OTHER_OP_URL = f"{OTHER_CALL_URL}/operations/{OTHER_OP_ID}"
NOT_FOUND = {"error": {"code": "NotFound", "message": "x"}}
ESTABLISHED = {"@odata.type": "#microsoft.graph.call", "state": "established"}


async def start_other_prompt(client: CommsClient, mock: aioresponses) -> Any:
    mock.post(
        f"{OTHER_CALL_URL}/playPrompt",
        payload={**running(), "id": OTHER_OP_ID},
        headers={"Location": OTHER_OP_URL},
    )
    return await client.call(OTHER_CALL_ID).play_prompt([PROMPT])


async def test_a_type_graph_will_not_read_back_on_a_live_call_is_not_asked_again(
    client: CommsClient, mock_graph: aioresponses
) -> None:
    """Graph documents the read-back for addLargeGalleryView only: after a 404 on a live
    call, other operations of that type are not asked about (their call is read)."""
    await start_prompt(client, mock_graph, running())
    mock_graph.get(OP_URL, status=404, payload=NOT_FOUND)
    mock_graph.get(CALL_URL, payload={**ESTABLISHED, "id": CALL_ID})
    await client.reconcile()
    other = await start_other_prompt(client, mock_graph)
    mock_graph.get(OTHER_CALL_URL, payload={**ESTABLISHED, "id": OTHER_CALL_ID})
    await client.reconcile()
    assert gets(mock_graph, OTHER_OP_URL) == 0
    assert gets(mock_graph, OTHER_CALL_URL) == 1
    assert not other.done()


async def test_a_404_on_an_ended_calls_operation_says_nothing_about_its_type(
    client: CommsClient, mock_graph: aioresponses
) -> None:
    """The operation of a call that is gone is gone too: that 404 must not stop the
    read-back of the same type on other calls (a dropped result would then hang)."""
    first = await start_prompt(client, mock_graph, running())
    mock_graph.get(OP_URL, status=404, payload=NOT_FOUND)
    mock_graph.get(CALL_URL, status=404, payload=NOT_FOUND)
    await client.reconcile()
    with pytest.raises(CallEndedError):
        await first
    other = await start_other_prompt(client, mock_graph)
    mock_graph.get(
        OTHER_OP_URL,
        payload={
            **running(),
            "id": OTHER_OP_ID,
            "status": "completed",
            "resultInfo": {"code": 200, "subcode": 0},
        },
    )
    await client.reconcile()
    assert gets(mock_graph, OTHER_OP_URL) == 1
    assert (await other).status is OperationStatus.COMPLETED


async def test_terminated_call_found_by_reading_it_fails_trackers(
    client: CommsClient, mock_graph: aioresponses
) -> None:
    body = running()
    del body["id"]
    mock_graph.post(f"{CALL_URL}/playPrompt", payload=body)  # no id, no Location
    tracker = await client.call(CALL_ID).play_prompt([PROMPT])
    mock_graph.get(
        CALL_URL,
        payload={
            "id": CALL_ID,
            "state": "terminated",
            "resultInfo": {"code": 200, "subcode": 5001},
        },
    )
    await client.reconcile()
    with pytest.raises(CallEndedError) as info:
        await tracker
    assert info.value.result_info is not None
    assert info.value.result_info.subcode == 5001


async def test_each_call_is_reconciled_at_most_once_per_interval(
    client: CommsClient, mock_graph: aioresponses
) -> None:
    await start_prompt(client, mock_graph, running())
    mock_graph.get(OP_URL, payload=running(), repeat=True)
    assert await client.reconcile() == 1
    assert await client.reconcile() == 0
    assert gets(mock_graph, OP_URL) == 1


async def test_reconciling_can_be_switched_off(mock_graph: aioresponses) -> None:
    async with CommsClient(
        "t", base_url=GRAPH, tracking=TrackingSettings(reconcile_after=None)
    ) as client:
        await start_prompt(client, mock_graph, running())
        mock_graph.get(OP_URL, payload=running(status="completed"), repeat=True)
        assert await client.reconcile() == 0
        await asyncio.sleep(0.05)
        assert gets(mock_graph, OP_URL) == 0


async def test_the_client_reconciles_on_its_own(mock_graph: aioresponses) -> None:
    async with CommsClient(
        "t",
        base_url=GRAPH,
        tracking=TrackingSettings(reconcile_after=0.01, reconcile_interval=0.01),
    ) as client:
        tracker = await start_prompt(client, mock_graph, running())
        mock_graph.get(OP_URL, payload=running(status="completed"))
        assert (await tracker.wait(timeout=5)).status is OperationStatus.COMPLETED
        await asyncio.sleep(0)


async def test_a_lost_state_notification_is_recovered_for_a_waiter(
    mock_graph: aioresponses,
) -> None:
    async with CommsClient(
        "t",
        base_url=GRAPH,
        tracking=TrackingSettings(reconcile_after=0.01, reconcile_interval=0.01),
    ) as client:
        call = client.call(CALL_ID)
        # Graph says the call is established, but the notification never came.
        mock_graph.get(CALL_URL, payload={"id": CALL_ID, "state": "established"})
        snapshot = await call.wait_for_state("established", timeout=5)
        assert snapshot.state == "established"
        # Nobody waits any more: the call is not read again.
        read = gets(mock_graph, CALL_URL)
        await asyncio.sleep(0.05)
        assert gets(mock_graph, CALL_URL) == read


async def test_a_lost_end_of_call_is_recovered_for_a_waiter(mock_graph: aioresponses) -> None:
    async with CommsClient(
        "t",
        base_url=GRAPH,
        tracking=TrackingSettings(reconcile_after=0.01, reconcile_interval=0.01),
    ) as client:
        call = client.call(CALL_ID)
        mock_graph.get(CALL_URL, status=404, payload={"error": {"code": "NotFound"}})
        with pytest.raises(CallEndedError):
            await call.wait_for_state("established", timeout=5)
        assert call.ended


async def test_a_call_nobody_waits_on_is_not_read(
    client: CommsClient, mock_graph: aioresponses
) -> None:
    client.call(CALL_ID)
    assert await client.reconcile() == 0
    assert gets(mock_graph, CALL_URL) == 0


async def test_a_hung_up_call_whose_end_was_lost_is_released(mock_graph: aioresponses) -> None:
    async with CommsClient(
        "t", base_url=GRAPH, tracking=TrackingSettings(reconcile_after=0.0, reconcile_interval=3600)
    ) as client:
        call = client.call(CALL_ID)
        mock_graph.delete(CALL_URL, status=204)
        await call.hang_up()
        assert not call.ended  # the notifications decide, and they never come
        mock_graph.get(CALL_URL, status=404, payload={"error": {"code": "NotFound"}})
        assert await client.reconcile() == 1
        assert call.ended
        assert client.call(CALL_ID) is call  # still the same, ended handle
        assert await client.reconcile() == 0  # an ended call is not read again
        assert gets(mock_graph, CALL_URL) == 1
