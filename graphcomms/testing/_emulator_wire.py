"""Graph's JSON shapes, as the emulator writes them.

Pure functions and constants, no I/O: ids, error bodies, resultInfo values, call,
participant and operation resources, notification envelopes, the §5.8 wire quirks,
DTMF key names and the WAV a recording downloads as. The emulator speaks raw dicts on
purpose: it must not share a converter with the client it is used to test.
"""

from __future__ import annotations

import copy
import hmac
import io
import math
import re
import struct
import uuid
import wave
from collections.abc import Mapping
from datetime import datetime, timezone
from random import Random
from typing import Any, TypeAlias

JSON: TypeAlias = dict[str, Any]

ODATA = "#microsoft.graph."
USER_AGENT = "Microsoft-Skype/3.0,(Calling/1.0)"
MAX_CLIENT_CONTEXT = 256

# (code, subcode, message). Where Graph's docs give the value it is copied (§4.2);
# the stop-tone subcode is not documented anywhere, so it stays 0.
SUCCESS = (200, 0, "Action completed successfully.")
MAX_RECORD_DURATION = (200, 8515, "Action completed, max record duration reached.")
STOP_TONE = (200, 0, "Action completed, stop tone detected.")
CANCELLED = (400, 8508, "Action failed, the operation was cancelled.")
INTERRUPTED = (400, 8508, "Action failed, the operation was interrupted by a barge-in.")
ENDED_BY_BOT = (200, 7000, "The call was ended by the application.")
ENDED_BY_CALLER = (200, 4097, "The call was ended by the other participant.")
TRANSFERRED = (0, 7015, "GracefulTransferCompleted")
REDIRECTED = (200, 5001, "The conversation has ended.")
# The code and subcode are Graph's (§4.2: "the inactive call was cleaned up"); the
# message is the emulator's wording.
KEEP_ALIVE_TIMEOUT = (408, 8537, "The call was cleaned up: no keepAlive was received in time.")

# Keys a caller presses -> Graph's `tone` enum. Graph's stopTones use the key
# characters ("#", "1"), sendDtmfTones uses the enum names; both normalise here.
KEY_TONES: Mapping[str, str] = {
    **{str(d): f"tone{d}" for d in range(10)},
    "*": "star",
    "#": "pound",
    "A": "a",
    "B": "b",
    "C": "c",
    "D": "d",
    "F": "flash",
}
TONE_NAMES = frozenset(KEY_TONES.values())
RECORDING_STATUSES = frozenset({"unknown", "notRecording", "recording", "failed"})
REJECT_REASONS = frozenset({"none", "busy", "forbidden"})
SCREEN_SHARING_ROLES = frozenset({"viewer", "sharer"})

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class GraphError(Exception):
    """A Graph error response: raised by handlers, rendered once by the middleware."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: int | None = None,
        challenge: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        #: The ``WWW-Authenticate`` header of a 401.
        self.challenge = challenge


def bad_request(message: str) -> GraphError:
    return GraphError(400, "badRequest", message)


def unauthorized(message: str, *, token_given: bool) -> GraphError:
    """A 401 with its ``WWW-Authenticate: Bearer`` challenge (RFC 6750 §3).

    A request with no bearer token at all gets the bare challenge (§3.1 says no error
    code then); one whose token is wrong gets ``error="invalid_token"``.
    """
    challenge = 'Bearer error="invalid_token"' if token_given else "Bearer"
    return GraphError(401, "InvalidAuthenticationToken", message, challenge=challenge)


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (the scheme in any
    case, RFC 7235 §2.1), None for another scheme or an empty token."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def same_secret(given: str, expected: str) -> bool:
    """Compare two secrets in constant time; any string, even one no codec can encode."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def not_found(message: str) -> GraphError:
    return GraphError(404, "itemNotFound", message)


ERROR_CODES: Mapping[int, tuple[str, str]] = {
    400: ("badRequest", "The request is malformed or incorrect."),
    401: ("InvalidAuthenticationToken", "Access token is empty."),
    403: ("accessDenied", "Insufficient privileges to complete the operation."),
    404: ("itemNotFound", "The resource could not be found."),
    409: ("conflict", "The request conflicts with the current state."),
    429: ("TooManyRequests", "Please retry again later."),
    500: ("UnknownError", "Unexpected exception returned from the service."),
    502: ("badGateway", "Bad gateway."),
    503: ("serviceNotAvailable", "The service is temporarily unavailable."),
    504: ("gatewayTimeout", "The gateway timed out."),
}


def error_for_status(status: int, *, retry_after: int | None = None) -> GraphError:
    if status == 401:
        # An injected 401 stands for a token Graph no longer accepts (expired, say).
        return unauthorized("Access token has expired or is not yet valid.", token_given=True)
    code, message = ERROR_CODES.get(status, ("generalException", "An error occurred."))
    return GraphError(status, code, message, retry_after=retry_after)


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def error_body(error: GraphError, *, request_id: str, client_request_id: str | None) -> JSON:
    """§8.1's body; 429 uses the §8.2 shape. innerError echoes the request's ids.

    A request that sent no ``client-request-id`` finds its ``request-id`` there instead,
    as Graph answers: the field is always present.
    """
    inner: JSON = {
        "request-id": request_id,
        "date": utc_now_iso(),
        "client-request-id": request_id if client_request_id is None else client_request_id,
    }
    if error.status == 429:
        inner = {"code": "429", "message": "Please retry after", "status": "429", **inner}
    return {"error": {"code": error.code, "message": error.message, "innerError": inner}}


