"""Pending trackers made without HTTP, for the in-process benchmarks.

:func:`add_pending` does what ``CommsClient._send_operation`` does around its POST --
tracker, ``registry.expect``, the §5.5 answer structured, ``registry.bind`` -- so a
pending tracker here holds exactly what one holds in a bot, at none of the network's
cost. It uses the registry and tracker internals the way
``tests/test_tracking_properties.py`` does; measured code never goes through it.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from benchmarks._payloads import running_play_prompt
from graphcomms import CommsClient, PlayPromptOperation
from graphcomms._converter import structure_operation
from graphcomms._routing import normalize_id
from graphcomms._tracker import OperationTracker

__all__ = ["add_pending", "attach_waiter", "offline_client"]

# Never contacted: these clients only ingest.
_NOWHERE = "http://127.0.0.1:9/v1.0/"


def offline_client() -> CommsClient:
    """A client that is only fed notifications; it never opens a session."""
    return CommsClient("benchmark-token", base_url=_NOWHERE)


def add_pending(
    client: CommsClient, call_id: uuid.UUID, operation_id: uuid.UUID, context: str
) -> OperationTracker[PlayPromptOperation]:
    """A pending playPrompt tracker, as ``await call.play_prompt(...)`` leaves it after
    a ``running`` answer (no timeout, cancellable like the real one)."""
    call = client.call(str(call_id))
    tracker: OperationTracker[Any] = OperationTracker(
        call_id=call.key,
        client_context=context,
        snapshot=PlayPromptOperation(client_context=context),
        runner=client._runner,
        cancel_hook=call._cancel_hook,  # shared, as CallHandle._operation passes it
    )
    client._registry.expect(tracker, timeout=None)
    snapshot = structure_operation(
        running_play_prompt(str(operation_id), context), default=PlayPromptOperation
    )
    assert snapshot.id is not None
    client._registry.bind(tracker, normalize_id(snapshot.id), snapshot)
    return tracker


def attach_waiter(tracker: OperationTracker[Any], loop: asyncio.AbstractEventLoop) -> None:
    """Give the tracker the future an ``await tracker`` would create, without a task:
    resolving then costs a ``set_result``, as it does in the floor it is held against."""
    tracker._waiter = loop.create_future()
