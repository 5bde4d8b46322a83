"""Call and participant handles: a typed method per Graph action, and the call's state
as notifications change it."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from graphcomms._events import CallbackRunner, Channel
from graphcomms._routing import normalize_id
from graphcomms._tracker import OperationTracker
from graphcomms.errors import CallEndedError, InvalidRequestError
from graphcomms.models import (
    AddLargeGalleryViewOperation,
    AddLargeGalleryViewRequest,
    AdmitAllFromLobbyOperation,
    AdmitAllFromLobbyRequest,
    AdmitFromLobbyOperation,
    AdmitFromLobbyRequest,
    AnswerRequest,
    Call,
    CallState,
    CancelMediaProcessingOperation,
    CancelMediaProcessingRequest,
    ChangeScreenSharingRoleRequest,
    ChangeType,
    CommsOperation,
    IncomingCallOptions,
    InvitationParticipantInfo,
    InviteParticipantsOperation,
    InviteParticipantsRequest,
    MediaConfig,
    Modality,
    MuteAllRequest,
    MuteParticipantOperation,
    MuteParticipantRequest,
    MuteParticipantsOperation,
    MuteRequest,
    Participant,
    ParticipantInfo,
    PlayPromptOperation,
    PlayPromptRequest,
    Prompt,
    RecordingStatus,
    RecordOperation,
    RecordRequest,
    RecordResponseRequest,
    RedirectRequest,
    RejectReason,
    RejectRequest,
    RemoveFromLobbyOperation,
    RemoveFromLobbyRequest,
    ResultInfo,
    ScreenSharingRole,
    SendDtmfTonesOperation,
    SendDtmfTonesRequest,
    ServiceHostedMediaConfig,
    StartHoldMusicOperation,
    StartHoldMusicRequest,
    StartRecordingOperation,
    StartRecordingRequest,
    StartTranscriptionOperation,
    StartTranscriptionRequest,
    StopHoldMusicOperation,
    StopHoldMusicRequest,
    StopRecordingOperation,
    StopRecordingRequest,
    StopTranscriptionOperation,
    StopTranscriptionRequest,
    SubscribeToToneOperation,
    SubscribeToToneRequest,
    Tone,
    ToneInfo,
    TransferRequest,
    UnmuteParticipantOperation,
    UnmuteRequest,
    UpdateRecordingStatusOperation,
    UpdateRecordingStatusRequest,
)

if TYPE_CHECKING:
    from graphcomms._client import CommsClient

__all__ = ["CallHandle", "ParticipantHandle", "PendingAction"]

OpT = TypeVar("OpT", bound=CommsOperation)

_TONES_REMEMBERED = 1024

# Graph may deliver `establishing` after `established`; these never follow it.
_BEFORE_ESTABLISHED = frozenset({CallState.INCOMING, CallState.ESTABLISHING, CallState.RINGING})


class PendingAction(Generic[OpT]):
    """An action not yet sent. ``await`` it for the tracker once Graph accepted it, or
    use it as ``async with`` to have a media operation cancelled server-side when the
    block exits before the operation ended."""

    __slots__ = ("_coro", "_tracker", "request")

    def __init__(self, request: Any, coro: Coroutine[Any, Any, OperationTracker[OpT]]) -> None:
        #: The request model that will be sent.
        self.request = request
        self._coro = coro
        self._tracker: OperationTracker[OpT] | None = None

    def close(self) -> None:
        """Discard the action without sending it."""
        self._coro.close()

    def __await__(self) -> Generator[Any, None, OperationTracker[OpT]]:
        return self._coro.__await__()

    async def __aenter__(self) -> OperationTracker[OpT]:
        self._tracker = await self._coro
        return self._tracker

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tracker is not None:
            await self._tracker.__aexit__(exc_type, exc, tb)


class CallHandle:
    """One call: its latest state, its events, and every action on it.

    Obtain it from ``client.call(call_id)``, ``await client.create_call(...)`` or
    ``client.incoming_calls()``. It holds no state Graph does not send: ``snapshot``
    is the call as the notifications so far describe it.
    """

    def __init__(self, client: CommsClient, call_id: str, runner: CallbackRunner) -> None:
        self._client = client
        #: The id as Graph spelled it; ``key`` is the normalised form.
        self.id = call_id
        self.key = normalize_id(call_id)
        self._snapshot = Call(id=call_id)
        self._runner = runner
        self._states: Channel[Call] = Channel(runner)
        self._tones: Channel[ToneInfo] = Channel(runner)
        self._roster: Channel[tuple[Participant, ...]] = Channel(runner)
        self._participants: dict[str, Participant] = {}
        #: Set when the bot asked for delta rosters (only changed participants sent).
        self.delta_roster = False
        # Tones already delivered, by sequenceId: a duplicate is dropped, a late one
        # (Graph may reorder) is still delivered. Bounded: a call has few tones.
        self._tones_seen: set[int] = set()
        self._tones_order: deque[int] = deque()
        self._latest_tone = -1
        self._closed_error: BaseException | None = None
        #: Monotonic time the oldest current state waiter started; ``None`` if none.
        self.waiting_since: float | None = None
        #: Monotonic time ``hang_up()`` was accepted; ``None`` before.
        self.hung_up_at: float | None = None
        self._state_waiters: list[tuple[frozenset[CallState | str], asyncio.Future[Call]]] = []
        # One bound method for all of this call's media trackers, not one per tracker:
        # a pending tracker should hold as few objects as it can.
        self._cancel_hook = self._cancel_media

    # -- state ---------------------------------------------------------------------

    @property
    def snapshot(self) -> Call:
        return self._snapshot

    @property
    def state(self) -> CallState | str | None:
        return self._snapshot.state

    @property
    def result_info(self) -> ResultInfo | None:
        """Why the call ended, once it has."""
        return self._snapshot.result_info

    @property
    def ended(self) -> bool:
        return self._snapshot.state is CallState.TERMINATED

    @property
    def participants(self) -> dict[str, Participant]:
        """The roster as last reported, by participant id."""
        return dict(self._participants)

    async def wait_for_state(self, *states: CallState | str, timeout: float | None = None) -> Call:
        """Wait until the call is in one of ``states``; returns the snapshot then.

        Returns at once if it already is. Raises ``CallEndedError`` if the call ends
        first (unless ``terminated`` is among ``states``) and the builtin
        ``TimeoutError`` after ``timeout`` seconds.
        """
        wanted = frozenset(states)
        if self._snapshot.state in wanted:
            return self._snapshot
        if self._closed_error is not None:
            raise self._closed_error
        if self.ended:
            raise CallEndedError(call_id=self.id, result_info=self.result_info)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[Call] = loop.create_future()
        entry = (wanted, waiter)
        if not self._state_waiters:
            # Since when somebody waits on this call's state: a lost state notification
            # is then recovered by reading the call back (see the client's reconciler).
            self.waiting_since = time.monotonic()
        self._state_waiters.append(entry)
        try:
            done, _ = await asyncio.wait((waiter,), timeout=timeout)
            if not done:
                raise TimeoutError(
                    f"call {self.id} not in {sorted(map(str, wanted))} after {timeout} s"
                )
            return waiter.result()
        finally:
            if entry in self._state_waiters:
                self._state_waiters.remove(entry)
            if not self._state_waiters:
                self.waiting_since = None

    def states(self) -> AsyncIterator[Call]:
        """Each new call snapshot whose state changed, until the call ends."""
        return self._states.subscribe()

    def on_state(self, fn: Callable[[Call], Any]) -> None:
        self._states.add_callback(fn)

    def tones(self) -> AsyncIterator[ToneInfo]:
        """DTMF tones the caller presses (after ``subscribe_to_tone``), each once, as
        they arrive; ends when the call ends.

        Graph may deliver a tone late (out of order): it is still delivered, and its
        ``sequence_id`` says where it belongs. Repeats of a ``sequence_id`` are dropped.
        """
        return self._tones.subscribe()

    def on_tone(self, fn: Callable[[ToneInfo], Any]) -> None:
        self._tones.add_callback(fn)

    def roster(self) -> AsyncIterator[tuple[Participant, ...]]:
        """Each roster update: the participants it names."""
        return self._roster.subscribe()

    def on_roster(self, fn: Callable[[tuple[Participant, ...]], Any]) -> None:
        self._roster.add_callback(fn)

    def participant(self, participant_id: str) -> ParticipantHandle:
        return ParticipantHandle(self, participant_id)

    # -- driven by ingestion -------------------------------------------------------

    def _apply(self, change: ChangeType | str, update: Call) -> None:
        old = self._snapshot
        if old.state is CallState.TERMINATED:
            return  # nothing follows the end; a straggler must not revive the call
        new_state = update.state
        if change is ChangeType.DELETED and new_state is None:
            update = _evolve_state(update, CallState.TERMINATED)
        elif (
            new_state in _BEFORE_ESTABLISHED
            and old.state not in _BEFORE_ESTABLISHED
            and (old.state is not None)
        ):
            update = _evolve_state(update, None)  # a late `establishing`: keep the newer state
        if update.tone_info is not None:
            tone = update.tone_info
            self._receive_tone(tone)
            seq = tone.sequence_id
            if seq is not None:
                if seq < self._latest_tone:
                    update = attrs.evolve(update, tone_info=None)  # keep the newer one
                else:
                    self._latest_tone = seq
        snapshot = old.merged(update)
        self._snapshot = snapshot
        if snapshot.state != old.state:
            self._states.publish(snapshot)
            for wanted, waiter in list(self._state_waiters):
                if snapshot.state in wanted and not waiter.done():
                    waiter.set_result(snapshot)
        if snapshot.state is CallState.TERMINATED:
            self._end()

    def _receive_tone(self, tone: ToneInfo) -> None:
        seq = tone.sequence_id
        if seq is not None:
            if seq in self._tones_seen:
                return
            self._tones_seen.add(seq)
            self._tones_order.append(seq)
            if len(self._tones_order) > _TONES_REMEMBERED:
                self._tones_seen.discard(self._tones_order.popleft())
        self._tones.publish(tone)

    def _apply_roster(self, participants: Sequence[Participant], deleted: bool) -> None:
        """A roster notification. Without delta rosters Graph sends the whole roster, so
        it replaces the known one. ``rosterSequenceNumber`` says when each participant
        last changed, so a late, older record of a participant never overwrites a newer
        one (the number is per participant: a current roster may carry old numbers)."""
        full = not self.delta_roster and not deleted
        before = self._participants
        after = {} if full else before  # a full roster replaces, a delta updates in place
        for p in participants:
            if p.id is None:
                continue
            old = before.get(p.id)
            if old is not None and _older(p, old):
                if full:
                    after[p.id] = old
            elif deleted or p.removed_state is not None:
                after.pop(p.id, None)
            else:
                after[p.id] = p
        self._participants = after
        self._roster.publish(tuple(participants))

    def _end(self, error: BaseException | None = None) -> None:
        if error is not None:
            self._closed_error = error
        ended = error or CallEndedError(call_id=self.id, result_info=self.result_info)
        for wanted, waiter in self._state_waiters:
            if not waiter.done():
                if CallState.TERMINATED in wanted and error is None:
                    waiter.set_result(self._snapshot)
                else:
                    waiter.set_exception(ended)
        self._state_waiters.clear()
        self._states.close()
        self._tones.close()
        self._roster.close()

    # -- call control --------------------------------------------------------------

    async def answer(
        self,
        *,
        callback_uri: str | None = None,
        media_config: MediaConfig | None = None,
        accepted_modalities: Iterable[Modality | str] = (Modality.AUDIO,),
        participant_capacity: int | None = None,
        call_options: IncomingCallOptions | None = None,
    ) -> None:
        """Answer an incoming call (within 15 s of its notification). Returns once Graph
        accepted (202); ``wait_for_state("established")`` follows the outcome.

        ``media_config`` defaults to service-hosted media, which IVR actions need.
        """
        self.delta_roster = bool(call_options and call_options.is_delta_roster_enabled)
        await self._client._post_action(
            self,
            AnswerRequest(
                callback_uri=callback_uri or self._client.callback_uri,
                media_config=media_config or ServiceHostedMediaConfig(),
                accepted_modalities=tuple(accepted_modalities),
                participant_capacity=participant_capacity,
                call_options=call_options,
            ),
        )

    async def reject(
        self, *, reason: RejectReason | str | None = None, callback_uri: str | None = None
    ) -> None:
        await self._client._post_action(
            self, RejectRequest(reason=reason, callback_uri=callback_uri)
        )

    async def redirect(
        self,
        targets: Iterable[InvitationParticipantInfo],
        *,
        timeout: int | None = None,
        callback_uri: str | None = None,
        mask_callee: bool | None = None,
        mask_caller: bool | None = None,
    ) -> None:
        await self._client._post_action(
            self,
            RedirectRequest(
                targets=tuple(targets),
                timeout=timeout,
                callback_uri=callback_uri,
                mask_callee=mask_callee,
                mask_caller=mask_caller,
            ),
        )

    async def transfer(
        self,
        transfer_target: InvitationParticipantInfo,
        *,
        transferee: ParticipantInfo | None = None,
    ) -> None:
        """Ask Graph to transfer. Success ends this call (``terminated``, 0/7015); failure
        returns it to ``established`` with a 500/7000 resultInfo."""
        await self._client._post_action(
            self, TransferRequest(transfer_target=transfer_target, transferee=transferee)
        )

    async def change_screen_sharing_role(self, role: ScreenSharingRole | str) -> None:
        await self._client._post_action(self, ChangeScreenSharingRoleRequest(role=role))

    async def keep_alive(self) -> None:
        """Tell Graph the bot is alive (at least every 45 min). Raises ``NotFoundError``
        when the call has already ended."""
        await self._client._request("POST", f"communications/calls/{self.id}/keepAlive")

    async def hang_up(self) -> None:
        """``DELETE`` the call; ``terminating`` then ``terminated`` notifications follow."""
        await self._client._request("DELETE", f"communications/calls/{self.id}")
        # If the `terminated` notification is lost, the reconciler reads the call back
        # (a 404 ends it) rather than keeping a dead call's handle forever.
        self.hung_up_at = time.monotonic()

    async def refresh(self) -> Call:
        """``GET`` the call from Graph and lay it over the known snapshot."""
        call = await self._client._get_call(self.id)
        # Through the client, as a notification would go: an ended call also fails
        # its pending operations and leaves the client's table of live calls.
        self._client._call_read(self.key, self.id, call)
        return self._snapshot

    async def list_participants(self) -> list[Participant]:
        return await self._client._list_participants(self.id)

    async def get_operation(self, operation_id: str) -> CommsOperation:
        """``GET .../operations/{id}``: Graph documents it for addLargeGalleryView only."""
        return await self._client._get_operation(self.id, operation_id)

    # -- media and operation actions ----------------------------------------------

    def play_prompt(
        self,
        prompts: Iterable[Prompt],
        *,
        client_context: str | None = None,
        loop: bool | None = None,
        timeout: float | None = None,
    ) -> PendingAction[PlayPromptOperation]:
        """Play 1 to 20 prompts. ``loop`` (beta) plays until cancelled and never sends
        a completion. ``timeout`` overrides the client's ``operation_timeout``."""
        return self._operation(
            PlayPromptRequest(prompts=tuple(prompts), client_context=client_context, loop=loop),
            timeout=timeout,
            cancellable=True,
        )

    def record_response(
        self,
        *,
        prompts: Iterable[Prompt] | None = None,
        barge_in_allowed: bool | None = None,
        initial_silence_timeout: int | None = None,
        max_silence_timeout: int | None = None,
        max_record_duration: int | None = None,
        play_beep: bool | None = None,
        stop_tones: Iterable[str] | None = None,
        client_context: str | None = None,
        stream_while_recording: bool | None = None,
        timeout: float | None = None,
    ) -> PendingAction[RecordOperation]:
        """Record the caller. Timeouts are whole seconds, 1 to 120 each. Fetch the
        result with ``client.download_recording(operation)``."""
        return self._operation(
            RecordResponseRequest(
                prompts=None if prompts is None else tuple(prompts),
                barge_in_allowed=barge_in_allowed,
                initial_silence_timeout_in_seconds=initial_silence_timeout,
                max_silence_timeout_in_seconds=max_silence_timeout,
                max_record_duration_in_seconds=max_record_duration,
                play_beep=play_beep,
                stop_tones=None if stop_tones is None else tuple(stop_tones),
                client_context=client_context,
                stream_while_recording=stream_while_recording,
            ),
            timeout=timeout,
            cancellable=True,
        )

    def record(self, **kwargs: Any) -> PendingAction[RecordOperation]:
        """The legacy beta ``record`` action: ``record_response``'s arguments, posted to
        ``.../record``."""
        pending = self.record_response(**kwargs)
        # Build (and validate) the body once through record_response, then re-post it
        # under the legacy path; the unsent coroutine is closed so it cannot warn.
        request = pending.request
        pending.close()
        legacy = RecordRequest(
            **{a.name: getattr(request, a.name) for a in attrs.fields(RecordResponseRequest)}
        )
        return self._operation(legacy, timeout=kwargs.get("timeout"), cancellable=True)

    def cancel_media_processing(
        self, *, client_context: str | None = None
    ) -> PendingAction[CancelMediaProcessingOperation]:
        """Cancel every queued and running media operation on the call."""
        return self._operation(CancelMediaProcessingRequest(client_context=client_context))

    def subscribe_to_tone(
        self, *, client_context: str | None = None
    ) -> PendingAction[SubscribeToToneOperation]:
        """Start receiving DTMF tones: see :meth:`tones` and :meth:`on_tone`."""
        return self._operation(SubscribeToToneRequest(client_context=client_context))

    def send_dtmf_tones(
        self,
        tones: Iterable[Tone | str],
        *,
        delay_between_tones_ms: int | None = None,
        client_context: str | None = None,
        timeout: float | None = None,
    ) -> PendingAction[SendDtmfTonesOperation]:
        """Send tones: ``Tone`` members, Graph's names (``"tone1"``), or keypad keys
        (``"1"``, ``"*"``, ``"#"``) — ``send_dtmf_tones("123#")`` works."""
        return self._operation(
            SendDtmfTonesRequest(
                tones=tuple(_as_tone(t) for t in tones),
                delay_between_tones_ms=delay_between_tones_ms,
                client_context=client_context,
            ),
            timeout=timeout,
            cancellable=True,
        )

    def mute(self, *, client_context: str | None = None) -> PendingAction[MuteParticipantOperation]:
        """Mute the bot itself (group calls)."""
        return self._operation(MuteRequest(client_context=client_context))

    def unmute(
        self, *, client_context: str | None = None
    ) -> PendingAction[UnmuteParticipantOperation]:
        return self._operation(UnmuteRequest(client_context=client_context))

    def update_recording_status(
        self, status: RecordingStatus | str, *, client_context: str | None = None
    ) -> PendingAction[UpdateRecordingStatusOperation]:
        """Report ``recording`` before persisting any media, ``notRecording`` after."""
        return self._operation(
            UpdateRecordingStatusRequest(status=status, client_context=client_context)
        )

    def add_large_gallery_view(
        self, *, client_context: str | None = None
    ) -> PendingAction[AddLargeGalleryViewOperation]:
        return self._operation(AddLargeGalleryViewRequest(client_context=client_context))

    def invite(
        self,
        participants: Iterable[InvitationParticipantInfo],
        *,
        client_context: str | None = None,
        timeout: float | None = None,
    ) -> PendingAction[InviteParticipantsOperation]:
        """Invite up to 5 participants (more than one needs a call with chatInfo)."""
        return self._operation(
            InviteParticipantsRequest(
                participants=tuple(participants), client_context=client_context
            ),
            timeout=timeout,
        )

    def mute_all(
        self, participants: Iterable[str] | None = None, *, client_context: str | None = None
    ) -> PendingAction[MuteParticipantsOperation]:
        """beta"""
        return self._operation(
            MuteAllRequest(
                participants=None if participants is None else tuple(participants),
                client_context=client_context,
            )
        )

    def start_transcription(
        self, *, language: str | None = "en-us", client_context: str | None = None
    ) -> PendingAction[StartTranscriptionOperation]:
        """beta"""
        return self._operation(
            StartTranscriptionRequest(language=language, client_context=client_context)
        )

    def stop_transcription(
        self, *, language: str | None = None, client_context: str | None = None
    ) -> PendingAction[StopTranscriptionOperation]:
        """beta"""
        return self._operation(
            StopTranscriptionRequest(language=language, client_context=client_context)
        )

    def start_recording(
        self, *, client_context: str | None = None
    ) -> PendingAction[StartRecordingOperation]:
        """beta"""
        return self._operation(StartRecordingRequest(client_context=client_context))

    def stop_recording(
        self, *, client_context: str | None = None
    ) -> PendingAction[StopRecordingOperation]:
        """beta"""
        return self._operation(StopRecordingRequest(client_context=client_context))

    def admit_all_from_lobby(
        self, *, client_context: str | None = None
    ) -> PendingAction[AdmitAllFromLobbyOperation]:
        """beta"""
        return self._operation(AdmitAllFromLobbyRequest(client_context=client_context))

    def _operation(
        self,
        request: Any,
        *,
        participant_id: str | None = None,
        timeout: float | None = None,
        cancellable: bool = False,
    ) -> PendingAction[Any]:
        return PendingAction(
            request,
            self._client._send_operation(
                self,
                request,
                participant_id=participant_id,
                timeout=timeout,
                cancel_hook=self._cancel_hook if cancellable else None,
            ),
        )

    async def _cancel_media(self) -> object:
        return await self.cancel_media_processing()

    def __repr__(self) -> str:
        return f"<CallHandle {self.id} state={self.state!s}>"


