"""graphcomms._converter: Graph's JSON to models and back, on recorded payloads."""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import cattrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from graphcomms._converter import (
    CONVERTER,
    make_converter,
    structure_call,
    structure_operation,
    structure_participant,
    unstructure,
)
from graphcomms._converter._errors import failure
from graphcomms._ingest import read_change_type
from graphcomms._json import loads
from graphcomms._routing import ResourceKind, parse_resource_path
from graphcomms.errors import DeserializationError
from graphcomms.models import (
    AppHostedMediaConfig,
    Call,
    CallDirection,
    CallState,
    ChangeType,
    ChatInfo,
    CommsOperation,
    CompletionReason,
    EndpointType,
    Identity,
    IdentitySet,
    IncomingCallOptions,
    InvitationParticipantInfo,
    InviteParticipantsOperation,
    JoinMeetingIdMeetingInfo,
    MediaConfig,
    MediaDirection,
    MediaInfo,
    MediaPrompt,
    MediaStream,
    MeetingInfo,
    Modality,
    MuteParticipantOperation,
    OperationStatus,
    OrganizerMeetingInfo,
    OutgoingCallOptions,
    Participant,
    ParticipantInfo,
    PlayPromptOperation,
    RecordingStatus,
    RecordOperation,
    RejectReason,
    ResultInfo,
    ScreenSharingRole,
    SendDtmfTonesOperation,
    ServiceHostedMediaConfig,
    StartHoldMusicOperation,
    StartTranscriptionOperation,
    TokenMeetingInfo,
    Tone,
    ToneInfo,
)
from graphcomms.models import operations as operations_module
from graphcomms.models import requests as rq

PAYLOADS = Path(__file__).parent / "payloads"

CALL_ID = "421f4c00-4436-4c3a-9d9a-c4924b1e5e5f"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
APP = "c3b5d9a0-7f2e-4c1b-8a0d-5e6f7a8b9c0d"
USER = "8a34ce2e-9f41-4d5b-b0c6-1a2b3c4d5e6f"
RECORD_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.REC-ACCESS-TOKEN-9f8e7d6c.c2lnbmF0dXJl"
PROMPT_URI = "https://cdn.contoso.com/beep.wav"
PROMPT_ID = "1D6DE2D4-CD51-4309-8DAA-70768651088E"

EXPECTED_PAYLOADS = {
    "notification_play_prompt_completed",
    "notification_record_completed",
    "notification_record_cancelled",
    "notification_send_dtmf_completed",
    "notification_hold_music_no_slash",
    "notification_invite_completed",
    "notification_invite_multi_null_id",
    "notification_tone",
    "notification_call_established",
    "notification_call_terminating",
    "notification_call_terminated_string_codes",
    "notification_roster",
    "notification_incoming_call",
    "notification_legacy_resource_only",
    "notification_unknown_operation_type",
    "response_play_prompt_running",
    "response_record_running_nulls",
    "response_mute_completed",
    "response_invite_Running",
    "response_start_transcription_no_id",
    "response_cancel_record_completed",
    "error_400",
    "error_404",
    "error_429",
    "error_500_unknown",
}
NOTIFICATIONS = sorted(n for n in EXPECTED_PAYLOADS if n.startswith("notification_"))
RESPONSES = sorted(n for n in EXPECTED_PAYLOADS if n.startswith("response_"))
ERRORS = sorted(n for n in EXPECTED_PAYLOADS if n.startswith("error_"))

OPERATION_SUBTYPES: list[type[CommsOperation]] = [
    cls
    for name in operations_module.__all__
    if isinstance(cls := getattr(operations_module, name), type)
    and issubclass(cls, CommsOperation)
    and cls is not CommsOperation
]

Load = Callable[[str], Any]


def tag_of(cls: type) -> str:
    return "#microsoft.graph." + cls.__name__[0].lower() + cls.__name__[1:]


def entities(body: Any, index: int = 0) -> tuple[Any, ...]:
    """The entities of one notification item, each read as the ingestion reads it: by
    the kind of resource its path names (operations as the base type, with no pending
    tracker to give another)."""
    item = body["value"][index]
    ref = parse_resource_path(item.get("resourceUrl") or item.get("resource"))
    assert ref is not None
    data = item.get("resourceData")
    items = () if data is None else data if isinstance(data, list) else (data,)
    read = {
        ResourceKind.OPERATION: structure_operation,
        ResourceKind.CALL: structure_call,
        ResourceKind.PARTICIPANTS: structure_participant,
        ResourceKind.PARTICIPANT: structure_participant,
    }[ref.kind]
    return tuple(read(entity) for entity in items)


def only_entity(body: Any) -> Any:
    (entity,) = entities(body)
    return entity


