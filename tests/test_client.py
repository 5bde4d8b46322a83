"""CommsClient: lifecycle (open, close, borrowed session, no leftover tasks), the
notification source it consumes, create_call, download_recording, the GETs, its
counters, and that the bearer token never shows (DESIGN §1, §2; reference §2, §9)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from async_support import collect, settle
from yarl import URL

from graphcomms import (
    CallHandle,
    ClientClosedError,
    CommsClient,
    DeserializationError,
    GraphCommsError,
    IdentitySet,
    InvalidRequestError,
    InvitationParticipantInfo,
    MediaPrompt,
    OperationStatus,
    PlayPromptOperation,
    RecordOperation,
    ResultInfo,
    TokenAcquisitionError,
)
from graphcomms.errors import ForbiddenError, NotFoundError, UnauthorizedError
from graphcomms.models import (
    AddLargeGalleryViewOperation,
    Call,
    CallState,
    ChatInfo,
    OrganizerMeetingInfo,
    OutgoingCallOptions,
    Participant,
    ParticipantInfo,
)
from graphcomms.testing import FakeNotificationSource, make_notification, make_operation
from graphcomms.typing import NotificationPayload

TOKEN = "secret-token"
GRAPH = "https://graph.test/v1.0/"
CALLBACK = "https://bot.test/cb"
CALL_ID = "421f1100-f2f4-4b8f-9d8c-4e2b6d8b8f1c"
NEW_CALL_ID = "5a1f0000-aaaa-4bbb-8ccc-0123456789ab"
OP_ID = "0fe0623f-d628-42ed-b4bd-8ac290072cc5"
PID = "550fae72-d251-43ec-868c-373732c2704f"
USER_ID = "8a34ce2e-9f41-4d5b-b0c6-1a2b3c4d5e6f"
TENANT_ID = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CALLS_URL = f"{GRAPH}communications/calls"
CALL_URL = f"{CALLS_URL}/{CALL_ID}"
RECORDING_URL = "https://file.test/recordings/r-1?sig=signed-part"
PROMPT = MediaPrompt.from_uri("https://cdn.test/hello.wav")

TARGET = InvitationParticipantInfo(identity=IdentitySet.for_user(USER_ID, display_name="Bob"))
TARGET_JSON = {
    "@odata.type": "#microsoft.graph.invitationParticipantInfo",
    "identity": {
        "@odata.type": "#microsoft.graph.identitySet",
        "user": {"@odata.type": "#microsoft.graph.identity", "id": USER_ID, "displayName": "Bob"},
    },
}
SERVICE_HOSTED_JSON = {"@odata.type": "#microsoft.graph.serviceHostedMediaConfig"}


# -- helpers ----------------------------------------------------------------------


@pytest.fixture
def graph(mock_graph: aioresponses) -> aioresponses:
    return mock_graph


@pytest.fixture
async def client(graph: aioresponses) -> AsyncIterator[CommsClient]:
    async with CommsClient(TOKEN, base_url=GRAPH, callback_uri=CALLBACK) as c:
        yield c


def sent(graph: aioresponses, method: str, url: str) -> list[dict[str, Any]]:
    """The aiohttp keyword arguments of every request sent to ``url``."""
    return [call.kwargs for call in graph.requests.get((method, URL(url)), [])]


def json_body(kwargs: dict[str, Any]) -> Any:
    data = kwargs.get("data")
    return None if data is None else json.loads(data)


def accept_play_prompt(graph: aioresponses) -> None:
    graph.post(
        f"{CALL_URL}/playPrompt",
        payload={
            "@odata.type": "#microsoft.graph.playPromptOperation",
            "id": OP_ID,
            "status": "running",
        },
        headers={"Location": f"{CALL_URL}/operations/{OP_ID}"},
    )


def completion(client_context: str) -> dict[str, Any]:
    op = make_operation(
        PlayPromptOperation, status="completed", id=OP_ID, client_context=client_context
    )
    return make_notification(op, call_id=CALL_ID)


def established() -> dict[str, Any]:
    return make_notification(Call(state=CallState.ESTABLISHED), call_id=CALL_ID)


def item(resource_url: str, change: str = "updated", data: Any = None) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.commsNotification",
        "changeType": change,
        "resourceUrl": resource_url,
    }
    if data is not None:
        raw["resourceData"] = data
    return raw


def envelope(*items: Any) -> dict[str, Any]:
    return {"@odata.type": "#microsoft.graph.commsNotifications", "value": list(items)}


def incoming_call(call_id: str) -> dict[str, Any]:
    return envelope(
        item(
            f"/communications/calls/{call_id}",
            "created",
            {"@odata.type": "#microsoft.graph.call", "state": "incoming", "direction": "incoming"},
        )
    )


def participant_json(pid: str, *, muted: bool) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.participant",
        "id": pid,
        "info": {"identity": {"user": {"displayName": "Bob", "id": USER_ID}}},
        "isMuted": muted,
        "isInLobby": False,
    }


def recording(**fields: Any) -> RecordOperation:
    return make_operation(RecordOperation, status="completed", id=OP_ID, **fields)


def shows_token(exc: BaseException) -> bool:
    return TOKEN in str(exc) or TOKEN in repr(exc) or any(TOKEN in str(a) for a in exc.args)


# -- lifecycle --------------------------------------------------------------------


async def test_async_with_starts_consuming_notifications_and_closes_on_exit(
    graph: aioresponses,
) -> None:
    source = FakeNotificationSource()
    async with CommsClient(TOKEN, base_url=GRAPH, notifications=source) as client:
        assert not client.closed
        call = client.call(CALL_ID)
        source.push(established())
        await source.join()
        assert call.state is CallState.ESTABLISHED
    assert client.closed


async def test_aclose_is_idempotent(graph: aioresponses) -> None:
    client = CommsClient(TOKEN, base_url=GRAPH)
    client.start()
    await client.aclose()
    await client.aclose()
    assert client.closed


async def test_aclose_of_a_client_never_started_is_fine(graph: aioresponses) -> None:
    client = CommsClient(TOKEN, base_url=GRAPH, notifications=FakeNotificationSource())
    await client.aclose()
    assert client.closed


async def test_closed_client_cannot_be_reopened(graph: aioresponses) -> None:
    client = CommsClient(TOKEN, base_url=GRAPH)
    await client.aclose()
    with pytest.raises(ClientClosedError):
        client.start()
    with pytest.raises(ClientClosedError):
        async with client:
            pass


AFTER_CLOSE: list[Any] = [
    pytest.param(lambda c: c.call(CALL_ID).play_prompt([PROMPT]), id="play_prompt"),
    pytest.param(lambda c: c.call(CALL_ID).participant(PID).mute(), id="participant-mute"),
    pytest.param(lambda c: c.call(CALL_ID).answer(), id="answer"),
    pytest.param(lambda c: c.call(CALL_ID).keep_alive(), id="keep_alive"),
    pytest.param(lambda c: c.call(CALL_ID).hang_up(), id="hang_up"),
    pytest.param(lambda c: c.call(CALL_ID).participant(PID).remove(), id="participant-remove"),
    pytest.param(lambda c: c.call(CALL_ID).refresh(), id="refresh"),
    pytest.param(lambda c: c.call(CALL_ID).list_participants(), id="list_participants"),
    pytest.param(lambda c: c.call(CALL_ID).get_operation(OP_ID), id="get_operation"),
    pytest.param(lambda c: c.create_call(targets=[TARGET]), id="create_call"),
    pytest.param(
        lambda c: c.download_recording(
            recording(recording_location=RECORDING_URL, recording_access_token="rec-token")
        ),
        id="download_recording",
    ),
]


@pytest.mark.parametrize("act", AFTER_CLOSE)
async def test_requests_after_close_raise_client_closed_and_send_nothing(
    graph: aioresponses, act: Callable[[CommsClient], Awaitable[Any]]
) -> None:
    client = CommsClient(TOKEN, base_url=GRAPH, callback_uri=CALLBACK)
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await act(client)
    assert graph.requests == {}


async def test_feed_after_close_raises_client_closed(graph: aioresponses) -> None:
    client = CommsClient(TOKEN, base_url=GRAPH)
    await client.aclose()
    with pytest.raises(ClientClosedError):
        client.feed(established())


async def test_close_fails_a_pending_state_waiter_with_client_closed(graph: aioresponses) -> None:
    client = CommsClient(TOKEN, base_url=GRAPH)
    waiting = asyncio.create_task(client.call(CALL_ID).wait_for_state("established"))
    await settle()
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await asyncio.wait_for(waiting, 1)


async def test_close_ends_the_incoming_and_call_iterators(graph: aioresponses) -> None:
    client = CommsClient(TOKEN, base_url=GRAPH)
    incoming = client.incoming_calls()
    call = client.call(CALL_ID)
    states, tones, roster = call.states(), call.tones(), call.roster()
    await client.aclose()
    for iterator in (incoming, states, tones, roster):
        assert await collect(iterator) == []


async def test_wait_for_state_after_close_raises_client_closed(graph: aioresponses) -> None:
    client = CommsClient(TOKEN, base_url=GRAPH)
    call = client.call(CALL_ID)
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await asyncio.wait_for(call.wait_for_state("established"), 0.1)


async def test_borrowed_session_is_left_open(graph: aioresponses) -> None:
    graph.post(f"{CALL_URL}/keepAlive", status=200)
    async with aiohttp.ClientSession() as session:
        async with CommsClient(TOKEN, base_url=GRAPH, session=session) as client:
            await client.call(CALL_ID).keep_alive()
        assert not session.closed


async def test_borrowed_session_is_the_one_used(graph: aioresponses) -> None:
    session = aiohttp.ClientSession()
    await session.close()
    async with CommsClient(TOKEN, base_url=GRAPH, session=session) as client:
        with pytest.raises(ClientClosedError, match="session"):
            await client.call(CALL_ID).keep_alive()
    assert graph.requests == {}


async def test_no_task_is_left_after_aclose(graph: aioresponses) -> None:
    before = asyncio.all_tasks()
    source = FakeNotificationSource()
    client = CommsClient(TOKEN, base_url=GRAPH, notifications=source)
    never = asyncio.Event()

    async def stuck_callback(call: CallHandle) -> None:
        await never.wait()

    client.on_incoming_call(stuck_callback)
    client.start()
    source.push(incoming_call(CALL_ID))
    await source.join()
    await settle()
    assert len(asyncio.all_tasks()) >= len(before) + 3  # source, reconciler, callback
    await client.aclose()
    assert asyncio.all_tasks() <= before


# -- the notification source --------------------------------------------------------


def as_bytes(body: dict[str, Any]) -> NotificationPayload:
    return json.dumps(body).encode()


def as_str(body: dict[str, Any]) -> NotificationPayload:
    return json.dumps(body)


def as_dict(body: dict[str, Any]) -> NotificationPayload:
    return body


@pytest.mark.parametrize("encode", [as_bytes, as_str, as_dict])
async def test_source_body_in_any_form_resolves_a_tracker(
    graph: aioresponses, encode: Callable[[dict[str, Any]], NotificationPayload]
) -> None:
    source = FakeNotificationSource()
    accept_play_prompt(graph)
    async with CommsClient(TOKEN, base_url=GRAPH, notifications=source) as client:
        tracker = await client.call(CALL_ID).play_prompt([PROMPT])
        source.push(encode(completion(tracker.client_context)))
        op = await asyncio.wait_for(tracker.wait(), 1)
    assert op.status is OperationStatus.COMPLETED


async def test_malformed_source_bodies_are_skipped_and_later_ones_apply(
    graph: aioresponses,
) -> None:
    source = FakeNotificationSource()
    accept_play_prompt(graph)
    async with CommsClient(TOKEN, base_url=GRAPH, notifications=source) as client:
        tracker = await client.call(CALL_ID).play_prompt([PROMPT])
        source.push(b"{not json")
        source.push({"no": "value list"})
        source.push("[]")
        source.push(completion(tracker.client_context))
        await asyncio.wait_for(tracker.wait(), 1)
        assert client.stats.bad_items == 3
        assert tracker.succeeded()


async def test_source_that_raises_is_logged_and_the_client_keeps_working(
    graph: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken_relay() -> AsyncIterator[NotificationPayload]:
        yield established()
        raise RuntimeError("relay down")

    graph.post(f"{CALL_URL}/keepAlive", status=200)
    with caplog.at_level(logging.ERROR, logger="graphcomms"):
        async with CommsClient(TOKEN, base_url=GRAPH, notifications=broken_relay()) as client:
            call = client.call(CALL_ID)
            await settle()
            assert call.state is CallState.ESTABLISHED
            assert "relay down" in caplog.text
            assert client.feed(make_notification(Call(state="hold"), call_id=CALL_ID)) == 1
            assert call.snapshot.state is CallState.HOLD
            await call.keep_alive()
    assert "notification source failed" in caplog.text


# -- create_call ------------------------------------------------------------------


def created_call(**extra: Any) -> dict[str, Any]:
    """Graph's 201 body for a new outgoing call (reference §9.2)."""
    return {
        "@odata.type": "#microsoft.graph.call",
        "id": NEW_CALL_ID,
        "state": "establishing",
        "direction": "outgoing",
        "callbackUri": CALLBACK,
        "myParticipantId": PID,
        "callChainId": "d8e9f0a1-b2c3-4d5e-8f6a-7b8c9d0e1f2a",
        "requestedModalities": ["audio"],
        "mediaConfig": SERVICE_HOSTED_JSON,
        **extra,
    }


