"""graphcomms: Microsoft Graph cloud-communications calls, one ``await`` per action.

::

    async with CommsClient(token, callback_uri=URL) as client:
        call = client.call(call_id)
        op = await call.play_prompt([MediaPrompt.from_uri(GREETING_WAV)])
        final = await op          # the terminal PlayPromptOperation, or raises

Models live in :mod:`graphcomms.models`, errors in :mod:`graphcomms.errors`, token
providers in :mod:`graphcomms.auth`, the webhook receiver in :mod:`graphcomms.webhook`,
and the emulator and test helpers in :mod:`graphcomms.testing`.
"""

from typing import Any

from graphcomms._actions import PendingAction
from graphcomms._call import CallHandle, ParticipantHandle
from graphcomms._client import CommsClient
from graphcomms._http import GRAPH_BETA, GRAPH_V1
from graphcomms._settings import KeepAliveSettings, Limits, RetryPolicy, TrackingSettings
from graphcomms._stats import ClientStats
from graphcomms._tones import CollectReason, ToneCollection
from graphcomms._tracker import OperationTracker
from graphcomms.errors import (
    CallEndedError,
    ClientClosedError,
    DeserializationError,
    GraphCommsError,
    InvalidRequestError,
    OperationFailedError,
    OperationTimeoutError,
    RelayUnavailableError,
    ResponseError,
    ThrottledError,
    TokenAcquisitionError,
    TransportError,
)
from graphcomms.models import (
    Call,
    CallState,
    CommsOperation,
    IdentitySet,
    InvitationParticipantInfo,
    MediaPrompt,
    OperationStatus,
    PlayPromptOperation,
    RecordOperation,
    ResultInfo,
    ServiceHostedMediaConfig,
    Tone,
    ToneInfo,
)

__all__ = [
    "Call",
    "CallEndedError",
    "CallHandle",
    "CallState",
    "ClientClosedError",
    "ClientStats",
    "CollectReason",
    "CommsClient",
    "CommsOperation",
    "DeserializationError",
    "GRAPH_BETA",
    "GRAPH_V1",
    "GraphCommsError",
    "IdentitySet",
    "InvalidRequestError",
    "InvitationParticipantInfo",
    "KeepAliveSettings",
    "Limits",
    "MediaPrompt",
    "OperationFailedError",
    "OperationStatus",
    "OperationTimeoutError",
    "OperationTracker",
    "ParticipantHandle",
    "PendingAction",
    "PlayPromptOperation",
    "RecordOperation",
    "RelayUnavailableError",
    "ResponseError",
    "ResultInfo",
    "RetryPolicy",
    "ServiceHostedMediaConfig",
    "ThrottledError",
    "TokenAcquisitionError",
    "Tone",
    "ToneCollection",
    "ToneInfo",
    "TrackingSettings",
    "TransportError",
]


def __getattr__(name: str) -> Any:
    # Read lazily so that importing graphcomms does not pay for package metadata.
    if name == "__version__":
        from importlib.metadata import version

        return version("graphcomms")
    raise AttributeError(f"module 'graphcomms' has no attribute {name!r}")
