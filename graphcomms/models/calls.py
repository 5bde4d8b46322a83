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
    """A snapshot of a call (Graph's ``call`` resource). Notifications carry partial
    snapshots; a call handle merges them (``merged``) into ``handle.snapshot``.
    Every field is Graph's property of the same name in camelCase; ``None`` means
    Graph did not send it."""

    id: str | None = None
    """Graph's call id (a GUID; matched in any casing, with or without hyphens)."""
    state: CallState | str | None = None
    """``incoming``, ``establishing``, ``established``, ``terminated``, ... as a
    :class:`CallState` member, or Graph's string for a state graphcomms does not know."""
    result_info: ResultInfo | None = None
    """Why the call ended, once it has (``code``/``subcode``)."""
    callback_uri: str | None = None
    """Where Graph sends this call's notifications."""
    direction: CallDirection | str | None = None
    """``incoming`` or ``outgoing``, from the bot's side."""
    source: ParticipantInfo | None = None
    """Who placed the call (for an outgoing PSTN call, the bot's application instance)."""
    targets: tuple[InvitationParticipantInfo, ...] | None = None
    """Who the call was placed to."""
    requested_modalities: tuple[Modality | str, ...] | None = None
    """``audio``, ``video``, ``videoBasedScreenSharing``, ``data`` asked for."""
    active_modalities: tuple[Modality | str, ...] | None = None
    """The modalities in use now."""
    media_config: MediaConfig | None = None
    """Service-hosted media (what playPrompt, recordResponse and subscribeToTone need)
    or app-hosted media."""
    media_state: CallMediaState | None = None
    """The state of the call's audio."""
    tone_info: ToneInfo | None = None
    """A DTMF tone this snapshot announced (the handle turns these into ``tones()``)."""
    my_participant_id: str | None = None
    """The bot's own participant id in the call."""
    call_chain_id: str | None = None
    """The id that ties the legs of one call together (Graph's ``callChainId``)."""
    chat_info: ChatInfo | None = None
    """The meeting's chat thread, for a meeting call."""
    meeting_info: MeetingInfo | None = None
    """The meeting joined, for a meeting call."""
    call_options: IncomingCallOptions | OutgoingCallOptions | None = None
    """Options the call was created or answered with (e.g. delta rosters)."""
    subject: str | None = None
    """The call's subject, when it has one."""
    tenant_id: str | None = None
    """The tenant the call belongs to."""
    termination_reason: str | None = None
    """Graph's text on why the call ended, when it sends one."""
    incoming_context: dict[str, Any] | None = None
    """For an incoming call: who it was for and on whose behalf (as Graph's JSON)."""
    answered_by: ParticipantInfo | None = None
    """Who answered the call (beta)."""
    ringing_timeout_in_seconds: int | None = None
    """How long an outgoing call rings (beta; at most 115)."""

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
    """A roster entry (Graph's ``participant``)."""

    id: str | None = None
    """The participant id: what ``call.participant(id)`` takes."""
    info: ParticipantInfo | None = None
    """Who the participant is."""
    is_in_lobby: bool | None = None
    """Waiting in a meeting's lobby."""
    is_muted: bool | None = None
    """Muted (by themselves or the server)."""
    media_streams: tuple[MediaStream, ...] | None = None
    """The participant's audio and video streams."""
    metadata: str | None = None
    recording_info: RecordingInfo | None = None
    removed_state: RemovedState | None = None
    """Set when the participant was removed, with the reason."""
    roster_sequence_number: int | None = None
    """Orders roster updates."""
