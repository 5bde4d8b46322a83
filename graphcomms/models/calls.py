"""The ``call`` and ``participant`` resources.

Call notifications are partial (often only ``state``), so every field is optional;
the call handle merges a partial snapshot over the last full one.
"""

from __future__ import annotations

from typing import Any

import attrs

from graphcomms.models._base import AdditionalData, GraphObject
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
class Call(GraphObject):
    id: str | None = None
    state: CallState | str | None = None
    result_info: ResultInfo | None = None
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
        """This snapshot with every field that ``update`` sets laid over it; its
        ``additional_data`` keys laid over this one's."""
        changes: dict[str, Any] = {
            a.name: v for a in _MERGED_FIELDS if (v := getattr(update, a.name)) is not None
        }
        if update.additional_data:
            extra = {**self.additional_data, **update.additional_data}
            changes["additional_data"] = AdditionalData(extra)
        return attrs.evolve(self, **changes) if changes else self


_MERGED_FIELDS = tuple(a for a in attrs.fields(Call) if a.name != "additional_data")


@attrs.frozen(kw_only=True)
class MediaStream(GraphObject):
    media_type: Modality | str | None = None
    direction: MediaDirection | str | None = None
    label: str | None = None
    source_id: str | None = None
    server_muted: bool | None = None


@attrs.frozen(kw_only=True)
class RecordingInfo(GraphObject):
    initiator: IdentitySet | None = None
    recording_status: RecordingStatus | str | None = None


@attrs.frozen(kw_only=True)
class RemovedState(GraphObject):
    reason: str | None = None


@attrs.frozen(kw_only=True)
class Participant(GraphObject):
    id: str | None = None
    info: ParticipantInfo | None = None
    is_in_lobby: bool | None = None
    is_muted: bool | None = None
    media_streams: tuple[MediaStream, ...] | None = None
    metadata: str | None = None
    recording_info: RecordingInfo | None = None
    removed_state: RemovedState | None = None
    roster_sequence_number: int | None = None
