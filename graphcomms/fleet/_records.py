"""What an instance keeps in Redis about its work, and what a recovery gives back.

An instance's state hash (``state:{iid}``) holds one record per pending operation
(field ``o:{clientContext}``) and one per call it owns (field ``c:{key}``), each a small
JSON object with one-letter keys. This module is the one place that writes and reads
them: :func:`encode_operation` and :meth:`CallRecord.encode` write a record, and
:func:`decode` reads a whole hash back (as :class:`OperationRecord` and
:class:`CallRecord`), skipping what it cannot read.

Operation record: ``c`` the call's id as Graph spelled it, ``x`` the clientContext,
``i`` the operation id (null until Graph answered the POST), ``t`` the operation type's
class name, ``s`` its latest status, ``g`` the bot's tag, ``d`` its deadline as
wall-clock seconds (a process's monotonic clock ends with it). Call record: ``i`` the
call id, ``s`` its state, ``g`` the tag.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from graphcomms._json import dumps, loads
from graphcomms.fleet._store import text

if TYPE_CHECKING:
    from graphcomms._call import CallHandle
    from graphcomms._tracker import OperationTracker

__all__ = [
    "CALL",
    "OPERATION",
    "CallRecord",
    "IdentityTakenError",
    "OperationRecord",
    "RecoveredCall",
    "RecoveredOperation",
    "Recovery",
    "decode",
    "encode_operation",
]

#: Field prefixes in the state hash.
OPERATION, CALL = "o:", "c:"


@attrs.frozen
class OperationRecord:
    call_id: str
    client_context: str
    operation_id: str | None
    type_name: str
    status: str | None
    tag: str | None
    deadline: float | None

    @property
    def confirmed(self) -> bool:
        """Graph answered the action's POST (the operation id is known)."""
        return self.operation_id is not None

    def time_left(self, now: float | None = None) -> float | None:
        """Seconds until the stored deadline (0 once past); None if none was stored."""
        if self.deadline is None:
            return None
        return max(self.deadline - (time.time() if now is None else now), 0.0)


def encode_operation(
    *,
    call_id: str,
    client_context: str,
    operation_id: str | None,
    type_name: str,
    status: str | None,
    tag: str | None,
    deadline: float | None,
) -> bytes:
    """An operation's record, read back as an :class:`OperationRecord`. ``status``
    may be an ``OperationStatus``: a ``str``, written as its wire value."""
    return dumps(
        {
            "c": call_id,
            "x": client_context,
            "i": operation_id,
            "t": type_name,
            "s": status,
            "g": tag,
            "d": deadline,
        }
    )


@attrs.frozen
class CallRecord:
    call_id: str
    state: str | None
    tag: str | None

    def encode(self) -> bytes:
        return dumps({"i": self.call_id, "s": self.state, "g": self.tag})


def decode(fields: Mapping[Any, Any]) -> tuple[list[CallRecord], list[OperationRecord], int]:
    """A state hash's records: calls, operations, and how many were unreadable."""
    calls: list[CallRecord] = []
    operations: list[OperationRecord] = []
    bad = 0
    for field, value in fields.items():
        name = text(field)
        try:
            raw = loads(value)
        except ValueError:
            raw = None
        if not isinstance(raw, dict):
            bad += 1
        elif name.startswith(OPERATION) and _strings(raw, "c", "x"):
            deadline = raw.get("d")
            operations.append(
                OperationRecord(
                    call_id=raw["c"],
                    client_context=raw["x"],
                    operation_id=_optional(raw.get("i")),
                    type_name=_optional(raw.get("t")) or "CommsOperation",
                    status=_optional(raw.get("s")),
                    tag=_optional(raw.get("g")),
                    deadline=(
                        float(deadline)
                        if isinstance(deadline, (int, float)) and not isinstance(deadline, bool)
                        else None
                    ),
                )
            )
        elif name.startswith(CALL) and _strings(raw, "i"):
            calls.append(
                CallRecord(
                    call_id=raw["i"], state=_optional(raw.get("s")), tag=_optional(raw.get("g"))
                )
            )
        else:
            bad += 1
    return calls, operations, bad


def call_keys(fields: Mapping[Any, Any]) -> list[str]:
    """The call keys a state hash holds records for."""
    return [name[len(CALL) :] for name in map(text, fields) if name.startswith(CALL)]


def _strings(raw: Mapping[str, Any], *keys: str) -> bool:
    return all(isinstance(raw.get(k), str) for k in keys)


def _optional(value: Any) -> str | None:
    return value if isinstance(value, str) else None


# -- what a recovery hands the bot ------------------------------------------------------


class IdentityTakenError(RuntimeError):
    """Another process holds this instance identity and did not give it up in time."""


@attrs.frozen
class RecoveredOperation:
    """A pending operation recovered after a restart, or adopted from a lost instance.

    ``tracker`` resolves as any tracker does (``tracker.recovered`` is True); ``tag``
    is what the bot tagged it with. Nothing was sent to Graph again.

    ``confirmed`` is False when the previous process died after recording the action
    but before Graph answered its POST: Graph may never have received it. Such a
    tracker still resolves if a notification for it arrives; if none does, it fails
    with ``OperationTimeoutError`` after the relay's ``unconfirmed_timeout``. A bot
    may rather cancel it, or issue the step again, at once.
    """

    tracker: OperationTracker[Any]
    call: CallHandle
    tag: str | None
    confirmed: bool = True


@attrs.frozen
class RecoveredCall:
    """A call this instance owned (or adopted), back as a handle (``recovered``)."""

    call: CallHandle
    tag: str | None


@attrs.frozen
class Recovery:
    """What one recovery gave back: after a restart (``adopted_from`` is None) or the
    adoption of a lost instance's work."""

    instance: str
    adopted_from: str | None
    calls: tuple[RecoveredCall, ...]
    operations: tuple[RecoveredOperation, ...]
