"""Builders for tests: operations and notifications shaped exactly as Graph sends them,
and a notification source you push into."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from typing import Any, TypeVar

from graphcomms._converter import unstructure
from graphcomms.models import (
    Call,
    CommsOperation,
    OperationStatus,
    Participant,
    PlayPromptOperation,
    ResultInfo,
)
from graphcomms.typing import NotificationPayload

__all__ = [
    "FakeNotificationSource",
    "make_envelope",
    "make_notification",
    "make_operation",
]

OpT = TypeVar("OpT", bound=CommsOperation)

_DEFAULT_RESULTS = {
    OperationStatus.COMPLETED: ResultInfo(
        code=200, subcode=0, message="Action completed successfully."
    ),
    OperationStatus.FAILED: ResultInfo(code=400, subcode=8508, message="Action failed."),
}


def make_operation(
    kind: type[OpT] = PlayPromptOperation,  # type: ignore[assignment]
    *,
    status: OperationStatus | str | None = OperationStatus.RUNNING,
    id: str | None = None,
    client_context: str | None = None,
    result_info: ResultInfo | None = None,
    **fields: Any,
) -> OpT:
    """An operation snapshot; only say what differs. A terminal status gets Graph's
    usual resultInfo unless you pass one; ``id`` defaults to a fresh GUID."""
    if isinstance(status, str) and not isinstance(status, OperationStatus):
        status = next((s for s in OperationStatus if s.value.lower() == status.lower()), status)
    if result_info is None and isinstance(status, OperationStatus):
        result_info = _DEFAULT_RESULTS.get(status)
    return kind(
        id=id if id is not None else str(uuid.uuid4()),
        status=status,
        client_context=client_context,
        result_info=result_info,
        **fields,
    )


def make_notification(
    resource: CommsOperation | Call | Sequence[Participant],
    *,
    call_id: str,
    change_type: str | None = None,
    operation_id: str | None = None,
) -> dict[str, Any]:
    """One Graph notification envelope about ``resource``, as a JSON-ready dict.

    For an operation the default ``change_type`` is ``deleted`` when its status is
    terminal (as Graph sends completions) and ``updated`` otherwise; the resource URL
    names ``operation_id`` or the operation's own id.
    """
    return make_envelope(
        _item(resource, call_id=call_id, change_type=change_type, operation_id=operation_id)
    )


def make_envelope(*items: dict[str, Any]) -> dict[str, Any]:
    """An envelope holding several items (each an envelope's single item, or a raw item)."""
    value: list[dict[str, Any]] = []
    for item in items:
        value.extend(item.get("value", [item]))
    return {"@odata.type": "#microsoft.graph.commsNotifications", "value": value}


def _item(
    resource: CommsOperation | Call | Sequence[Participant],
    *,
    call_id: str,
    change_type: str | None,
    operation_id: str | None,
) -> dict[str, Any]:
    base = f"/communications/calls/{call_id}"
    data: Any
    if isinstance(resource, CommsOperation):
        op_id = operation_id or resource.id
        url = f"{base}/operations/{op_id}"
        data = unstructure(resource)
        default_change = "deleted" if resource.is_terminal else "updated"
    elif isinstance(resource, Call):
        url = base
        data = unstructure(resource)
        default_change = "deleted" if resource.state == "terminated" else "updated"
    else:
        url = f"{base}/participants"
        data = [unstructure(p) for p in resource]
        default_change = "updated"
    return {
        "@odata.type": "#microsoft.graph.commsNotification",
        "changeType": change_type or default_change,
        "resourceUrl": url,
        "resourceData": data,
    }


class FakeNotificationSource:
    """A notification source for tests: ``push`` bodies, the client consumes them.

    Pass it as ``CommsClient(..., notifications=source)``. ``close()`` ends the stream.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[NotificationPayload | None] = asyncio.Queue()

    def push(self, payload: NotificationPayload) -> None:
        self._queue.put_nowait(payload)

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def join(self) -> None:
        """Wait until everything pushed so far has been taken by the consumer."""
        while not self._queue.empty():  # noqa: ASYNC110 (a test helper; no event to wait on)
            await asyncio.sleep(0)
        await asyncio.sleep(0)

    def __aiter__(self) -> AsyncIterator[NotificationPayload]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[NotificationPayload]:
        while (payload := await self._queue.get()) is not None:
            yield payload
