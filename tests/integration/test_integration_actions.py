"""Every call action through our client against the emulator, with its real outcome.

Notifications reach the client through the real webhook receiver with token validation
on (the plugin's ``emulated_bot``); nothing is fed by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import wave
from typing import Any

import pytest
from integration_support import CALLEE, bot_on, place_call

from graphcomms import (
    CallEndedError,
    CallHandle,
    CallState,
    IdentitySet,
    InvalidRequestError,
    InvitationParticipantInfo,
    MediaPrompt,
    OperationFailedError,
    PlayPromptOperation,
    RecordOperation,
    Tone,
)
from graphcomms.errors import BadRequestError, NotFoundError
from graphcomms.models import (
    AddLargeGalleryViewOperation,
    AdmitAllFromLobbyOperation,
    AdmitFromLobbyOperation,
    CancelMediaProcessingOperation,
    CompletionReason,
    InviteParticipantsOperation,
    MuteParticipantOperation,
    MuteParticipantsOperation,
    OperationStatus,
    Participant,
    RecordingStatus,
    RejectReason,
    RemoveFromLobbyOperation,
    ScreenSharingRole,
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
from graphcomms.testing import EmulatedBot, GraphEmulator, emulated_bot

PROMPT = MediaPrompt.from_uri("https://media.example.com/prompt.wav")
OTHER_PROMPT = MediaPrompt.from_uri("https://media.example.com/other.wav")
T = 5  # seconds: generous bound on any single wait; the fixture's prompts take 10 ms


def assert_ok(op: Any, kind: type, *, code: int | None = 200) -> None:
    """A terminal, successful snapshot of ``kind``."""
    assert isinstance(op, kind)
    assert op.status is OperationStatus.COMPLETED
    assert op.succeeded
    if code is None:
        assert op.result_info is None
    else:
        assert op.result_info is not None
        assert op.result_info.code == code


def last_request(emulator: GraphEmulator, suffix: str) -> Any:
    matching = [r for r in emulator.requests if r.path.endswith(suffix)]
    assert matching, f"no request to ...{suffix}"
    return matching[-1]


async def next_roster(roster: Any) -> tuple[Participant, ...]:
    return await asyncio.wait_for(roster.__anext__(), T)


def callee_id(call: CallHandle, emulator: GraphEmulator) -> str:
    """The participant id of the other party (not the bot)."""
    mine = emulator.calls[call.id].my_participant_id
    others = [pid for pid in emulator.calls[call.id].participants if pid != mine]
    assert others
    return others[0]


# -- media -----------------------------------------------------------------------------


async def test_play_prompt_completes(emulated_bot: EmulatedBot, call: CallHandle) -> None:
    client = emulated_bot.client
    tracker = await call.play_prompt([PROMPT], client_context="greeting-1")
    assert tracker.status is OperationStatus.RUNNING
    assert tracker.operation_id is not None
    final = await asyncio.wait_for(tracker, T)
    assert_ok(final, PlayPromptOperation)
    assert final.completion_reason is CompletionReason.COMPLETED_SUCCESSFULLY
    assert final.client_context == "greeting-1"
    assert tracker.done()
    assert tracker.succeeded()
    assert client.stats.pending == 0
    assert client.stats.resolved == 1
    body = last_request(emulated_bot.emulator, "/playPrompt").json
    assert body["clientContext"] == "greeting-1"
    assert body["prompts"][0]["mediaInfo"]["uri"] == PROMPT.media_info.uri


async def test_every_way_to_wait_sees_the_same_end(call: CallHandle) -> None:
    tracker = await call.play_prompt([PROMPT])
    called: list[Any] = []
    tracker.add_done_callback(lambda t: called.append(t.operation))
    updates = [snapshot async for snapshot in tracker.updates()]
    final = await tracker.wait(timeout=T)
    await asyncio.sleep(0)  # callbacks run on the next loop iteration
    assert updates[-1] is final
    assert called == [final]
    assert (await tracker) is final


async def test_record_response_downloads_a_wav(emulated_bot: EmulatedBot, call: CallHandle) -> None:
    tracker = await call.record_response(
        prompts=[PROMPT], max_record_duration=5, play_beep=True, stop_tones=["#"]
    )
    final = await asyncio.wait_for(tracker, T)
    assert_ok(final, RecordOperation)
    assert final.completion_reason is CompletionReason.MAX_RECORD_DURATION_REACHED
    assert final.result_info is not None
    assert final.result_info.subcode == 8515
    assert final.recording_location
    assert final.recording_access_token
    audio = await emulated_bot.client.download_recording(final)
    assert audio[:4] == b"RIFF"
    assert audio[8:12] == b"WAVE"
    with wave.open(io.BytesIO(audio)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16_000)
    body = last_request(emulated_bot.emulator, "/recordResponse").json
    assert body["maxRecordDurationInSeconds"] == 5
    assert body["stopTones"] == ["#"]


async def test_record_response_ends_on_a_stop_tone(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulator = emulated_bot.emulator
    emulator.prompt_seconds = 30  # the recording would run for 30 s without the tone
    tracker = await call.record_response(max_record_duration=30, stop_tones=["#"])
    await emulator.press_keys(call.id, "#")
    final = await asyncio.wait_for(tracker, T)
    assert_ok(final, RecordOperation)
    assert final.completion_reason is CompletionReason.STOP_TONE_DETECTED
    assert (await emulated_bot.client.download_recording(final))[:4] == b"RIFF"


async def test_legacy_record_on_a_beta_client(beta_bot: EmulatedBot, beta_call: CallHandle) -> None:
    tracker = await beta_call.record(max_record_duration=5)
    final = await asyncio.wait_for(tracker, T)
    assert_ok(final, RecordOperation)
    request = last_request(beta_bot.emulator, "/record")
    assert request.path.startswith("/beta/")
    assert request.json["maxRecordDurationInSeconds"] == 5
    assert (await beta_bot.client.download_recording(final))[8:12] == b"WAVE"


async def test_legacy_record_is_refused_by_v1(emulated_bot: EmulatedBot, call: CallHandle) -> None:
    with pytest.raises(BadRequestError):
        await call.record(max_record_duration=5)
    assert emulated_bot.client.stats.pending == 0


async def test_emulated_bot_accepts_a_beta_base_url(graph_emulator: GraphEmulator) -> None:
    async with emulated_bot(graph_emulator, base_url=graph_emulator.beta_url) as bot:
        call = await place_call(bot.client)
        assert_ok(await asyncio.wait_for(await call.start_recording(), T), StartRecordingOperation)


async def test_cancel_media_processing_fails_running_and_queued_prompts(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulated_bot.emulator.prompt_seconds = 30  # nothing ends by itself during the test
    running = await call.play_prompt([PROMPT])
    queued = await call.play_prompt([OTHER_PROMPT])
    cancel = await call.cancel_media_processing(client_context="stop-all")
    # Graph answers cancelMediaProcessing already completed: no notification follows.
    assert cancel.done()
    assert_ok(cancel.result(), CancelMediaProcessingOperation)
    for tracker in (running, queued):
        final = await tracker.wait(timeout=T)
        assert final.status is OperationStatus.FAILED
        assert final.completion_reason is CompletionReason.MEDIA_OPERATION_CANCELED
        assert final.result_info is not None
        assert (final.result_info.code, final.result_info.subcode) == (400, 8508)
        with pytest.raises(OperationFailedError) as caught:
            await tracker
        assert caught.value.operation is final
    stats = emulated_bot.client.stats
    assert stats.pending == 0
    assert stats.failed == 2


async def test_tracker_cancel_sends_cancel_media_processing(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulated_bot.emulator.prompt_seconds = 30
    tracker = await call.play_prompt([PROMPT])
    assert tracker.cancellable
    assert await tracker.cancel() is True
    final = await tracker.wait(timeout=T)
    assert final.status is OperationStatus.FAILED
    assert final.completion_reason is CompletionReason.MEDIA_OPERATION_CANCELED
    assert last_request(emulated_bot.emulator, "/cancelMediaProcessing").method == "POST"
    assert await tracker.cancel() is False  # already done: nothing sent
    cancels = [
        r for r in emulated_bot.emulator.requests if r.path.endswith("/cancelMediaProcessing")
    ]
    assert len(cancels) == 1


async def test_leaving_a_record_block_early_cancels_it(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulated_bot.emulator.prompt_seconds = 30
    with pytest.raises(TimeoutError):
        async with call.record_response(max_record_duration=120) as rec:
            await rec.wait(timeout=0.05)
    final = await rec.wait(timeout=T)
    assert final.status is OperationStatus.FAILED
    assert final.completion_reason is CompletionReason.OPERATION_CANCELED
    assert emulated_bot.client.stats.pending == 0


async def test_non_media_operations_cannot_be_cancelled(call: CallHandle) -> None:
    emulated = await call.add_large_gallery_view()
    assert not emulated.cancellable
    with pytest.raises(InvalidRequestError):
        await emulated.cancel()
    await asyncio.wait_for(emulated, T)


# -- DTMF --------------------------------------------------------------------------------


async def test_subscribe_to_tone_then_the_callers_keys_arrive_in_order(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    subscribed = await call.subscribe_to_tone()
    assert subscribed.done()  # Graph answers it completed
    assert_ok(subscribed.result(), SubscribeToToneOperation)
    tones = call.tones()
    seen: list[str] = []
    call.on_tone(lambda tone: seen.append(tone.tone.key))
    await emulated_bot.emulator.press_keys(call.id, "12#")
    got = [await asyncio.wait_for(tones.__anext__(), T) for _ in range(3)]
    assert [t.tone for t in got] == [Tone.TONE1, Tone.TONE2, Tone.POUND]
    assert [t.tone.key for t in got] == ["1", "2", "#"]
    ids = [t.sequence_id for t in got]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    await asyncio.sleep(0)
    assert seen == ["1", "2", "#"]


async def test_send_dtmf_tones_completes(emulated_bot: EmulatedBot, call: CallHandle) -> None:
    tracker = await call.send_dtmf_tones("123#", delay_between_tones_ms=50)
    final = await asyncio.wait_for(tracker, T)
    # The documented completion carries a completionReason and no resultInfo.
    assert_ok(final, SendDtmfTonesOperation, code=None)
    assert final.completion_reason is CompletionReason.COMPLETED_SUCCESSFULLY
    body = last_request(emulated_bot.emulator, "/sendDtmfTones").json
    assert body["tones"] == ["tone1", "tone2", "tone3", "pound"]
    assert body["delayBetweenTonesMs"] == 50


# -- mute, recording status, gallery -----------------------------------------------------


async def test_mute_and_unmute_self_with_their_roster_updates(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    me = call.snapshot.my_participant_id
    assert me is not None
    roster = call.roster()
    muted = await call.mute()
    assert muted.done()
    assert_ok(muted.result(), MuteParticipantOperation)
    update = await next_roster(roster)
    assert {p.id: p.is_muted for p in update}[me] is True
    assert call.participants[me].is_muted is True

    unmuted = await call.unmute()
    assert_ok(await asyncio.wait_for(unmuted, T), UnmuteParticipantOperation)
    await next_roster(roster)
    assert call.participants[me].is_muted is False
    assert emulated_bot.client.stats.pending == 0


async def test_update_recording_status(emulated_bot: EmulatedBot, call: CallHandle) -> None:
    for status in (RecordingStatus.RECORDING, RecordingStatus.NOT_RECORDING):
        tracker = await call.update_recording_status(status)
        assert_ok(await asyncio.wait_for(tracker, T), UpdateRecordingStatusOperation)
        assert last_request(emulated_bot.emulator, "/updateRecordingStatus").json["status"] == (
            status.value
        )


async def test_add_large_gallery_view_then_read_it_back(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    # Reading it back after its result arrived is more than Graph documents (§7).
    emulated_bot.emulator.readable_operations = "all"
    tracker = await call.add_large_gallery_view(client_context="gallery")
    assert tracker.status is OperationStatus.RUNNING
    final = await asyncio.wait_for(tracker, T)
    assert_ok(final, AddLargeGalleryViewOperation)
    assert final.id is not None
    # GET .../operations/{id}: Graph's spelling and our normalised one both work.
    for op_id in (final.id, tracker.operation_id):
        assert op_id is not None
        read = await call.get_operation(op_id)
        assert isinstance(read, AddLargeGalleryViewOperation)
        assert read.status is OperationStatus.COMPLETED
        assert read.client_context == "gallery"


async def test_a_running_gallery_view_reads_back_and_is_gone_once_it_ended(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    # What Graph documents, and all the emulator promises by default.
    emulator = emulated_bot.emulator
    emulator.prompt_seconds = 0.3
    tracker = await call.add_large_gallery_view(client_context="gallery")
    assert tracker.operation.id is not None
    read = await call.get_operation(tracker.operation.id)
    assert isinstance(read, AddLargeGalleryViewOperation)
    assert (read.status, read.client_context) == (OperationStatus.RUNNING, "gallery")
    assert_ok(await asyncio.wait_for(tracker, T), AddLargeGalleryViewOperation)
    await emulator.drain()
    with pytest.raises(NotFoundError):
        await call.get_operation(tracker.operation.id)


async def test_other_operations_are_not_read_back_by_default(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulated_bot.emulator.prompt_seconds = 30
    tracker = await call.play_prompt([PROMPT])
    assert tracker.operation.id is not None
    with pytest.raises(NotFoundError) as caught:
        await call.get_operation(tracker.operation.id)
    assert caught.value.request_id
    assert not tracker.done()


async def test_get_operation_of_an_unknown_id_is_not_found(call: CallHandle) -> None:
    with pytest.raises(NotFoundError):
        await call.get_operation("00000000-0000-4000-8000-000000000000")


# -- participants -------------------------------------------------------------------------


async def test_invite_adds_a_participant(emulated_bot: EmulatedBot, call: CallHandle) -> None:
    before = await call.list_participants()
    roster = call.roster()
    invitee = InvitationParticipantInfo(
        identity=IdentitySet.for_user("invitee-user", display_name="Invitee")
    )
    tracker = await call.invite([invitee], client_context="invite-1")
    # The documented response spells it "Running"; graphcomms folds the casing.
    assert tracker.status is OperationStatus.RUNNING
    final = await asyncio.wait_for(tracker, T)
    assert_ok(final, InviteParticipantsOperation, code=None)
    update = await next_roster(roster)
    assert len(update) == len(before) + 1
    after = await call.list_participants()
    assert len(after) == len(before) + 1
    new = {p.id for p in after} - {p.id for p in before}
    assert len(new) == 1
    (new_id,) = new
    assert new_id in call.participants
    info = call.participants[new_id].info
    assert info is not None
    assert info.identity is not None
    assert info.identity.user is not None
    assert info.identity.user.id == "invitee-user"


async def test_mute_a_participant(emulated_bot: EmulatedBot, call: CallHandle) -> None:
    pid = callee_id(call, emulated_bot.emulator)
    roster = call.roster()
    tracker = await call.participant(pid).mute()
    assert_ok(await asyncio.wait_for(tracker, T), MuteParticipantOperation)
    await next_roster(roster)
    assert call.participants[pid].is_muted is True
    assert emulated_bot.emulator.calls[call.id].participants[pid]["isMuted"] is True


async def test_hold_music_starts_and_stops(emulated_bot: EmulatedBot, call: CallHandle) -> None:
    who = call.participant(callee_id(call, emulated_bot.emulator))
    started = await who.start_hold_music(custom_prompt=PROMPT)
    assert started.status is OperationStatus.RUNNING
    assert_ok(await asyncio.wait_for(started, T), StartHoldMusicOperation, code=None)
    assert emulated_bot.emulator.calls[call.id].on_hold == who.id
    stopped = await who.stop_hold_music()
    assert_ok(await asyncio.wait_for(stopped, T), StopHoldMusicOperation, code=None)
    assert emulated_bot.emulator.calls[call.id].on_hold is None


async def test_remove_a_participant(emulated_bot: EmulatedBot, call: CallHandle) -> None:
    pid = callee_id(call, emulated_bot.emulator)
    await call.participant(pid).remove()
    assert pid not in {p.id for p in await call.list_participants()}


async def test_a_removed_participant_leaves_the_roster(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    pid = callee_id(call, emulated_bot.emulator)
    roster = call.roster()
    await (await call.participant(pid).mute())  # a roster update that names everyone
    await next_roster(roster)
    assert pid in call.participants
    await call.participant(pid).remove()
    update = await next_roster(roster)
    assert pid not in {p.id for p in update}
    assert pid not in call.participants


async def test_list_participants_and_refresh(emulated_bot: EmulatedBot, call: CallHandle) -> None:
    participants = await call.list_participants()
    emulated = emulated_bot.emulator.calls[call.id]
    assert {p.id for p in participants} == set(emulated.participants)
    snapshot = await call.refresh()
    assert snapshot.state is CallState.ESTABLISHED
    assert snapshot.my_participant_id == emulated.my_participant_id
    assert snapshot.call_chain_id == emulated.call_chain_id
    assert call.state is CallState.ESTABLISHED


# -- beta-only actions ------------------------------------------------------------------


async def test_beta_mute_all(beta_bot: EmulatedBot, beta_call: CallHandle) -> None:
    pid = callee_id(beta_call, beta_bot.emulator)
    roster = beta_call.roster()
    tracker = await beta_call.mute_all()
    assert_ok(await asyncio.wait_for(tracker, T), MuteParticipantsOperation)
    await next_roster(roster)
    assert beta_call.participants[pid].is_muted is True
    me = beta_call.snapshot.my_participant_id
    assert me is not None
    assert beta_call.participants[me].is_muted is False


async def test_beta_transcription_is_tracked_by_its_location(
    beta_bot: EmulatedBot, beta_call: CallHandle
) -> None:
    started = await beta_call.start_transcription()
    # The beta response has no id: the tracker takes it from the Location header.
    assert started.operation.id is None
    assert started.operation_id is not None
    assert_ok(await asyncio.wait_for(started, T), StartTranscriptionOperation)
    stopped = await beta_call.stop_transcription(language="en-us")
    assert_ok(await asyncio.wait_for(stopped, T), StopTranscriptionOperation)
    assert last_request(beta_bot.emulator, "/startTranscription").json["language"] == "en-us"
    assert beta_bot.client.stats.pending == 0


async def test_beta_recording_starts_and_stops(
    beta_bot: EmulatedBot, beta_call: CallHandle
) -> None:
    started = await beta_call.start_recording()
    assert started.operation_id is not None
    assert_ok(await asyncio.wait_for(started, T), StartRecordingOperation)
    stopped = await beta_call.stop_recording()
    assert_ok(await asyncio.wait_for(stopped, T), StopRecordingOperation)
    assert beta_bot.client.stats.pending == 0


async def test_beta_lobby_actions(beta_bot: EmulatedBot, beta_call: CallHandle) -> None:
    pid = callee_id(beta_call, beta_bot.emulator)
    everyone = await beta_call.admit_all_from_lobby()
    assert_ok(await asyncio.wait_for(everyone, T), AdmitAllFromLobbyOperation)
    admitted = await beta_call.participant(pid).admit_from_lobby()
    assert_ok(await asyncio.wait_for(admitted, T), AdmitFromLobbyOperation)
    assert beta_bot.emulator.calls[beta_call.id].participants[pid]["isInLobby"] is False
    removed = await beta_call.participant(pid).remove_from_lobby()
    assert_ok(await asyncio.wait_for(removed, T), RemoveFromLobbyOperation)
    assert pid not in beta_bot.emulator.calls[beta_call.id].participants
    assert beta_bot.client.stats.pending == 0


@pytest.mark.parametrize(
    "action",
    [
        lambda c: c.mute_all(),
        lambda c: c.start_transcription(),
        lambda c: c.stop_transcription(),
        lambda c: c.start_recording(),
        lambda c: c.stop_recording(),
        lambda c: c.admit_all_from_lobby(),
    ],
    ids=[
        "muteAll",
        "startTranscription",
        "stopTranscription",
        "startRecording",
        "stopRecording",
        "admitAllFromLobby",
    ],
)
async def test_beta_actions_are_refused_by_v1(
    emulated_bot: EmulatedBot, call: CallHandle, action: Any
) -> None:
    with pytest.raises(BadRequestError):
        await action(call)
    assert emulated_bot.client.stats.pending == 0


# -- call control -------------------------------------------------------------------------


async def test_answer_an_incoming_call(emulated_bot: EmulatedBot) -> None:
    client, emulator = emulated_bot.client, emulated_bot.emulator
    incoming = client.incoming_calls()
    call_id = await emulator.simulate_incoming_call(callback_uri=emulated_bot.callback_uri)
    call = await asyncio.wait_for(incoming.__anext__(), T)
    assert call.id == call_id
    assert call.state is CallState.INCOMING
    await call.answer()
    await call.wait_for_state(CallState.ESTABLISHED, timeout=T)
    assert emulator.calls[call_id].state == "established"
    assert last_request(emulator, "/answer").json["callbackUri"] == emulated_bot.callback_uri
    final = await asyncio.wait_for(await call.play_prompt([PROMPT]), T)
    assert_ok(final, PlayPromptOperation)


async def test_on_incoming_call_callback(emulated_bot: EmulatedBot) -> None:
    got: asyncio.Queue[CallHandle] = asyncio.Queue()
    emulated_bot.client.on_incoming_call(got.put_nowait)
    call_id = await emulated_bot.emulator.simulate_incoming_call(
        callback_uri=emulated_bot.callback_uri
    )
    call = await asyncio.wait_for(got.get(), T)
    assert call.id == call_id


async def test_reject_an_incoming_call(emulated_bot: EmulatedBot) -> None:
    incoming = emulated_bot.client.incoming_calls()
    call_id = await emulated_bot.emulator.simulate_incoming_call(
        callback_uri=emulated_bot.callback_uri
    )
    call = await asyncio.wait_for(incoming.__anext__(), T)
    await call.reject(reason=RejectReason.BUSY)
    ended = await call.wait_for_state(CallState.TERMINATED, timeout=T)
    assert ended.state is CallState.TERMINATED
    assert call.ended
    assert emulated_bot.emulator.calls[call_id].ended
    assert last_request(emulated_bot.emulator, "/reject").json["reason"] == "busy"


async def test_redirect_an_incoming_call(emulated_bot: EmulatedBot) -> None:
    incoming = emulated_bot.client.incoming_calls()
    await emulated_bot.emulator.simulate_incoming_call(callback_uri=emulated_bot.callback_uri)
    call = await asyncio.wait_for(incoming.__anext__(), T)
    await call.redirect([CALLEE], timeout=30)
    await call.wait_for_state(CallState.TERMINATED, timeout=T)
    body = last_request(emulated_bot.emulator, "/redirect").json
    assert body["timeout"] == 30
    assert body["targets"][0]["identity"]["phone"]["id"] == "+14255550100"


async def test_transfer_success_ends_the_call(emulated_bot: EmulatedBot, call: CallHandle) -> None:
    states = call.states()
    await call.transfer(InvitationParticipantInfo(identity=IdentitySet.for_phone("+14255550111")))
    ended = await call.wait_for_state(CallState.TERMINATED, timeout=T)
    assert ended.result_info is not None
    assert (ended.result_info.code, ended.result_info.subcode) == (0, 7015)
    seen = [s.state async for s in states]
    assert seen[:2] == [CallState.TRANSFERRING, CallState.TRANSFER_ACCEPTED]
    assert seen[-1] is CallState.TERMINATED


async def test_failed_transfer_returns_to_established(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulated_bot.emulator.fail_next_transfer()
    states = call.states()
    await call.transfer(InvitationParticipantInfo(identity=IdentitySet.for_phone("+14255550111")))
    assert (await asyncio.wait_for(states.__anext__(), T)).state is CallState.TRANSFERRING
    back = await asyncio.wait_for(states.__anext__(), T)
    assert back.state is CallState.ESTABLISHED
    assert back.result_info is not None
    assert (back.result_info.code, back.result_info.subcode) == (500, 7000)
    assert not call.ended
    # The call is still usable.
    assert_ok(await asyncio.wait_for(await call.play_prompt([PROMPT]), T), PlayPromptOperation)


async def test_change_screen_sharing_role(emulated_bot: EmulatedBot, call: CallHandle) -> None:
    roster = call.roster()
    await call.change_screen_sharing_role(ScreenSharingRole.SHARER)
    await next_roster(roster)  # the outcome arrives as a roster update
    assert last_request(emulated_bot.emulator, "/changeScreenSharingRole").json == {
        "role": "sharer"
    }


async def test_keep_alive_then_not_found_after_hang_up(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    await call.keep_alive()
    assert last_request(emulated_bot.emulator, "/keepAlive").method == "POST"
    await call.hang_up()
    await call.wait_for_state(CallState.TERMINATED, timeout=T)
    with pytest.raises(NotFoundError) as caught:
        await call.keep_alive()
    assert caught.value.status == 404


async def test_hang_up_terminates_and_fails_pending_operations(
    emulated_bot: EmulatedBot, call: CallHandle
) -> None:
    emulated_bot.emulator.prompt_seconds = 30
    pending = await call.play_prompt([PROMPT])
    states = call.states()
    await call.hang_up()
    ended = await call.wait_for_state(CallState.TERMINATED, timeout=T)
    assert ended.result_info is not None
    assert (ended.result_info.code, ended.result_info.subcode) == (200, 7000)
    assert [s.state async for s in states] == [CallState.TERMINATING, CallState.TERMINATED]
    with pytest.raises(CallEndedError) as caught:
        await pending.wait(timeout=T)
    assert caught.value.result_info is not None
    assert caught.value.result_info.subcode == 7000
    assert emulated_bot.client.stats.pending == 0
    assert emulated_bot.client.stats.call_ended == 1
    assert emulated_bot.client.call(call.id) is call
    with pytest.raises(CallEndedError):
        await call.wait_for_state(CallState.ESTABLISHED)


async def test_the_client_tracks_two_calls_apart(emulated_bot: EmulatedBot) -> None:
    first = await place_call(emulated_bot.client)
    second = await place_call(emulated_bot.client)
    a = await first.play_prompt([PROMPT])
    b = await second.play_prompt([OTHER_PROMPT])
    await first.hang_up()
    assert_ok(await asyncio.wait_for(b, T), PlayPromptOperation)
    await first.wait_for_state(CallState.TERMINATED, timeout=T)
    # a either finished before the hang-up or was ended by it; never left hanging.
    with contextlib.suppress(CallEndedError):
        assert_ok(await a.wait(timeout=T), PlayPromptOperation)
    assert second.state is CallState.ESTABLISHED
    assert emulated_bot.client.stats.pending == 0


async def test_beta_client_keeps_working_for_v1_actions(beta_call: CallHandle) -> None:
    assert_ok(await asyncio.wait_for(await beta_call.play_prompt([PROMPT]), T), PlayPromptOperation)


async def test_custom_callback_path(graph_emulator: GraphEmulator) -> None:
    async with bot_on(graph_emulator, graph_emulator.graph_url, path="/calls/bot-7") as bot:
        call = await place_call(bot.client)
        assert call.snapshot.callback_uri == bot.callback_uri
        assert_ok(await asyncio.wait_for(await call.play_prompt([PROMPT]), T), PlayPromptOperation)