def accept_create_call(graph: aioresponses, body: Any, *, location: bool = True) -> None:
    headers = {"Location": f"{CALLS_URL}/{NEW_CALL_ID}"} if location else {}
    graph.post(CALLS_URL, status=201, payload=body, headers=headers)


async def test_create_call_posts_the_exact_call_body(
    client: CommsClient, graph: aioresponses
) -> None:
    accept_create_call(graph, created_call())
    await client.create_call(targets=[TARGET])
    (kwargs,) = sent(graph, "POST", CALLS_URL)
    assert json_body(kwargs) == {
        "@odata.type": "#microsoft.graph.call",
        "callbackUri": CALLBACK,
        "targets": [TARGET_JSON],
        "requestedModalities": ["audio"],
        "mediaConfig": SERVICE_HOSTED_JSON,
    }


async def test_create_call_sends_every_option_given(
    client: CommsClient, graph: aioresponses
) -> None:
    accept_create_call(graph, created_call())
    await client.create_call(
        targets=[TARGET],
        callback_uri="https://other.test/cb",
        requested_modalities=["audio", "video"],
        source=ParticipantInfo(identity=IdentitySet.for_application("app-1", display_name="Bot")),
        tenant_id=TENANT_ID,
        subject="Support",
        call_options=OutgoingCallOptions(is_content_sharing_notification_enabled=True),
    )
    (kwargs,) = sent(graph, "POST", CALLS_URL)
    assert json_body(kwargs) == {
        "@odata.type": "#microsoft.graph.call",
        "callbackUri": "https://other.test/cb",
        "targets": [TARGET_JSON],
        "requestedModalities": ["audio", "video"],
        "mediaConfig": SERVICE_HOSTED_JSON,
        "source": {
            "@odata.type": "#microsoft.graph.participantInfo",
            "identity": {
                "@odata.type": "#microsoft.graph.identitySet",
                "application": {
                    "@odata.type": "#microsoft.graph.identity",
                    "id": "app-1",
                    "displayName": "Bot",
                },
            },
        },
        "tenantId": TENANT_ID,
        "subject": "Support",
        "callOptions": {
            "@odata.type": "#microsoft.graph.outgoingCallOptions",
            "isContentSharingNotificationEnabled": True,
        },
    }