def walk(value: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a JSON tree."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


# --- the recorded payloads ----------------------------------------------------------


def test_every_recorded_payload_is_there() -> None:
    assert {p.stem for p in PAYLOADS.glob("*.json")} >= EXPECTED_PAYLOADS


@pytest.mark.parametrize("name", NOTIFICATIONS)
def test_notification_entities_round_trip(name: str, payload: Load) -> None:
    first = entities(payload(name))
    wire = [unstructure(entity) for entity in first]
    body = payload(name)
    body["value"][0]["resourceData"] = json.loads(json.dumps(wire))
    assert entities(body) == first
    assert entities(loads((PAYLOADS / f"{name}.json").read_bytes())) == first


@pytest.mark.parametrize("name", RESPONSES)
def test_response_round_trips(name: str, payload: Load) -> None:
    first = structure_operation(payload(name))
    wire = unstructure(first)
    assert structure_operation(json.loads(json.dumps(wire))) == first


@pytest.mark.parametrize("name", ERRORS)
def test_error_payloads_are_graph_error_bodies(name: str) -> None:
    body = loads((PAYLOADS / f"{name}.json").read_bytes())
    assert isinstance(body["error"]["code"], str)
    assert "request-id" in body["error"]["innerError"]


def test_play_prompt_completed_without_id(payload: Load) -> None:
    body = payload("notification_play_prompt_completed")
    (item,) = body["value"]
    assert read_change_type(item["changeType"]) is ChangeType.DELETED
    assert parse_resource_path(item["resourceUrl"]) == (
        ResourceKind.OPERATION,
        "421f4c0044364c3a9d9ac4924b1e5e5f",
        "0fe0623fd62842edb4bd8ac290072cc5",
        "421F4C0044364C3A9D9AC4924B1E5E5F",
    )
    assert entities(body) == (
        PlayPromptOperation(
            client_context="gc-7f3a2b1c-play",
            status=OperationStatus.COMPLETED,
            result_info=ResultInfo(code=200, subcode=0, message="Action completed successfully."),
        ),
    )
    assert only_entity(body).succeeded


def test_record_completed_keeps_location_and_hides_token(payload: Load) -> None:
    op = only_entity(payload("notification_record_completed"))
    assert isinstance(op, RecordOperation)
    assert op.recording_location == "https://file.location/17e3b46c-f61d-4f4d-9635-c626ef18e6ad"
    assert op.recording_access_token == RECORD_TOKEN
    assert op.result_info == ResultInfo(
        code=200, subcode=8515, message="Action completed, max record duration reached."
    )
    assert RECORD_TOKEN not in repr(op)


def test_record_cancelled_is_a_failure(payload: Load) -> None:
    op = only_entity(payload("notification_record_cancelled"))
    assert isinstance(op, RecordOperation)
    assert op.status is OperationStatus.FAILED
    assert op.completion_reason is CompletionReason.OPERATION_CANCELED
    assert op.recording_location == ""
    assert op.result_info == ResultInfo(
        code=400, subcode=8508, message="Action failed, the operation was cancelled."
    )
    assert not op.succeeded


def test_send_dtmf_completed(payload: Load) -> None:
    op = only_entity(payload("notification_send_dtmf_completed"))
    assert op == SendDtmfTonesOperation(
        id="6d2b3f9a-1c4e-4b7a-8f0d-2e3c4b5a6978",
        client_context="gc-2c3d4e5f-dtmf",
        status=OperationStatus.COMPLETED,
        completion_reason=CompletionReason.COMPLETED_SUCCESSFULLY,
    )


def test_hold_music_resource_url_without_leading_slash(payload: Load) -> None:
    body = payload("notification_hold_music_no_slash")
    assert body["value"][0]["resourceUrl"].startswith("communications/calls/")
    op = only_entity(body)
    assert type(op) is StartHoldMusicOperation
    assert op.id is None


def test_invite_completed_keeps_legacy_resource(payload: Load) -> None:
    body = payload("notification_invite_completed")
    (item,) = body["value"]
    assert (
        item["resource"] == f"/app/calls/{CALL_ID}/operations/5b9d1e2f-3a4c-4d6e-8f70-1a2b3c4d5e6f"
    )
    assert parse_resource_path(item["resource"]) == parse_resource_path(item["resourceUrl"])
    op = only_entity(body)
    assert isinstance(op, InviteParticipantsOperation)
    assert op.participants == (
        InvitationParticipantInfo(
            identity=IdentitySet(user=Identity(id=USER, identity_provider="AAD", tenant_id=TENANT))
        ),
    )


def test_multi_invite_with_null_id(payload: Load) -> None:
    body = payload("notification_invite_multi_null_id")
    assert body["value"][0]["resourceUrl"].endswith("/operations/participants")
    op = only_entity(body)
    assert isinstance(op, InviteParticipantsOperation)
    assert op.id is None
    assert op.client_context == "gc-5e6f7a8b-invite"
    assert len(op.participants) == 2


def test_tone(payload: Load) -> None:
    call = only_entity(payload("notification_tone"))
    assert call == Call(
        state=CallState.ESTABLISHED, tone_info=ToneInfo(sequence_id=1, tone=Tone.TONE1)
    )


def test_call_established_with_callback_uri(payload: Load) -> None:
    body = payload("notification_call_established")
    assert body["value"][0]["callbackUri"] == "https://bot.contoso.com/api/calling/callback"
    assert only_entity(body) == Call(
        id=CALL_ID, state=CallState.ESTABLISHED, direction=CallDirection.OUTGOING
    )


def test_call_terminating(payload: Load) -> None:
    body = payload("notification_call_terminating")
    assert read_change_type(body["value"][0]["changeType"]) is ChangeType.UPDATED
    assert only_entity(body) == Call(state=CallState.TERMINATING)


def test_call_terminated_with_string_codes(payload: Load) -> None:
    body = payload("notification_call_terminated_string_codes")
    assert read_change_type(body["value"][0]["changeType"]) is ChangeType.DELETED
    assert only_entity(body) == Call(
        state=CallState.TERMINATED,
        result_info=ResultInfo(code=200, subcode=5001, message="The conversation has ended."),
    )


def test_roster_is_an_array_of_participants(payload: Load) -> None:
    bob, bot = entities(payload("notification_roster"))
    assert bob == Participant(
        id="550fae72-d251-43ec-868c-373732c2704f",
        info=ParticipantInfo(
            identity=IdentitySet(user=Identity(id=USER, display_name="Bob")),
            region="westus",
            language_id="en-US",
        ),
        media_streams=(
            MediaStream(
                media_type=Modality.AUDIO,
                label="main-audio",
                source_id="1",
                direction=MediaDirection.SEND_RECEIVE,
            ),
        ),
        is_muted=True,
        is_in_lobby=False,
    )
    assert isinstance(bot, Participant)
    assert bot.roster_sequence_number == 7
    assert bot.media_streams[0].server_muted is False  # type: ignore[index]


def test_incoming_call(payload: Load) -> None:
    data = payload("notification_incoming_call")
    assert read_change_type(data["value"][0]["changeType"]) is ChangeType.CREATED
    call = only_entity(data)
    assert isinstance(call, Call)
    assert call.state is CallState.INCOMING
    assert call.direction is CallDirection.INCOMING
    assert call.source == ParticipantInfo(
        identity=IdentitySet(user=Identity(id=USER, display_name="Test User", tenant_id=TENANT)),
        region="westus",
        language_id="en-US",
    )
    assert call.targets == (
        InvitationParticipantInfo(
            identity=IdentitySet(application=Identity(id=APP, display_name="Test BOT"))
        ),
    )
    assert call.requested_modalities == (Modality.AUDIO,)
    assert call.media_config == ServiceHostedMediaConfig()
    assert call.tenant_id == TENANT
    assert call.incoming_context == data["value"][0]["resourceData"]["incomingContext"]
    assert type(call.incoming_context) is dict


def test_legacy_payload_with_resource_only(payload: Load) -> None:
    body = payload("notification_legacy_resource_only")
    (item,) = body["value"]
    assert read_change_type(item["changeType"]) is ChangeType.DELETED
    assert "resourceUrl" not in item
    assert (
        item["resource"] == f"/app/calls/{CALL_ID}/operations/c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"
    )
    (op,) = entities(body)
    assert isinstance(op, RecordOperation)
    assert op.status is OperationStatus.COMPLETED
    assert op.completion_reason is CompletionReason.STOP_TONE_DETECTED
    assert op.recording_location == "https://file.location/c1d2e3f4a5b64c7d"
    assert op.recording_access_token == "LEGACY-RECORD-TOKEN-3c4d5e6f"
    assert op.result_info == ResultInfo(
        code=200, subcode=8514, message="Action completed, stop tone detected."
    )


def test_unknown_operation_type_is_a_base_operation(payload: Load) -> None:
    op = only_entity(payload("notification_unknown_operation_type"))
    assert type(op) is CommsOperation
    assert op.odata_type == "#microsoft.graph.startBreakoutRoomsOperation"
    assert op.status is OperationStatus.COMPLETED
    assert op.id == "9e8d7c6b-5a4f-4e3d-9c2b-1a0f9e8d7c6b"
    assert op.succeeded


def test_response_play_prompt_running(payload: Load) -> None:
    assert structure_operation(payload("response_play_prompt_running")) == PlayPromptOperation(
        id="0fe0623f-d628-42ed-b4bd-8ac290072cc5",
        client_context="gc-7f3a2b1c-play",
        status=OperationStatus.RUNNING,
    )


def test_response_record_running_with_nulls(payload: Load) -> None:
    op = structure_operation(payload("response_record_running_nulls"))
    assert op == RecordOperation(
        id="ab4ec4f8-7c33-4a52-8a8b-9e7e6c5f1a2d",
        client_context="gc-4e5d6c7b-record",
        status=OperationStatus.RUNNING,
    )


def test_response_mute_completed_with_odata_context(payload: Load) -> None:
    op = structure_operation(payload("response_mute_completed"))
    assert type(op) is MuteParticipantOperation
    assert op.status is OperationStatus.COMPLETED
    assert op.odata_type is None


def test_response_invite_pascal_case_running(payload: Load) -> None:
    op = structure_operation(payload("response_invite_Running"))
    assert isinstance(op, InviteParticipantsOperation)
    assert op.status is OperationStatus.RUNNING
    assert not op.is_terminal


def test_response_start_transcription_without_id(payload: Load) -> None:
    op = structure_operation(payload("response_start_transcription_no_id"))
    assert op == StartTranscriptionOperation(
        client_context="gc-0f9e8d7c-transcribe", status=OperationStatus.RUNNING
    )


def test_response_cancel_is_a_completed_record_that_failed(payload: Load) -> None:
    op = structure_operation(payload("response_cancel_record_completed"))
    assert isinstance(op, RecordOperation)
    assert op.status is OperationStatus.COMPLETED
    assert op.completion_reason is CompletionReason.OPERATION_CANCELED
    assert op.is_terminal
    assert not op.succeeded


# --- @odata.type dispatch -----------------------------------------------------------


def test_there_are_twenty_operation_subtypes() -> None:
    assert len(OPERATION_SUBTYPES) == 20


@pytest.mark.parametrize("cls", OPERATION_SUBTYPES, ids=lambda c: c.__name__)
def test_dispatch_to_each_subtype(cls: type[CommsOperation]) -> None:
    data = {"@odata.type": tag_of(cls), "id": "op-1", "status": "running"}
    op = structure_operation(data)
    assert type(op) is cls
    assert op.id == "op-1"
    assert op.odata_type is None
    assert type(CONVERTER.structure(data, CommsOperation)) is cls
    assert unstructure(op)["@odata.type"] == tag_of(cls)


@pytest.mark.parametrize(
    "tag",
    [
        "#microsoft.graph.playPromptOperation",
        "#Microsoft.Graph.PlayPromptOperation",
        "#MICROSOFT.GRAPH.PLAYPROMPTOPERATION",
        "microsoft.graph.playPromptOperation",
        "playPromptOperation",
        "PlayPromptOperation",
        "#playpromptoperation",
    ],
)
def test_dispatch_ignores_case_and_prefix(tag: str) -> None:
    assert type(structure_operation({"@odata.type": tag})) is PlayPromptOperation


def test_unknown_type_falls_back_to_base_keeping_the_type() -> None:
    op = structure_operation({"@odata.type": "#microsoft.graph.fooOperation", "status": "failed"})
    assert op == CommsOperation(
        status=OperationStatus.FAILED, odata_type="#microsoft.graph.fooOperation"
    )
    assert unstructure(op) == {"@odata.type": "#microsoft.graph.fooOperation", "status": "failed"}


def test_missing_type_uses_the_default() -> None:
    data = {"id": "op-1", "status": "running"}
    assert type(structure_operation(data)) is CommsOperation
    assert type(structure_operation(data, default=RecordOperation)) is RecordOperation
    assert structure_operation(data).odata_type is None


def test_the_tag_narrows_the_default_and_never_leaves_it() -> None:
    """What an action returns stays the type it declares: a tag naming a subtype of
    the default picks it; a tag naming any other type reads as the default."""
    record = {"@odata.type": "#microsoft.graph.recordOperation", "status": "running"}
    assert type(structure_operation(record, CommsOperation)) is RecordOperation
    assert type(structure_operation(record, RecordOperation)) is RecordOperation
    assert type(structure_operation(record, PlayPromptOperation)) is PlayPromptOperation
    assert type(CONVERTER.structure(record, PlayPromptOperation)) is PlayPromptOperation
    base = {"@odata.type": "#microsoft.graph.commsOperation", "status": "running"}
    assert type(structure_operation(base, PlayPromptOperation)) is PlayPromptOperation
    unknown = {"@odata.type": "#microsoft.graph.fooOperation", "status": "running"}
    assert type(structure_operation(unknown, PlayPromptOperation)) is PlayPromptOperation
    assert structure_operation(unknown, PlayPromptOperation).odata_type is None


# --- quirks (reference §5.8) --------------------------------------------------------


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ({"code": 200, "subcode": 0}, ResultInfo(code=200, subcode=0)),
        ({"code": "200", "subcode": "5001"}, ResultInfo(code=200, subcode=5001)),
        ({"code": 500, "subCode": 7000}, ResultInfo(code=500, subcode=7000)),
        ({"code": 500, "subcode": None, "subCode": "7700"}, ResultInfo(code=500, subcode=7700)),
        ({"code": 500, "subcode": 1, "subCode": 2}, ResultInfo(code=500, subcode=1)),
        ({"code": 200.0}, ResultInfo(code=200)),
        ({"code": "OK", "subcode": "n/a"}, ResultInfo()),
        ({"code": True, "subcode": [1]}, ResultInfo()),
        ({"code": 200.5}, ResultInfo()),
        ({}, ResultInfo()),
    ],
)
def test_result_info_codes(info: dict[str, Any], expected: ResultInfo) -> None:
    op = structure_operation({"status": "failed", "resultInfo": info})
    assert op.result_info == expected


