"""Every fault the emulator can inject, against our client: each operation still ends
exactly once with its real outcome, or with the error the contract names."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
from async_support import holds_nothing
from cryptography.hazmat.primitives.asymmetric import rsa
from integration_support import bot_on, place_call

from graphcomms import (
    CallEndedError,
    CallHandle,
    CallState,
    IdentitySet,
    InvitationParticipantInfo,
    MediaPrompt,
    OperationTimeoutError,
    PlayPromptOperation,
    RecordOperation,
    Tone,
    TrackingSettings,
)
from graphcomms.errors import ServerError, ThrottledError
from graphcomms.models import (
    AddLargeGalleryViewOperation,
    CompletionReason,
    InviteParticipantsOperation,
    OperationStatus,
    SendDtmfTonesOperation,
    StartHoldMusicOperation,
    StartTranscriptionOperation,
)
from graphcomms.testing import EmulatedBot, Faults, GraphEmulator, emulated_bot

PROMPT = MediaPrompt.from_uri("https://media.example.com/prompt.wav")
T = 5
OPERATIONS = "/operations/"


def requests_to(emulator: GraphEmulator, suffix: str, method: str = "POST") -> list[Any]:
    return [r for r in emulator.requests if r.method == method and r.path.endswith(suffix)]


def assert_completed(op: Any, kind: type = PlayPromptOperation) -> None:
    assert isinstance(op, kind)
    assert op.status is OperationStatus.COMPLETED
    assert op.succeeded


# -- duplicates, reordering, delays ------------------------------------------------------


async def test_duplicate_completion_resolves_once(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    client, emulator = emulated_bot.client, emulated_bot.emulator
    emulator.fault_next_notification("duplicate", resource_contains=OPERATIONS)
    tracker = await call.play_prompt([PROMPT])
    done: list[Any] = []
    tracker.add_done_callback(done.append)
    final = await asyncio.wait_for(tracker, T)
    assert_completed(final)
    await emulator.drain()
    await asyncio.sleep(0)
    copies = [d for d in emulator.deliveries if d.operation_id and d.ok]
    assert len(copies) == 2
    assert "duplicate" in copies[1].faults
    assert done == [tracker]
    assert client.stats.duplicates == 1
    assert client.stats.resolved == 1
    assert client.stats.pending == 0
    assert tracker.operation is final


async def test_duplicate_tones_are_delivered_once(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulator = emulated_bot.emulator
    await call.subscribe_to_tone()
    tones = call.tones()
    emulator.fault_next_notification("duplicate", call_id=call.id, change_type="updated", times=2)
    await emulator.press_keys(call.id, "12")
    await emulator.drain()
    got = [await asyncio.wait_for(tones.__anext__(), T) for _ in range(2)]
    assert [t.tone for t in got] == [Tone.TONE1, Tone.TONE2]
    await call.hang_up()
    assert [t async for t in tones] == []  # nothing more, then the call's end closes it
    assert sum("duplicate" in d.faults for d in emulator.deliveries) == 2


async def test_duplicate_call_end_is_ignored(emulated_bot: EmulatedBot, call: CallHandle) -> None:
    emulator = emulated_bot.emulator
    emulator.fault_next_notification("duplicate", call_id=call.id, change_type="deleted")
    await call.hang_up()
    ended = await call.wait_for_state(CallState.TERMINATED, timeout=T)
    await emulator.drain()
    assert call.snapshot is ended
    assert emulated_bot.client.stats.duplicates == 1


async def test_reordered_establishing_does_not_undo_established(
    emulated_bot: EmulatedBot,
) -> None:
    emulator = emulated_bot.emulator
    emulator.fault_next_notification("reorder", change_type="updated")
    call = await emulated_bot.client.create_call(
        targets=[InvitationParticipantInfo(identity=IdentitySet.for_phone("+14255550100"))]
    )
    await call.wait_for_state(CallState.ESTABLISHED, timeout=T)
    await emulator.drain()
    states = [(d.body["value"][0]["resourceData"]["state"], d.faults) for d in emulator.deliveries]
    assert states == [("established", ()), ("establishing", ("reorder",))]
    assert call.state is CallState.ESTABLISHED
    assert_completed(await asyncio.wait_for(await call.play_prompt([PROMPT]), T))


async def test_reordered_completions_resolve_the_right_trackers(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulator = emulated_bot.emulator
    emulator.fault_next_notification("reorder", resource_contains=OPERATIONS)
    first = await call.play_prompt([PROMPT], client_context="first")
    second = await call.play_prompt([PROMPT], client_context="second")
    a, b = await asyncio.wait_for(asyncio.gather(first, second), T)
    assert (a.client_context, b.client_context) == ("first", "second")
    assert a.id == first.operation.id
    assert b.id == second.operation.id
    results = [d for d in emulator.deliveries if d.operation_id is not None]
    assert [d.operation_id for d in results] == [b.id, a.id]  # the wire order was swapped
    assert "reorder" in results[1].faults


async def test_a_stale_roster_update_does_not_win(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulator = emulated_bot.emulator
    me = call.snapshot.my_participant_id
    assert me is not None
    roster = call.roster()
    emulator.fault_next_notification("reorder", resource_contains="/participants")
    await call.mute()
    await call.unmute()
    for _ in range(2):
        await asyncio.wait_for(roster.__anext__(), T)
    await emulator.drain()
    assert emulator.calls[call.id].participants[me]["isMuted"] is False
    assert call.participants[me].is_muted is False


async def test_delayed_completion_still_resolves(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulator = emulated_bot.emulator
    emulator.fault_next_notification("delay", resource_contains=OPERATIONS, delay_seconds=0.3)
    started = time.perf_counter()
    tracker = await call.play_prompt([PROMPT])
    assert_completed(await asyncio.wait_for(tracker, T))
    assert time.perf_counter() - started >= 0.3
    assert any("delay" in d.faults for d in emulator.deliveries)
    assert emulated_bot.client.stats.pending == 0


async def test_random_faults_with_every_action_still_resolve_each_once(
    graph_emulator: GraphEmulator,
) -> None:
    graph_emulator.faults = Faults(duplicate=0.5, reorder=0.3, delay=0.3, delay_seconds=(0, 0.02))
    async with emulated_bot(graph_emulator) as bot:
        call = await place_call(bot.client)
        trackers = [
            await call.play_prompt([PROMPT]),
            await call.record_response(max_record_duration=5),
            await call.send_dtmf_tones("1#"),
            await call.add_large_gallery_view(),
            await call.subscribe_to_tone(),
            await call.update_recording_status("recording"),
        ]
        finals = await asyncio.wait_for(asyncio.gather(*trackers), T)
        assert all(f.succeeded for f in finals)
        await call.hang_up()
        await call.wait_for_state(CallState.TERMINATED, timeout=T)
        await graph_emulator.drain()
        assert bot.client.stats.pending == 0
        assert bot.client.stats.resolved == len(trackers)
        assert bot.client.stats.duplicates > 0


# -- early delivery ----------------------------------------------------------------------


async def test_completion_before_the_response_resolves_by_client_context(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    client, emulator = emulated_bot.client, emulated_bot.emulator
    emulator.deliver_early_next(path_contains="/playPrompt")
    tracker = await call.play_prompt([PROMPT], client_context="overtaken")
    # Done the moment the POST returns: the notification came first and found the
    # tracker under the clientContext registered before sending.
    assert tracker.done()
    final = tracker.result()
    assert_completed(final)
    assert final.client_context == "overtaken"
    early = [d for d in emulator.deliveries if d.operation_id is not None]
    assert len(early) == 1
    assert early[0].ok
    stats = client.stats
    assert stats.pending == 0
    assert stats.resolved == 1
    assert stats.early_buffered + stats.early_applied == 0  # matched, not buffered
    await emulator.drain()
    assert stats.duplicates == 0


async def test_early_delivery_in_quirks_mode(emulated_bot: EmulatedBot, call: CallHandle) -> None:
    emulator = emulated_bot.emulator
    emulator.faults = Faults(quirks=True)
    emulator.deliver_early_next(path_contains="/sendDtmfTones")
    tracker = await call.send_dtmf_tones("5")
    assert tracker.done()
    assert_completed(tracker.result(), SendDtmfTonesOperation)


async def test_early_delivery_of_a_beta_operation_without_an_id(
    beta_bot: EmulatedBot, beta_call: CallHandle
) -> None:
    beta_bot.emulator.deliver_early_next(path_contains="/startTranscription")
    tracker = await beta_call.start_transcription()
    assert tracker.done()
    assert_completed(tracker.result(), StartTranscriptionOperation)
    assert beta_bot.client.stats.pending == 0


# -- lost notifications --------------------------------------------------------------------
#
# Reading a playPrompt (or any type but addLargeGalleryView) back is more than Graph
# documents (reference §7): the tests that recover one that way ask the emulator for it
# with readable_operations="all".


async def test_dropped_completion_is_recovered_by_reconciliation(
    graph_emulator: GraphEmulator,
) -> None:
    graph_emulator.readable_operations = "all"
    async with emulated_bot(
        graph_emulator, tracking=TrackingSettings(reconcile_after=0.05, reconcile_interval=0.05)
    ) as bot:
        call = await place_call(bot.client)
        graph_emulator.drop_next_notification(resource_contains=OPERATIONS)
        tracker = await call.play_prompt([PROMPT])
        final = await asyncio.wait_for(tracker, T)
        assert_completed(final)
        assert [d.faults for d in graph_emulator.deliveries if d.operation_id] == [("drop",)]
        assert bot.client.stats.reconciled == 1
        assert requests_to(graph_emulator, f"/operations/{final.id}", method="GET")
        assert bot.client.stats.pending == 0


async def test_dropped_completion_of_an_id_less_beta_operation_is_recovered(
    graph_emulator: GraphEmulator,
) -> None:
    graph_emulator.readable_operations = "all"
    async with bot_on(
        graph_emulator,
        graph_emulator.beta_url,
        tracking=TrackingSettings(reconcile_after=0.05, reconcile_interval=0.05),
    ) as bot:
        call = await place_call(bot.client)
        graph_emulator.drop_next_notification(resource_contains=OPERATIONS)
        tracker = await call.start_recording()
        assert tracker.operation.id is None  # only the Location header named it
        await asyncio.wait_for(tracker, T)
        assert bot.client.stats.reconciled == 1


async def test_dropped_gallery_view_result_is_recovered_as_graph_documents(
    graph_emulator: GraphEmulator,
) -> None:
    # The one loss a read-back recovers against Graph as documented (README, Reliability).
    assert graph_emulator.readable_operations == "documented"
    async with emulated_bot(
        graph_emulator, tracking=TrackingSettings(reconcile_after=0.05, reconcile_interval=0.05)
    ) as bot:
        call = await place_call(bot.client)
        graph_emulator.drop_next_notification(resource_contains=OPERATIONS)
        tracker = await call.add_large_gallery_view()
        final = await asyncio.wait_for(tracker, T)
        assert_completed(final, AddLargeGalleryViewOperation)
        assert [d.faults for d in graph_emulator.deliveries if d.operation_id] == [("drop",)]
        assert bot.client.stats.reconciled == 1
        assert requests_to(graph_emulator, f"/operations/{final.id}", method="GET")
        assert bot.client.stats.pending == 0


async def test_dropped_prompt_result_ends_at_its_deadline_as_graph_documents(
    graph_emulator: GraphEmulator,
) -> None:
    # Graph documents no read-back for playPrompt: reconciliation cannot learn its
    # result, the call is still live, so the tracker's own deadline ends the wait.
    assert graph_emulator.readable_operations == "documented"
    async with emulated_bot(
        graph_emulator,
        tracking=TrackingSettings(
            reconcile_after=0.05, reconcile_interval=0.05, operation_timeout=0.5
        ),
    ) as bot:
        call = await place_call(bot.client)
        graph_emulator.drop_next_notification(resource_contains=OPERATIONS)
        tracker = await call.play_prompt([PROMPT])
        with pytest.raises(OperationTimeoutError):
            await tracker.wait(timeout=T)
        stats = bot.client.stats
        assert (stats.reconciled, stats.timed_out, stats.pending) == (0, 1, 0)
        assert not call.ended


async def test_dropped_hang_up_is_noticed_by_reconciliation(
    graph_emulator: GraphEmulator,
) -> None:
    async with emulated_bot(
        graph_emulator, tracking=TrackingSettings(reconcile_after=0.05, reconcile_interval=0.05)
    ) as bot:
        call = await place_call(bot.client)
        graph_emulator.prompt_seconds = 30
        tracker = await call.play_prompt([PROMPT])
        graph_emulator.drop_next_notification(call_id=call.id, change_type="deleted")
        await graph_emulator.caller_hangs_up(call.id)
        with pytest.raises(CallEndedError):
            await tracker.wait(timeout=T)
        assert call.ended
        assert bot.client.stats.pending == 0


async def test_dropped_completion_without_reconciliation_times_out(
    graph_emulator: GraphEmulator,
) -> None:
    async with emulated_bot(
        graph_emulator, tracking=TrackingSettings(reconcile_after=None, operation_timeout=0.2)
    ) as bot:
        call = await place_call(bot.client)
        graph_emulator.drop_next_notification(resource_contains=OPERATIONS)
        tracker = await call.play_prompt([PROMPT])
        with pytest.raises(OperationTimeoutError) as caught:
            await tracker.wait(timeout=T)
        assert isinstance(caught.value, TimeoutError)
        assert caught.value.operation is not None
        assert caught.value.operation.id == tracker.operation.id
        stats = bot.client.stats
        assert (stats.timed_out, stats.pending, stats.reconciliations) == (1, 0, 0)
        assert not requests_to(graph_emulator, f"/operations/{tracker.operation.id}", "GET")


async def test_a_late_result_after_the_deadline_is_kept(graph_emulator: GraphEmulator) -> None:
    late: list[tuple[Any, Any]] = []
    async with emulated_bot(
        graph_emulator,
        tracking=TrackingSettings(reconcile_after=None, operation_timeout=0.1),
        on_late_result=lambda tracker, op: late.append((tracker, op)),
    ) as bot:
        call = await place_call(bot.client)
        graph_emulator.fault_next_notification(
            "delay", resource_contains=OPERATIONS, delay_seconds=0.4
        )
        tracker = await call.play_prompt([PROMPT])
        with pytest.raises(OperationTimeoutError):
            await tracker.wait(timeout=T)
        await graph_emulator.drain()
        await asyncio.sleep(0)
        assert tracker.late_operation is not None
        assert tracker.late_operation.status is OperationStatus.COMPLETED
        assert late == [(tracker, tracker.late_operation)]
        assert bot.client.stats.late_results == 1


async def test_wait_timeout_leaves_the_operation_tracked(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulated_bot.emulator.fault_next_notification(
        "delay", resource_contains=OPERATIONS, delay_seconds=0.3
    )
    tracker = await call.play_prompt([PROMPT])
    with pytest.raises(TimeoutError):
        await tracker.wait(timeout=0.01)
    assert not tracker.done()
    assert_completed(await tracker.wait(timeout=T))


# -- HTTP faults ---------------------------------------------------------------------------


async def test_throttled_action_is_retried_after_retry_after(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulator = emulated_bot.emulator
    emulator.fail_next(429, retry_after=1, path_contains="/playPrompt")
    started = time.perf_counter()
    tracker = await call.play_prompt([PROMPT], client_context="throttled")
    assert time.perf_counter() - started >= 1.0  # Retry-After honoured
    assert_completed(await asyncio.wait_for(tracker, T))
    sent = requests_to(emulator, "/playPrompt")
    assert len(sent) == 2
    assert [r.json["clientContext"] for r in sent] == ["throttled", "throttled"]
    assert sent[0].headers["client-request-id"] != sent[1].headers["client-request-id"]
    assert emulated_bot.client.stats.pending == 0


async def test_throttling_past_the_attempts_raises(graph_emulator: GraphEmulator) -> None:
    from graphcomms import RetryPolicy

    async with emulated_bot(graph_emulator, retry=RetryPolicy(max_attempts=2)) as bot:
        call = await place_call(bot.client)
        graph_emulator.fail_next(429, retry_after=0, times=2, path_contains="/playPrompt")
        with pytest.raises(ThrottledError) as caught:
            await call.play_prompt([PROMPT])
        assert caught.value.retry_after == 0
        assert len(requests_to(graph_emulator, "/playPrompt")) == 2
        assert bot.client.stats.pending == 0


async def test_503_with_retry_after_is_retried_for_a_post(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulator = emulated_bot.emulator
    emulator.fail_next(503, retry_after=0, path_contains="/playPrompt")
    assert_completed(await asyncio.wait_for(await call.play_prompt([PROMPT]), T))
    assert len(requests_to(emulator, "/playPrompt")) == 2


@pytest.mark.parametrize(("status", "retry_after"), [(500, None), (503, None), (504, None)])
async def test_a_post_that_may_have_run_is_not_resent(
    emulated_bot: EmulatedBot, call: CallHandle, status: int, retry_after: int | None
) -> None:
    emulator = emulated_bot.emulator
    emulator.fail_next(status, retry_after=retry_after, path_contains="/playPrompt")
    with pytest.raises(ServerError) as caught:
        await call.play_prompt([PROMPT])
    assert caught.value.status == status
    assert caught.value.request_id is not None
    assert caught.value.client_request_id is not None
    assert len(requests_to(emulator, "/playPrompt")) == 1
    stats = emulated_bot.client.stats
    assert stats.pending == 0
    assert holds_nothing(emulated_bot.client)
    # The client goes on working.
    assert_completed(await asyncio.wait_for(await call.play_prompt([PROMPT]), T))


async def test_idempotent_requests_are_retried_on_a_bare_503(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulator = emulated_bot.emulator
    emulator.fail_next(503, path_contains="/participants", method="GET")
    participants = await call.list_participants()
    assert participants
    assert len(requests_to(emulator, "/participants", method="GET")) == 2


# -- wire quirks -----------------------------------------------------------------------------


async def test_quirks_mode_every_operation_still_resolves(graph_emulator: GraphEmulator) -> None:
    graph_emulator.faults = Faults(quirks=True)
    async with emulated_bot(graph_emulator) as bot:
        client = bot.client
        call = await place_call(client)
        sample = graph_emulator.deliveries[-1].body["value"][0]
        # The quirks really are on the wire.
        assert not sample["resourceUrl"].startswith("/")
        assert isinstance(sample["resourceData"], list)
        assert sample["resource"].startswith("/app/calls/")

        prompt = await asyncio.wait_for(await call.play_prompt([PROMPT], client_context="q"), T)
        assert_completed(prompt)
        assert prompt.result_info is not None
        assert prompt.result_info.code == 200

        record = await asyncio.wait_for(await call.record_response(max_record_duration=5), T)
        assert_completed(record, RecordOperation)
        assert record.result_info is not None
        assert (record.result_info.code, record.result_info.subcode) == (200, 8515)
        assert (await client.download_recording(record))[:4] == b"RIFF"

        dtmf = await asyncio.wait_for(await call.send_dtmf_tones("9"), T)
        assert_completed(dtmf, SendDtmfTonesOperation)

        await call.subscribe_to_tone()
        tones = call.tones()
        await graph_emulator.press_keys(call.id, "7")
        assert (await asyncio.wait_for(tones.__anext__(), T)).tone is Tone.TONE7

        who = call.participant(
            next(
                p.id
                for p in await call.list_participants()
                if p.id != call.snapshot.my_participant_id
            )
        )
        hold = await asyncio.wait_for(await who.start_hold_music(), T)
        assert_completed(hold, StartHoldMusicOperation)

        invited = await asyncio.wait_for(
            await call.invite(
                [InvitationParticipantInfo(identity=IdentitySet.for_user("quirky-user"))]
            ),
            T,
        )
        assert_completed(invited, InviteParticipantsOperation)

        await call.hang_up()
        ended = await call.wait_for_state(CallState.TERMINATED, timeout=T)
        assert ended.result_info is not None
        assert (ended.result_info.code, ended.result_info.subcode) == (200, 7000)
        await graph_emulator.drain()
        stats = client.stats
        assert stats.pending == 0
        assert stats.bad_items == 0
        assert stats.unmatched == 0
        assert stats.resolved >= 6


async def test_quirks_on_an_incoming_call(emulated_bot: EmulatedBot) -> None:
    emulator = emulated_bot.emulator
    emulator.faults = Faults(quirks=True)
    incoming = emulated_bot.client.incoming_calls()
    call_id = await emulator.simulate_incoming_call(callback_uri=emulated_bot.callback_uri)
    call = await asyncio.wait_for(incoming.__anext__(), T)
    # The quirky notification spells the id upper-case without hyphens.
    assert call.key == call_id.replace("-", "").lower()
    await call.answer()
    await call.wait_for_state(CallState.ESTABLISHED, timeout=T)
    assert_completed(await asyncio.wait_for(await call.play_prompt([PROMPT]), T))
    emulator.prompt_seconds = 30
    tracker = await call.play_prompt([PROMPT])
    await emulator.caller_hangs_up(call_id)
    ended = await call.wait_for_state(CallState.TERMINATED, timeout=T)
    assert ended.result_info is not None
    assert (ended.result_info.code, ended.result_info.subcode) == (200, 4097)
    with pytest.raises(CallEndedError) as caught:
        await tracker.wait(timeout=T)
    assert caught.value.result_info == ended.result_info


async def test_beta_quirks_operation_known_only_by_location(
    beta_bot: EmulatedBot, beta_call: CallHandle
) -> None:
    beta_bot.emulator.faults = Faults(quirks=True)
    tracker = await beta_call.start_transcription()
    assert_completed(await asyncio.wait_for(tracker, T), StartTranscriptionOperation)
    assert beta_bot.client.stats.pending == 0


# -- the call ends under a pending operation ---------------------------------------------------


async def test_caller_hangs_up_mid_prompt(emulated_bot: EmulatedBot, call: CallHandle) -> None:
    emulator = emulated_bot.emulator
    emulator.prompt_seconds = 30
    tracker = await call.play_prompt([PROMPT])
    queued = await call.record_response(max_record_duration=5)
    await emulator.caller_hangs_up(call.id)
    for pending in (tracker, queued):
        with pytest.raises(CallEndedError) as caught:
            await asyncio.wait_for(pending, T)
        info = caught.value.result_info
        assert info is not None
        assert (info.code, info.subcode) == (200, 4097)
        assert caught.value.operation is pending.operation
    assert call.ended
    assert call.result_info is not None
    assert call.result_info.subcode == 4097
    stats = emulated_bot.client.stats
    assert (stats.pending, stats.call_ended) == (0, 2)
    # No operation notification was ever sent for them.
    assert not [d for d in emulator.deliveries if d.operation_id is not None]


# -- forged notifications and key rotation ---------------------------------------------------


def _completion(call: CallHandle, tracker: Any) -> bytes:
    op_id = tracker.operation.id
    item = {
        "@odata.type": "#microsoft.graph.commsNotification",
        "changeType": "deleted",
        "resourceUrl": f"/communications/calls/{call.id}/operations/{op_id}",
        "resourceData": {
            "@odata.type": "#microsoft.graph.playPromptOperation",
            "id": op_id,
            "clientContext": tracker.client_context,
            "status": "failed",
            "resultInfo": {"code": 400, "subcode": 8508, "message": "forged"},
        },
    }
    body = {"@odata.type": "#microsoft.graph.commsNotifications", "value": [item]}
    return json.dumps(body).encode()


def _foreign_token(emulator: GraphEmulator, kid: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return emulator.make_token(signing_key=key, kid=kid)


async def test_forged_notifications_are_refused_and_change_nothing(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    client, emulator, receiver = emulated_bot.client, emulated_bot.emulator, emulated_bot.receiver
    emulator.prompt_seconds = 30
    tracker = await call.play_prompt([PROMPT])
    body = _completion(call, tracker)
    before_notifications = client.stats.notifications
    accepted = receiver.stats.accepted
    forged = {
        "no token": None,
        "not a bearer token": "Basic dXNlcjpwYXNz",
        "other key, known kid": f"Bearer {_foreign_token(emulator, emulator.kid)}",
        "other key, unknown kid": f"Bearer {_foreign_token(emulator, 'not-a-published-kid')}",
        "expired": f"Bearer {emulator.make_token(lifetime=-3600)}",
        "untrusted issuer": f"Bearer {emulator.make_token(iss='https://evil.example.com')}",
        "no tenant": f"Bearer {emulator.make_token(tid=None)}",
        "another app": f"Bearer {emulator.make_token(aud='11111111-1111-1111-1111-111111111111')}",
    }
    async with aiohttp.ClientSession() as session:
        statuses = {}
        for name, authorization in forged.items():
            headers = {"Content-Type": "application/json"}
            if authorization is not None:
                headers["Authorization"] = authorization
            async with session.post(emulated_bot.callback_uri, data=body, headers=headers) as r:
                statuses[name] = r.status
        assert statuses == {
            **dict.fromkeys(forged, 401),
            "another app": 403,
        }
        assert not tracker.done()
        assert client.stats.notifications == before_notifications
        assert receiver.stats.accepted == accepted
        assert receiver.stats.rejected_auth == len(forged) - 1
        assert receiver.stats.rejected_forbidden == 1

        # The same body with a genuine token is taken: the refusals above were the auth.
        genuine = {"Authorization": f"Bearer {emulator.make_token()}"}
        async with session.post(emulated_bot.callback_uri, data=body, headers=genuine) as r:
            assert r.status == 202
    final = await tracker.wait(timeout=T)
    assert final.status is OperationStatus.FAILED
    assert final.result_info is not None
    assert final.result_info.message == "forged"


async def test_key_rotation_mid_call_still_validates(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulator, receiver = emulated_bot.emulator, emulated_bot.receiver
    first = await call.play_prompt([PROMPT])
    assert_completed(await asyncio.wait_for(first, T))
    old_kid = emulator.kid
    assert emulator.rotate_key() != old_kid
    second = await call.play_prompt([PROMPT])
    assert_completed(await asyncio.wait_for(second, T))
    await call.hang_up()
    await call.wait_for_state(CallState.TERMINATED, timeout=T)
    await emulator.drain()
    assert receiver.stats.rejected_auth == 0
    assert all(d.ok for d in emulator.deliveries)
    assert receiver.validator is not None
    assert receiver.validator.stats.verifications >= 2


async def test_a_key_rotation_before_any_notification(graph_emulator: GraphEmulator) -> None:
    graph_emulator.rotate_key()
    async with emulated_bot(graph_emulator) as bot:
        call = await place_call(bot.client)
        assert_completed(await asyncio.wait_for(await call.play_prompt([PROMPT]), T))
        assert bot.receiver.stats.rejected_auth == 0


async def test_completed_media_trackers_stay_consistent_under_cancel_race(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    """A cancel sent just as the operation ends: the tracker ends once, either way."""
    tracker = await call.play_prompt([PROMPT])
    await asyncio.sleep(0.01)
    await tracker.cancel()
    final = await tracker.wait(timeout=T)
    if final.status is OperationStatus.FAILED:
        assert final.completion_reason is CompletionReason.MEDIA_OPERATION_CANCELED
    else:
        assert_completed(final)
    await emulated_bot.emulator.drain()
    assert emulated_bot.client.stats.pending == 0
    assert emulated_bot.client.stats.duplicates == 0
