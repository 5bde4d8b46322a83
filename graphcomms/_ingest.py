"""Ingestion: a notification body in, trackers and call handles updated.

:meth:`Ingestor.feed` is the one reader of Graph's ``commsNotifications`` envelope. It
is synchronous and framework-agnostic: it does no I/O and never runs user code
(callbacks are queued), so a webhook can call it and answer at once, and a queue or
relay reader is just another caller. For each item it reads the change type, the
resource path (with the one path parser) and the resource data, then hands the item to
what follows that kind of resource: operations to the registry, calls and rosters to
the call table.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from graphcomms._converter import structure_call, structure_participant
from graphcomms._json import loads
from graphcomms._registry import OperationRegistry
from graphcomms._routing import ResourceKind, ResourceRef, parse_resource_path
from graphcomms._stats import ClientStats
from graphcomms.errors import DeserializationError
from graphcomms.models import Call, ChangeType, Participant
from graphcomms.typing import NotificationPayload

__all__ = ["Ingestor", "read_change_type"]

_log = logging.getLogger("graphcomms.ingest")

_CHANGE_TYPES = {member.value: member for member in ChangeType}
_OPERATION, _CALL = ResourceKind.OPERATION, ResourceKind.CALL
_ROSTER = frozenset({ResourceKind.PARTICIPANTS, ResourceKind.PARTICIPANT})


def read_change_type(raw: object) -> ChangeType | str:
    """A ``changeType`` in any casing; an unknown one as it came, a missing one ``""``."""
    if not isinstance(raw, str):
        return ""
    found = _CHANGE_TYPES.get(raw)
    return found if found is not None else _CHANGE_TYPES.get(raw.lower(), raw)


def read_envelope(payload: NotificationPayload) -> list[Any]:
    """The items of a ``commsNotifications`` body (bytes, text, or decoded JSON).

    Raises :class:`~graphcomms.errors.DeserializationError` when it is not JSON or not
    an envelope with a ``value`` array.
    """
    # isinstance(x, dict) first, here and below: a decoded body is a dict, and the ABC
    # check for Mapping costs a Python-level call (about a thousand instructions).
    data = payload if isinstance(payload, (dict, Mapping)) else loads(payload)
    if not isinstance(data, dict) and not isinstance(data, Mapping):
        raise DeserializationError("notification body is not a JSON object", payload=data)
    items = data.get("value")
    if not isinstance(items, list):
        raise DeserializationError(
            "notification body has no 'value' list (not a commsNotifications envelope)",
            payload=data,
        )
    return items


class CallSink(Protocol):
    """Where call snapshots and rosters go: the client's call table."""

    def apply(self, key: str, raw_id: str, change: ChangeType | str, call: Call) -> None: ...

    def apply_roster(
        self, key: str, participants: Sequence[Participant], deleted: bool
    ) -> None: ...


class Ingestor:
    """Applies notification bodies to one client's registry and call table."""

    __slots__ = ("_calls", "_registry", "stats")

    def __init__(self, registry: OperationRegistry, calls: CallSink, stats: ClientStats) -> None:
        self._registry = registry
        self._calls = calls
        self.stats = stats

    def feed(self, payload: NotificationPayload) -> int:
        """Apply one ``commsNotifications`` body; returns how many items it held.

        Raises :class:`~graphcomms.errors.DeserializationError`, applying nothing, when
        the body is not JSON or not an envelope. Within a good envelope an item that
        cannot be read is logged and counted (``stats.bad_items``) and the other items
        are still applied.
        """
        items = read_envelope(payload)
        for item in items:
            self.take(item)
        return len(items)

    def take(self, item: Any, ref: ResourceRef | None = None) -> None:
        """Apply one item as :meth:`feed` does: counted, and when it cannot be read,
        logged and counted in ``stats.bad_items`` rather than raised. ``ref`` is its
        resource path when the caller already parsed it (a fleet relay routing it)."""
        stats = self.stats
        stats.notifications += 1
        try:
            self.apply(item, ref)
        except Exception as exc:
            stats.bad_items += 1
            _log.warning(
                "notification item skipped: %s", exc, exc_info=not isinstance(exc, ValueError)
            )

    def apply(self, item: Any, ref: ResourceRef | None = None) -> None:
        """One ``commsNotification``: routed by the kind of resource its path names
        (``ref``, when the caller parsed it already)."""
        if ref is None:
            if not isinstance(item, dict) and not isinstance(item, Mapping):
                raise DeserializationError("notification item is not an object", payload=item)
            ref = parse_resource_path(item.get("resourceUrl") or item.get("resource"))
            if ref is None:
                self.stats.unmatched += 1
                return
        raw_change = item.get("changeType")
        # The table is keyed by the exact wire strings; anything else (other case,
        # a list, a number) takes the one tolerant reader, which also names the error.
        change = (
            _CHANGE_TYPES.get(raw_change) if type(raw_change) is str else None
        ) or read_change_type(raw_change)
        deleted = change is ChangeType.DELETED
        data = item.get("resourceData")
        kind = ref.kind
        if kind is _OPERATION and isinstance(data, dict):
            # The usual item: one operation snapshot.
            self._registry.apply(ref.call_id, ref.item_id, data, deleted=deleted)
            return
        entities = _entities(data)
        if kind is _OPERATION:
            if not entities and deleted and ref.item_id is not None:
                entities = ({},)  # "this operation is gone" with no snapshot: still its end
            for entity in entities:
                self._registry.apply(ref.call_id, ref.item_id, _object(entity), deleted=deleted)
        elif kind is _CALL:
            for call in [structure_call(_object(e)) for e in entities] or [Call()]:
                self._calls.apply(ref.call_id, ref.raw_call_id, change, call)
        elif kind in _ROSTER:
            participants = [structure_participant(_object(e)) for e in entities]
            self._calls.apply_roster(ref.call_id, participants, deleted)
        else:
            self.stats.unmatched += 1


def _entities(data: Any) -> Sequence[Any]:
    """``resourceData``: one entity, a list of them, or none."""
    if data is None:
        return ()
    return data if isinstance(data, list) else (data,)


def _object(entity: Any) -> Mapping[str, Any]:
    if not isinstance(entity, dict) and not isinstance(entity, Mapping):
        raise DeserializationError("resourceData is not a JSON object", payload=entity)
    return entity