@pytest.mark.parametrize("status", ["running", "Running", "RUNNING", "rUnNiNg"])
def test_status_ignores_case(status: str) -> None:
    assert structure_operation({"status": status}).status is OperationStatus.RUNNING


def test_missing_or_null_id() -> None:
    assert structure_operation({"status": "running"}).id is None
    assert structure_operation({"status": "running", "id": None}).id is None


def test_legacy_record_keys() -> None:
    legacy = {
        "@odata.type": "#microsoft.graph.recordOperation",
        "recordResourceLocation": "https://old/location",
        "recordResourceAccessToken": "old-token",
    }
    op = structure_operation(legacy)
    assert isinstance(op, RecordOperation)
    assert (op.recording_location, op.recording_access_token) == (
        "https://old/location",
        "old-token",
    )
    current = structure_operation({**legacy, "recordingLocation": "https://new/location"})
    assert current.recording_location == "https://new/location"  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", [CommsOperation, MuteParticipantOperation, PlayPromptOperation])
def test_completion_reason_read_on_any_operation(cls: type[CommsOperation]) -> None:
    op = structure_operation(
        {"@odata.type": tag_of(cls), "status": "completed", "completionReason": "operationCanceled"}
    )
    assert op.completion_reason is CompletionReason.OPERATION_CANCELED
    assert not op.succeeded


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "2019-03-01T19:03:28.1234567Z",
            datetime(2019, 3, 1, 19, 3, 28, 123456, tzinfo=timezone.utc),
        ),
        ("2019-03-01T19:03:28Z", datetime(2019, 3, 1, 19, 3, 28, tzinfo=timezone.utc)),
        ("2019-03-01T19:03:28.5z", datetime(2019, 3, 1, 19, 3, 28, 500000, tzinfo=timezone.utc)),
        ("2019-03-01T19:03:28", datetime(2019, 3, 1, 19, 3, 28, tzinfo=timezone.utc)),
        (
            "2019-03-01T19:03:28.12+02:00",
            datetime(2019, 3, 1, 19, 3, 28, 120000, tzinfo=timezone(timedelta(hours=2))),
        ),
        (
            "2019-03-01T19:03:28-0530",
            datetime(2019, 3, 1, 19, 3, 28, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
        ("2019-03-01", datetime(2019, 3, 1, tzinfo=timezone.utc)),
        ("0001-01-01T00:00:00Z", datetime(1, 1, 1, tzinfo=timezone.utc)),
        ("yesterday", None),
        ("2019-13-01T00:00:00Z", None),
        ("2019-03-01T19:03:28+25:00", None),
        (1551467008, None),
    ],
)
def test_datetimes(text: Any, expected: datetime | None) -> None:
    op = structure_operation(
        {"@odata.type": "#microsoft.graph.playPromptOperation", "createdDateTime": text}
    )
    assert isinstance(op, PlayPromptOperation)
    assert op.created_date_time == expected
    if expected is not None:
        assert op.created_date_time.tzinfo is not None  # type: ignore[union-attr]


