"""The state-hash records: what the relay writes reads back the same, and what it
cannot read is counted, never raised."""

from __future__ import annotations

import json

import attrs

from graphcomms.fleet._records import (
    CallRecord,
    OperationRecord,
    call_keys,
    decode,
    encode_operation,
)
from graphcomms.models import OperationStatus

OP = OperationRecord(
    call_id="421f1100-ff14-4e46-8f56-2e1a6b6e2c5f",
    client_context="bot-a.3.abc",
    operation_id="0e5ab6a13b5e4c5e",
    type_name="PlayPromptOperation",
    status="running",
    tag="greeting",
    deadline=1_800_000_000.25,
)
CALL = CallRecord(call_id="421f1100-ff14-4e46-8f56-2e1a6b6e2c5f", state="established", tag=None)


def test_records_read_back_as_written() -> None:
    unsent = OperationRecord(
        call_id="c",
        client_context="bot-a.3.def",
        operation_id=None,
        type_name="RecordOperation",
        status=None,
        tag=None,
        deadline=None,
    )
    fields = {
        b"o:bot-a.3.abc": encode_operation(**attrs.asdict(OP)),
        "o:bot-a.3.def": encode_operation(**attrs.asdict(unsent)),
        b"c:421f1100ff144e468f562e1a6b6e2c5f": CALL.encode(),
    }
    calls, operations, bad = decode(fields)
    assert (calls, operations, bad) == ([CALL], [OP, unsent], 0)
    assert [op.confirmed for op in operations] == [True, False]
    assert call_keys(fields) == ["421f1100ff144e468f562e1a6b6e2c5f"]


def test_a_deadline_reads_as_time_left() -> None:
    assert OP.time_left(now=OP.deadline - 5) == 5.0
    assert OP.time_left(now=OP.deadline + 5) == 0.0
    never = OperationRecord("c", "x", "i", "CommsOperation", None, None, None)
    assert never.time_left() is None


def test_unreadable_records_are_counted_and_odd_values_ignored() -> None:
    fields = {
        "o:a": "not json",
        "o:b": json.dumps(["a", "list"]),
        "o:c": json.dumps({"x": "no call id"}),
        "c:d": json.dumps({"s": "no id"}),
        "z:e": json.dumps({"i": "an unknown kind"}),
        # Readable, with values of the wrong types: each taken as absent.
        "o:f": json.dumps({"c": "call", "x": "f", "i": 7, "t": "", "g": [1], "d": True}),
    }
    calls, operations, bad = decode(fields)
    assert bad == 5
    assert calls == []
    assert operations == [OperationRecord("call", "f", None, "CommsOperation", None, None, None)]


def test_a_status_member_is_written_as_its_wire_value() -> None:
    written = encode_operation(
        call_id="c",
        client_context="x",
        operation_id="i",
        type_name="PlayPromptOperation",
        status=OperationStatus.RUNNING,
        tag=None,
        deadline=None,
    )
    assert json.loads(written)["s"] == "running"
    [record] = decode({"o:x": written})[1]
    assert record.status == "running"
    assert type(record.status) is str
