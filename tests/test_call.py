"""The call handle: every action's request (method, URL, exact JSON body) and what it
returns, the limits refused before sending, and the call's state, tones, roster and
incoming calls as notifications change them (reference §2, §5; DESIGN §1)."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

import pytest
from aioresponses import aioresponses
from async_support import collect, settle
from yarl import URL

from graphcomms import (
    CallEndedError,
    CallHandle,
    CommsClient,
    IdentitySet,
    InvalidRequestError,
    InvitationParticipantInfo,
    MediaPrompt,
    OperationTracker,
    ResultInfo,
    Tone,
    ToneInfo,
)
from graphcomms.errors import NotFoundError
from graphcomms.models import (
    AddLargeGalleryViewOperation,
    AdmitAllFromLobbyOperation,
    AdmitFromLobbyOperation,
    AppHostedMediaConfig,
    Call,
    CallState,
    CancelMediaProcessingOperation,
    IncomingCallOptions,
    InviteParticipantsOperation,
    Modality,
    MuteParticipantOperation,
    MuteParticipantsOperation,
    Participant,
    ParticipantInfo,
    PlayPromptOperation,
    RecordingStatus,
    RecordOperation,
    RejectReason,
    RemoveFromLobbyOperation,
    ScreenSharingRole,
    SendDtmfTonesOperation,
    StartHoldMusicOperation,
    StartRecordingOperation,
    StartTranscriptionOperation,
    StopHoldMusicOperation,
    StopRecordingOperation,
    StopTranscriptionOperation,
    UnmuteParticipantOperation,
    UpdateRecordingStatusOperation,
)
from graphcomms.testing import make_notification, make_operation

GRAPH = "https://graph.test/v1.0/"
CALLBACK = "https://bot.test/cb"
CALL_ID = "421f1100-f2f4-4b8f-9d8c-4e2b6d8b8f1c"
OP_ID = "0fe0623f-d628-42ed-b4bd-8ac290072cc5"
PID = "550fae72-d251-43ec-868c-373732c2704f"
USER_ID = "8a34ce2e-9f41-4d5b-b0c6-1a2b3c4d5e6f"
CALL_URL = f"{GRAPH}communications/calls/{CALL_ID}"

PROMPT = MediaPrompt.from_uri("https://cdn.test/hello.wav")
PROMPT_JSON = {
    "@odata.type": "#microsoft.graph.mediaPrompt",
    "mediaInfo": {"@odata.type": "#microsoft.graph.mediaInfo", "uri": "https://cdn.test/hello.wav"},
}
BYE = MediaPrompt.from_uri("https://cdn.test/bye.wav", resource_id="bye-1")
BYE_JSON = {
    "@odata.type": "#microsoft.graph.mediaPrompt",
    "mediaInfo": {
        "@odata.type": "#microsoft.graph.mediaInfo",
        "uri": "https://cdn.test/bye.wav",
        "resourceId": "bye-1",
    },
}
TARGET = InvitationParticipantInfo(identity=IdentitySet.for_user(USER_ID, display_name="Bob"))
TARGET_JSON = {
    "@odata.type": "#microsoft.graph.invitationParticipantInfo",
    "identity": {
        "@odata.type": "#microsoft.graph.identitySet",
        "user": {"@odata.type": "#microsoft.graph.identity", "id": USER_ID, "displayName": "Bob"},
    },
}
PHONE = InvitationParticipantInfo(identity=IdentitySet.for_phone("+14255550100"))
PHONE_JSON = {
    "@odata.type": "#microsoft.graph.invitationParticipantInfo",
    "identity": {
        "@odata.type": "#microsoft.graph.identitySet",
        "phone": {"@odata.type": "#microsoft.graph.identity", "id": "+14255550100"},
    },
}
SERVICE_HOSTED_JSON = {"@odata.type": "#microsoft.graph.serviceHostedMediaConfig"}
HUNG_UP = ResultInfo(code=200, subcode=4097, message="Caller hung up")


# -- helpers ----------------------------------------------------------------------


@pytest.fixture
def graph(mock_graph: aioresponses) -> aioresponses:
    return mock_graph


@pytest.fixture
async def client(graph: aioresponses) -> AsyncIterator[CommsClient]:
    async with CommsClient("secret-token", base_url=GRAPH, callback_uri=CALLBACK) as c:
        yield c


def only_request(graph: aioresponses) -> tuple[str, URL, dict[str, Any]]:
    """The one request sent: method, URL and aiohttp keyword arguments."""
    (((method, url), calls),) = graph.requests.items()  # exactly one (method, URL) was used
    (call,) = calls
    return method, url, call.kwargs


def json_body(kwargs: dict[str, Any]) -> Any:
    """The JSON body as sent on the wire (the HTTP layer sends ``data=`` bytes)."""
    data = kwargs.get("data")
    return None if data is None else json.loads(data)


def accept_operation(graph: aioresponses, path: str, *, repeat: bool = False) -> None:
    """Graph accepting an operation action: a running operation without @odata.type, so
    the tracker's type can only come from the action."""
    graph.post(
        f"{CALL_URL}/{path}",
        payload={"id": OP_ID, "status": "running"},
        headers={"Location": f"{CALL_URL}/operations/{OP_ID}"},
        repeat=repeat,
    )


def call_notification(change: str, call_id: str = CALL_ID, **resource_data: Any) -> dict[str, Any]:
    """A call notification in the raw shape of reference §5.4."""
    return {
        "@odata.type": "#microsoft.graph.commsNotifications",
        "value": [
            {
                "@odata.type": "#microsoft.graph.commsNotification",
                "changeType": change,
                "resourceUrl": f"/communications/calls/{call_id}",
                "resourceData": {"@odata.type": "#microsoft.graph.call", **resource_data},
            }
        ],
    }


def tone_notification(sequence_id: int, tone: str) -> dict[str, Any]:
    return call_notification(
        "updated",
        state="established",
        toneInfo={
            "@odata.type": "#microsoft.graph.toneInfo",
            "sequenceId": sequence_id,
            "tone": tone,
        },
    )


