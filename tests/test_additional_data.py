"""Forward compatibility: the properties Graph sends that graphcomms has no field for are
kept on ``additional_data``, readable, and written back when the model is sent."""

from __future__ import annotations

import copy
import json
import pickle
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest
from aioresponses import aioresponses
from hypothesis import given
from hypothesis import strategies as st

from graphcomms import CommsClient, models
from graphcomms._converter import (
    make_converter,
    structure_call,
    structure_operation,
    structure_participant,
    unstructure,
)
from graphcomms.models import (
    Call,
    CallState,
    CommsOperation,
    Identity,
    IdentitySet,
    OperationStatus,
    Participant,
    ParticipantInfo,
    PlayPromptOperation,
    RecordOperation,
    ResultInfo,
)
from graphcomms.models import requests as rq

GRAPH = "https://graph.example.test/v1.0"
CALL_ID = "2f1a0b00-0000-4000-8000-000000000001"
OP_ID = "0fe0623f-d628-42ed-b4bd-8ac290072cc5"
CALL_URL = f"{GRAPH}/communications/calls/{CALL_ID}"

MODEL_CLASSES = sorted(
    (
        cls
        for name in models.__all__
        if isinstance(cls := getattr(models, name), type) and attrs.has(cls)
    ),
    key=lambda c: c.__name__,
)


# -- the field --------------------------------------------------------------------


def test_every_model_has_additional_data() -> None:
    assert len(MODEL_CLASSES) > 60
    for cls in MODEL_CLASSES:
        assert "additional_data" in attrs.fields_dict(cls), cls


def test_additional_data_is_empty_by_default_in_eq_not_in_hash_nor_repr() -> None:
    plain = PlayPromptOperation(status=OperationStatus.RUNNING)
    extra = PlayPromptOperation(
        status=OperationStatus.RUNNING, additional_data={"secretish": ["a", {"b": 1}]}
    )
    assert plain.additional_data == {}
    assert plain != extra  # two snapshots that differ in what Graph sent differ
    assert extra == PlayPromptOperation(
        status=OperationStatus.RUNNING, additional_data={"secretish": ["a", {"b": 1}]}
    )
    assert hash(extra) == hash(plain)  # JSON lists and objects are not hashable
    assert "secretish" not in repr(extra)  # an unknown property may be a secret


@pytest.mark.parametrize("extra", [{}, {"newThing": [1, {"a": None}]}])
def test_models_still_pickle_and_deep_copy(extra: dict[str, Any]) -> None:
    op = structure_operation(
        {"@odata.type": "#microsoft.graph.recordOperation", "status": "running", **extra}
    )
    assert op.additional_data == extra
    for copied in (pickle.loads(pickle.dumps(op)), copy.deepcopy(op), copy.copy(op)):
        assert copied == op
        assert copied.additional_data == extra


def test_additional_data_is_read_only() -> None:
    op = structure_operation({"status": "running", "newThing": 1})
    data = op.additional_data
    with pytest.raises(TypeError, match="read-only"):
        data["newThing"] = 2  # type: ignore[index]
    with pytest.raises(TypeError, match="read-only"):
        data.update(x=1)  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="read-only"):
        PlayPromptOperation().additional_data.setdefault("x", 1)  # type: ignore[attr-defined]
    assert op.additional_data == {"newThing": 1}
    assert PlayPromptOperation().additional_data == {}


# -- reading ----------------------------------------------------------------------


def test_unknown_properties_of_an_operation_are_kept_at_every_level() -> None:
    op = structure_operation(
        {
            "@odata.type": "#microsoft.graph.recordOperation",
            "@odata.id": "/communications/calls/x/operations/y",
            "@odata.etag": 'W/"1"',
            "status": "completed",
            "recordResourceLocation": "https://r",  # a legacy key: known, not unknown
            "resultInfo": {"code": 200, "subCode": 5, "newDetail": {"why": "new"}},
            "recordingDurationInSeconds": 12,
        }
    )
    assert isinstance(op, RecordOperation)
    assert op.recording_location == "https://r"
    assert op.additional_data == {"recordingDurationInSeconds": 12}
    assert op.result_info == ResultInfo(
        code=200, subcode=5, additional_data={"newDetail": {"why": "new"}}
    )