async def test_create_call_joins_a_meeting_without_targets(
    client: CommsClient, graph: aioresponses
) -> None:
    accept_create_call(graph, created_call())
    await client.create_call(
        meeting_info=OrganizerMeetingInfo(
            organizer=IdentitySet.for_user(USER_ID, tenant_id=TENANT_ID)
        ),
        chat_info=ChatInfo(thread_id="19:meeting@thread.v2", message_id="0"),
        tenant_id=TENANT_ID,
    )
    (kwargs,) = sent(graph, "POST", CALLS_URL)
    body = json_body(kwargs)
    assert "targets" not in body
    assert body["meetingInfo"] == {
        "@odata.type": "#microsoft.graph.organizerMeetingInfo",
        "organizer": {
            "@odata.type": "#microsoft.graph.identitySet",
            "user": {
                "@odata.type": "#microsoft.graph.identity",
                "id": USER_ID,
                "tenantId": TENANT_ID,
            },
        },
    }
    assert body["chatInfo"] == {
        "@odata.type": "#microsoft.graph.chatInfo",
        "threadId": "19:meeting@thread.v2",
        "messageId": "0",
    }


async def test_create_call_returns_an_establishing_handle(
    client: CommsClient, graph: aioresponses
) -> None:
    accept_create_call(graph, created_call())
    call = await client.create_call(targets=[TARGET])
    assert isinstance(call, CallHandle)
    assert call.id == NEW_CALL_ID
    assert call.state is CallState.ESTABLISHING
    assert call.snapshot.my_participant_id == PID
    assert client.call(NEW_CALL_ID) is call


