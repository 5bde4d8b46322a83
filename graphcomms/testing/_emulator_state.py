"""What the emulator remembers: calls, their operations, requests and deliveries.

These objects are the emulator's own bookkeeping, exposed read-only to tests through
``GraphEmulator.calls``, ``.requests`` and ``.deliveries``. Fields starting with ``_``
are the emulator's machinery (queues, tasks, counters) and not for tests.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from random import Random
from typing import Any, NamedTuple

from graphcomms.testing._emulator_wire import (
    JSON,
    ODATA,
    call_path,
    operation_path,
)

ENDED_STATES = frozenset({"terminated"})
TERMINAL_STATUSES = frozenset({"completed", "failed"})


class RecordedRequest(NamedTuple):
    """One request to the Graph API paths, as received (``Authorization`` left out)."""

    method: str
    path: str
    json: Any
    headers: Mapping[str, str]


@dataclass(eq=False)
class Delivery:
    """One notification POST, logged when it was sent, dropped or failed.

    ``faults`` names what was applied (``"duplicate"`` marks the second copy,
    ``"reorder"`` the notification that was held back behind the next one); ``status``
    is the bot's HTTP status, None when nothing came back (``error`` then says why).
    """

    seq: int
    call_id: str
    operation_id: str | None
    change_type: str
    resource_url: str
    url: str | None
    message_id: str
    faults: tuple[str, ...] = ()
    status: int | None = None
    error: str | None = None
    body: JSON = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass(eq=False)
class EmulatedOperation:
    """One commsOperation as the emulator runs it.

    ``snapshot()`` is its current Graph body; ``status`` is Graph's status string;
    ``result_delivered`` says its terminal notification reached the bot (a 2xx answer).
    """

    id: str
    call_id: str
    odata_type: str
    client_context: str | None
    status: str = "running"
    result_info: JSON | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    include_id: bool = True
    result_delivered: bool = False
    # How long its media step takes, in emulated seconds; None: it never ends by itself.
    _duration: float | None = field(default=0.0, repr=False)
    _stop_tones: frozenset[str] = field(default=frozenset(), repr=False)
    _interrupt: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def snapshot(self) -> JSON:
        body: JSON = {"@odata.type": f"{ODATA}{self.odata_type}"}
        if self.include_id:
            body["id"] = self.id
        if self.client_context is not None:
            body["clientContext"] = self.client_context
        body["status"] = self.status
        body["resultInfo"] = self.result_info
        body.update(self.fields)
        return body

    def notification_data(self, etag: str) -> JSON:
        """The resourceData of the terminal notification (§5.4)."""
        return {
            "@odata.type": f"{ODATA}{self.odata_type}",
            "@odata.id": operation_path(self.call_id, self.id),
            "@odata.etag": etag,
            **{k: v for k, v in self.snapshot().items() if k != "@odata.type"},
        }


@dataclass(eq=False)
class EmulatedCall:
    """One call: its state, roster, operations and what its notifications did."""

    id: str
    direction: str
    state: str
    callback_uri: str | None
    call_chain_id: str
    my_participant_id: str
    tenant_id: str
    source: JSON
    targets: list[JSON]
    requested_modalities: list[str]
    media_config: JSON | None = None
    participants: dict[str, JSON] = field(default_factory=dict)
    operations: dict[str, EmulatedOperation] = field(default_factory=dict)
    tone_subscribed: bool = False
    tone_sequence_id: int = 0
    result_info: JSON | None = None
    on_hold: str | None = None
    notifications_delivered: int = 0
    notifications_dropped: int = 0
    notifications_failed: int = 0
    #: keepAlives the call received (200).
    keep_alives: int = 0
    _rng: Random = field(default_factory=Random, repr=False)
    _etag: int = field(default=0, repr=False)
    _roster_sequence: int = field(default=0, repr=False)
    _media_queue: deque[EmulatedOperation] = field(default_factory=deque, repr=False)
    _media_current: EmulatedOperation | None = field(default=None, repr=False)
    _media_task: asyncio.Task[None] | None = field(default=None, repr=False)
    # Keys the caller will press as soon as a prompt plays (press_keys(during_prompt=True)).
    _keys_for_prompt: str = field(default="", repr=False)
    _fail_transfer: tuple[int, int, str] | None = field(default=None, repr=False)
    # Loop time by which the next keepAlive must come, and the timer that checks it.
    _keep_alive_deadline: float = field(default=0.0, repr=False)
    _keep_alive_timer: asyncio.TimerHandle | None = field(default=None, repr=False)

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES

    @property
    def playing(self) -> EmulatedOperation | None:
        """The playPrompt operation playing now, if one is."""
        current = self._media_current
        if current is not None and current.odata_type == "playPromptOperation":
            return current
        return None

    @property
    def service_hosted_media(self) -> bool:
        odata_type = str((self.media_config or {}).get("@odata.type", ""))
        return not odata_type.lower().endswith("apphostedmediaconfig")

    def next_etag(self) -> str:
        self._etag += 1
        return f'W/"{self._etag}"'

    def next_roster_sequence(self) -> int:
        self._roster_sequence += 1
        return self._roster_sequence

    def resource(self) -> JSON:
        """The call as GET returns it."""
        body: JSON = {
            "@odata.type": f"{ODATA}call",
            "id": self.id,
            "state": self.state,
            "direction": self.direction,
            "callbackUri": self.callback_uri,
            "callChainId": self.call_chain_id,
            "myParticipantId": self.my_participant_id,
            "tenantId": self.tenant_id,
            "source": self.source,
            "targets": self.targets,
            "requestedModalities": self.requested_modalities,
            "mediaConfig": self.media_config,
            "mediaState": {"@odata.type": f"{ODATA}callMediaState", "audio": "active"},
            "resultInfo": self.result_info,
        }
        return body

    def path(self) -> str:
        return call_path(self.id)
