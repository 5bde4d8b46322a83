"""Type-checked by mypy in CI, never run: the public API's typing promises."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opentelemetry.trace import TracerProvider
from typing_extensions import assert_type

from graphcomms import CommsClient, MediaPrompt, OperationTracker, PlayPromptOperation
from graphcomms.models import (
    PlayPromptRequest,
    RecordOperation,
    SendDtmfTonesOperation,
    StartHoldMusicOperation,
    SubscribeToToneOperation,
)


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


async def forward_compatible(client: CommsClient) -> None:
    final = await (await client.call("id").play_prompt("https://x/a.wav"))
    assert_type(final.additional_data, Mapping[str, Any])
    prompt = MediaPrompt.from_uri("https://x/a.wav")
    request = PlayPromptRequest(prompts=(prompt,), additional_data={"new": True})
    assert_type(await client.call("id").send(request), OperationTracker[PlayPromptOperation])


def traced(provider: TracerProvider) -> CommsClient:
    return CommsClient("token", tracer_provider=provider)