async def test_created_call_follows_its_notifications(
    client: CommsClient, graph: aioresponses
) -> None:
    accept_create_call(graph, created_call())
    call = await client.create_call(targets=[TARGET])
    client.feed(make_notification(Call(state=CallState.ESTABLISHED), call_id=NEW_CALL_ID))
    snapshot = await call.wait_for_state("established", timeout=1)
    assert snapshot.my_participant_id == PID


async def test_create_call_takes_the_call_from_location_when_the_body_has_no_id(
    client: CommsClient, graph: aioresponses
) -> None:
    accept_create_call(graph, {"@odata.type": "#microsoft.graph.call", "state": "establishing"})
    call = await client.create_call(targets=[TARGET])
    assert call.state is CallState.ESTABLISHING
    assert client.call(NEW_CALL_ID) is call


async def test_call_id_from_location_keeps_graphs_spelling(
    client: CommsClient, graph: aioresponses
) -> None:
    accept_create_call(graph, {"@odata.type": "#microsoft.graph.call", "state": "establishing"})
    graph.delete(f"{CALLS_URL}/{NEW_CALL_ID}", status=204)
    call = await client.create_call(targets=[TARGET])
    assert call.id == NEW_CALL_ID
    await call.hang_up()
    assert sent(graph, "DELETE", f"{CALLS_URL}/{NEW_CALL_ID}")


