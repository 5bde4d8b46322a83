"""``commsOperation`` and every subtype Graph returns from a call action."""

from __future__ import annotations

from datetime import datetime

import attrs

from graphcomms.models._base import GraphObject
from graphcomms.models._enums import CompletionReason, OperationStatus
from graphcomms.models.common import InvitationParticipantInfo, ResultInfo

__all__ = [
    "FAILURE_COMPLETION_REASONS",
    "TERMINAL_STATUSES",
    "AddLargeGalleryViewOperation",
    "AdmitAllFromLobbyOperation",
    "AdmitFromLobbyOperation",
    "CancelMediaProcessingOperation",
    "CommsOperation",
    "InviteParticipantsOperation",
    "MuteParticipantOperation",
    "MuteParticipantsOperation",
    "PlayPromptOperation",
    "RecordOperation",
    "RemoveFromLobbyOperation",
    "SendDtmfTonesOperation",
    "StartHoldMusicOperation",
    "StartRecordingOperation",
    "StartTranscriptionOperation",
    "StopHoldMusicOperation",
    "StopRecordingOperation",
    "StopTranscriptionOperation",
    "SubscribeToToneOperation",
    "UnmuteParticipantOperation",
    "UpdateRecordingStatusOperation",
    "is_success",
    "is_terminal",
]

_COMPLETED = OperationStatus.COMPLETED

TERMINAL_STATUSES: frozenset[OperationStatus] = frozenset(
    {OperationStatus.COMPLETED, OperationStatus.FAILED}
)

#: A terminal operation with one of these reasons did not do its job, whatever its status.
#: ``unknown`` is here because Graph reports an unplayed prompt as completed/unknown.
FAILURE_COMPLETION_REASONS: frozenset[CompletionReason] = frozenset(
    {
        CompletionReason.UNKNOWN,
        CompletionReason.MEDIA_OPERATION_CANCELED,
        CompletionReason.OPERATION_CANCELED,
        CompletionReason.PLAY_PROMPT_FAILED,
        CompletionReason.PLAY_BEEP_FAILED,
        CompletionReason.MEDIA_RECEIVE_TIMEOUT,
        CompletionReason.UNSPECIFIED_ERROR,
    }
)


@attrs.frozen(kw_only=True)
class CommsOperation(GraphObject):
    """A snapshot of an operation. A newer snapshot replaces it; nothing mutates it.

    ``status`` is ``None`` when Graph sent none (updates will follow). ``odata_type``
    keeps Graph's ``@odata.type`` so that an operation of a type graphcomms does not
    know, parsed as this base class, still says what it is.
    """

    id: str | None = None
    client_context: str | None = None
    status: OperationStatus | str | None = None
    result_info: ResultInfo | None = None
    completion_reason: CompletionReason | str | None = None
    odata_type: str | None = None

    @property
    def is_terminal(self) -> bool:
        return is_terminal(self.status)

    @property
    def succeeded(self) -> bool:
        """True only for a terminal snapshot that did its job (see :func:`is_success`)."""
        return is_success(self)


def is_terminal(status: OperationStatus | str | None) -> bool:
    """``completed`` or ``failed``; the converter has already folded Graph's casing."""
    return status in TERMINAL_STATUSES


def is_success(operation: CommsOperation) -> bool:
    """Done is not success: ``completed`` **and** a 2xx (or absent) ``resultInfo.code``
    **and** no failure ``completionReason``."""
    status = operation.status
    # The member by identity first: this runs on every resolution, and an enum
    # comparison costs more. A plain "completed" counts too.
    if status is not _COMPLETED and status != _COMPLETED:
        return False
    info = operation.result_info
    if info is not None and not info.is_success:
        return False
    reason = operation.completion_reason
    return reason is None or reason not in FAILURE_COMPLETION_REASONS


@attrs.frozen(kw_only=True)
class PlayPromptOperation(CommsOperation):
    created_date_time: datetime | None = None
    last_action_date_time: datetime | None = None


@attrs.frozen(kw_only=True)
class RecordOperation(CommsOperation):
    """A finished recording: fetch ``recording_location`` with ``recording_access_token``
    as the bearer, soon: Graph discards recordings shortly after the call ends."""

    recording_location: str | None = None
    recording_access_token: str | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class SendDtmfTonesOperation(CommsOperation):
    pass


@attrs.frozen(kw_only=True)
class InviteParticipantsOperation(CommsOperation):
    participants: tuple[InvitationParticipantInfo, ...] = ()


@attrs.frozen(kw_only=True)
class MuteParticipantsOperation(CommsOperation):
    participants: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class CancelMediaProcessingOperation(CommsOperation):
    pass


@attrs.frozen(kw_only=True)
class SubscribeToToneOperation(CommsOperation):
    pass


@attrs.frozen(kw_only=True)
class MuteParticipantOperation(CommsOperation):
    pass


@attrs.frozen(kw_only=True)
class UnmuteParticipantOperation(CommsOperation):
    pass


@attrs.frozen(kw_only=True)
class UpdateRecordingStatusOperation(CommsOperation):
    pass


@attrs.frozen(kw_only=True)
class AddLargeGalleryViewOperation(CommsOperation):
    pass


@attrs.frozen(kw_only=True)
class StartHoldMusicOperation(CommsOperation):
    pass


@attrs.frozen(kw_only=True)
class StopHoldMusicOperation(CommsOperation):
    pass


@attrs.frozen(kw_only=True)
class StartTranscriptionOperation(CommsOperation):
    pass


@attrs.frozen(kw_only=True)
class StopTranscriptionOperation(CommsOperation):
    pass


@attrs.frozen(kw_only=True)
class StartRecordingOperation(CommsOperation):
    pass


@attrs.frozen(kw_only=True)
class StopRecordingOperation(CommsOperation):
    pass


@attrs.frozen(kw_only=True)
class AdmitAllFromLobbyOperation(CommsOperation):
    pass


@attrs.frozen(kw_only=True)
class AdmitFromLobbyOperation(CommsOperation):
    pass


@attrs.frozen(kw_only=True)
class RemoveFromLobbyOperation(CommsOperation):
    pass