def new_guid(rng: Random) -> str:
    """A version-4 GUID drawn from ``rng``, so ids repeat under the same seed."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def normalise_id(value: str) -> str:
    """Graph writes one GUID with and without hyphens, in either case (§5.8.3)."""
    return value.replace("-", "").lower()


def result_info(value: tuple[int, int, str]) -> JSON:
    code, subcode, message = value
    return {
        "@odata.type": f"{ODATA}resultInfo",
        "code": code,
        "subcode": subcode,
        "message": message,
    }


def call_path(call_id: str) -> str:
    return f"/communications/calls/{call_id}"


def operation_path(call_id: str, op_id: str) -> str:
    return f"{call_path(call_id)}/operations/{op_id}"


def participants_path(call_id: str) -> str:
    return f"{call_path(call_id)}/participants"


def phone_identity(number: str) -> JSON:
    return {
        "@odata.type": f"{ODATA}identitySet",
        "phone": {"@odata.type": f"{ODATA}identity", "id": number},
    }


def user_identity(user_id: str, tenant_id: str, display_name: str = "Emulated user") -> JSON:
    return {
        "@odata.type": f"{ODATA}identitySet",
        "user": {
            "@odata.type": f"{ODATA}identity",
            "id": user_id,
            "displayName": display_name,
            "tenantId": tenant_id,
        },
    }


def application_identity(app_id: str) -> JSON:
    return {
        "@odata.type": f"{ODATA}identitySet",
        "application": {
            "@odata.type": f"{ODATA}identity",
            "id": app_id,
            "displayName": "Emulated bot",
        },
    }


def participant_info(identity: Mapping[str, Any]) -> JSON:
    return {
        "@odata.type": f"{ODATA}participantInfo",
        "identity": dict(identity),
        "region": "westus",
        "languageId": "en-US",
    }


def participant(
    participant_id: str, identity: Mapping[str, Any], *, in_lobby: bool = False
) -> JSON:
    """A roster entry; the emulator mutates its own copy and sends snapshots."""
    return {
        "@odata.type": f"{ODATA}participant",
        "id": participant_id,
        "info": participant_info(identity),
        "mediaStreams": [
            {
                "@odata.type": f"{ODATA}mediaStream",
                "mediaType": "audio",
                "label": "main-audio",
                "sourceId": "1",
                "direction": "sendReceive",
                "serverMuted": False,
            }
        ],
        "isMuted": False,
        "isInLobby": in_lobby,
        "rosterSequenceNumber": 0,
    }


def envelope(item: JSON) -> JSON:
    """The commsNotifications body: one item per POST, as every documented example."""
    return {"@odata.type": f"{ODATA}commsNotifications", "value": [item]}


def notification(
    change_type: str,
    resource_url: str,
    resource_data: JSON | list[JSON] | None,
    *,
    callback_uri: str | None = None,
) -> JSON:
    item: JSON = {
        "@odata.type": f"{ODATA}commsNotification",
        "changeType": change_type,
        "resourceUrl": resource_url,
    }
    if callback_uri is not None:
        item["callbackUri"] = callback_uri
    if resource_data is not None:
        item["resourceData"] = resource_data
    return item


def _quirky_ids(path: str) -> str:
    return _GUID.sub(lambda m: m.group(0).replace("-", "").upper(), path)


def _quirk_result_info(info: Any) -> Any:
    if not isinstance(info, dict):
        return info
    info = dict(info)
    info["code"] = str(info.get("code"))
    info["subCode"] = str(info.pop("subcode", 0))
    return info


def _quirk_entity(entity: JSON) -> JSON:
    entity = dict(entity)
    odata_type = str(entity.get("@odata.type", ""))
    if "@odata.id" in entity:
        entity["@odata.id"] = _quirky_ids(str(entity["@odata.id"])).lstrip("/")
    # Participants keep their id: it is the only key to the roster entry.
    if not odata_type.endswith("participant"):
        entity.pop("id", None)
    if isinstance(entity.get("status"), str):
        status = entity["status"]
        entity["status"] = status[:1].upper() + status[1:]
    if "resultInfo" in entity:
        entity["resultInfo"] = _quirk_result_info(entity["resultInfo"])
    return entity


def apply_quirks(item: Mapping[str, Any]) -> JSON:
    """Every §5.8 quirk at once, on a copy of one notification item.

    Upper-case hyphen-less GUIDs and no leading slash in the paths, the legacy
    ``resource`` beside ``resourceUrl``, ``resourceData`` always an array and without
    ``id``, PascalCase ``status``, string ``code`` and ``subCode`` in resultInfo.
    """
    quirky: JSON = copy.deepcopy(dict(item))
    url = str(quirky["resourceUrl"])
    quirky["resourceUrl"] = _quirky_ids(url).lstrip("/")
    quirky["resource"] = _quirky_ids(url.replace("/communications/calls/", "/app/calls/", 1))
    data = quirky.get("resourceData")
    if isinstance(data, dict):
        quirky["resourceData"] = [_quirk_entity(data)]
    elif isinstance(data, list):
        quirky["resourceData"] = [_quirk_entity(e) if isinstance(e, dict) else e for e in data]
    return quirky


def make_wav(seconds: float = 0.2, frequency: float = 440.0, rate: int = 16_000) -> bytes:
    """A mono 16-bit 16 kHz sine tone: the format Graph's media pages require."""
    frames = int(seconds * rate)
    samples = (
        int(0.3 * 32767 * math.sin(2 * math.pi * frequency * n / rate)) for n in range(frames)
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(struct.pack(f"<{frames}h", *samples))
    return buffer.getvalue()


def tone_name(value: str) -> str | None:
    """Graph's ``tone`` enum for a key ("#") or an enum name ("pound"); None if neither."""
    if value in TONE_NAMES:
        return value
    return KEY_TONES.get(value.upper())