def test_datetimes_are_written_in_utc_with_z() -> None:
    op = PlayPromptOperation(
        created_date_time=datetime(2019, 3, 1, 19, 3, 28, 123456, tzinfo=timezone.utc),
        last_action_date_time=datetime(2019, 3, 1, 20, 0, tzinfo=timezone(timedelta(hours=1))),
    )
    wire = unstructure(op)
    assert wire["createdDateTime"] == "2019-03-01T19:03:28.123456Z"
    assert wire["lastActionDateTime"] == "2019-03-01T20:00:00+01:00"
    assert structure_operation(wire) == op


def test_collections_are_tuples_and_null_is_empty() -> None:
    op = structure_operation(
        {"@odata.type": "#microsoft.graph.inviteParticipantsOperation", "participants": None}
    )
    assert op == InviteParticipantsOperation()
    call = structure_call({"requestedModalities": ["audio", "video"], "targets": []})
    assert call.requested_modalities == (Modality.AUDIO, Modality.VIDEO)
    assert call.targets == ()
    muted = structure_operation(
        {"@odata.type": "#microsoft.graph.muteParticipantsOperation", "participants": ["a", "b"]}
    )
    assert muted.participants == ("a", "b")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"@odata.type": "#microsoft.graph.serviceHostedMediaConfig"}, ServiceHostedMediaConfig()),
        (
            {"@odata.type": "#microsoft.graph.appHostedMediaConfig", "blob": "<config>"},
            AppHostedMediaConfig(blob="<config>"),
        ),
        (
            {"preFetchMedia": [{"uri": PROMPT_URI, "resourceId": PROMPT_ID}]},
            ServiceHostedMediaConfig(
                pre_fetch_media=(MediaInfo(uri=PROMPT_URI, resource_id=PROMPT_ID),)
            ),
        ),
        ({"blob": "<config>"}, AppHostedMediaConfig(blob="<config>")),
        ({}, ServiceHostedMediaConfig()),
        # A configuration of a type graphcomms does not know: its properties are kept.
        (
            {"@odata.type": "#microsoft.graph.futureMediaConfig", "blob": "x"},
            MediaConfig(additional_data={"blob": "x"}),
        ),
    ],
)
def test_media_config_is_polymorphic(data: dict[str, Any], expected: MediaConfig) -> None:
    call = structure_call({"mediaConfig": data})
    assert call.media_config == expected
    assert type(call.media_config) is type(expected)
    assert structure_call(unstructure(call)) == call


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"@odata.type": "#microsoft.graph.organizerMeetingInfo", "organizer": {}},
            OrganizerMeetingInfo(organizer=IdentitySet()),
        ),
        (
            {"organizer": {"user": {"id": USER}}},
            OrganizerMeetingInfo(organizer=IdentitySet.for_user(USER)),
        ),
        ({"token": "t"}, TokenMeetingInfo(token="t")),
        (
            {"joinMeetingId": "1234567", "passcode": "p"},
            JoinMeetingIdMeetingInfo(join_meeting_id="1234567", passcode="p"),
        ),
        ({"@odata.type": "#microsoft.graph.tokenMeetingInfo"}, TokenMeetingInfo()),
        (
            {"@odata.type": "#microsoft.graph.teamsMeetingInfo", "token": "t"},
            MeetingInfo(additional_data={"token": "t"}),
        ),
        ({}, MeetingInfo()),
    ],
)
def test_meeting_info_is_polymorphic(data: dict[str, Any], expected: MeetingInfo) -> None:
    call = structure_call({"meetingInfo": data})
    assert call.meeting_info == expected
    assert type(call.meeting_info) is type(expected)
    assert structure_call(unstructure(call)) == call


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (
            {"@odata.type": "#microsoft.graph.incomingCallOptions", "isDeltaRosterEnabled": True},
            IncomingCallOptions(is_delta_roster_enabled=True),
        ),
        (
            {"@odata.type": "#microsoft.graph.outgoingCallOptions"},
            OutgoingCallOptions(),
        ),
        ({"hideBotAfterEscalation": True}, OutgoingCallOptions(hide_bot_after_escalation=True)),
    ],
)
def test_call_options_by_type_default_outgoing(
    data: dict[str, Any], expected: IncomingCallOptions | OutgoingCallOptions
) -> None:
    call = structure_call({"callOptions": data})
    assert call.call_options == expected
    assert type(call.call_options) is type(expected)
    assert structure_call(unstructure(call)) == call


def test_call_options_fields_are_checked_like_any_other() -> None:
    # The options readers are built early; they must still get the strict scalar hooks.
    with pytest.raises(DeserializationError, match="expected a boolean"):
        structure_call({"callOptions": {"isDeltaRosterEnabled": "perhaps"}})


def test_prompts_are_media_prompts() -> None:
    body = {
        "prompts": [
            {"mediaInfo": {"uri": PROMPT_URI}},
            {"@odata.type": "#microsoft.graph.prompt", "mediaInfo": {"uri": "u"}},
        ],
        "clientContext": "c",
    }
    request = CONVERTER.structure(body, rq.PlayPromptRequest)
    assert request.prompts == (MediaPrompt.from_uri(PROMPT_URI), MediaPrompt.from_uri("u"))
    hold = CONVERTER.structure(
        {"customPrompt": {"mediaInfo": {"uri": "u"}}}, rq.StartHoldMusicRequest
    )
    assert hold.custom_prompt == MediaPrompt.from_uri("u")


def test_unknown_keys_are_kept_and_annotations_ignored() -> None:
    data = {
        "@odata.type": "#microsoft.graph.playPromptOperation",
        "@odata.id": "/communications/calls/x/operations/y",
        "@odata.etag": 'W/"1"',
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#playPromptOperation",
        "@microsoft.graph.tips": "an instance annotation",
        "status": "completed",
        "prompts": [{"whatever": True}],
        "brandNew": {"nested": [1, 2, 3]},
    }
    op = structure_operation(data)
    assert op == PlayPromptOperation(
        status=OperationStatus.COMPLETED,
        additional_data={"prompts": [{"whatever": True}], "brandNew": {"nested": [1, 2, 3]}},
    )
    assert op != PlayPromptOperation(status=OperationStatus.COMPLETED)
    assert structure_operation(
        {k: v for k, v in data.items() if k not in ("prompts", "brandNew")}
    ) == PlayPromptOperation(status=OperationStatus.COMPLETED)


def test_enums_ignore_case() -> None:
    body = {
        "value": [
            {
                "changeType": "Updated",
                "resourceUrl": f"/communications/calls/{CALL_ID}",
                "resourceData": {
                    "@odata.type": "#microsoft.graph.call",
                    "state": "ESTABLISHED",
                    "direction": "Incoming",
                    "requestedModalities": ["Audio"],
                    "toneInfo": {"tone": "Tone5", "sequenceId": "12"},
                },
            }
        ]
    }
    assert read_change_type(body["value"][0]["changeType"]) is ChangeType.UPDATED
    assert only_entity(body) == Call(
        state=CallState.ESTABLISHED,
        direction=CallDirection.INCOMING,
        requested_modalities=(Modality.AUDIO,),
        tone_info=ToneInfo(tone=Tone.TONE5, sequence_id=12),
    )


def test_unknown_enum_values_are_kept_as_strings() -> None:
    op = structure_operation({"status": "Paused", "completionReason": "cosmicRay"})
    assert op.status == "Paused"
    assert type(op.status) is str
    assert op.completion_reason == "cosmicRay"
    assert not op.is_terminal
    call = structure_call({"state": "parked", "requestedModalities": ["hologram"]})
    assert (call.state, call.requested_modalities) == ("parked", ("hologram",))
    assert read_change_type("archived") == "archived"
    assert read_change_type(None) == ""
    assert unstructure(op) == {
        "@odata.type": "#microsoft.graph.commsOperation",
        "status": "Paused",
        "completionReason": "cosmicRay",
    }


