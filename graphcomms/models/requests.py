"""Request bodies, one per action: each action of Graph's calling API is declared here,
once. A request class names the path it is POSTed to (relative to the call) and, for
an action that returns an operation, that operation's type as its generic argument
(``OperationRequest[PlayPromptOperation]``); the call handle's methods are one-liners
that build one and send it.

Graph's documented limits are checked when a request is built, so a request Graph
would refuse raises :class:`~graphcomms.errors.InvalidRequestError` before anything
is sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sized
from typing import Any, ClassVar, Generic, TypeVar, cast, get_args, get_origin

import attrs

from graphcomms._base_errors import InvalidRequestError
from graphcomms.models._base import GraphObject
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
    MediaPrompt,
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
    "ControlRequest",
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


def _prompt(value: Prompt | str) -> Prompt:
    return MediaPrompt.from_uri(value) if isinstance(value, str) else value


def _prompts(value: Prompt | str | Iterable[Prompt | str] | None) -> tuple[Prompt, ...] | None:
    """One prompt or a WAV file's URL, or several of them."""
    if value is None:
        return None
    if isinstance(value, (str, Prompt)):
        return (_prompt(value),)
    return tuple(_prompt(p) for p in value)


def _optional_prompt(value: Prompt | str | None) -> Prompt | None:
    return None if value is None else _prompt(value)


def _tones(value: Iterable[Tone | str]) -> tuple[Tone, ...]:
    """Tones as ``Tone`` members, Graph's names (``"tone1"``) or keypad keys (``"#"``):
    ``"123#"`` is four tones. Anything else is refused, as Graph would refuse it."""
    try:
        return tuple(Tone.parse(t) for t in value)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from None


def _as_tuple(value: Iterable[Any] | None) -> tuple[Any, ...] | None:
    return None if value is None else tuple(value)


@attrs.frozen(kw_only=True)
class ActionRequest(GraphObject):
    """A POST to ``/communications/calls/{call_id}/{path}``.

    ``path`` may hold ``{participant_id}``: the action is on one participant, whose id
    the participant handle fills in (percent-encoded, as one path segment).
    """

    path: ClassVar[str]


@attrs.frozen(kw_only=True)
class ControlRequest(ActionRequest):
    """An action Graph answers with no operation (202 or 204): answer, reject,
    redirect, transfer, changeScreenSharingRole. Its outcome arrives as call state."""


@attrs.frozen(kw_only=True)
class OperationRequest(ActionRequest, Generic[OpT]):
    """An action that returns a ``commsOperation``: its generic argument is the
    operation's type (``class PlayPromptRequest(OperationRequest[PlayPromptOperation])``),
    which :meth:`operation_type` gives back at run time.

    ``client_context`` correlates the notifications; graphcomms generates one when it
    is ``None``.
    """

    _operation: ClassVar[type[CommsOperation]] = CommsOperation
    media: ClassVar[bool] = False
    """A media operation, which ``cancelMediaProcessing`` stops (``tracker.cancel()``)."""
    client_context: str | None = attrs.field(default=None, validator=_client_context)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for base in getattr(cls, "__orig_bases__", ()):
            if get_origin(base) is OperationRequest:
                (operation,) = get_args(base)
                if isinstance(operation, type) and issubclass(operation, CommsOperation):
                    cls._operation = operation

    def operation_type(self) -> type[OpT]:
        """The operation class this action returns (its generic argument)."""
        # Recorded from the generic argument when the class was created; the cast is
        # what the generic declares.
        return cast("type[OpT]", self._operation)


@attrs.frozen(kw_only=True)
class PlayPromptRequest(OperationRequest[PlayPromptOperation]):
    path = "playPrompt"
    media = True
    prompts: tuple[Prompt, ...] = attrs.field(converter=_prompts, validator=_count(1, 20))
    loop: bool | None = None  # beta: loop until cancelled; no completion notification