def terminated_notification() -> dict[str, Any]:
    return call_notification(
        "deleted",
        state="terminated",
        resultInfo={
            "@odata.type": "#microsoft.graph.resultInfo",
            "code": "200",
            "subcode": "4097",
            "message": "Caller hung up",
        },
    )


def state_notification(state: CallState, **fields: Any) -> dict[str, Any]:
    return make_notification(Call(state=state, **fields), call_id=CALL_ID)


def participant_json(pid: str, *, muted: bool, **extra: Any) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.participant",
        "id": pid,
        "info": {
            "identity": {"user": {"displayName": "Bob", "id": USER_ID}},
            "region": "westus",
            "languageId": "en-US",
        },
        "mediaStreams": [
            {
                "mediaType": "audio",
                "label": "main-audio",
                "sourceId": "1",
                "direction": "sendReceive",
            }
        ],
        "isMuted": muted,
        "isInLobby": False,
        **extra,
    }


def roster_notification(*participants: dict[str, Any]) -> dict[str, Any]:
    return {
        "@odata.type": "#microsoft.graph.commsNotifications",
        "value": [
            {
                "@odata.type": "#microsoft.graph.commsNotification",
                "changeType": "updated",
                "resourceUrl": f"/communications/calls/{CALL_ID}/participants",
                "resourceData": list(participants),
            }
        ],
    }


def incoming_call_notification(raw_id: str) -> dict[str, Any]:
    """Reference §5.4 "Incoming call": created, no ``id`` in resourceData."""
    return {
        "@odata.type": "#microsoft.graph.commsNotifications",
        "value": [
            {
                "@odata.type": "#microsoft.graph.commsNotification",
                "changeType": "created",
                "resourceUrl": f"/communications/calls/{raw_id}",
                "resourceData": {
                    "@odata.type": "#microsoft.graph.call",
                    "@odata.id": f"/communications/calls/{raw_id}",
                    "@odata.etag": 'W/"5445"',
                    "state": "incoming",
                    "direction": "incoming",
                    "source": {
                        "identity": {"user": {"displayName": "Test User", "id": USER_ID}},
                        "region": "westus",
                        "languageId": "en-US",
                    },
                    "targets": [
                        {"identity": {"application": {"displayName": "Test BOT", "id": "app-1"}}}
                    ],
                    "requestedModalities": ["audio"],
                },
            }
        ],
    }


def upper_nohyphens(value: str) -> str:
    return value.replace("-", "").upper()


