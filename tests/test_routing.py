"""The one resource-path parser: every spelling Graph uses (reference §5.8)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphcomms._routing import (
    ResourceKind,
    ResourceRef,
    normalize_id,
    parse_resource_path,
    usual_operation_id,
)

CALL = "421f1100-f2f4-4b8f-9d8c-4e2b6d8b8f1c"
OP = "0fe0623f-d628-42ed-b4bd-8ac290072cc5"
NCALL = CALL.replace("-", "")
NOP = OP.replace("-", "")


def test_normalize_id_folds_case_and_hyphens() -> None:
    assert normalize_id(CALL) == normalize_id(CALL.upper().replace("-", "")) == NCALL


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/communications/calls/{CALL}", ResourceRef(ResourceKind.CALL, NCALL, None, CALL)),
        (
            f"communications/calls/{CALL}/operations/{OP}",
            ResourceRef(ResourceKind.OPERATION, NCALL, NOP, CALL),
        ),
        (
            f"/communications/calls/{NCALL.upper()}/operations/{NOP.upper()}",
            ResourceRef(ResourceKind.OPERATION, NCALL, NOP, NCALL.upper()),
        ),
        (
            f"/app/calls/{CALL}/operations/{OP}",
            ResourceRef(ResourceKind.OPERATION, NCALL, NOP, CALL),
        ),
        (
            f"https://graph.microsoft.com/v1.0/communications/calls/{CALL}/operations/{OP}",
            ResourceRef(ResourceKind.OPERATION, NCALL, NOP, CALL),
        ),
        (
            f"/communications/calls/{CALL}/participants",
            ResourceRef(ResourceKind.PARTICIPANTS, NCALL, None, CALL),
        ),
        (
            f"/communications/calls/{CALL}/participants/P1",
            ResourceRef(ResourceKind.PARTICIPANT, NCALL, "p1", CALL),
        ),
        # The multi-invite notification: "participants" is no operation id.
        (
            f"/communications/calls/{CALL}/operations/participants",
            ResourceRef(ResourceKind.OPERATION, NCALL, None, CALL),
        ),
        (
            f"/communications/calls/{CALL}/contentsharingsessions/s1",
            ResourceRef(ResourceKind.OTHER, NCALL, "s1", CALL),
        ),
        (
            f"/communications/calls/{CALL}?$select=state",
            ResourceRef(ResourceKind.CALL, NCALL, None, CALL),
        ),
    ],
)
def test_parse_resource_path(path: str, expected: ResourceRef) -> None:
    assert parse_resource_path(path) == expected


@pytest.mark.parametrize(
    "path", [None, "", "/", "/communications", "/communications/calls", "/users/x"]
)
def test_paths_not_under_a_call(path: str | None) -> None:
    assert parse_resource_path(path) is None


# -- the ingestion's short path agrees with the parser ------------------------------

_SEGMENTS = st.sampled_from(
    ["", "communications", "calls", "app", "operations", "participants", "Operations",
     CALL, NCALL.upper(), OP, NOP.upper(), "x?y=1", "a-b"]
)


@given(
    lead=st.sampled_from(["/", "", "https://graph.microsoft.com/v1.0/"]),
    head=st.sampled_from(["communications/calls", "app/calls", "communications/Calls"]),
    call=_SEGMENTS,
    collection=st.sampled_from(["operations", "participants", "Operations", ""]),
    rest=st.lists(_SEGMENTS, max_size=3),
)
def test_usual_operation_id_answers_as_the_parser_or_not_at_all(
    lead: str, head: str, call: str, collection: str, rest: list[str]
) -> None:
    path = lead + "/".join([head, call, collection, *rest])
    found = usual_operation_id(path)
    if found is not None:
        ref = parse_resource_path(path)
        assert ref is not None
        assert ref.kind is ResourceKind.OPERATION
        assert ref.item_id == found


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/communications/calls/{CALL}/operations/{OP}", NOP),
        (f"/communications/calls/{NCALL.upper()}/operations/{NOP.upper()}", NOP),
        # Anything else is left to parse_resource_path.
        (f"communications/calls/{CALL}/operations/{OP}", None),
        (f"/communications/calls/{CALL}/operations/participants", None),
        (f"/communications/calls/{CALL}/operations/{OP}/", None),
        (f"/communications/calls/{CALL}/operations/{OP}?x=1", None),
        (f"/communications/calls/{CALL}/participants/{OP}", None),
        (f"/communications/calls//operations/{OP}", None),
        (f"/communications/calls/{CALL}", None),
    ],
)
def test_usual_operation_id(path: str, expected: str | None) -> None:
    assert usual_operation_id(path) == expected