@attrs.frozen(kw_only=True)
class RecordResponseRequest(OperationRequest[RecordOperation]):
    path = "recordResponse"
    media = True
    prompts: tuple[Prompt, ...] | None = attrs.field(
        default=None, converter=_prompts, validator=_count(0, 1)
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


@attrs.frozen(kw_only=True)
class SubscribeToToneRequest(OperationRequest[SubscribeToToneOperation]):
    path = "subscribeToTone"


@attrs.frozen(kw_only=True)
class SendDtmfTonesRequest(OperationRequest[SendDtmfTonesOperation]):
    path = "sendDtmfTones"
    media = True
    tones: tuple[Tone, ...] = attrs.field(converter=_tones, validator=_count(1, 1000))
    delay_between_tones_ms: int | None = None


@attrs.frozen(kw_only=True)
class MuteRequest(OperationRequest[MuteParticipantOperation]):
    path = "mute"


@attrs.frozen(kw_only=True)
class UnmuteRequest(OperationRequest[UnmuteParticipantOperation]):
    path = "unmute"


@attrs.frozen(kw_only=True)
class UpdateRecordingStatusRequest(OperationRequest[UpdateRecordingStatusOperation]):
    path = "updateRecordingStatus"
    status: RecordingStatus | str


@attrs.frozen(kw_only=True)
class AddLargeGalleryViewRequest(OperationRequest[AddLargeGalleryViewOperation]):
    path = "addLargeGalleryView"


@attrs.frozen(kw_only=True)
class InviteParticipantsRequest(OperationRequest[InviteParticipantsOperation]):
    path = "participants/invite"
    participants: tuple[InvitationParticipantInfo, ...] = attrs.field(
        converter=_to_tuple, validator=_count(1, 5)
    )


@attrs.frozen(kw_only=True)
class MuteParticipantRequest(OperationRequest[MuteParticipantOperation]):
    path = "participants/{participant_id}/mute"


@attrs.frozen(kw_only=True)
class StartHoldMusicRequest(OperationRequest[StartHoldMusicOperation]):
    path = "participants/{participant_id}/startHoldMusic"
    custom_prompt: Prompt | None = attrs.field(default=None, converter=_optional_prompt)


@attrs.frozen(kw_only=True)
class StopHoldMusicRequest(OperationRequest[StopHoldMusicOperation]):
    path = "participants/{participant_id}/stopHoldMusic"


@attrs.frozen(kw_only=True)
class MuteAllRequest(OperationRequest[MuteParticipantsOperation]):
    """beta"""

    path = "participants/muteAll"
    participants: tuple[str, ...] | None = attrs.field(default=None, converter=_as_tuple)


@attrs.frozen(kw_only=True)
class StartTranscriptionRequest(OperationRequest[StartTranscriptionOperation]):
    """beta; Graph supports only ``en-us``."""

    path = "startTranscription"
    language: str | None = None


@attrs.frozen(kw_only=True)
class StopTranscriptionRequest(OperationRequest[StopTranscriptionOperation]):
    """beta"""

    path = "stopTranscription"
    language: str | None = None


@attrs.frozen(kw_only=True)
class StartRecordingRequest(OperationRequest[StartRecordingOperation]):
    """beta"""

    path = "startRecording"


@attrs.frozen(kw_only=True)
class StopRecordingRequest(OperationRequest[StopRecordingOperation]):
    """beta"""

    path = "stopRecording"


@attrs.frozen(kw_only=True)
class AdmitAllFromLobbyRequest(OperationRequest[AdmitAllFromLobbyOperation]):
    """beta"""

    path = "participants/admitAllFromLobby"


@attrs.frozen(kw_only=True)
class AdmitFromLobbyRequest(OperationRequest[AdmitFromLobbyOperation]):
    """beta"""

    path = "participants/{participant_id}/admitFromLobby"


@attrs.frozen(kw_only=True)
class RemoveFromLobbyRequest(OperationRequest[RemoveFromLobbyOperation]):
    """beta"""

    path = "participants/{participant_id}/removeFromLobby"


@attrs.frozen(kw_only=True)
class AnswerRequest(ControlRequest):
    path = "answer"
    callback_uri: str | None = None
    media_config: MediaConfig
    accepted_modalities: tuple[Modality | str, ...] = attrs.field(
        default=(Modality.AUDIO,), converter=_to_tuple
    )
    participant_capacity: int | None = None
    call_options: IncomingCallOptions | None = None


@attrs.frozen(kw_only=True)
class RejectRequest(ControlRequest):
    path = "reject"
    reason: RejectReason | str | None = None
    callback_uri: str | None = None


@attrs.frozen(kw_only=True)
class RedirectRequest(ControlRequest):
    path = "redirect"
    targets: tuple[InvitationParticipantInfo, ...] = attrs.field(
        converter=_to_tuple, validator=_count(1, 25)
    )
    timeout: int | None = attrs.field(default=None, validator=_seconds(15, 90))
    callback_uri: str | None = None
    mask_callee: bool | None = None  # beta
    mask_caller: bool | None = None  # beta


@attrs.frozen(kw_only=True)
class TransferRequest(ControlRequest):
    path = "transfer"
    transfer_target: InvitationParticipantInfo
    transferee: ParticipantInfo | None = None


@attrs.frozen(kw_only=True)
class ChangeScreenSharingRoleRequest(ControlRequest):
    path = "changeScreenSharingRole"
    role: ScreenSharingRole | str
