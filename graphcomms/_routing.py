"""Sans-I/O identity and routing: what a resource path points at, and the paths
graphcomms sends requests to.

:func:`parse_resource_path` is the one parser of Graph resource paths in graphcomms. It
accepts every spelling Graph uses: ``/communications/calls/{id}/operations/{op}``, the
same without the leading slash, the legacy ``/app/calls/...``, and absolute URLs such
as a ``Location`` header (``https://graph.microsoft.com/v1.0/communications/calls/...``).

:func:`call_path` is the one builder of request paths: every id it places, whether the
caller gave it or a notification did, becomes exactly one percent-encoded path segment,
so no id can steer a request (and the bot's Graph token) to another resource.
"""

from __future__ import annotations

from enum import Enum
from typing import Final, NamedTuple
from urllib.parse import quote

from graphcomms.errors import InvalidRequestError

__all__ = [
    "ResourceKind",
    "ResourceRef",
    "call_path",
    "normalize_id",
    "parse_resource_path",
    "path_segment",
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


_OPERATION: Final = ResourceKind.OPERATION
_CALL: Final = ResourceKind.CALL
# tuple.__new__ builds a ResourceRef without NamedTuple's Python-level __new__ (a frame
# per notification); test_routing.py checks the two build equal values.
_ref: Final = tuple.__new__
# What Graph's notifications say, nearly always: found without a search.
_USUAL_PREFIX: Final = "/communications/calls/"


def parse_resource_path(path: object) -> ResourceRef | None:
    """What ``path`` points at, or ``None`` when it is not under ``.../calls/{id}``
    (or not a string at all)."""
    if not isinstance(path, str) or not path:
        return None
    if path.startswith(_USUAL_PREFIX):
        rest = path[len(_USUAL_PREFIX) :]
    else:
        # The last "calls/" that starts a segment, found by string search.
        at = path.rfind("calls/")
        while at > 0 and path[at - 1] != "/":
            at = path.rfind("calls/", 0, at)
        if at < 0:
            return None
        rest = path[at + 6 :]
    query = rest.find("?")
    if query >= 0:
        rest = rest[:query]
    parts = rest.split("/")
    raw = parts[0]
    if not raw:
        return None
    call_id = raw.replace("-", "").lower()  # normalize_id, without a call per notification
    count = len(parts)
    if count == 1 or (count == 2 and not parts[1]):
        return _ref(ResourceRef, (_CALL, call_id, None, raw))
    collection = parts[1].lower()
    item = parts[2].replace("-", "").lower() if count > 2 and parts[2] else None
    if collection == "operations":
        # A multi-party invite's notification names ".../operations/participants"
        # (with "id": null): that segment is no operation id.
        return _ref(
            ResourceRef, (_OPERATION, call_id, None if item == "participants" else item, raw)
        )
    if collection == "participants":
        if item is None:
            return ResourceRef(ResourceKind.PARTICIPANTS, call_id, None, raw)
        return ResourceRef(ResourceKind.PARTICIPANT, call_id, item, raw)
    return ResourceRef(ResourceKind.OTHER, call_id, item, raw)


def path_segment(value: str, what: str = "id") -> str:
    """``value`` as exactly one path segment: percent-encoded, ``/`` included.

    Raises :class:`~graphcomms.errors.InvalidRequestError` for an empty value and for
    ``.`` and ``..``, which a URL resolver would take for "here" and "up" whatever the
    encoding.
    """
    if not isinstance(value, str):
        raise InvalidRequestError(f"the {what} must be a str, not {type(value).__name__}")
    if value in ("", ".", ".."):
        raise InvalidRequestError(f"the {what} {value!r} cannot name a resource")
    return quote(value, safe="")


def call_path(call_id: str, *rest: str) -> str:
    """``communications/calls/{call_id}/{rest...}`` with the call id encoded as one
    segment. ``rest`` are segments graphcomms itself wrote, or already encoded ones
    (:func:`path_segment`)."""
    return "/".join(("communications/calls", path_segment(call_id, "call id"), *rest))
