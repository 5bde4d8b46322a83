"""Request bodies, one per action. Each declares the path it is POSTed to (relative to
the call) and, for actions that return an operation, the operation type it returns.

Graph's documented limits are checked when a request is built, so a request Graph
would refuse raises :class:`~graphcomms.errors.InvalidRequestError` before anything
is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sized
from typing import Any, ClassVar, Generic, TypeVar

import attrs

from graphcomms.errors import InvalidRequestError
from graphcomms.models._enums import (
    Modality,
    RecordingStatus,
    RejectReason,
    ScreenSharingRole,
    Tone,
)
from graphcomms.models.common import (
    IncomingCallOptions,
    InvitationParticipantInfo,
    MediaConfig,
    ParticipantInfo,
    Prompt,
)
from graphcomms.models.operations import (
    AddLargeGalleryViewOperation,
    AdmitAllFromLobbyOperation,
    AdmitFromLobbyOperation,
    CancelMediaProcessingOperation,
    CommsOperation,
    InviteParticipantsOperation,
    MuteParticipantOperation,
    MuteParticipantsOperation,
    PlayPromptOperation,
    RecordOperation,
    RemoveFromLobbyOperation,
    SendDtmfTonesOperation,
    StartHoldMusicOperation,
    StartRecordingOperation,
    StartTranscriptionOperation,
    StopHoldMusicOperation,
    StopRecordingOperation,
    StopTranscriptionOperation,
    SubscribeToToneOperation,
    UnmuteParticipantOperation,
    UpdateRecordingStatusOperation,
)

__all__ = [
    "MAX_CLIENT_CONTEXT_LENGTH",
    "ActionRequest",
    "AddLargeGalleryViewRequest",
    "AdmitAllFromLobbyRequest",
    "AdmitFromLobbyRequest",
    "AnswerRequest",
    "CancelMediaProcessingRequest",
    "ChangeScreenSharingRoleRequest",
    "InviteParticipantsRequest",
    "MuteAllRequest",
    "MuteParticipantRequest",
    "MuteRequest",
    "OperationRequest",
    "PlayPromptRequest",
    "RecordRequest",
    "RecordResponseRequest",
    "RedirectRequest",
    "RejectRequest",
    "RemoveFromLobbyRequest",
    "SendDtmfTonesRequest",
    "StartHoldMusicRequest",
    "StartRecordingRequest",
    "StartTranscriptionRequest",
    "StopHoldMusicRequest",
    "StopRecordingRequest",
    "StopTranscriptionRequest",
    "SubscribeToToneRequest",
    "TransferRequest",
    "UnmuteRequest",
    "UpdateRecordingStatusRequest",
]

MAX_CLIENT_CONTEXT_LENGTH = 256

OpT = TypeVar("OpT", bound=CommsOperation)


def _client_context(_: object, attribute: attrs.Attribute[Any], value: str | None) -> None:
    if value is not None and len(value) > MAX_CLIENT_CONTEXT_LENGTH:
        raise InvalidRequestError(
            f"clientContext is {len(value)} characters; Graph allows at most "
            f"{MAX_CLIENT_CONTEXT_LENGTH}"
        )


def _seconds(low: int, high: int) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
        if value is not None and not low <= value <= high:
            raise InvalidRequestError(
                f"{attribute.name} must be between {low} and {high}, got {value}"
            )

    return check


def _count(low: int, high: int) -> Any:
    def check(_: object, attribute: attrs.Attribute[Any], value: Sized | None) -> None:
        if value is not None and not low <= len(value) <= high:
            raise InvalidRequestError(
                f"{attribute.name} takes {low} to {high} items, got {len(value)}"
            )

    return check


def _to_tuple(value: Iterable[Any]) -> tuple[Any, ...]:
    return tuple(value)


def _as_tuple(value: Iterable[Any] | None) -> tuple[Any, ...] | None:
    return None if value is None else tuple(value)


@attrs.frozen(kw_only=True)
class ActionRequest:
    """A POST to ``/communications/calls/{call_id}/{path}``.

    ``path`` may hold ``{participant_id}``, filled in by the participant handle.
    """

    path: ClassVar[str]


@attrs.frozen(kw_only=True)
class OperationRequest(ActionRequest, Generic[OpT]):
    """An action that returns a ``commsOperation``; ``returns`` is its type.

    ``client_context`` correlates the notifications; graphcomms generates one when it
    is ``None``.
    """

    returns: ClassVar[type[CommsOperation]]
    client_context: str | None = attrs.field(default=None, validator=_client_context)


@attrs.frozen(kw_only=True)
class PlayPromptRequest(OperationRequest[PlayPromptOperation]):
    path = "playPrompt"
    returns = PlayPromptOperation
    prompts: tuple[Prompt, ...] = attrs.field(converter=_to_tuple, validator=_count(1, 20))
    loop: bool | None = None  # beta: loop until cancelled; no completion notification


@attrs.frozen(kw_only=True)
class RecordResponseRequest(OperationRequest[RecordOperation]):
    path = "recordResponse"
    returns = RecordOperation
    prompts: tuple[Prompt, ...] | None = attrs.field(
        default=None, converter=_as_tuple, validator=_count(0, 1)
    )
    barge_in_allowed: bool | None = None
    initial_silence_timeout_in_seconds: int | None = attrs.field(
        default=None, validator=_seconds(1, 120)
    )
    max_silence_timeout_in_seconds: int | None = attrs.field(
        default=None, validator=_seconds(1, 120)
    )
    max_record_duration_in_seconds: int | None = attrs.field(
        default=None, validator=_seconds(1, 120)
    )
    play_beep: bool | None = None
    stop_tones: tuple[str, ...] | None = attrs.field(default=None, converter=_as_tuple)
    stream_while_recording: bool | None = None  # beta


@attrs.frozen(kw_only=True)
class RecordRequest(RecordResponseRequest):
    """The legacy beta ``record`` action; same body as ``recordResponse``."""

    path = "record"


@attrs.frozen(kw_only=True)
class CancelMediaProcessingRequest(OperationRequest[CancelMediaProcessingOperation]):
    path = "cancelMediaProcessing"
    returns = CancelMediaProcessingOperation


@attrs.frozen(kw_only=True)
class SubscribeToToneRequest(OperationRequest[SubscribeToToneOperation]):
    path = "subscribeToTone"
    returns = SubscribeToToneOperation


@attrs.frozen(kw_only=True)
class SendDtmfTonesRequest(OperationRequest[SendDtmfTonesOperation]):
    path = "sendDtmfTones"
    returns = SendDtmfTonesOperation
    tones: tuple[Tone | str, ...] = attrs.field(converter=_to_tuple, validator=_count(1, 1000))
    delay_between_tones_ms: int | None = None


@attrs.frozen(kw_only=True)
class MuteRequest(OperationRequest[MuteParticipantOperation]):
    path = "mute"
    returns = MuteParticipantOperation


@attrs.frozen(kw_only=True)
class UnmuteRequest(OperationRequest[UnmuteParticipantOperation]):
    path = "unmute"
    returns = UnmuteParticipantOperation


@attrs.frozen(kw_only=True)
class UpdateRecordingStatusRequest(OperationRequest[UpdateRecordingStatusOperation]):
    path = "updateRecordingStatus"
    returns = UpdateRecordingStatusOperation
    status: RecordingStatus | str


@attrs.frozen(kw_only=True)
class AddLargeGalleryViewRequest(OperationRequest[AddLargeGalleryViewOperation]):
    path = "addLargeGalleryView"
    returns = AddLargeGalleryViewOperation


@attrs.frozen(kw_only=True)
class InviteParticipantsRequest(OperationRequest[InviteParticipantsOperation]):
    path = "participants/invite"
    returns = InviteParticipantsOperation
    participants: tuple[InvitationParticipantInfo, ...] = attrs.field(
        converter=_to_tuple, validator=_count(1, 5)
    )


@attrs.frozen(kw_only=True)
class MuteParticipantRequest(OperationRequest[MuteParticipantOperation]):
    path = "participants/{participant_id}/mute"
    returns = MuteParticipantOperation


@attrs.frozen(kw_only=True)
class StartHoldMusicRequest(OperationRequest[StartHoldMusicOperation]):
    path = "participants/{participant_id}/startHoldMusic"
    returns = StartHoldMusicOperation
    custom_prompt: Prompt | None = None


@attrs.frozen(kw_only=True)
class StopHoldMusicRequest(OperationRequest[StopHoldMusicOperation]):
    path = "participants/{participant_id}/stopHoldMusic"
    returns = StopHoldMusicOperation


@attrs.frozen(kw_only=True)
class MuteAllRequest(OperationRequest[MuteParticipantsOperation]):
    """beta"""

    path = "participants/muteAll"
    returns = MuteParticipantsOperation
    participants: tuple[str, ...] | None = attrs.field(default=None, converter=_as_tuple)


@attrs.frozen(kw_only=True)
class StartTranscriptionRequest(OperationRequest[StartTranscriptionOperation]):
    """beta; Graph supports only ``en-us``."""

    path = "startTranscription"
    returns = StartTranscriptionOperation
    language: str | None = None


@attrs.frozen(kw_only=True)
class StopTranscriptionRequest(OperationRequest[StopTranscriptionOperation]):
    """beta"""

    path = "stopTranscription"
    returns = StopTranscriptionOperation
    language: str | None = None


@attrs.frozen(kw_only=True)
class StartRecordingRequest(OperationRequest[StartRecordingOperation]):
    """beta"""

    path = "startRecording"
    returns = StartRecordingOperation


@attrs.frozen(kw_only=True)
class StopRecordingRequest(OperationRequest[StopRecordingOperation]):
    """beta"""

    path = "stopRecording"
    returns = StopRecordingOperation


@attrs.frozen(kw_only=True)
class AdmitAllFromLobbyRequest(OperationRequest[AdmitAllFromLobbyOperation]):
    """beta"""

    path = "participants/admitAllFromLobby"
    returns = AdmitAllFromLobbyOperation


@attrs.frozen(kw_only=True)
class AdmitFromLobbyRequest(OperationRequest[AdmitFromLobbyOperation]):
    """beta"""

    path = "participants/{participant_id}/admitFromLobby"
    returns = AdmitFromLobbyOperation


@attrs.frozen(kw_only=True)
class RemoveFromLobbyRequest(OperationRequest[RemoveFromLobbyOperation]):
    """beta"""

    path = "participants/{participant_id}/removeFromLobby"
    returns = RemoveFromLobbyOperation


@attrs.frozen(kw_only=True)
class AnswerRequest(ActionRequest):
    path = "answer"
    callback_uri: str | None = None
    media_config: MediaConfig
    accepted_modalities: tuple[Modality | str, ...] = attrs.field(
        default=(Modality.AUDIO,), converter=_to_tuple
    )
    participant_capacity: int | None = None
    call_options: IncomingCallOptions | None = None


@attrs.frozen(kw_only=True)
class RejectRequest(ActionRequest):
    path = "reject"
    reason: RejectReason | str | None = None
    callback_uri: str | None = None


@attrs.frozen(kw_only=True)
class RedirectRequest(ActionRequest):
    path = "redirect"
    targets: tuple[InvitationParticipantInfo, ...] = attrs.field(
        converter=_to_tuple, validator=_count(1, 25)
    )
    timeout: int | None = attrs.field(default=None, validator=_seconds(15, 90))
    callback_uri: str | None = None
    mask_callee: bool | None = None  # beta
    mask_caller: bool | None = None  # beta


@attrs.frozen(kw_only=True)
class TransferRequest(ActionRequest):
    path = "transfer"
    transfer_target: InvitationParticipantInfo
    transferee: ParticipantInfo | None = None


@attrs.frozen(kw_only=True)
class ChangeScreenSharingRoleRequest(ActionRequest):
    path = "changeScreenSharingRole"
    role: ScreenSharingRole | str
