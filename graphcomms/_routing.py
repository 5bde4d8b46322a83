"""Sans-I/O identity and routing: what a notification or ``Location`` path points at.

This is the one parser of Graph resource paths in graphcomms. It accepts every spelling
Graph uses: ``/communications/calls/{id}/operations/{op}``, the same without the
leading slash, the legacy ``/app/calls/...``, and absolute URLs such as a ``Location``
header (``https://graph.microsoft.com/v1.0/communications/calls/...``).
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

__all__ = [
    "ResourceKind",
    "ResourceRef",
    "normalize_id",
    "parse_resource_path",
    "usual_operation_id",
]


def normalize_id(value: str) -> str:
    """Graph sends one GUID both as ``ab-cd`` lower case and ``ABCD`` upper case without
    hyphens; compare ids only in this form."""
    return value.replace("-", "").lower()


class ResourceKind(Enum):
    CALL = "call"
    OPERATION = "operation"
    PARTICIPANTS = "participants"
    PARTICIPANT = "participant"
    OTHER = "other"


class ResourceRef(NamedTuple):
    """A parsed path: ``call_id`` and ``item_id`` are normalised (:func:`normalize_id`);
    ``raw_call_id`` is the call id as the path spelled it, for requests back to Graph."""

    kind: ResourceKind
    call_id: str
    item_id: str | None = None
    raw_call_id: str = ""


_new = tuple.__new__  # skips NamedTuple's Python-level __new__: this runs per notification
_OPERATION, _CALL = ResourceKind.OPERATION, ResourceKind.CALL
_PARTICIPANTS, _PARTICIPANT, _OTHER = (
    ResourceKind.PARTICIPANTS,
    ResourceKind.PARTICIPANT,
    ResourceKind.OTHER,
)
_COMMON_PREFIX = "/communications/calls/"  # what Graph's notifications say, nearly always
_PREFIX_LENGTH = len(_COMMON_PREFIX)
_OPERATIONS = "/operations/"
_OPERATIONS_LENGTH = len(_OPERATIONS)


def usual_operation_id(path: str) -> str | None:
    """The operation id, normalised, when ``path`` is spelled the way Graph's
    notifications nearly always spell it: ``/communications/calls/{call}/operations/
    {op}``. ``None`` for any other spelling, which :func:`parse_resource_path` reads.

    The ingestion's short path: no ``ResourceRef``, no split. Where it answers, it
    answers as ``parse_resource_path(path).item_id`` does (a property test holds the
    two together).
    """
    if not path.startswith(_COMMON_PREFIX) or "?" in path:
        return None
    cut = path.find("/", _PREFIX_LENGTH)  # the end of the call id
    if cut <= _PREFIX_LENGTH or not path.startswith(_OPERATIONS, cut):
        return None
    op = path[cut + _OPERATIONS_LENGTH :]
    if not op or "/" in op:
        return None
    op = op.replace("-", "").lower()  # normalize_id, inlined: per notification
    return None if op == "participants" else op


def parse_resource_path(path: str | None) -> ResourceRef | None:
    """What ``path`` points at, or ``None`` when it is not under ``.../calls/{id}``."""
    if not path:
        return None
    if path.startswith(_COMMON_PREFIX):
        rest = path[_PREFIX_LENGTH:]
    else:
        # Find the last "calls/" segment by string search rather than splitting the path.
        at = path.rfind("calls/")
        while at > 0 and path[at - 1] != "/":
            at = path.rfind("calls/", 0, at)
        if at < 0:
            return None
        rest = path[at + 6 :]
    if "?" in rest:
        rest = rest[: rest.index("?")]
    parts = rest.split("/")
    raw = parts[0]
    if not raw:
        return None
    call_id = raw.replace("-", "").lower()  # normalize_id, inlined: per notification
    count = len(parts)
    if count == 1 or (count == 2 and not parts[1]):
        return _new(ResourceRef, (_CALL, call_id, None, raw))
    collection = parts[1]
    item = parts[2].replace("-", "").lower() if count > 2 and parts[2] else None
    if collection == "operations" or collection.lower() == "operations":
        # A multi-party invite's notification names ".../operations/participants"
        # (with "id": null): that segment is no operation id.
        if item == "participants":
            item = None
        return _new(ResourceRef, (_OPERATION, call_id, item, raw))
    if collection == "participants" or collection.lower() == "participants":
        if item is None:
            return _new(ResourceRef, (_PARTICIPANTS, call_id, None, raw))
        return _new(ResourceRef, (_PARTICIPANT, call_id, item, raw))
    return _new(ResourceRef, (_OTHER, call_id, item, raw))