async def test_create_call_without_any_id_raises_deserialization_error(
    client: CommsClient, graph: aioresponses
) -> None:
    accept_create_call(graph, {"state": "establishing"}, location=False)
    with pytest.raises(DeserializationError):
        await client.create_call(targets=[TARGET])


async def test_create_call_without_a_callback_uri_is_refused_before_sending(
    graph: aioresponses,
) -> None:
    async with CommsClient(TOKEN, base_url=GRAPH) as client:
        with pytest.raises(InvalidRequestError, match="callback"):
            await client.create_call(targets=[TARGET])
    assert graph.requests == {}


# -- download_recording -------------------------------------------------------------


async def test_download_recording_uses_the_recording_token_and_returns_the_bytes(
    client: CommsClient, graph: aioresponses
) -> None:
    graph.get(RECORDING_URL, body=b"RIFF\x00\x01wav", content_type="application/octet-stream")
    op = recording(recording_location=RECORDING_URL, recording_access_token="rec-token")
    assert await client.download_recording(op) == b"RIFF\x00\x01wav"
    (kwargs,) = sent(graph, "GET", RECORDING_URL)
    assert kwargs["headers"]["Authorization"] == "Bearer rec-token"
    assert TOKEN not in json.dumps(dict(kwargs["headers"]))


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({}, id="no-location"),
        pytest.param({"recording_location": "", "recording_access_token": ""}, id="empty"),
        pytest.param({"recording_location": RECORDING_URL}, id="no-token"),
        pytest.param(
            {"recording_location": "/recordings/r-1", "recording_access_token": "rec-token"},
            id="relative-location",
        ),
    ],
)
async def test_download_recording_without_a_usable_location_and_token_is_refused(
    client: CommsClient, graph: aioresponses, fields: dict[str, Any]
) -> None:
    with pytest.raises(InvalidRequestError):
        await client.download_recording(recording(**fields))
    assert graph.requests == {}


