"""Ingestion: a notification body in, trackers and call handles updated.

``Ingestor.feed`` is synchronous and framework-agnostic: it does no I/O and never runs
user code (callbacks are queued), so a webhook can call it and answer at once, and a
queue or relay reader is just another caller.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from graphcomms._converter import loads, structure_call, structure_operation, structure_participant
from graphcomms._registry import ClientStats, OperationRegistry
from graphcomms._routing import ResourceKind, parse_resource_path
from graphcomms.errors import DeserializationError
from graphcomms.models import Call, ChangeType, CommsOperation, Participant
from graphcomms.typing import NotificationPayload

__all__ = ["CallRouter", "Ingestor"]

_log = logging.getLogger("graphcomms.ingest")

_CHANGE_TYPES = {member.value: member for member in ChangeType}


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
        data: Any = payload if isinstance(payload, Mapping) else loads(payload)
        if data.__class__ is not dict and not isinstance(data, Mapping):
            raise DeserializationError("notification body is not a JSON object", payload=data)
        items = data.get("value")
        if not isinstance(items, list):
            raise DeserializationError(
                "notification body has no 'value' list (not a commsNotifications envelope)",
                payload=data,
            )
        stats = self.stats
        for item in items:
            stats.notifications += 1
            try:
                self._route(item)
            except Exception as exc:
                stats.bad_items += 1
                _log.warning(
                    "notification item skipped: %s", exc, exc_info=not isinstance(exc, ValueError)
                )
        return len(items)

    def _route(self, item: Any) -> None:
        if item.__class__ is not dict and not isinstance(item, Mapping):
            raise DeserializationError("notification item is not an object", payload=item)
        ref = parse_resource_path(item.get("resourceUrl") or item.get("resource"))
        if ref is None:
            self.stats.unmatched += 1
            return
        raw_change = item.get("changeType")
        change: ChangeType | str = (
            _CHANGE_TYPES.get(raw_change.lower(), raw_change) if isinstance(raw_change, str) else ""
        )
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
