"""Ingestion: a notification body in, trackers and call handles updated.

``Ingestor.feed`` is synchronous and framework-agnostic: it does no I/O and never runs
user code (callbacks are queued), so a webhook can call it and answer at once, and a
queue or relay reader is just another caller.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from graphcomms._converter import (
    loads,
    read_operation,
    structure_call,
    structure_operation,
    structure_participant,
)
from graphcomms._registry import ClientStats, OperationRegistry
from graphcomms._routing import ResourceKind, parse_resource_path, usual_operation_id
from graphcomms.errors import DeserializationError
from graphcomms.models import Call, ChangeType, CommsOperation, Participant
from graphcomms.typing import NotificationPayload

__all__ = ["CallRouter", "Ingestor"]

_log = logging.getLogger("graphcomms.ingest")

_CHANGE_TYPES = {member.value: member for member in ChangeType}


def _change_type(raw: Any) -> ChangeType | str:
    """A ``changeType`` in any casing; an unknown one as it came, a missing one ``""``."""
    if raw.__class__ is not str and not isinstance(raw, str):
        return ""
    found = _CHANGE_TYPES.get(raw)
    return found if found is not None else _CHANGE_TYPES.get(raw.lower(), raw)


class CallRouter(Protocol):
    """What ingestion tells about calls; the client implements it."""

    def on_call(self, call_id: str, raw_id: str, change: ChangeType | str, call: Call) -> None: ...

    def on_roster(
        self, call_id: str, participants: Sequence[Participant], deleted: bool
    ) -> None: ...


class Ingestor:
    __slots__ = ("_calls", "_registry", "stats")

    def __init__(self, registry: OperationRegistry, calls: CallRouter, stats: ClientStats) -> None:
        self._registry = registry
        self._calls = calls
        self.stats = stats

    def feed(self, payload: NotificationPayload) -> int:
        """Apply one ``commsNotifications`` body; returns how many items it held.

        Raises :class:`~graphcomms.errors.DeserializationError`, applying nothing, when
        the body is not JSON or not an envelope. Within a good envelope an item that
        cannot be parsed is logged and counted (``stats.bad_items``) and the other
        items are still applied.
        """
        # bytes (a queue, a relay) and dict (the webhook decoded it) first: the ABC
        # check for Mapping costs more than the rest of this.
        data: Any
        if payload.__class__ is dict:
            data = payload
        elif isinstance(payload, (bytes, str)) or not isinstance(payload, Mapping):
            data = loads(payload)  # a bytearray too: JSON all the same
        else:
            data = payload
        if data.__class__ is not dict and not isinstance(data, Mapping):
            raise DeserializationError("notification body is not a JSON object", payload=data)
        items = data.get("value")
        if items.__class__ is not list:
            raise DeserializationError(
                "notification body has no 'value' list (not a commsNotifications envelope)",
                payload=data,
            )
        stats = self.stats
        for item in items:
            stats.notifications += 1
            try:
                if not self._finish_known(item):
                    self._route(item)
            except Exception as exc:
                stats.bad_items += 1
                _log.warning(
                    "notification item skipped: %s", exc, exc_info=not isinstance(exc, ValueError)
                )
        return len(items)

    def _finish_known(self, item: Any) -> bool:
        """The common item, on a short path: an operation snapshot whose URL has Graph's
        usual form and names a pending operation. Returns ``False``, having done
        nothing, for anything else; :meth:`_route` then takes the item. What this does
        is what ``_route`` would do with the item (the tests feed both paths)."""
        if item.__class__ is not dict:
            return False
        url = item.get("resourceUrl")
        op_id = usual_operation_id(url) if url.__class__ is str else None
        if op_id is None:
            return False
        tracker = self._registry.pending_by_id(op_id)
        data = item.get("resourceData")
        if tracker is None or data.__class__ is not dict:
            return False
        try:
            snapshot = read_operation(data, CommsOperation)
        except Exception:
            snapshot = structure_operation(data)  # raises, saying what and where
        change = item.get("changeType")
        deleted = change == "deleted" or _change_type(change) is ChangeType.DELETED
        self._registry.advance(tracker, snapshot, deleted)
        return True

    def _route(self, item: Any) -> None:
        if item.__class__ is not dict and not isinstance(item, Mapping):
            raise DeserializationError("notification item is not an object", payload=item)
        ref = parse_resource_path(item.get("resourceUrl") or item.get("resource"))
        if ref is None:
            self.stats.unmatched += 1
            return
        change = _change_type(item.get("changeType"))
        deleted = change is ChangeType.DELETED
        data = item.get("resourceData")
        entities: Sequence[Any] = (
            (data,) if data.__class__ is dict else () if data is None else data
            if isinstance(data, list) else (data,)
        )
        kind = ref.kind
        if kind is ResourceKind.OPERATION:
            if not entities and deleted and ref.item_id is not None:
                # "This operation is gone" with no snapshot: still its end.
                entities = ({},)
            for entity in entities:
                snapshot: CommsOperation = structure_operation(entity)
                self._registry.apply(ref.call_id, ref.item_id, snapshot, deleted=deleted)
        elif kind is ResourceKind.CALL:
            calls = [structure_call(entity) for entity in entities] or [Call()]
            for call in calls:
                self._calls.on_call(ref.call_id, ref.raw_call_id, change, call)
        elif kind is ResourceKind.PARTICIPANTS or kind is ResourceKind.PARTICIPANT:
            participants = [structure_participant(entity) for entity in entities]
            self._calls.on_roster(ref.call_id, participants, deleted)
        else:
            self.stats.unmatched += 1