async def test_download_recording_error_shows_neither_token_nor_signature(
    client: CommsClient, graph: aioresponses
) -> None:
    graph.get(RECORDING_URL, status=403, body="forbidden")
    op = recording(recording_location=RECORDING_URL, recording_access_token="rec-token")
    with pytest.raises(ForbiddenError) as info:
        await client.download_recording(op)
    text = f"{info.value} {info.value!r}"
    assert "rec-token" not in text
    assert "signed-part" not in text
    assert TOKEN not in text


# -- the GETs ---------------------------------------------------------------------


async def test_get_operation_decodes_the_operation(
    client: CommsClient, graph: aioresponses
) -> None:
    graph.get(
        f"{CALL_URL}/operations/{OP_ID}",
        payload={
            "@odata.type": "#microsoft.graph.addLargeGalleryViewOperation",
            "id": OP_ID,
            "status": "completed",
            "clientContext": "ctx-1",
            "resultInfo": {"code": 200, "subcode": 0, "message": "ok"},
        },
    )
    op = await client.call(CALL_ID).get_operation(OP_ID)
    assert isinstance(op, AddLargeGalleryViewOperation)
    assert (op.id, op.status, op.client_context) == (OP_ID, OperationStatus.COMPLETED, "ctx-1")
    assert op.result_info == ResultInfo(code=200, subcode=0, message="ok")


async def test_list_participants_decodes_the_collection(
    client: CommsClient, graph: aioresponses
) -> None:
    other = "a4c1b5e2-6f3d-4a8b-9c0e-1d2f3a4b5c6d"
    graph.get(
        f"{CALL_URL}/participants",
        payload={
            "value": [participant_json(PID, muted=True), participant_json(other, muted=False)]
        },
    )
    participants = await client.call(CALL_ID).list_participants()
    assert all(isinstance(p, Participant) for p in participants)
    assert [(p.id, p.is_muted) for p in participants] == [(PID, True), (other, False)]
    assert participants[0].info is not None
    assert participants[0].info.identity is not None
    assert participants[0].info.identity.user is not None
    assert participants[0].info.identity.user.display_name == "Bob"


async def test_list_participants_without_a_value_list_raises_deserialization_error(
    client: CommsClient, graph: aioresponses
) -> None:
    graph.get(f"{CALL_URL}/participants", payload={"participants": []})
    with pytest.raises(DeserializationError):
        await client.call(CALL_ID).list_participants()


async def test_refresh_lays_the_call_from_graph_over_the_snapshot(
    client: CommsClient, graph: aioresponses
) -> None:
    call = client.call(CALL_ID)
    client.feed(
        make_notification(
            Call(state=CallState.ESTABLISHING, my_participant_id=PID), call_id=CALL_ID
        )
    )
    graph.get(
        CALL_URL,
        payload={
            "@odata.type": "#microsoft.graph.call",
            "id": CALL_ID,
            "state": "established",
            "subject": "Support",
        },
    )
    snapshot = await call.refresh()
    assert snapshot == call.snapshot
    assert snapshot.state is CallState.ESTABLISHED
    assert snapshot.subject == "Support"
    assert snapshot.my_participant_id == PID


async def test_get_returning_no_json_object_raises_deserialization_error(
    client: CommsClient, graph: aioresponses
) -> None:
    graph.get(f"{CALL_URL}/operations/{OP_ID}", payload=["not", "an", "object"])
    with pytest.raises(DeserializationError):
        await client.call(CALL_ID).get_operation(OP_ID)


# -- feed and counters --------------------------------------------------------------


async def test_feed_returns_the_number_of_items(client: CommsClient) -> None:
    assert client.feed(envelope()) == 0
    assert client.feed(envelope(established()["value"][0])) == 1
    three = envelope(*(established()["value"] * 3))
    assert client.feed(json.dumps(three).encode()) == 3


