"""Wire shapes the benchmarks send, copied from reference §5.4 and §5.5.

The notification is Graph's documented completed-playPrompt envelope: ids upper-case
and hyphen-less in the URLs, no ``id`` in ``resourceData`` (the tracker is found by the
URL's operation id), a ``resultInfo`` 200/0.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

__all__ = [
    "PROMPT_URI",
    "completed_play_prompt",
    "encode",
    "new_ids",
    "notification_url",
    "play_prompt_request",
    "running_play_prompt",
    "sequenced_ids",
]

PROMPT_URI = "https://bot.example.com/prompts/greeting.wav"


def encode(document: Any) -> bytes:
    """Compact JSON, as a service sends it."""
    return json.dumps(document, separators=(",", ":")).encode()


def new_ids() -> tuple[str, str]:
    """A fresh operation id (normalised: lower-case hex, no hyphens) and client context."""
    return uuid.uuid4().hex, uuid.uuid4().hex


def sequenced_ids(index: int) -> tuple[uuid.UUID, str]:
    """The ``index``-th of a sequence two processes can both compute: the webhook
    server makes pending trackers for the ids the load process will notify."""
    return uuid.UUID(int=(1 << 100) + index), uuid.UUID(int=(2 << 100) + index).hex


def notification_url(call_key: str, operation_key: str) -> str:
    """The ``resourceUrl`` of an operation as notifications spell it (§5.4): ids
    upper-case and hyphen-less. Keys are normalised ids (``tracker.operation_id``)."""
    return f"/communications/calls/{call_key.upper()}/operations/{operation_key.upper()}"


def completed_play_prompt(call_key: str, operation_key: str, context: str) -> bytes:
    """The §5.4 "operation completed (playPrompt)" notification body."""
    url = notification_url(call_key, operation_key)
    return encode(
        {
            "@odata.type": "#microsoft.graph.commsNotifications",
            "value": [
                {
                    "@odata.type": "#microsoft.graph.commsNotification",
                    "changeType": "deleted",
                    "resourceUrl": url,
                    "resourceData": {
                        "@odata.type": "#microsoft.graph.playPromptOperation",
                        "@odata.id": url,
                        "@odata.etag": 'W/"54451"',
                        "resultInfo": {
                            "@odata.type": "#microsoft.graph.resultInfo",
                            "code": 200,
                            "subcode": 0,
                            "message": "Action completed successfully.",
                        },
                        "clientContext": context,
                        "status": "completed",
                    },
                }
            ],
        }
    )


def running_play_prompt(operation_id: str, context: str | None) -> dict[str, Any]:
    """The §5.5 synchronous playPrompt answer (status ``running``)."""
    return {
        "@odata.type": "#microsoft.graph.playPromptOperation",
        "id": operation_id,
        "status": "running",
        "clientContext": context,
    }


def play_prompt_request(context: str) -> dict[str, Any]:
    """The POST body graphcomms sends for ``play_prompt([MediaPrompt.from_uri(...)])``;
    the raw-aiohttp baseline sends the same."""
    return {
        "prompts": [
            {
                "@odata.type": "#microsoft.graph.mediaPrompt",
                "mediaInfo": {"@odata.type": "#microsoft.graph.mediaInfo", "uri": PROMPT_URI},
            }
        ],
        "clientContext": context,
    }
