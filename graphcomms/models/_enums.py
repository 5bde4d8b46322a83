"""Graph's enums. Values are Graph's exact strings; the converter matches them
case-insensitively and keeps a value it does not know as a plain ``str``, so every
field typed ``SomeEnum | str`` may hold either."""

from enum import Enum
from typing import TypeVar

__all__ = [
    "CallDirection",
    "CallState",
    "ChangeType",
    "CompletionReason",
    "EndpointType",
    "GraphEnum",
    "MediaDirection",
    "MediaState",
    "Modality",
    "OperationStatus",
    "RecordingStatus",
    "RejectReason",
    "ScreenSharingRole",
    "Tone",
]


E = TypeVar("E", bound="GraphEnum")


class GraphEnum(str, Enum):
    """A Graph enum: compares equal to its wire string and prints as it."""

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def lookup(cls: type[E], value: str) -> E | None:
        """The member whose wire value is ``value`` in any casing, else ``None``."""
        lowered = value.lower()
        return next((m for m in cls if m.value.lower() == lowered), None)


class OperationStatus(GraphEnum):
    NOT_STARTED = "notStarted"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class CompletionReason(GraphEnum):
    """Why an operation ended.

    Graph has one enum per operation type (playPrompt, record, sendDtmf), but returns
    ``completionReason`` on operations whose type does not declare it (the v1.0 cancel
    example), so graphcomms reads it from every operation into this merged enum.
    """

    UNKNOWN = "unknown"
    NONE = "none"
    COMPLETED_SUCCESSFULLY = "completedSuccessfully"
    MEDIA_OPERATION_CANCELED = "mediaOperationCanceled"
    OPERATION_CANCELED = "operationCanceled"
    STOP_TONE_DETECTED = "stopToneDetected"
    MAX_RECORD_DURATION_REACHED = "maxRecordDurationReached"
    INITIAL_SILENCE_TIMEOUT = "initialSilenceTimeout"
    MAX_SILENCE_TIMEOUT = "maxSilenceTimeout"
    PLAY_PROMPT_FAILED = "playPromptFailed"
    PLAY_BEEP_FAILED = "playBeepFailed"
    MEDIA_RECEIVE_TIMEOUT = "mediaReceiveTimeout"
    UNSPECIFIED_ERROR = "unspecifiedError"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class ChangeType(GraphEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


class CallState(GraphEnum):
    INCOMING = "incoming"
    ESTABLISHING = "establishing"
    RINGING = "ringing"
    ESTABLISHED = "established"
    HOLD = "hold"
    TRANSFERRING = "transferring"
    TRANSFER_ACCEPTED = "transferAccepted"
    REDIRECTING = "redirecting"
    TERMINATING = "terminating"
    TERMINATED = "terminated"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class CallDirection(GraphEnum):
    INCOMING = "incoming"
    OUTGOING = "outgoing"


class Modality(GraphEnum):
    UNKNOWN = "unknown"
    AUDIO = "audio"
    VIDEO = "video"
    VIDEO_BASED_SCREEN_SHARING = "videoBasedScreenSharing"
    DATA = "data"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class MediaState(GraphEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class MediaDirection(GraphEnum):
    INACTIVE = "inactive"
    SEND_ONLY = "sendOnly"
    RECEIVE_ONLY = "receiveOnly"
    SEND_RECEIVE = "sendReceive"


class Tone(GraphEnum):
    TONE0 = "tone0"
    TONE1 = "tone1"
    TONE2 = "tone2"
    TONE3 = "tone3"
    TONE4 = "tone4"
    TONE5 = "tone5"
    TONE6 = "tone6"
    TONE7 = "tone7"
    TONE8 = "tone8"
    TONE9 = "tone9"
    STAR = "star"
    POUND = "pound"
    A = "a"
    B = "b"
    C = "c"
    D = "d"
    FLASH = "flash"

    @classmethod
    def from_key(cls, key: str) -> "Tone":
        """The tone for a keypad key: ``"0"`` to ``"9"``, ``"*"``, ``"#"``, ``"A"`` to
        ``"D"``, and ``"!"`` for flash (the inverse of :attr:`key`).

        Raises ``ValueError`` for anything else.
        """
        if len(key) == 1 and key.isdigit():
            return cls(f"tone{key}")
        special = {"*": cls.STAR, "#": cls.POUND, "!": cls.FLASH}
        if key in special:
            return special[key]
        if key.lower() in {"a", "b", "c", "d"}:
            return cls(key.lower())
        raise ValueError(f"not a keypad key: {key!r}")

    @classmethod
    def parse(cls, value: "Tone | str") -> "Tone":
        """A tone from a member, Graph's name (``"tone1"``, any casing) or a keypad key
        (``"1"``, ``"*"``, ``"#"``). Raises ``ValueError`` for anything else."""
        if isinstance(value, Tone):
            return value
        named = cls.lookup(value) if len(value) > 1 else None
        if named is not None:
            return named
        try:
            return cls.from_key(value)
        except ValueError:
            raise ValueError(f"not a DTMF tone or keypad key: {value!r}") from None

    @property
    def key(self) -> str:
        """The keypad key this tone stands for (``"5"``, ``"*"``, ``"#"``, ``"A"``, ...)."""
        if self.value.startswith("tone"):
            return self.value[4:]
        return {"star": "*", "pound": "#", "flash": "!"}.get(self.value, self.value.upper())


class RecordingStatus(GraphEnum):
    UNKNOWN = "unknown"
    NOT_RECORDING = "notRecording"
    RECORDING = "recording"
    FAILED = "failed"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class RejectReason(GraphEnum):
    NONE = "none"
    BUSY = "busy"
    FORBIDDEN = "forbidden"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"


class ScreenSharingRole(GraphEnum):
    VIEWER = "viewer"
    SHARER = "sharer"


class EndpointType(GraphEnum):
    DEFAULT = "default"
    VOICEMAIL = "voicemail"
    SKYPE_FOR_BUSINESS = "skypeForBusiness"
    SKYPE_FOR_BUSINESS_VOIP_PHONE = "skypeForBusinessVoipPhone"
    UNKNOWN_FUTURE_VALUE = "unknownFutureValue"