@pytest.mark.parametrize(
    "body",
    [b"{not json", "[]", {"no": "value"}, {"value": "not a list"}, b"\xff\xfe\x00"],
    ids=["bad-json", "array", "no-value", "value-not-list", "not-text"],
)
async def test_feed_of_a_non_envelope_raises_and_applies_nothing(
    client: CommsClient, body: Any
) -> None:
    with pytest.raises(DeserializationError):
        client.feed(body)
    assert client.stats.notifications == 0


async def test_stats_count_items_unmatched_and_bad(client: CommsClient) -> None:
    client.call(CALL_ID)
    body = envelope(
        established()["value"][0],
        item("/communications/onlineMeetings/abc", data={"id": "abc"}),
        item(f"/communications/calls/{CALL_ID}/contentSharingSessions/s1", "created"),
        item(
            f"/communications/calls/{NEW_CALL_ID}/participants",
            data=[participant_json(PID, muted=False)],
        ),
        "not an object",
        item(f"/communications/calls/{CALL_ID}", data={"state": {"not": "a state"}}),
    )
    assert client.feed(body) == 6
    assert client.stats.notifications == 6
    assert client.stats.unmatched == 3  # another resource, content sharing, unknown call's roster
    assert client.stats.bad_items == 2
    assert client.call(CALL_ID).state is CallState.ESTABLISHED


async def test_stats_follow_a_tracker_from_pending_to_resolved(
    client: CommsClient, graph: aioresponses
) -> None:
    accept_play_prompt(graph)
    tracker = await client.call(CALL_ID).play_prompt([PROMPT])
    assert (client.stats.pending, client.stats.resolved) == (1, 0)
    client.feed(completion(tracker.client_context))
    assert (client.stats.pending, client.stats.resolved) == (0, 1)


# -- the token never shows ----------------------------------------------------------


async def test_repr_of_client_and_handles_never_shows_the_token(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    for text in (
        repr(client),
        str(client),
        repr(call),
        repr(call.participant(PID)),
        repr(client.stats),
    ):
        assert TOKEN not in text


async def test_response_errors_never_show_the_token(
    client: CommsClient, graph: aioresponses
) -> None:
    graph.post(
        f"{CALL_URL}/keepAlive",
        status=401,
        payload={"error": {"code": "InvalidAuthenticationToken", "message": "Token rejected"}},
        repeat=True,
    )
    graph.delete(
        CALL_URL, status=404, payload={"error": {"code": "itemNotFound", "message": "no call"}}
    )
    with pytest.raises(UnauthorizedError) as unauthorized:
        await client.call(CALL_ID).keep_alive()
    with pytest.raises(NotFoundError) as not_found:
        await client.call(CALL_ID).hang_up()
    for info in (unauthorized, not_found):
        assert not shows_token(info.value)


async def test_local_errors_never_show_the_token(graph: aioresponses) -> None:
    client = CommsClient(TOKEN, base_url=GRAPH)
    errors: list[BaseException] = []
    bad_bodies: list[Callable[[], object]] = [
        lambda: client.feed(json.dumps({"token": TOKEN}).encode()[:-1]),
        lambda: client.feed({"value": TOKEN}),
    ]
    for act in bad_bodies:
        with pytest.raises(DeserializationError) as info:
            act()
        errors.append(info.value)
    with pytest.raises(InvalidRequestError) as invalid:
        await client.create_call(targets=[TARGET])
    errors.append(invalid.value)
    await client.aclose()
    with pytest.raises(ClientClosedError) as closed:
        await client.call(CALL_ID).keep_alive()
    errors.append(closed.value)
    assert not any(shows_token(exc) for exc in errors)


# -- a token provider that fails ------------------------------------------------------


async def test_an_action_whose_token_fetch_fails_raises_a_graphcomms_error_and_leaves_nothing(
    graph: aioresponses,
) -> None:
    error = ConnectionError("login.microsoftonline.com unreachable")

    async def no_token() -> str:
        raise error

    async with CommsClient(no_token, base_url=GRAPH, callback_uri=CALLBACK) as client:
        with pytest.raises(TokenAcquisitionError) as caught:
            await client.call(CALL_ID).play_prompt("https://cdn.test/hello.wav")
        assert isinstance(caught.value, GraphCommsError)
        assert caught.value.__cause__ is error
        assert client.stats.pending == 0
    assert graph.requests == {}
