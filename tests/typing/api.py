"""Type-checked by mypy in CI, never run: the public API's typing promises."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import uvicorn
from fastapi import FastAPI
from opentelemetry.trace import TracerProvider
from starlette.routing import Mount, Route
from starlette.types import ASGIApp
from typing_extensions import assert_type

from graphcomms import (
    Call,
    CollectReason,
    CommsClient,
    MediaPrompt,
    OperationTracker,
    PendingAction,
    PlayPromptOperation,
    TokenAcquisitionError,
    ToneCollection,
    ToneInfo,
)
from graphcomms.auth import AsyncTokenCredential, AzureIdentityTokenProvider
from graphcomms.models import (
    PlayPromptRequest,
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
    menu = MediaPrompt.from_uri("https://x/menu.wav")
    collected = await call.collect_tones(
        max_tones=4,
        stop_tones=("#", "*"),
        first_tone_timeout=5,
        inter_tone_timeout=3.5,
        prompt=menu,
        interrupt=True,
    )
    assert_type(collected, ToneCollection)
    assert_type(collected.keys, str)
    assert_type(collected.reason, CollectReason)
    assert_type(collected.tones, tuple[ToneInfo, ...])
    assert_type(collected.stop_tone, str | None)
    assert_type(collected.prompt, OperationTracker[PlayPromptOperation] | None)
    assert_type(
        await call.collect_tones(stop_tones="#", prompt=[menu, "https://x/b.wav"]), ToneCollection
    )
    async for tone in call.tones():
        assert_type(tone, ToneInfo)
    assert_type(call.tones_dropped, int)
    assert_type(client.stats.tones_dropped, int)


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


async def idioms(client: CommsClient, credential: AsyncTokenCredential) -> None:
    call = client.call("id")
    # An action method gives the action unsent; the first await sends it.
    pending = call.play_prompt("https://x/a.wav")  # one URL is one prompt
    assert_type(pending, PendingAction[PlayPromptOperation])
    assert_type(await pending, OperationTracker[PlayPromptOperation])
    assert_type(await call.wait_for_state("established", timeout=5), Call)
    async for tone in call.tones():
        assert_type(tone.key, str)  # the README's idiom: no None, no enum to unwrap
    provider = AzureIdentityTokenProvider(credential, timeout=None)
    try:
        await CommsClient(provider).call("id").hang_up()
    except TokenAcquisitionError as exc:
        assert_type(exc.refresh, bool)
        assert_type(exc.method, str)


async def forward_compatible(client: CommsClient) -> None:
    final = await (await client.call("id").play_prompt("https://x/a.wav"))
    assert_type(final.additional_data, Mapping[str, Any])
    prompt = MediaPrompt.from_uri("https://x/a.wav")
    request = PlayPromptRequest(prompts=(prompt,), additional_data={"new": True})
    assert_type(await client.call("id").send(request), OperationTracker[PlayPromptOperation])


def traced(provider: TracerProvider) -> CommsClient:
    return CommsClient("token", tracer_provider=provider)


async def fleet_instance() -> None:
    from graphcomms.fleet import Recovery, Relay, RelayStats

    def resume(recovery: Recovery) -> None:
        for op in recovery.operations:
            assert_type(op.tracker.recovered, bool)
            assert_type(op.tag, str | None)
        for item in recovery.calls:
            assert_type(item.call.recovered, bool)

    relay = Relay("rediss://:secret@redis:6380/0", app="ivr", instance="ivr-0", on_recovered=resume)
    async with CommsClient("token", fleet=relay) as client:
        call = client.call("id")
        relay.tag(call, "menu")
        with relay.tagged("greeting"):
            tracker = await call.play_prompt([MediaPrompt.from_uri("https://x/a.wav")])
        relay.tag(tracker, "greeting")
        assert_type(relay.stats, RelayStats)
        assert_type(await client.deliver({"value": []}), int)