class ParticipantHandle:
    """Actions on one participant of a call."""

    def __init__(self, call: CallHandle, participant_id: str) -> None:
        self.call = call
        self.id = participant_id

    def mute(self, *, client_context: str | None = None) -> PendingAction[MuteParticipantOperation]:
        return self.call._operation(
            MuteParticipantRequest(client_context=client_context), participant_id=self.id
        )

    def start_hold_music(
        self,
        *,
        custom_prompt: Prompt | None = None,
        client_context: str | None = None,
        timeout: float | None = None,
    ) -> PendingAction[StartHoldMusicOperation]:
        """Put the participant on hold (one participant at a time per call)."""
        return self.call._operation(
            StartHoldMusicRequest(custom_prompt=custom_prompt, client_context=client_context),
            participant_id=self.id,
            timeout=timeout,
        )

    def stop_hold_music(
        self, *, client_context: str | None = None, timeout: float | None = None
    ) -> PendingAction[StopHoldMusicOperation]:
        return self.call._operation(
            StopHoldMusicRequest(client_context=client_context),
            participant_id=self.id,
            timeout=timeout,
        )

    def admit_from_lobby(
        self, *, client_context: str | None = None
    ) -> PendingAction[AdmitFromLobbyOperation]:
        """beta"""
        return self.call._operation(
            AdmitFromLobbyRequest(client_context=client_context), participant_id=self.id
        )

    def remove_from_lobby(
        self, *, client_context: str | None = None
    ) -> PendingAction[RemoveFromLobbyOperation]:
        """beta"""
        return self.call._operation(
            RemoveFromLobbyRequest(client_context=client_context), participant_id=self.id
        )

    async def remove(self) -> None:
        """Remove the participant from the call, or cancel a pending invite (204)."""
        await self.call._client._request(
            "DELETE", f"communications/calls/{self.call.id}/participants/{self.id}"
        )

    def __repr__(self) -> str:
        return f"<ParticipantHandle {self.id} of call {self.call.id}>"


def _older(update: Participant, known: Participant) -> bool:
    """True when ``update`` is an older record of ``known``'s participant."""
    new, old = update.roster_sequence_number, known.roster_sequence_number
    return new is not None and old is not None and new < old


def _evolve_state(call: Call, state: CallState | None) -> Call:
    return attrs.evolve(call, state=state)


_TONES_BY_NAME = {t.value.lower(): t for t in Tone}


def _as_tone(value: Tone | str) -> Tone:
    """A tone from a ``Tone``, Graph's name (``"tone1"``) or a keypad key (``"#"``);
    anything else is refused before sending, as Graph would refuse it."""
    if isinstance(value, Tone):
        return value
    tone = _TONES_BY_NAME.get(value.lower()) if len(value) > 1 else None
    if tone is not None:
        return tone
    try:
        return Tone.from_key(value)
    except ValueError:
        raise InvalidRequestError(f"not a DTMF tone or keypad key: {value!r}") from None
