"""Type-checked by mypy in CI, never run: the public API's typing promises."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI
from starlette.routing import Mount, Route
from starlette.types import ASGIApp
from typing_extensions import assert_type

from graphcomms import CommsClient, MediaPrompt, OperationTracker, PlayPromptOperation
from graphcomms.models import (
    RecordOperation,
    SendDtmfTonesOperation,
    StartHoldMusicOperation,
    SubscribeToToneOperation,
)
from graphcomms.webhook import ASGINotificationApp, NotificationReceiver


async def promises(client: CommsClient) -> None:
    call = client.call("id")
    tracker = await call.play_prompt([MediaPrompt.from_uri("https://x/a.wav")])
    assert_type(tracker, OperationTracker[PlayPromptOperation])
    assert_type(await tracker, PlayPromptOperation)
    assert_type(await tracker.wait(timeout=5), PlayPromptOperation)
    async with call.record_response(max_record_duration=10) as rec:
        assert_type(rec, OperationTracker[RecordOperation])
    assert_type(await call.send_dtmf_tones("12#"), OperationTracker[SendDtmfTonesOperation])
    assert_type(await call.subscribe_to_tone(), OperationTracker[SubscribeToToneOperation])
    hold = await call.participant("p").start_hold_music()
    assert_type(hold, OperationTracker[StartHoldMusicOperation])
    async for snapshot in tracker.updates():
        assert_type(snapshot, PlayPromptOperation)
    recording = await client.download_recording(await rec)
    assert_type(recording, bytes)


def asgi_webhook(receiver: NotificationReceiver) -> None:
    """The ASGI adapter is an ASGI app wherever Starlette, FastAPI or uvicorn take one,
    and its lifespan is a FastAPI lifespan."""
    notifications = ASGINotificationApp(receiver, path="/callback")
    as_asgi: ASGIApp = notifications
    FastAPI(
        lifespan=notifications.lifespan,
        routes=[Route("/callback", notifications, methods=["POST"]), Mount("/hooks", as_asgi)],
    )
    uvicorn.Config(notifications)