def test_structure_participant() -> None:
    participant = structure_participant(
        {
            "id": "p",
            "isMuted": True,
            "recordingInfo": {"recordingStatus": "Recording"},
            "removedState": {"reason": "Removed"},
        }
    )
    assert participant.is_muted is True
    assert participant.recording_info.recording_status is RecordingStatus.RECORDING  # type: ignore[union-attr]
    assert participant.removed_state.reason == "Removed"  # type: ignore[union-attr]


# --- writing ------------------------------------------------------------------------


def test_graph_objects_carry_odata_type_and_no_nones(payload: Load) -> None:
    wire = unstructure(only_entity(payload("notification_incoming_call")))
    call = wire
    assert call["@odata.type"] == "#microsoft.graph.call"
    assert call["source"]["@odata.type"] == "#microsoft.graph.participantInfo"
    assert call["source"]["identity"]["@odata.type"] == "#microsoft.graph.identitySet"
    assert call["source"]["identity"]["user"]["@odata.type"] == "#microsoft.graph.identity"
    assert call["targets"][0]["@odata.type"] == "#microsoft.graph.invitationParticipantInfo"
    assert call["mediaConfig"] == {"@odata.type": "#microsoft.graph.serviceHostedMediaConfig"}
    for key, value in walk(wire):
        assert value is not None, key
        assert key != "odataType"
        assert "_" not in key, key


def test_operation_wire_shape() -> None:
    op = RecordOperation(
        id="op-1",
        client_context="ctx",
        status=OperationStatus.COMPLETED,
        result_info=ResultInfo(code=200, subcode=8515, message="done"),
        completion_reason=CompletionReason.MAX_RECORD_DURATION_REACHED,
        recording_location="https://file.location/r",
        recording_access_token="tok",
    )
    assert unstructure(op) == {
        "@odata.type": "#microsoft.graph.recordOperation",
        "id": "op-1",
        "clientContext": "ctx",
        "status": "completed",
        "resultInfo": {
            "@odata.type": "#microsoft.graph.resultInfo",
            "code": 200,
            "subcode": 8515,
            "message": "done",
        },
        "completionReason": "maxRecordDurationReached",
        "recordingLocation": "https://file.location/r",
        "recordingAccessToken": "tok",
    }


def test_call_is_a_create_call_body() -> None:
    call = Call(
        callback_uri="https://bot.contoso.com/callback",
        source=ParticipantInfo(
            identity=IdentitySet.for_application(APP, display_name="Calling Bot")
        ),
        targets=(
            InvitationParticipantInfo(identity=IdentitySet.for_user(USER, display_name="John")),
        ),
        requested_modalities=(Modality.AUDIO,),
        media_config=ServiceHostedMediaConfig(
            pre_fetch_media=(MediaInfo(uri=PROMPT_URI, resource_id=PROMPT_ID),)
        ),
        tenant_id=TENANT,
    )
    assert unstructure(call) == {
        "@odata.type": "#microsoft.graph.call",
        "callbackUri": "https://bot.contoso.com/callback",
        "source": {
            "@odata.type": "#microsoft.graph.participantInfo",
            "identity": {
                "@odata.type": "#microsoft.graph.identitySet",
                "application": {
                    "@odata.type": "#microsoft.graph.identity",
                    "id": APP,
                    "displayName": "Calling Bot",
                },
            },
        },
        "targets": [
            {
                "@odata.type": "#microsoft.graph.invitationParticipantInfo",
                "identity": {
                    "@odata.type": "#microsoft.graph.identitySet",
                    "user": {
                        "@odata.type": "#microsoft.graph.identity",
                        "id": USER,
                        "displayName": "John",
                    },
                },
            }
        ],
        "requestedModalities": ["audio"],
        "mediaConfig": {
            "@odata.type": "#microsoft.graph.serviceHostedMediaConfig",
            "preFetchMedia": [
                {
                    "@odata.type": "#microsoft.graph.mediaInfo",
                    "uri": PROMPT_URI,
                    "resourceId": PROMPT_ID,
                }
            ],
        },
        "tenantId": TENANT,
    }
    assert structure_call(unstructure(call)) == call


def test_meeting_join_body() -> None:
    call = Call(
        callback_uri="https://bot.contoso.com/callback",
        chat_info=ChatInfo(thread_id="19:meeting_abc@thread.v2", message_id="0"),
        meeting_info=OrganizerMeetingInfo(organizer=IdentitySet.for_user(USER, tenant_id=TENANT)),
        call_options=OutgoingCallOptions(is_content_sharing_notification_enabled=True),
        media_config=AppHostedMediaConfig(blob="<media session>"),
    )
    wire = unstructure(call)
    assert wire["chatInfo"] == {
        "@odata.type": "#microsoft.graph.chatInfo",
        "threadId": "19:meeting_abc@thread.v2",
        "messageId": "0",
    }
    assert wire["meetingInfo"]["@odata.type"] == "#microsoft.graph.organizerMeetingInfo"
    assert wire["callOptions"] == {
        "@odata.type": "#microsoft.graph.outgoingCallOptions",
        "isContentSharingNotificationEnabled": True,
    }
    assert wire["mediaConfig"] == {
        "@odata.type": "#microsoft.graph.appHostedMediaConfig",
        "blob": "<media session>",
    }
    assert structure_call(wire) == call


def test_unstructure_refuses_what_is_not_a_model() -> None:
    with pytest.raises(TypeError):
        unstructure(42)


# --- request bodies (reference §2.2) ------------------------------------------------

MEDIA_PROMPT_WIRE = {
    "@odata.type": "#microsoft.graph.mediaPrompt",
    "mediaInfo": {
        "@odata.type": "#microsoft.graph.mediaInfo",
        "uri": PROMPT_URI,
        "resourceId": PROMPT_ID,
    },
}
PROMPT = MediaPrompt.from_uri(PROMPT_URI, resource_id=PROMPT_ID)
CTX = "d45324c1-fcb5-430a-902c-f20af696537c"
USER_WIRE = {
    "@odata.type": "#microsoft.graph.identitySet",
    "user": {"@odata.type": "#microsoft.graph.identity", "id": USER, "tenantId": TENANT},
}


def _context_only() -> list[tuple[rq.ActionRequest, dict[str, Any]]]:
    classes: list[type[rq.OperationRequest[Any]]] = [
        rq.CancelMediaProcessingRequest,
        rq.SubscribeToToneRequest,
        rq.MuteRequest,
        rq.UnmuteRequest,
        rq.AddLargeGalleryViewRequest,
        rq.MuteParticipantRequest,
        rq.StopHoldMusicRequest,
        rq.StartRecordingRequest,
        rq.StopRecordingRequest,
        rq.AdmitAllFromLobbyRequest,
        rq.AdmitFromLobbyRequest,
        rq.RemoveFromLobbyRequest,
    ]
    return [(cls(client_context=CTX), {"clientContext": CTX}) for cls in classes] + [
        (cls(), {}) for cls in classes
    ]