def test_an_unknown_operation_type_keeps_its_tag_and_its_properties() -> None:
    op = structure_operation(
        {"@odata.type": "#microsoft.graph.summonOperation", "status": "running", "spell": "x"}
    )
    assert type(op) is CommsOperation
    assert op.odata_type == "#microsoft.graph.summonOperation"
    assert op.additional_data == {"spell": "x"}
    assert unstructure(op) == {
        "@odata.type": "#microsoft.graph.summonOperation",
        "spell": "x",
        "status": "running",
    }


def test_unknown_properties_of_a_call_and_a_participant_are_kept() -> None:
    call = structure_call(
        {
            "@odata.type": "#microsoft.graph.call",
            "state": "established",
            "callRoutes": [{"final": {"user": {"id": "u"}}}],
            "source": {
                "identity": {
                    "user": {"id": "u", "displayName": "U"},
                    "azureCommunicationServicesUser": {"id": "8:acs:1"},
                },
                "nonAnonymizedIdentity": {"user": {"id": "u"}},
            },
        }
    )
    assert call.state is CallState.ESTABLISHED
    assert call.additional_data == {"callRoutes": [{"final": {"user": {"id": "u"}}}]}
    assert call.source == ParticipantInfo(
        identity=IdentitySet(
            user=Identity(id="u", display_name="U"),
            additional_data={"azureCommunicationServicesUser": {"id": "8:acs:1"}},
        ),
        additional_data={"nonAnonymizedIdentity": {"user": {"id": "u"}}},
    )
    participant = structure_participant({"id": "p", "isMuted": False, "preferredLanguage": "fr"})
    assert participant == Participant(
        id="p", is_muted=False, additional_data={"preferredLanguage": "fr"}
    )


def test_annotations_are_not_properties() -> None:
    op = structure_operation(
        {
            "@odata.type": "#microsoft.graph.playPromptOperation",
            "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#x",
            "@odata.nextLink": "https://n",
            "@microsoft.graph.tips": "hi",
            "status": "running",
        }
    )
    assert op.additional_data == {}


@pytest.mark.parametrize("fast", [True, False])
def test_a_cached_result_info_never_lends_or_loses_properties(fast: bool) -> None:
    read = make_converter(fast=fast).get_structure_hook(ResultInfo)
    known = {"@odata.type": "#microsoft.graph.resultInfo", "code": 200, "subcode": 0}
    plain = {**known, "message": "ok"}
    extra = {**plain, "newDetail": 1}
    assert read(plain, ResultInfo).additional_data == {}
    assert read(extra, ResultInfo).additional_data == {"newDetail": 1}
    assert read(plain, ResultInfo).additional_data == {}
    # The same message with one key fewer, where the other key is not the tag.
    assert read({"code": 200, "subcode": 0, "message": "ok", "x": 2}, ResultInfo) == ResultInfo(
        code=200, subcode=0, message="ok", additional_data={"x": 2}
    )


# -- writing ----------------------------------------------------------------------


def test_a_read_model_writes_its_unknown_properties_back() -> None:
    source = {
        "@odata.type": "#microsoft.graph.participantInfo",
        "identity": {
            "@odata.type": "#microsoft.graph.identitySet",
            "user": {"@odata.type": "#microsoft.graph.identity", "id": "u"},
            "azureCommunicationServicesUser": {"id": "8:acs:1"},
        },
        "nonAnonymizedIdentity": {"user": {"id": "u"}},
    }
    info = structure_call({"source": source}).source
    assert info is not None
    assert unstructure(info) == source


def test_a_field_wins_over_an_additional_key_and_the_class_keeps_its_tag() -> None:
    op = PlayPromptOperation(
        status=OperationStatus.COMPLETED,
        additional_data={"status": "running", "@odata.type": "#x.y", "extra": True},
    )
    body = unstructure(op)
    assert body == {
        "@odata.type": "#microsoft.graph.playPromptOperation",
        "extra": True,
        "status": "completed",
    }
    assert next(iter(body)) == "@odata.type"  # OData readers want the tag first


