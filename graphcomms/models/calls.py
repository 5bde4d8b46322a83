"""The ``call`` and ``participant`` resources.

Call notifications are partial (often only ``state``), so every field is optional;
the call handle merges a partial snapshot over the last full one.
"""

from __future__ import annotations

from typing import Any

import attrs

from graphcomms.models._enums import (
    CallDirection,
    CallState,
    MediaDirection,
    Modality,
    RecordingStatus,
)
from graphcomms.models.common import (
    CallMediaState,
    ChatInfo,
    IdentitySet,
    IncomingCallOptions,
    InvitationParticipantInfo,
    MediaConfig,
    MeetingInfo,
    OutgoingCallOptions,
    ParticipantInfo,
    ResultInfo,
    ToneInfo,
)

__all__ = ["Call", "MediaStream", "Participant", "RecordingInfo", "RemovedState"]


@attrs.frozen(kw_only=True)
class Call:
    """A snapshot of a call (Graph's ``call`` resource). Notifications carry partial
    snapshots; a call handle merges them (``merged``) into ``handle.snapshot``.
    Every field is Graph's property of the same name in camelCase; ``None`` means
    Graph did not send it."""

    id: str | None = None
    state: CallState | str | None = None
    """``incoming``, ``establishing``, ``established``, ``terminated``, ... as a
    :class:`CallState` member, or Graph's string for a state graphcomms does not know."""
    result_info: ResultInfo | None = None
    """Why the call ended, once it has (``code``/``subcode``)."""
    callback_uri: str | None = None
    direction: CallDirection | str | None = None
    source: ParticipantInfo | None = None
    targets: tuple[InvitationParticipantInfo, ...] | None = None
    requested_modalities: tuple[Modality | str, ...] | None = None
    active_modalities: tuple[Modality | str, ...] | None = None
    media_config: MediaConfig | None = None
    media_state: CallMediaState | None = None
    tone_info: ToneInfo | None = None
    my_participant_id: str | None = None
    call_chain_id: str | None = None
    chat_info: ChatInfo | None = None
    meeting_info: MeetingInfo | None = None
    call_options: IncomingCallOptions | OutgoingCallOptions | None = None
    subject: str | None = None
    tenant_id: str | None = None
    termination_reason: str | None = None
    incoming_context: dict[str, Any] | None = None
    answered_by: ParticipantInfo | None = None
    ringing_timeout_in_seconds: int | None = None

    def merged(self, update: Call) -> Call:
        """This snapshot with every field that ``update`` sets laid over it."""
        changes = {
            a.name: v for a in attrs.fields(Call) if (v := getattr(update, a.name)) is not None
        }
        return attrs.evolve(self, **changes) if changes else self


@attrs.frozen(kw_only=True)
class MediaStream:
    media_type: Modality | str | None = None
    direction: MediaDirection | str | None = None
    label: str | None = None
    source_id: str | None = None
    server_muted: bool | None = None


@attrs.frozen(kw_only=True)
class RecordingInfo:
    initiator: IdentitySet | None = None
    recording_status: RecordingStatus | str | None = None


@attrs.frozen(kw_only=True)
class RemovedState:
    reason: str | None = None


@attrs.frozen(kw_only=True)
class Participant:
    """A roster entry (Graph's ``participant``)."""

    id: str | None = None
    info: ParticipantInfo | None = None
    is_in_lobby: bool | None = None
    is_muted: bool | None = None
    media_streams: tuple[MediaStream, ...] | None = None
    metadata: str | None = None
    recording_info: RecordingInfo | None = None
    removed_state: RemovedState | None = None
    roster_sequence_number: int | None = None