def returns_without_suspending(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coro`` one step: its value if it finished without waiting, else fail."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("the coroutine suspended")


# -- operation actions: request and tracker ----------------------------------------

Act = Callable[..., Any]

OPERATION_ACTIONS = [
    pytest.param(
        lambda c, **kw: c.play_prompt([PROMPT], **kw),
        "playPrompt",
        {"prompts": [PROMPT_JSON]},
        PlayPromptOperation,
        id="play_prompt",
    ),
    pytest.param(
        lambda c, **kw: c.play_prompt([PROMPT, BYE], loop=True, **kw),
        "playPrompt",
        {"prompts": [PROMPT_JSON, BYE_JSON], "loop": True},
        PlayPromptOperation,
        id="play_prompt-loop",
    ),
    pytest.param(
        lambda c, **kw: c.record_response(**kw),
        "recordResponse",
        {},
        RecordOperation,
        id="record_response-defaults",
    ),
    pytest.param(
        lambda c, **kw: c.record_response(
            prompts=[PROMPT],
            barge_in_allowed=True,
            initial_silence_timeout=3,
            max_silence_timeout=4,
            max_record_duration=10,
            play_beep=False,
            stop_tones=["#", "*"],
            **kw,
        ),
        "recordResponse",
        {
            "prompts": [PROMPT_JSON],
            "bargeInAllowed": True,
            "initialSilenceTimeoutInSeconds": 3,
            "maxSilenceTimeoutInSeconds": 4,
            "maxRecordDurationInSeconds": 10,
            "playBeep": False,
            "stopTones": ["#", "*"],
        },
        RecordOperation,
        id="record_response",
    ),
    pytest.param(
        lambda c, **kw: c.record(max_record_duration=10, stream_while_recording=True, **kw),
        "record",
        {"maxRecordDurationInSeconds": 10, "streamWhileRecording": True},
        RecordOperation,
        id="record-legacy-beta",
    ),
    pytest.param(
        lambda c, **kw: c.cancel_media_processing(**kw),
        "cancelMediaProcessing",
        {},
        CancelMediaProcessingOperation,
        id="cancel_media_processing",
    ),
    # subscribe_to_tone is not here: it returns once its operation has ended, not
    # while it is pending (tests/test_tones.py holds it to the same body and contexts).
    pytest.param(
        lambda c, **kw: c.send_dtmf_tones("12#*", delay_between_tones_ms=250, **kw),
        "sendDtmfTones",
        {"tones": ["tone1", "tone2", "pound", "star"], "delayBetweenTonesMs": 250},
        SendDtmfTonesOperation,
        id="send_dtmf_tones",
    ),
    pytest.param(lambda c, **kw: c.mute(**kw), "mute", {}, MuteParticipantOperation, id="mute"),
    pytest.param(
        lambda c, **kw: c.unmute(**kw), "unmute", {}, UnmuteParticipantOperation, id="unmute"
    ),
    pytest.param(
        lambda c, **kw: c.update_recording_status(RecordingStatus.RECORDING, **kw),
        "updateRecordingStatus",
        {"status": "recording"},
        UpdateRecordingStatusOperation,
        id="update_recording_status",
    ),
    pytest.param(
        lambda c, **kw: c.update_recording_status("notRecording", **kw),
        "updateRecordingStatus",
        {"status": "notRecording"},
        UpdateRecordingStatusOperation,
        id="update_recording_status-str",
    ),
    pytest.param(
        lambda c, **kw: c.add_large_gallery_view(**kw),
        "addLargeGalleryView",
        {},
        AddLargeGalleryViewOperation,
        id="add_large_gallery_view",
    ),
    pytest.param(
        lambda c, **kw: c.invite([TARGET, PHONE], **kw),
        "participants/invite",
        {"participants": [TARGET_JSON, PHONE_JSON]},
        InviteParticipantsOperation,
        id="invite",
    ),
    pytest.param(
        lambda c, **kw: c.mute_all(["p1", "p2"], **kw),
        "participants/muteAll",
        {"participants": ["p1", "p2"]},
        MuteParticipantsOperation,
        id="mute_all",
    ),
    pytest.param(
        lambda c, **kw: c.start_transcription(**kw),
        "startTranscription",
        {"language": "en-us"},
        StartTranscriptionOperation,
        id="start_transcription",
    ),
    pytest.param(
        lambda c, **kw: c.stop_transcription(**kw),
        "stopTranscription",
        {},
        StopTranscriptionOperation,
        id="stop_transcription",
    ),
    pytest.param(
        lambda c, **kw: c.start_recording(**kw),
        "startRecording",
        {},
        StartRecordingOperation,
        id="start_recording",
    ),
    pytest.param(
        lambda c, **kw: c.stop_recording(**kw),
        "stopRecording",
        {},
        StopRecordingOperation,
        id="stop_recording",
    ),
    pytest.param(
        lambda c, **kw: c.admit_all_from_lobby(**kw),
        "participants/admitAllFromLobby",
        {},
        AdmitAllFromLobbyOperation,
        id="admit_all_from_lobby",
    ),
    pytest.param(
        lambda c, **kw: c.participant(PID).mute(**kw),
        f"participants/{PID}/mute",
        {},
        MuteParticipantOperation,
        id="participant-mute",
    ),
    pytest.param(
        lambda c, **kw: c.participant(PID).start_hold_music(**kw),
        f"participants/{PID}/startHoldMusic",
        {},
        StartHoldMusicOperation,
        id="participant-start_hold_music",
    ),
    pytest.param(
        lambda c, **kw: c.participant(PID).start_hold_music(custom_prompt=BYE, **kw),
        f"participants/{PID}/startHoldMusic",
        {"customPrompt": BYE_JSON},
        StartHoldMusicOperation,
        id="participant-start_hold_music-custom",
    ),
    pytest.param(
        lambda c, **kw: c.participant(PID).stop_hold_music(**kw),
        f"participants/{PID}/stopHoldMusic",
        {},
        StopHoldMusicOperation,
        id="participant-stop_hold_music",
    ),
    pytest.param(
        lambda c, **kw: c.participant(PID).admit_from_lobby(**kw),
        f"participants/{PID}/admitFromLobby",
        {},
        AdmitFromLobbyOperation,
        id="participant-admit_from_lobby",
    ),
    pytest.param(
        lambda c, **kw: c.participant(PID).remove_from_lobby(**kw),
        f"participants/{PID}/removeFromLobby",
        {},
        RemoveFromLobbyOperation,
        id="participant-remove_from_lobby",
    ),
]

OPERATION_ARGS = ("act", "path", "body", "kind")


@pytest.mark.parametrize(OPERATION_ARGS, OPERATION_ACTIONS)
async def test_operation_action_posts_its_exact_body_to_its_path(
    client: CommsClient, graph: aioresponses, act: Act, path: str, body: Any, kind: type
) -> None:
    accept_operation(graph, path)
    tracker = await act(client.call(CALL_ID))
    method, url, kwargs = only_request(graph)
    assert method == "POST"
    assert url == URL(f"{CALL_URL}/{path}")
    assert json_body(kwargs) == {**body, "clientContext": tracker.client_context}


@pytest.mark.parametrize(OPERATION_ARGS, OPERATION_ACTIONS)
async def test_operation_action_returns_a_tracker_of_its_operation_type(
    client: CommsClient, graph: aioresponses, act: Act, path: str, body: Any, kind: type
) -> None:
    accept_operation(graph, path)
    tracker = await act(client.call(CALL_ID))
    assert isinstance(tracker, OperationTracker)
    assert type(tracker.operation) is kind
    assert tracker.operation_id == OP_ID.replace("-", "")
    assert tracker.call_id == CALL_ID.replace("-", "")
    assert not tracker.done()


@pytest.mark.parametrize(OPERATION_ARGS, OPERATION_ACTIONS)
async def test_operation_action_generates_a_unique_client_context_of_at_most_256(
    client: CommsClient, graph: aioresponses, act: Act, path: str, body: Any, kind: type
) -> None:
    accept_operation(graph, path, repeat=True)
    first = await act(client.call(CALL_ID))
    second = await act(client.call(CALL_ID))
    sent = [
        json_body(c.kwargs)["clientContext"]
        for c in graph.requests[("POST", URL(f"{CALL_URL}/{path}"))]
    ]
    assert sent == [first.client_context, second.client_context]
    assert first.client_context != second.client_context
    assert all(0 < len(ctx) <= 256 for ctx in sent)


@pytest.mark.parametrize(OPERATION_ARGS, OPERATION_ACTIONS)
async def test_operation_action_echoes_a_given_client_context(
    client: CommsClient, graph: aioresponses, act: Act, path: str, body: Any, kind: type
) -> None:
    accept_operation(graph, path)
    tracker = await act(client.call(CALL_ID), client_context="bot-ctx-42")
    _, _, kwargs = only_request(graph)
    assert json_body(kwargs) == {**body, "clientContext": "bot-ctx-42"}
    assert tracker.client_context == "bot-ctx-42"


async def test_pending_action_exposes_its_request_before_sending(
    client: CommsClient, graph: aioresponses
) -> None:
    pending = client.call(CALL_ID).play_prompt([PROMPT], client_context="c1")
    assert pending.request.prompts == (PROMPT,)
    assert pending.request.client_context == "c1"
    # Nothing is made until it is awaited: dropping it sends nothing and leaves no
    # never-awaited coroutine behind (warnings are errors here).
    del pending
    gc.collect()
    assert graph.requests == {}


async def test_a_pending_action_is_sent_once(client: CommsClient, graph: aioresponses) -> None:
    accept_operation(graph, "playPrompt")
    pending = client.call(CALL_ID).play_prompt("https://cdn.test/one.wav")
    tracker = await pending
    assert tracker.operation.id == OP_ID
    with pytest.raises(RuntimeError, match="already sent"):
        await pending
    _, _, kwargs = only_request(graph)
    assert json_body(kwargs)["prompts"] == [
        {
            "@odata.type": "#microsoft.graph.mediaPrompt",
            "mediaInfo": {
                "@odata.type": "#microsoft.graph.mediaInfo",
                "uri": "https://cdn.test/one.wav",
            },
        }
    ]


# -- actions that return nothing ----------------------------------------------------

CONTROL_ACTIONS = [
    pytest.param(
        lambda c: c.answer(),
        "POST",
        "answer",
        202,
        {
            "callbackUri": CALLBACK,
            "mediaConfig": SERVICE_HOSTED_JSON,
            "acceptedModalities": ["audio"],
        },
        id="answer-defaults",
    ),
    pytest.param(
        lambda c: c.answer(
            callback_uri="https://other.test/cb",
            media_config=AppHostedMediaConfig(blob="<blob>"),
            accepted_modalities=[Modality.AUDIO, "video"],
            participant_capacity=200,
            call_options=IncomingCallOptions(is_content_sharing_notification_enabled=True),
        ),
        "POST",
        "answer",
        202,
        {
            "callbackUri": "https://other.test/cb",
            "mediaConfig": {
                "@odata.type": "#microsoft.graph.appHostedMediaConfig",
                "blob": "<blob>",
            },
            "acceptedModalities": ["audio", "video"],
            "participantCapacity": 200,
            "callOptions": {
                "@odata.type": "#microsoft.graph.incomingCallOptions",
                "isContentSharingNotificationEnabled": True,
            },
        },
        id="answer",
    ),
    pytest.param(lambda c: c.reject(), "POST", "reject", 202, {}, id="reject-defaults"),
    pytest.param(
        lambda c: c.reject(reason=RejectReason.BUSY, callback_uri="https://other.test/cb"),
        "POST",
        "reject",
        202,
        {"reason": "busy", "callbackUri": "https://other.test/cb"},
        id="reject",
    ),
    pytest.param(
        lambda c: c.redirect([TARGET, PHONE], timeout=30, callback_uri="https://other.test/cb"),
        "POST",
        "redirect",
        202,
        {
            "targets": [TARGET_JSON, PHONE_JSON],
            "timeout": 30,
            "callbackUri": "https://other.test/cb",
        },
        id="redirect",
    ),
    pytest.param(
        lambda c: c.redirect([TARGET], mask_callee=True, mask_caller=False),
        "POST",
        "redirect",
        202,
        {"targets": [TARGET_JSON], "maskCallee": True, "maskCaller": False},
        id="redirect-beta-masks",
    ),
    pytest.param(
        lambda c: c.transfer(TARGET),
        "POST",
        "transfer",
        202,
        {"transferTarget": TARGET_JSON},
        id="transfer",
    ),
    pytest.param(
        lambda c: c.transfer(
            InvitationParticipantInfo(
                identity=IdentitySet.for_user(USER_ID), replaces_call_id="r1"
            ),
            transferee=ParticipantInfo(participant_id=PID),
        ),
        "POST",
        "transfer",
        202,
        {
            "transferTarget": {
                "@odata.type": "#microsoft.graph.invitationParticipantInfo",
                "identity": {
                    "@odata.type": "#microsoft.graph.identitySet",
                    "user": {"@odata.type": "#microsoft.graph.identity", "id": USER_ID},
                },
                "replacesCallId": "r1",
            },
            "transferee": {"@odata.type": "#microsoft.graph.participantInfo", "participantId": PID},
        },
        id="transfer-consultative",
    ),
    pytest.param(
        lambda c: c.change_screen_sharing_role(ScreenSharingRole.VIEWER),
        "POST",
        "changeScreenSharingRole",
        202,
        {"role": "viewer"},
        id="change_screen_sharing_role",
    ),
    pytest.param(
        lambda c: c.change_screen_sharing_role("sharer"),
        "POST",
        "changeScreenSharingRole",
        202,
        {"role": "sharer"},
        id="change_screen_sharing_role-str",
    ),
    pytest.param(lambda c: c.keep_alive(), "POST", "keepAlive", 200, None, id="keep_alive"),
    pytest.param(lambda c: c.hang_up(), "DELETE", "", 204, None, id="hang_up"),
    pytest.param(
        lambda c: c.participant(PID).remove(),
        "DELETE",
        f"participants/{PID}",
        204,
        None,
        id="participant-remove",
    ),
]


@pytest.mark.parametrize(("act", "method", "path", "status", "body"), CONTROL_ACTIONS)
async def test_control_action_sends_its_exact_request_and_returns_none(
    client: CommsClient,
    graph: aioresponses,
    act: Act,
    method: str,
    path: str,
    status: int,
    body: Any,
) -> None:
    target = f"{CALL_URL}/{path}" if path else CALL_URL
    graph.add(target, method=method, status=status)
    assert await act(client.call(CALL_ID)) is None
    sent_method, url, kwargs = only_request(graph)
    assert (sent_method, url) == (method, URL(target))
    assert json_body(kwargs) == body


async def test_answer_without_any_callback_uri_leaves_it_out(graph: aioresponses) -> None:
    graph.post(f"{CALL_URL}/answer", status=202)
    async with CommsClient("secret-token", base_url=GRAPH) as client:
        await client.call(CALL_ID).answer()
        _, _, kwargs = only_request(graph)
    assert json_body(kwargs) == {
        "mediaConfig": SERVICE_HOSTED_JSON,
        "acceptedModalities": ["audio"],
    }


async def test_keep_alive_on_an_ended_call_raises_not_found(
    client: CommsClient, graph: aioresponses
) -> None:
    graph.post(
        f"{CALL_URL}/keepAlive",
        status=404,
        payload={"error": {"code": "itemNotFound", "message": "Call not found."}},
    )
    with pytest.raises(NotFoundError) as info:
        await client.call(CALL_ID).keep_alive()
    assert info.value.status == 404
    assert info.value.code == "itemNotFound"


async def test_hang_up_then_terminating_and_terminated_end_the_call(
    client: CommsClient, graph: aioresponses
) -> None:
    graph.delete(CALL_URL, status=204)
    call = client.call(CALL_ID)
    client.feed(state_notification(CallState.ESTABLISHED))
    ended = asyncio.create_task(call.wait_for_state(CallState.TERMINATED))
    await call.hang_up()
    client.feed(call_notification("updated", state="terminating"))
    assert call.state is CallState.TERMINATING
    client.feed(terminated_notification())
    final = await asyncio.wait_for(ended, 1)
    assert final.state is CallState.TERMINATED
    assert call.ended


# -- dtmf -------------------------------------------------------------------------


async def test_send_dtmf_tones_takes_tone_members_graph_names_and_keys(
    client: CommsClient, graph: aioresponses
) -> None:
    accept_operation(graph, "sendDtmfTones")
    await client.call(CALL_ID).send_dtmf_tones([Tone.TONE9, "tone0", "A", "d", "#"])
    _, _, kwargs = only_request(graph)
    assert json_body(kwargs)["tones"] == ["tone9", "tone0", "a", "d", "pound"]


async def test_send_dtmf_tones_refuses_a_non_keypad_key_as_invalid_request(
    client: CommsClient, graph: aioresponses
) -> None:
    with pytest.raises(InvalidRequestError):
        await client.call(CALL_ID).send_dtmf_tones("1x")
    assert graph.requests == {}


@pytest.mark.parametrize(
    ("key", "tone"),
    [(str(n), Tone(f"tone{n}")) for n in range(10)]
    + [("*", Tone.STAR), ("#", Tone.POUND), ("A", Tone.A), ("b", Tone.B), ("D", Tone.D)],
)
def test_tone_from_key_maps_keypad_keys(key: str, tone: Tone) -> None:
    assert Tone.from_key(key) is tone


@pytest.mark.parametrize("key", ["x", "", "12", "tone1", "E", " "])
def test_tone_from_key_refuses_what_is_not_a_keypad_key(key: str) -> None:
    with pytest.raises(ValueError, match="keypad"):
        Tone.from_key(key)


@pytest.mark.parametrize(
    ("tone", "key"),
    [(Tone.TONE0, "0"), (Tone.TONE5, "5"), (Tone.STAR, "*"), (Tone.POUND, "#"), (Tone.C, "C")],
)
def test_tone_key_is_the_keypad_key(tone: Tone, key: str) -> None:
    assert tone.key == key


@pytest.mark.parametrize("tone", [t for t in Tone if t is not Tone.FLASH])
def test_tone_key_and_from_key_are_inverse(tone: Tone) -> None:
    assert Tone.from_key(tone.key) is tone


def test_flash_key_reads_back_as_flash() -> None:
    assert Tone.from_key(Tone.FLASH.key) is Tone.FLASH


# -- limits refused before anything is sent ------------------------------------------

INVALID_REQUESTS = [
    pytest.param(lambda c: c.play_prompt([]), id="no-prompt"),
    pytest.param(lambda c: c.play_prompt([PROMPT] * 21), id="21-prompts"),
    pytest.param(lambda c: c.record_response(prompts=[PROMPT, BYE]), id="2-record-prompts"),
    pytest.param(lambda c: c.record_response(initial_silence_timeout=0), id="initial-silence-0"),
    pytest.param(
        lambda c: c.record_response(initial_silence_timeout=121), id="initial-silence-121"
    ),
    pytest.param(lambda c: c.record_response(max_silence_timeout=0), id="max-silence-0"),
    pytest.param(lambda c: c.record_response(max_silence_timeout=121), id="max-silence-121"),
    pytest.param(lambda c: c.record_response(max_record_duration=0), id="max-duration-0"),
    pytest.param(lambda c: c.record_response(max_record_duration=121), id="max-duration-121"),
    pytest.param(lambda c: c.record(max_record_duration=121), id="legacy-record-121"),
    pytest.param(lambda c: c.invite([TARGET] * 6), id="invite-6"),
    pytest.param(lambda c: c.invite([]), id="invite-none"),
    pytest.param(lambda c: c.redirect([TARGET], timeout=10), id="redirect-timeout-10"),
    pytest.param(lambda c: c.redirect([TARGET], timeout=100), id="redirect-timeout-100"),
    pytest.param(lambda c: c.redirect([]), id="redirect-no-target"),
    pytest.param(lambda c: c.redirect([TARGET] * 26), id="redirect-26-targets"),
    pytest.param(lambda c: c.send_dtmf_tones([]), id="no-tones"),
    pytest.param(lambda c: c.play_prompt([PROMPT], client_context="x" * 257), id="ctx-257"),
    pytest.param(lambda c: c.subscribe_to_tone(client_context="x" * 257), id="ctx-257-tone"),
    pytest.param(
        lambda c: c.participant(PID).mute(client_context="x" * 257), id="ctx-257-participant"
    ),
]


@pytest.mark.parametrize("act", INVALID_REQUESTS)
async def test_request_graph_would_refuse_raises_before_sending(
    client: CommsClient, graph: aioresponses, act: Act
) -> None:
    with pytest.raises(InvalidRequestError):
        await act(client.call(CALL_ID))
    assert graph.requests == {}
    assert client.stats.pending == 0


EDGE_REQUESTS = [
    pytest.param(lambda c: c.play_prompt([PROMPT] * 20), "playPrompt", id="20-prompts"),
    pytest.param(
        lambda c: c.record_response(
            initial_silence_timeout=1, max_silence_timeout=120, max_record_duration=120
        ),
        "recordResponse",
        id="timeouts-1-and-120",
    ),
    pytest.param(lambda c: c.invite([TARGET] * 5), "participants/invite", id="invite-5"),
    pytest.param(
        lambda c: c.play_prompt([PROMPT], client_context="x" * 256), "playPrompt", id="ctx-256"
    ),
]


@pytest.mark.parametrize(("act", "path"), EDGE_REQUESTS)
async def test_documented_limits_are_inclusive(
    client: CommsClient, graph: aioresponses, act: Act, path: str
) -> None:
    accept_operation(graph, path)
    await act(client.call(CALL_ID))
    assert ("POST", URL(f"{CALL_URL}/{path}")) in graph.requests


@pytest.mark.parametrize("timeout", [15, 90])
async def test_redirect_timeout_limits_are_inclusive(
    client: CommsClient, graph: aioresponses, timeout: int
) -> None:
    graph.post(f"{CALL_URL}/redirect", status=202)
    await client.call(CALL_ID).redirect([TARGET], timeout=timeout)
    _, _, kwargs = only_request(graph)
    assert json_body(kwargs)["timeout"] == timeout


# -- call state -------------------------------------------------------------------


async def test_wait_for_state_returns_when_the_state_arrives(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    waiting = asyncio.create_task(call.wait_for_state("established"))
    await settle()
    client.feed(state_notification(CallState.ESTABLISHING))
    await settle()
    assert not waiting.done()
    client.feed(call_notification("updated", state="established", direction="outgoing"))
    snapshot = await asyncio.wait_for(waiting, 1)
    assert snapshot.state is CallState.ESTABLISHED
    assert snapshot == call.snapshot


async def test_wait_for_state_returns_at_once_when_already_in_it(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    client.feed(state_notification(CallState.ESTABLISHED))
    snapshot = returns_without_suspending(call.wait_for_state(CallState.ESTABLISHED))
    assert snapshot.state is CallState.ESTABLISHED


async def test_wait_for_state_accepts_any_of_several_states(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    waiting = asyncio.create_task(call.wait_for_state("hold", CallState.ESTABLISHED))
    await settle()
    client.feed(state_notification(CallState.ESTABLISHED))
    assert (await asyncio.wait_for(waiting, 1)).state is CallState.ESTABLISHED


async def test_wait_for_state_timeout_raises_builtin_timeout_error(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    with pytest.raises(TimeoutError) as info:
        await call.wait_for_state("established", timeout=0.01)
    assert not isinstance(info.value, CallEndedError)
    # The abandoned wait leaves nothing behind; a new wait still works.
    client.feed(state_notification(CallState.ESTABLISHED))
    assert (await call.wait_for_state("established", timeout=1)).state is CallState.ESTABLISHED


async def test_wait_for_state_raises_call_ended_when_the_call_ends_first(
    client: CommsClient,
) -> None:
    call = client.call(CALL_ID)
    waiting = asyncio.create_task(call.wait_for_state("established"))
    await settle()
    client.feed(terminated_notification())
    with pytest.raises(CallEndedError) as info:
        await asyncio.wait_for(waiting, 1)
    assert info.value.result_info == HUNG_UP


async def test_wait_for_state_on_an_ended_call_raises_at_once(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    client.feed(terminated_notification())
    with pytest.raises(CallEndedError):
        returns_without_suspending(call.wait_for_state("established"))


async def test_wait_for_terminated_returns_when_the_call_ends(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    waiting = asyncio.create_task(call.wait_for_state("terminated"))
    await settle()
    client.feed(terminated_notification())
    snapshot = await asyncio.wait_for(waiting, 1)
    assert snapshot.state is CallState.TERMINATED
    assert snapshot.result_info == HUNG_UP
    assert call.result_info == HUNG_UP


async def test_deleted_call_without_state_is_terminated(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    # After a reject Graph may send only @odata.type and @odata.id.
    client.feed(call_notification("deleted", **{"@odata.id": f"/communications/calls/{CALL_ID}"}))
    assert call.state is CallState.TERMINATED
    assert call.ended


async def test_late_establishing_does_not_regress_established(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    client.feed(state_notification(CallState.ESTABLISHED))
    client.feed(state_notification(CallState.ESTABLISHING))
    assert call.state is CallState.ESTABLISHED


async def test_partial_snapshot_keeps_fields_it_does_not_name(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    client.feed(
        state_notification(CallState.ESTABLISHING, my_participant_id=PID, call_chain_id="chain-1")
    )
    client.feed(call_notification("updated", state="established"))
    assert call.state is CallState.ESTABLISHED
    assert call.snapshot.my_participant_id == PID
    assert call.snapshot.call_chain_id == "chain-1"


async def test_states_yields_each_change_and_ends_at_termination(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    states = call.states()
    client.feed(state_notification(CallState.ESTABLISHING))
    client.feed(state_notification(CallState.ESTABLISHING))  # no change: not yielded
    client.feed(state_notification(CallState.ESTABLISHED))
    client.feed(state_notification(CallState.ESTABLISHING))  # late: no regression
    client.feed(call_notification("updated", state="terminating"))
    client.feed(terminated_notification())
    seen = [snapshot.state for snapshot in await collect(states)]
    assert seen == [
        CallState.ESTABLISHING,
        CallState.ESTABLISHED,
        CallState.TERMINATING,
        CallState.TERMINATED,
    ]


async def test_on_state_callback_sees_each_change(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    seen: list[Any] = []
    call.on_state(lambda snapshot: seen.append(snapshot.state))
    client.feed(state_notification(CallState.ESTABLISHING))
    client.feed(state_notification(CallState.ESTABLISHED))
    await settle()
    assert seen == [CallState.ESTABLISHING, CallState.ESTABLISHED]


async def test_notification_after_the_end_does_not_revive_the_call(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    incoming: list[CallHandle] = []
    client.on_incoming_call(incoming.append)
    client.feed(terminated_notification())
    client.feed(state_notification(CallState.ESTABLISHED))
    client.feed(incoming_call_notification(CALL_ID))
    await settle()
    assert call.state is CallState.TERMINATED
    assert call.ended
    assert client.call(CALL_ID) is call
    assert incoming == []


@pytest.mark.parametrize("spelling", [CALL_ID, upper_nohyphens(CALL_ID)])
async def test_call_after_it_ended_returns_an_ended_handle(
    client: CommsClient, spelling: str
) -> None:
    # The client first learns of this call from its end notification.
    client.feed(terminated_notification())
    handle = client.call(spelling)
    assert handle.ended
    assert handle.result_info == HUNG_UP


async def test_refresh_finding_the_call_ended_fails_its_pending_operations(
    client: CommsClient, graph: aioresponses
) -> None:
    accept_operation(graph, "playPrompt")
    call = client.call(CALL_ID)
    tracker = await call.play_prompt([PROMPT])
    graph.get(
        CALL_URL,
        payload={"@odata.type": "#microsoft.graph.call", "id": CALL_ID, "state": "terminated"},
    )
    await call.refresh()
    assert call.ended
    with pytest.raises(CallEndedError):
        await asyncio.wait_for(tracker.wait(), 0.1)


# -- tones ------------------------------------------------------------------------


async def test_tones_yields_each_tone_once_in_order_and_ends_with_the_call(
    client: CommsClient,
) -> None:
    call = client.call(CALL_ID)
    tones = call.tones()
    client.feed(tone_notification(1, "tone1"))
    client.feed(tone_notification(2, "pound"))
    client.feed(tone_notification(2, "pound"))  # repeated
    client.feed(tone_notification(1, "tone1"))  # older
    client.feed(tone_notification(3, "star"))
    client.feed(terminated_notification())
    seen = await collect(tones)
    assert seen == [
        ToneInfo(sequence_id=1, tone=Tone.TONE1),
        ToneInfo(sequence_id=2, tone=Tone.POUND),
        ToneInfo(sequence_id=3, tone=Tone.STAR),
    ]


async def test_tones_iterator_ends_when_the_call_ends(client: CommsClient) -> None:
    tones = client.call(CALL_ID).tones()
    client.feed(terminated_notification())
    assert await collect(tones) == []


async def test_on_tone_runs_sync_and_async_callbacks(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    sync_seen: list[Any] = []
    async_seen: list[Any] = []

    async def on_tone_async(tone: ToneInfo) -> None:
        await asyncio.sleep(0)
        async_seen.append(tone.tone)

    call.on_tone(lambda tone: sync_seen.append(tone.tone))
    call.on_tone(on_tone_async)
    client.feed(tone_notification(1, "tone5"))
    client.feed(tone_notification(1, "tone5"))  # a duplicate calls nobody
    client.feed(tone_notification(2, "tone6"))
    await settle()
    assert sync_seen == [Tone.TONE5, Tone.TONE6]
    assert async_seen == [Tone.TONE5, Tone.TONE6]


async def test_a_late_tone_is_delivered_once_where_it_arrives(client: CommsClient) -> None:
    # Graph may reorder notifications; a caller who typed "12" must not reach the bot
    # as "2". sequenceId says where the late tone belongs.
    tones = client.call(CALL_ID).tones()
    client.feed(tone_notification(2, "tone2"))
    client.feed(tone_notification(1, "tone1"))  # never seen, but older
    client.feed(tone_notification(1, "tone1"))  # now a duplicate
    client.feed(terminated_notification())
    assert [t.sequence_id for t in await collect(tones)] == [2, 1]


async def test_stale_tone_does_not_regress_the_snapshot(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    client.feed(tone_notification(2, "tone2"))
    client.feed(tone_notification(1, "tone1"))
    assert call.snapshot.tone_info == ToneInfo(sequence_id=2, tone=Tone.TONE2)


# -- roster -----------------------------------------------------------------------


async def test_roster_notification_updates_participants_and_yields(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    roster = call.roster()
    other = "a4c1b5e2-6f3d-4a8b-9c0e-1d2f3a4b5c6d"
    client.feed(
        roster_notification(
            participant_json(PID, muted=True),
            participant_json(other, muted=False, rosterSequenceNumber=7),
        )
    )
    update = await asyncio.wait_for(anext(roster), 1)
    assert [p.id for p in update] == [PID, other]
    assert all(isinstance(p, Participant) for p in update)
    assert set(call.participants) == {PID, other}
    assert call.participants[PID].is_muted is True
    assert call.participants[other].roster_sequence_number == 7


async def test_later_roster_replaces_a_participant(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    client.feed(roster_notification(participant_json(PID, muted=True)))
    client.feed(roster_notification(participant_json(PID, muted=False)))
    assert call.participants[PID].is_muted is False


async def test_removed_participant_leaves_participants(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    roster = call.roster()
    other = "a4c1b5e2-6f3d-4a8b-9c0e-1d2f3a4b5c6d"
    client.feed(
        roster_notification(
            participant_json(PID, muted=False), participant_json(other, muted=False)
        )
    )
    client.feed(
        roster_notification(
            participant_json(
                PID,
                muted=False,
                removedState={"@odata.type": "#microsoft.graph.removedState", "reason": "left"},
            ),
            participant_json(other, muted=False),
        )
    )
    assert set(call.participants) == {other}
    await asyncio.wait_for(anext(roster), 1)
    (gone, _) = await asyncio.wait_for(anext(roster), 1)
    assert gone.id == PID
    assert gone.removed_state is not None
    assert gone.removed_state.reason == "left"


async def test_participants_is_a_copy(client: CommsClient) -> None:
    call = client.call(CALL_ID)
    client.feed(roster_notification(participant_json(PID, muted=False)))
    call.participants.clear()
    assert set(call.participants) == {PID}


async def test_roster_iterator_ends_when_the_call_ends(client: CommsClient) -> None:
    roster = client.call(CALL_ID).roster()
    client.feed(terminated_notification())
    assert await collect(roster) == []


# -- incoming calls ---------------------------------------------------------------


async def test_incoming_call_is_yielded_with_the_id_as_graph_spelled_it(
    client: CommsClient,
) -> None:
    raw = upper_nohyphens(CALL_ID)
    incoming = client.incoming_calls()
    client.feed(incoming_call_notification(raw))
    handle = await asyncio.wait_for(anext(incoming), 1)
    assert handle.id == raw
    assert handle.state is CallState.INCOMING
    assert handle.snapshot.source is not None
    assert handle.snapshot.requested_modalities == (Modality.AUDIO,)
    assert client.call(CALL_ID) is handle


async def test_on_incoming_call_callbacks_fire_sync_and_async(client: CommsClient) -> None:
    sync_seen: list[CallHandle] = []
    async_seen: list[CallHandle] = []

    async def on_call_async(call: CallHandle) -> None:
        await asyncio.sleep(0)
        async_seen.append(call)

    client.on_incoming_call(sync_seen.append)
    client.on_incoming_call(on_call_async)
    client.feed(incoming_call_notification(upper_nohyphens(CALL_ID)))
    await settle()
    assert [c.id for c in sync_seen] == [upper_nohyphens(CALL_ID)]
    assert async_seen == sync_seen


async def test_repeated_incoming_notification_offers_the_call_once(client: CommsClient) -> None:
    seen: list[CallHandle] = []
    client.on_incoming_call(seen.append)
    client.feed(incoming_call_notification(upper_nohyphens(CALL_ID)))
    client.feed(incoming_call_notification(upper_nohyphens(CALL_ID)))
    await settle()
    assert len(seen) == 1


async def test_answering_an_incoming_call_posts_to_its_id_with_the_client_callback(
    client: CommsClient, graph: aioresponses
) -> None:
    raw = upper_nohyphens(CALL_ID)
    answer_url = f"{GRAPH}communications/calls/{raw}/answer"
    graph.post(answer_url, status=202)
    incoming = client.incoming_calls()
    client.feed(incoming_call_notification(raw))
    handle = await asyncio.wait_for(anext(incoming), 1)
    await handle.answer()
    method, url, kwargs = only_request(graph)
    assert (method, url) == ("POST", URL(answer_url))
    assert json_body(kwargs) == {
        "callbackUri": CALLBACK,
        "mediaConfig": SERVICE_HOSTED_JSON,
        "acceptedModalities": ["audio"],
    }
    # Then Graph reports the call on the same id, spelled the other way.
    client.feed(state_notification(CallState.ESTABLISHED))
    assert handle.state is CallState.ESTABLISHED


async def test_operation_on_a_call_tracks_its_completion_notification(
    client: CommsClient, graph: aioresponses
) -> None:
    accept_operation(graph, "playPrompt")
    tracker = await client.call(CALL_ID).play_prompt([PROMPT])
    done = make_operation(
        PlayPromptOperation, status="completed", id=OP_ID, client_context=tracker.client_context
    )
    client.feed(make_notification(done, call_id=upper_nohyphens(CALL_ID)))
    assert isinstance(await asyncio.wait_for(tracker.wait(), 1), PlayPromptOperation)


def test_handles_repr_name_the_call_and_participant() -> None:
    client = CommsClient("secret-token", base_url=GRAPH)
    call = client.call(CALL_ID)
    assert CALL_ID in repr(call)
    assert PID in repr(call.participant(PID))
    assert call.participant(PID).call is call


# -- the typed idioms the README shows -------------------------------------------------


async def test_a_tones_key_is_the_keypad_key_as_a_str(client: CommsClient) -> None:
    tones = client.call(CALL_ID).tones()
    for seq, tone in enumerate(["tone1", "pound", "STAR", "b", "flash"], start=1):
        client.feed(tone_notification(seq, tone))
    client.feed(terminated_notification())
    assert [t.key for t in await collect(tones)] == ["1", "#", "*", "B", "!"]


@pytest.mark.parametrize(
    ("tone", "key"),
    [(Tone.TONE7, "7"), ("Tone9", "9"), ("tone10", "tone10"), (None, ""), ("", "")],
    ids=["member", "graph-name-any-casing", "unknown-to-this-version", "none", "empty"],
)
def test_tone_info_key(tone: Tone | str | None, key: str) -> None:
    assert ToneInfo(sequence_id=1, tone=tone).key == key


@pytest.mark.parametrize(
    "typo", ["establised", "connected", "", "unknownFutureValue", CallState.UNKNOWN_FUTURE_VALUE]
)
async def test_wait_for_state_refuses_a_state_graph_does_not_have_at_once(
    client: CommsClient, typo: str
) -> None:
    call = client.call(CALL_ID)
    # No timeout given: a state that can never come must not wait for ever.
    with pytest.raises(ValueError, match=r"is not a call state.*\bestablished\b") as caught:
        returns_without_suspending(call.wait_for_state(typo))
    assert repr(typo) in str(caught.value)
    assert "unknownFutureValue" not in str(caught.value).split("Graph's are:")[1]
    assert isinstance(InvalidRequestError("x"), ValueError)


@pytest.mark.parametrize(
    "prompt",
    ["https://cdn.test/hello.wav", PROMPT],
    ids=["a-url", "one-media-prompt"],
)
def test_play_prompt_takes_one_prompt_or_url_as_it_is(client: CommsClient, prompt: Any) -> None:
    pending = client.call(CALL_ID).play_prompt(prompt)
    # A str is one URL, never 25 one-character prompts.
    assert pending.request.prompts == (PROMPT,)
    del pending
