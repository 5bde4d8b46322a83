"""The one resource-path parser: every spelling Graph uses (reference §5.8)."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from graphcomms._routing import (
    ResourceKind,
    ResourceRef,
    call_path,
    normalize_id,
    parse_resource_path,
    path_segment,
)
from graphcomms.errors import InvalidRequestError

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
    found = parse_resource_path(path)
    assert found == expected
    assert type(found) is ResourceRef  # however it was built
    assert found is not None
    assert found._asdict() == expected._asdict()


@pytest.mark.parametrize(
    "path", [None, "", "/", "/communications", "/communications/calls", "/users/x"]
)
def test_paths_not_under_a_call(path: str | None) -> None:
    assert parse_resource_path(path) is None


# -- request paths: an id is exactly one segment ------------------------------------

HOSTILE_IDS = [
    "../../../v1.0/users/victim",
    "%2e%2e%2fusers",
    "a/b",
    "a#fragment",
    "a?x=1",
    "a b",
    "\u00e9\u4e2d",
    "a\\b",
    "...",
    ";x",
]


@pytest.mark.parametrize("call_id", HOSTILE_IDS)
def test_call_path_places_any_id_as_one_segment(call_id: str) -> None:
    path = call_path(call_id, "playPrompt")
    prefix, rest = path.split("communications/calls/", 1)
    assert prefix == ""
    segment, action = rest.split("/")
    assert action == "playPrompt"
    assert unquote(segment) == call_id
    assert not set(segment) & set("/?#")


@pytest.mark.parametrize("bad", ["", ".", ".."])
def test_an_id_that_a_resolver_would_move_by_is_refused(bad: str) -> None:
    with pytest.raises(InvalidRequestError):
        call_path(bad)
    with pytest.raises(InvalidRequestError):
        path_segment(bad)


@given(st.text(min_size=1).filter(lambda t: t not in (".", "..")))
def test_path_segment_round_trips_and_never_splits(value: str) -> None:
    segment = path_segment(value)
    assert unquote(segment) == value
    assert not set(segment) & set("/?#")
    assert segment not in (".", "..")