REQUEST_BODIES: list[tuple[rq.ActionRequest, dict[str, Any]]] = [
    (
        rq.PlayPromptRequest(prompts=[PROMPT], client_context=CTX),
        {"clientContext": CTX, "prompts": [MEDIA_PROMPT_WIRE]},
    ),
    (
        rq.PlayPromptRequest(prompts=[PROMPT, PROMPT], loop=True),
        {"prompts": [MEDIA_PROMPT_WIRE, MEDIA_PROMPT_WIRE], "loop": True},
    ),
    (
        rq.RecordResponseRequest(
            prompts=[PROMPT],
            barge_in_allowed=True,
            initial_silence_timeout_in_seconds=10,
            max_silence_timeout_in_seconds=10,
            max_record_duration_in_seconds=10,
            play_beep=True,
            stop_tones=["#", "1", "*"],
            client_context=CTX,
        ),
        {
            "bargeInAllowed": True,
            "clientContext": CTX,
            "prompts": [MEDIA_PROMPT_WIRE],
            "maxRecordDurationInSeconds": 10,
            "initialSilenceTimeoutInSeconds": 10,
            "maxSilenceTimeoutInSeconds": 10,
            "playBeep": True,
            "stopTones": ["#", "1", "*"],
        },
    ),
    (rq.RecordResponseRequest(), {}),
    (
        rq.RecordRequest(stream_while_recording=True, max_record_duration_in_seconds=120),
        {"streamWhileRecording": True, "maxRecordDurationInSeconds": 120},
    ),
    (
        rq.SendDtmfTonesRequest(
            tones=[Tone.TONE1, Tone.TONE2, Tone.POUND],
            delay_between_tones_ms=2000,
            client_context=CTX,
        ),
        {"tones": ["tone1", "tone2", "pound"], "delayBetweenTonesMs": 2000, "clientContext": CTX},
    ),
    (
        rq.UpdateRecordingStatusRequest(status=RecordingStatus.NOT_RECORDING, client_context=CTX),
        {"clientContext": CTX, "status": "notRecording"},
    ),
    (
        rq.InviteParticipantsRequest(
            participants=[
                InvitationParticipantInfo(
                    identity=IdentitySet.for_user(USER, tenant_id=TENANT),
                    replaces_call_id="a7ebfb2d-871e-419c-87af-27290b22e8db",
                )
            ],
            client_context=CTX,
        ),
        {
            "participants": [
                {
                    "@odata.type": "#microsoft.graph.invitationParticipantInfo",
                    "identity": USER_WIRE,
                    "replacesCallId": "a7ebfb2d-871e-419c-87af-27290b22e8db",
                }
            ],
            "clientContext": CTX,
        },
    ),
    (
        rq.StartHoldMusicRequest(custom_prompt=PROMPT, client_context=CTX),
        {"customPrompt": MEDIA_PROMPT_WIRE, "clientContext": CTX},
    ),
    (rq.StartHoldMusicRequest(), {}),
    (
        rq.MuteAllRequest(participants=["p-1", "p-2"], client_context=CTX),
        {"participants": ["p-1", "p-2"], "clientContext": CTX},
    ),
    (rq.StartTranscriptionRequest(language="en-us"), {"language": "en-us"}),
    (
        rq.StopTranscriptionRequest(language="en-us", client_context=CTX),
        {"language": "en-us", "clientContext": CTX},
    ),
    (
        rq.AnswerRequest(
            callback_uri="https://bot.contoso.com/api/calls",
            media_config=ServiceHostedMediaConfig(
                pre_fetch_media=(MediaInfo(uri=PROMPT_URI, resource_id=PROMPT_ID),)
            ),
            accepted_modalities=[Modality.AUDIO],
            participant_capacity=200,
            call_options=IncomingCallOptions(is_content_sharing_notification_enabled=True),
        ),
        {
            "callbackUri": "https://bot.contoso.com/api/calls",
            "mediaConfig": {
                "@odata.type": "#microsoft.graph.serviceHostedMediaConfig",
                "preFetchMedia": [MEDIA_PROMPT_WIRE["mediaInfo"]],
            },
            "acceptedModalities": ["audio"],
            "participantCapacity": 200,
            "callOptions": {
                "@odata.type": "#microsoft.graph.incomingCallOptions",
                "isContentSharingNotificationEnabled": True,
            },
        },
    ),
    (
        rq.AnswerRequest(media_config=AppHostedMediaConfig(blob="<Media Session Configuration>")),
        {
            "mediaConfig": {
                "@odata.type": "#microsoft.graph.appHostedMediaConfig",
                "blob": "<Media Session Configuration>",
            },
            "acceptedModalities": ["audio"],
        },
    ),
    (
        rq.RejectRequest(reason=RejectReason.BUSY, callback_uri="https://bot.contoso.com/cb"),
        {"reason": "busy", "callbackUri": "https://bot.contoso.com/cb"},
    ),
    (rq.RejectRequest(), {}),
    (
        rq.RedirectRequest(
            targets=[InvitationParticipantInfo(identity=IdentitySet.for_phone("+12345678901"))],
            timeout=60,
            callback_uri="https://bot.contoso.com/cb",
            mask_caller=True,
        ),
        {
            "targets": [
                {
                    "@odata.type": "#microsoft.graph.invitationParticipantInfo",
                    "identity": {
                        "@odata.type": "#microsoft.graph.identitySet",
                        "phone": {"@odata.type": "#microsoft.graph.identity", "id": "+12345678901"},
                    },
                }
            ],
            "timeout": 60,
            "callbackUri": "https://bot.contoso.com/cb",
            "maskCaller": True,
        },
    ),
    (
        rq.TransferRequest(
            transfer_target=InvitationParticipantInfo(
                identity=IdentitySet.for_user(USER, tenant_id=TENANT),
                endpoint_type=EndpointType.DEFAULT,
                replaces_call_id="e5d39592-99bd-4db8-bca8-30fb894ec51d",
            ),
            transferee=ParticipantInfo(
                identity=IdentitySet.for_user(USER, tenant_id=TENANT), participant_id="p-9"
            ),
        ),
        {
            "transferTarget": {
                "@odata.type": "#microsoft.graph.invitationParticipantInfo",
                "identity": USER_WIRE,
                "replacesCallId": "e5d39592-99bd-4db8-bca8-30fb894ec51d",
                "endpointType": "default",
            },
            "transferee": {
                "@odata.type": "#microsoft.graph.participantInfo",
                "identity": USER_WIRE,
                "participantId": "p-9",
            },
        },
    ),
    (rq.ChangeScreenSharingRoleRequest(role=ScreenSharingRole.SHARER), {"role": "sharer"}),
    *_context_only(),
]


@pytest.mark.parametrize(("request_model", "body"), REQUEST_BODIES, ids=lambda v: type(v).__name__)
def test_request_body(request_model: rq.ActionRequest, body: dict[str, Any]) -> None:
    assert unstructure(request_model) == body
    assert CONVERTER.structure(body, type(request_model)) == request_model


def test_every_request_model_has_a_body_test() -> None:
    concrete = {
        cls
        for name in rq.__all__
        if isinstance(cls := getattr(rq, name), type)
        and issubclass(cls, rq.ActionRequest)
        and cls not in (rq.ActionRequest, rq.OperationRequest, rq.ControlRequest)
    }
    assert concrete == {type(model) for model, _ in REQUEST_BODIES}
    assert len(concrete) == 27


# --- failures -----------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"{not json", b"", "[1, 2", b"\x80\x81\x82{}", b'{"a": NaX}'])
def test_loads_garbage(body: bytes | str) -> None:
    with pytest.raises(DeserializationError) as caught:
        loads(body)
    assert caught.value.payload is body
    assert "invalid JSON" in str(caught.value)


def test_loads_wrong_type() -> None:
    with pytest.raises(DeserializationError):
        loads(42)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "data",
    [
        [],
        "playPromptOperation",
        None,
        42,
        {"@odata.type": 5},
        {"@odata.type": ["#microsoft.graph.playPromptOperation"]},
        {"status": 3},
        {"status": ["running"]},
        {"resultInfo": "ok"},
        {"resultInfo": {"message": {"text": "x"}}},
        {"clientContext": {"a": 1}},
        {"@odata.type": "#microsoft.graph.inviteParticipantsOperation", "participants": "abc"},
        {"@odata.type": "#microsoft.graph.inviteParticipantsOperation", "participants": [1]},
        {"@odata.type": "#microsoft.graph.muteParticipantsOperation", "participants": {"a": 1}},
    ],
)
def test_structure_operation_garbage(data: Any) -> None:
    with pytest.raises(DeserializationError) as caught:
        structure_operation(data)
    assert caught.value.payload is data
    assert isinstance(caught.value, ValueError)


