"""Type-checked by mypy in CI, never run: the public API's typing promises."""

from __future__ import annotations

from typing_extensions import assert_type

from graphcomms import CommsClient, MediaPrompt, OperationTracker, PlayPromptOperation
from graphcomms.models import (
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
