"""Sans-I/O identity and routing: what a notification or ``Location`` path points at.

This is the one parser of Graph resource paths in graphcomms. It accepts every spelling
Graph uses: ``/communications/calls/{id}/operations/{op}``, the same without the
leading slash, the legacy ``/app/calls/...``, and absolute URLs such as a ``Location``
header (``https://graph.microsoft.com/v1.0/communications/calls/...``).
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

__all__ = ["ResourceKind", "ResourceRef", "normalize_id", "parse_resource_path"]


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


def parse_resource_path(path: str | None) -> ResourceRef | None:
    """What ``path`` points at, or ``None`` when it is not under ``.../calls/{id}``."""
    if not path:
        return None
    query = path.find("?")
    if query >= 0:
        path = path[:query]
    parts = path.strip("/").split("/")
    try:
        # The last "calls" segment: an absolute URL may carry others before it only in
        # pathological hosts, and the resource is always the tail.
        at = len(parts) - 1 - parts[::-1].index("calls")
    except ValueError:
        return None
    rest = parts[at + 1 :]
    if not rest or not rest[0]:
        return None
    raw = rest[0]
    call_id = normalize_id(raw)
    if len(rest) == 1:
        return ResourceRef(ResourceKind.CALL, call_id, None, raw)
    collection = rest[1].lower()
    item = normalize_id(rest[2]) if len(rest) > 2 and rest[2] else None
    if collection == "operations":
        # A multi-party invite's notification names ".../operations/participants"
        # (with "id": null): that segment is no operation id.
        if item == "participants":
            item = None
        return ResourceRef(ResourceKind.OPERATION, call_id, item, raw)
    if collection == "participants":
        if item is None:
            return ResourceRef(ResourceKind.PARTICIPANTS, call_id, None, raw)
        return ResourceRef(ResourceKind.PARTICIPANT, call_id, item, raw)
    return ResourceRef(ResourceKind.OTHER, call_id, item, raw)