def test_other_structure_functions_raise_deserialization_errors() -> None:
    with pytest.raises(DeserializationError):
        structure_call({"state": 5})
    with pytest.raises(DeserializationError):
        structure_participant({"isMuted": "perhaps"})
    with pytest.raises(DeserializationError):
        structure_participant({"@odata.type": "#microsoft.graph.participant", "mediaStreams": 1})
    with pytest.raises(DeserializationError):
        structure_call({"mediaConfig": {"preFetchMedia": [{"resourceId": "no uri"}]}})


def test_error_says_where(payload: Load) -> None:
    body = payload("notification_roster")
    body["value"][0]["resourceData"][1]["mediaStreams"][0]["serverMuted"] = "sometimes"
    with pytest.raises(DeserializationError) as caught:
        entities(body)
    message = str(caught.value)
    assert "$.mediaStreams[0].serverMuted" in message
    assert "expected a boolean" in message
    for fast in (True, False):  # cattrs's own code says where too
        with pytest.raises(Exception) as raw:
            make_converter(fast=fast).structure(body["value"][0]["resourceData"][1], Participant)
        assert "$.mediaStreams[0].serverMuted" in str(failure("x", None, raw.value))


@pytest.mark.parametrize(
    "field", ["recordingLocation", "id", "status", "completionReason", "resultInfo"]
)
def test_errors_never_quote_the_payload(field: str, payload: Load) -> None:
    body = payload("notification_record_completed")
    data = body["value"][0]["resourceData"]
    secret = data["recordingAccessToken"]
    data[field] = {"leak": secret, secret: [secret]} if field != "resultInfo" else [secret]
    with pytest.raises(DeserializationError) as caught:
        entities(json.loads(json.dumps(body)))
    error = caught.value
    printed = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    assert secret not in str(error)
    assert secret not in repr(error)
    assert secret not in printed
    assert error.payload == data


def test_error_from_a_python_parse_never_quotes_the_value() -> None:
    secret = "SECRET-RECORDING-TOKEN"
    with pytest.raises(DeserializationError) as caught:
        structure_call({"toneInfo": {"sequenceId": secret}})
    error = caught.value
    printed = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    assert secret not in printed
    assert "$.toneInfo.sequenceId" in str(error)


def test_make_converter_builds_independent_converters() -> None:
    fast = make_converter()
    plain = make_converter(fast=False)
    assert isinstance(fast, cattrs.Converter)
    assert fast is not CONVERTER
    data = {
        "@odata.type": "#Microsoft.Graph.RecordOperation",
        "status": "Running",
        "resultInfo": {"code": "200"},
    }
    assert plain.structure(data, CommsOperation) == fast.structure(data, CommsOperation)
    assert plain.structure(data, CommsOperation) == structure_operation(data)
    with pytest.raises(cattrs.ClassValidationError):
        plain.structure(
            {"@odata.type": "#microsoft.graph.recordOperation", "status": 1}, CommsOperation
        )


# --- properties ---------------------------------------------------------------------

# Wire keys the random JSON draws from, so that it reaches the models' fields.
WIRE_KEYS = """
    @odata.type @odata.id id clientContext status resultInfo code subcode subCode
    message completionReason recordingLocation recordingAccessToken
    recordResourceLocation participants identity user application phone displayName
    tenantId createdDateTime value changeType resourceUrl resource resourceData
    callbackUri state direction toneInfo sequenceId tone mediaConfig preFetchMedia blob
    meetingInfo organizer token joinMeetingId callOptions source targets
    requestedModalities mediaStreams mediaType info isMuted incomingContext uri
    resourceId mediaState audio chatInfo recordingInfo removedState rosterSequenceNumber
    endpointType
""".split()  # noqa: SIM905 - as a list literal this is 60 lines
TAGS = sorted(
    {tag_of(cls) for cls in (*OPERATION_SUBTYPES, CommsOperation, Call, Participant)}
    | {
        "#microsoft.graph.serviceHostedMediaConfig",
        "#microsoft.graph.appHostedMediaConfig",
        "#microsoft.graph.tokenMeetingInfo",
        "#microsoft.graph.incomingCallOptions",
        "#Microsoft.Graph.PlayPromptOperation",
        "#microsoft.graph.somethingElse",
    }
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(
        ["running", "Completed", "deleted", "audio", "tone1", "200", "2019-03-01T19:03:28.1234567Z"]
    )
)
keys = st.sampled_from(WIRE_KEYS) | st.text(max_size=6)


def _extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    objects = st.dictionaries(keys, children, max_size=6)
    tagged = st.builds(
        lambda tag, rest: {**rest, "@odata.type": tag}, st.sampled_from(TAGS), objects
    )
    return st.lists(children, max_size=4) | objects | tagged