def test_a_request_sends_its_additional_data() -> None:
    request = rq.PlayPromptRequest(
        prompts=["https://p/a.wav"],
        client_context="c",
        additional_data={"promptVoice": {"locale": "fr-FR"}, "when": OperationStatus.RUNNING},
    )
    body = unstructure(request)
    assert body["promptVoice"] == {"locale": "fr-FR"}
    assert body["when"] == "running"  # unstructured like any value
    assert body["clientContext"] == "c"
    assert "additionalData" not in body


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=6).filter(lambda k: not k.startswith("@")),
        st.none() | st.booleans() | st.integers() | st.text(max_size=4),
        max_size=4,
    ),
    st.sampled_from([CommsOperation, PlayPromptOperation, RecordOperation]),
)
def test_additional_data_round_trips(extra: dict[str, Any], cls: type[CommsOperation]) -> None:
    # Keys that are some field's wire name are fields, not additional data.
    fields = {
        "".join(p[:1].upper() + p[1:] if i else p for i, p in enumerate(a.name.split("_")))
        for a in attrs.fields(cls)
    }
    extra = {k: v for k, v in extra.items() if k not in fields}
    op = cls(status=OperationStatus.RUNNING, additional_data=extra)
    assert structure_operation(json.loads(json.dumps(unstructure(op))), cls) == op


# -- through a client -------------------------------------------------------------


@pytest.fixture
async def client(mock_graph: aioresponses) -> AsyncIterator[CommsClient]:
    async with CommsClient("secret-token", base_url=GRAPH, callback_uri="https://bot/cb") as c:
        yield c


async def test_a_request_sent_by_a_client_carries_its_additional_data(
    client: CommsClient, mock_graph: aioresponses
) -> None:
    mock_graph.post(
        f"{CALL_URL}/playPrompt",
        payload={"id": OP_ID, "status": "running", "queuePosition": 3},
        headers={"Location": f"{CALL_URL}/operations/{OP_ID}"},
    )
    tracker = await client.call(CALL_ID).send(
        rq.PlayPromptRequest(prompts=["https://p/a.wav"], additional_data={"newFlag": True})
    )
    ((_, calls),) = mock_graph.requests.items()
    assert json.loads(calls[0].kwargs["data"])["newFlag"] is True
    assert tracker.operation.additional_data == {"queuePosition": 3}
    client.feed(
        {
            "value": [
                {
                    "changeType": "deleted",
                    "resourceUrl": f"/communications/calls/{CALL_ID}/operations/{OP_ID}",
                    "resourceData": {
                        "@odata.type": "#microsoft.graph.playPromptOperation",
                        "status": "completed",
                        "resultInfo": {"code": 200, "subcode": 0, "message": "ok"},
                        "playedDurationInMs": 1200,
                    },
                }
            ]
        }
    )
    final = await tracker.wait(timeout=5)
    assert final.additional_data == {"playedDurationInMs": 1200}


async def test_a_calls_unknown_properties_merge_across_notifications(client: CommsClient) -> None:
    call = client.call(CALL_ID)

    def notify(**data: Any) -> None:
        client.feed(
            {
                "value": [
                    {
                        "changeType": "updated",
                        "resourceUrl": f"/communications/calls/{CALL_ID}",
                        "resourceData": {"@odata.type": "#microsoft.graph.call", **data},
                    }
                ]
            }
        )

    notify(state="establishing", first=1, both="old")
    notify(state="established", both="new")
    assert call.snapshot.state is CallState.ESTABLISHED
    assert call.snapshot.additional_data == {"first": 1, "both": "new"}
    notify(state="established")  # nothing new: what was known stays
    assert call.snapshot.additional_data == {"first": 1, "both": "new"}


def test_call_merged_keeps_the_old_additional_data_object_when_nothing_is_new() -> None:
    old = Call(state=CallState.ESTABLISHED, additional_data={"a": 1})
    assert old.merged(Call()) is old
    assert old.merged(Call(additional_data={"b": 2})).additional_data == {"a": 1, "b": 2}