json_values = st.recursive(scalars, _extend, max_leaves=30)
json_objects = st.dictionaries(keys, json_values, max_size=8) | st.builds(
    lambda tag, rest: {**rest, "@odata.type": tag},
    st.sampled_from(TAGS),
    st.dictionaries(keys, json_values, max_size=8),
)
PROPERTY_SETTINGS = settings(
    deadline=None, max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@PROPERTY_SETTINGS
@given(data=json_objects | json_values)
def test_structure_operation_raises_only_deserialization_errors(data: Any) -> None:
    try:
        op: object = structure_operation(data)
    except DeserializationError as exc:
        op = exc
    if isinstance(op, DeserializationError):
        assert op.payload is data
    else:
        assert isinstance(op, CommsOperation)


def _mutate(draw: st.DataObject, value: Any) -> Any:
    """``value`` with one node somewhere in it replaced by random JSON."""
    children = (
        list(value.items())
        if isinstance(value, dict)
        else list(enumerate(value))
        if isinstance(value, list)
        else []
    )
    if not children or draw.draw(st.integers(0, 3)) == 0:
        return draw.draw(json_values)
    key, child = draw.draw(st.sampled_from(children))
    copy: Any = dict(value) if isinstance(value, dict) else list(value)
    copy[key] = _mutate(draw, child)
    return copy


@PROPERTY_SETTINGS
@given(name=st.sampled_from(NOTIFICATIONS + RESPONSES), draw=st.data())
def test_mutated_payloads_raise_only_deserialization_errors(
    name: str, draw: st.DataObject, payload: Load
) -> None:
    mutated = _mutate(draw, payload(name))
    try:
        if name.startswith("notification_"):
            entities(mutated)
        else:
            structure_operation(mutated)
    except DeserializationError:
        pass
    except (KeyError, TypeError, IndexError, AssertionError, AttributeError):
        # The mutation broke the envelope around the entity, which the helper above
        # (not graphcomms) reads: the ingestion's own tests cover envelopes.
        pass


statuses = (
    st.sampled_from(list(OperationStatus)) | st.sampled_from(["paused", "Pending"]) | st.none()
)
reasons = st.sampled_from(list(CompletionReason)) | st.just("cosmicRay") | st.none()
optional_text = st.none() | st.text(max_size=12)
result_infos = st.none() | st.builds(
    ResultInfo,
    code=st.none() | st.integers(-(2**31), 2**31),
    subcode=st.none() | st.integers(0, 2**31),
    message=optional_text,
)
OPERATION_TYPES: list[type[CommsOperation]] = [CommsOperation, *OPERATION_SUBTYPES]
operations = st.sampled_from(OPERATION_TYPES).flatmap(
    lambda cls: st.builds(
        cls,
        id=optional_text,
        client_context=optional_text,
        status=statuses,
        result_info=result_infos,
        completion_reason=reasons,
    )
)


@PROPERTY_SETTINGS
@given(op=operations)
def test_operations_round_trip(op: CommsOperation) -> None:
    assert structure_operation(json.loads(json.dumps(unstructure(op)))) == op


# -- the fast readers and cattrs's generated code agree -----------------------------

_FAST = make_converter()
_PLAIN = make_converter(fast=False)


def _outcome(read: Any) -> Any:
    try:
        return ("ok", read())
    except Exception as exc:
        return ("error", type(exc).__mro__[-2:])  # raised, whatever the detail


ENTITY_TYPES: dict[ResourceKind, type] = {
    ResourceKind.OPERATION: CommsOperation,
    ResourceKind.CALL: Call,
    ResourceKind.PARTICIPANTS: Participant,
    ResourceKind.PARTICIPANT: Participant,
}


@pytest.mark.parametrize("name", sorted(p.stem for p in PAYLOADS.glob("notification_*.json")))
def test_fast_reader_equals_the_plain_one_on_recorded_notifications(name: str) -> None:
    body = json.loads((PAYLOADS / f"{name}.json").read_text())
    for item in body["value"]:
        ref = parse_resource_path(item.get("resourceUrl") or item.get("resource"))
        assert ref is not None
        data = item["resourceData"]
        for entity in data if isinstance(data, list) else [data]:
            cls = ENTITY_TYPES[ref.kind]
            fast = _FAST.structure(entity, cls)
            assert fast == _PLAIN.structure(entity, cls)
            assert type(fast) is type(_PLAIN.structure(entity, cls))


@pytest.mark.parametrize("name", sorted(p.stem for p in PAYLOADS.glob("response_*.json")))
@pytest.mark.parametrize("default", [CommsOperation, PlayPromptOperation, RecordOperation])
def test_fast_reader_equals_the_plain_one_on_recorded_responses(
    name: str, default: type[CommsOperation]
) -> None:
    body = json.loads((PAYLOADS / f"{name}.json").read_text())
    fast = _FAST.structure(body, default)
    assert fast == _PLAIN.structure(body, default)
    assert type(fast) is type(_PLAIN.structure(body, default))


_json_leaf = st.none() | st.booleans() | st.integers(-5, 600) | st.text(max_size=8)
_operation_dicts = st.fixed_dictionaries(
    {},
    optional={
        "@odata.type": st.sampled_from(
            [
                "#microsoft.graph.playPromptOperation",
                "#microsoft.graph.recordOperation",
                "#microsoft.graph.inviteParticipantsOperation",
                "#microsoft.graph.mysteryOperation",
            ]
        ),
        "id": st.none() | st.text(max_size=6),
        "clientContext": st.none() | st.text(max_size=6),
        "status": st.none()
        | st.sampled_from(["running", "Completed", "failed", "odd"])
        | _json_leaf,
        "resultInfo": st.none()
        | st.fixed_dictionaries(
            {},
            optional={
                "@odata.type": st.just("#microsoft.graph.resultInfo"),
                "code": _json_leaf,
                "subcode": _json_leaf,
                "subCode": _json_leaf,
                "message": _json_leaf,
                "brandNew": _json_leaf,
            },
        )
        | _json_leaf,
        "completionReason": st.none()
        | st.sampled_from(["unknown", "stopToneDetected"])
        | _json_leaf,
        "recordingLocation": _json_leaf,
        "recordResourceAccessToken": _json_leaf,
        "createdDateTime": st.none() | st.sampled_from(["2019-03-01T19:03:28.1234567Z", "bad"]),
        "participants": st.none()
        | st.lists(
            st.fixed_dictionaries({}, optional={"hidden": _json_leaf, "newKey": _json_leaf}),
            max_size=2,
        ),
        # What the readers keep (unknown properties) and drop (annotations).
        "@odata.id": st.text(max_size=4),
        "@odata.etag": st.text(max_size=4),
        "@microsoft.graph.hint": _json_leaf,
        "brandNew": _json_leaf | st.lists(_json_leaf, max_size=2),
        "status2": _json_leaf,
    },
)


@given(_operation_dicts, st.sampled_from([CommsOperation, PlayPromptOperation, RecordOperation]))
def test_fast_reader_equals_the_plain_one_on_any_operation(
    data: dict[str, Any], default: type[CommsOperation]
) -> None:
    fast = _outcome(lambda: _FAST.structure(data, default))
    slow = _outcome(lambda: _PLAIN.structure(data, default))
    assert fast[0] == slow[0], (fast, slow)
    if fast[0] == "ok":
        assert fast[1] == slow[1]
        assert type(fast[1]) is type(slow[1])


@PROPERTY_SETTINGS
@given(
    data=json_objects | st.builds(lambda d: {**d, "newProperty": [1]}, json_objects),
    cls=st.sampled_from([Call, Participant, CommsOperation, PlayPromptOperation, ResultInfo]),
)
def test_fast_reader_equals_the_plain_one_on_any_object(data: dict[str, Any], cls: type) -> None:
    """Random JSON over the models' own keys and others: the fast readers' shortcut
    (one set comparison, a cached resultInfo) keeps exactly what the plain ones keep."""
    fast = _outcome(lambda: _FAST.structure(data, cls))
    slow = _outcome(lambda: _PLAIN.structure(data, cls))
    assert fast[0] == slow[0], (fast, slow)
    if fast[0] == "ok":
        assert fast[1] == slow[1]
        assert fast[1].additional_data == slow[1].additional_data


@pytest.mark.parametrize("backend", ["orjson", "json"])
def test_loads_works_with_and_without_orjson(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import graphcomms._json as codec

    if backend == "json":
        monkeypatch.setattr(codec, "_orjson_loads", None)
        monkeypatch.setattr(codec, "_orjson_dumps", None)
    assert codec.loads(b'{"value": [1]}') == {"value": [1]}
    assert codec.loads('{"a": "\\u00e9"}') == {"a": "\u00e9"}
    with pytest.raises(DeserializationError, match="invalid JSON"):
        codec.loads(b"{not json")
    assert codec.loads(codec.dumps({"a": "\u00e9", "n": [1, None]})) == {
        "a": "\u00e9",
        "n": [1, None],
    }
    # Python's own decoding limits are DeserializationErrors too (never a bare ValueError).
    with pytest.raises(DeserializationError, match="exceeds") as caught:
        codec.loads(b'{"n": ' + b"9" * 5000 + b"}")
    assert "9999" not in str(caught.value)


@given(
    st.datetimes(
        min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.none()
    ),
    st.sampled_from(["Z", "z", "+00:00", "-07:30", "+05:45", ""]),
    st.integers(0, 9),
    st.sampled_from(["T", " "]),
)
def test_datetime_readers_agree(moment: datetime, zone: str, digits: int, separator: str) -> None:
    """Graph-shaped timestamps (any number of fraction digits, .NET writes seven) read
    the same through fromisoformat as through the pattern."""
    from graphcomms._converter._scalars import _parse_datetime, parse_datetime_by_pattern

    fraction = f"{moment.microsecond:06d}{moment.microsecond % 10}"[:digits]
    text = (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}{separator}"
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    ) + (f".{fraction}" if digits else "")
    text += zone
    assert _parse_datetime(text) == parse_datetime_by_pattern(text)
    assert parse_datetime_by_pattern(text) is not None
