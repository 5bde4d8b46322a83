"""Call and participant handles: every action on a call, and the call's state as
notifications change it.

Each action is declared once, as a request model (:mod:`graphcomms.models.requests`);
the operation actions are one-liners in :mod:`graphcomms._call_actions` that build one
and hand it to :meth:`CallHandle.send`; the control actions here hand theirs to the
sender's ``control`` (actions Graph answers without an operation). The call's state
is a :class:`~graphcomms._callstate.CallProjection` that the client's call table
feeds; the handle publishes what changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Protocol, TypeVar

from graphcomms._actions import ActionSender, PendingAction
from graphcomms._call_actions import CallActions, PromptLike
from graphcomms._callstate import CallProjection
from graphcomms._events import CallbackRunner, Channel
from graphcomms._routing import call_path, normalize_id, path_segment
from graphcomms._stats import ClientStats
from graphcomms._tones import (
    BUFFERED_TONES,
    REORDER_GRACE,
    CollectSpec,
    ToneBuffer,
    ToneCollection,
    ToneIterator,
    collect,
)
from graphcomms._tracker import OperationTracker
from graphcomms.errors import CallEndedError, InvalidRequestError
from graphcomms.models import (
    Call,
    CallState,
    ChangeType,
    CommsOperation,
    ControlRequest,
    IncomingCallOptions,
    InvitationParticipantInfo,
    MediaConfig,
    Modality,
    OperationRequest,
    Participant,
    ParticipantInfo,
    RejectReason,
    ResultInfo,
    ScreenSharingRole,
    ServiceHostedMediaConfig,
    Tone,
    ToneInfo,
)
from graphcomms.models import operations as ops
from graphcomms.models import requests as rq

__all__ = ["CallHandle", "ParticipantHandle", "PromptLike"]

OpT = TypeVar("OpT", bound=CommsOperation)


class CallTableLike(Protocol):
    """What a handle tells the client's call table (``graphcomms._calls.CallTable``)."""

    def claim(self, handle: CallHandle) -> None:
        """The bot acts on ``handle``'s call: it is tracked from now on."""

    def own(self, handle: CallHandle) -> None:
        """The bot answered ``handle``'s call: it is this client's, kept alive."""

    def disown(self, handle: CallHandle) -> bool:
        """The bot hangs up: no more keepAlives. True if the call was this client's."""

    def apply_read(self, handle: CallHandle, call: Call | None) -> None:
        """``call`` was read back from Graph (``None``: Graph answered 404)."""


class CallHandle(CallActions):
    """One call: its latest state, its events, and every action on it.

    Obtain it from ``client.call(call_id)``, ``await client.create_call(...)`` or
    ``client.incoming_calls()``. It holds no state Graph does not send: ``snapshot``
    is the call as the notifications so far describe it.
    """

    def __init__(
        self,
        call_id: str,
        *,
        actions: ActionSender,
        table: CallTableLike,
        runner: CallbackRunner,
        stats: ClientStats | None = None,
        buffered_tones: int = BUFFERED_TONES,
    ) -> None:
        #: The id as Graph spelled it (it goes back into request paths, encoded).
        self.id = call_id
        #: The id normalised (lower case, no hyphens), as notifications are matched.
        self.key = normalize_id(call_id)
        self._actions = actions
        self._table = table
        self._state = CallProjection(Call(id=call_id))
        self._states: Channel[Call] = Channel(runner)
        self._tones: Channel[ToneInfo] = Channel(runner)
        self._roster: Channel[tuple[Participant, ...]] = Channel(runner)
        self._closed_error: BaseException | None = None
        self._state_waiters: list[tuple[frozenset[CallState], asyncio.Future[Call]]] = []
        # Set when the bot answered asking for delta rosters (only changed participants
        # are sent); a call the bot created says so in its own call options.
        self._delta_roster = False
        # Monotonic times, read by the call table for reconciliation: since when someone
        # waits on this call's state, and when hang_up() was accepted.
        self._waiting_since: float | None = None
        self._hung_up_at: float | None = None
        # One bound method for all of this call's media trackers, not one per tracker.
        self._cancel_hook = self._cancel_media
        self._path: str | None = None
        # The tones since subscribe_to_tone() that no reader took yet (graphcomms._tones);
        # None until the bot subscribes, so a call without DTMF pays nothing for it.
        self._tone_buffer: ToneBuffer | None = None
        self._stats = stats
        self._buffered_tones = buffered_tones
        self.recovered = False
        """True for a call a fleet instance recovered after a restart or adopted."""

    # -- state ---------------------------------------------------------------------

    @property
    def snapshot(self) -> Call:
        return self._state.snapshot

    @property
    def state(self) -> CallState | str | None:
        return self._state.snapshot.state

    @property
    def result_info(self) -> ResultInfo | None:
        """Why the call ended, once it has."""
        return self._state.snapshot.result_info

    @property
    def ended(self) -> bool:
        return self._state.ended

    @property
    def participants(self) -> dict[str, Participant]:
        """The roster as last reported, by participant id (a copy)."""
        return dict(self._state.participants)

    async def wait_for_state(self, *states: CallState | str, timeout: float | None = None) -> Call:
        """Wait until the call is in one of ``states``; returns the snapshot then.

        Returns at once if it already is. Raises ``CallEndedError`` if the call ends
        first (unless ``terminated`` is among ``states``), ``ClientClosedError`` if the
        client closes first, the builtin ``TimeoutError`` after ``timeout`` seconds,
        and ``InvalidRequestError`` at once for a state that Graph does not have.
        """
        wanted = frozenset(_call_state(s) for s in states)
        if not wanted:
            raise InvalidRequestError("wait_for_state needs at least one state")
        snapshot = self._state.snapshot
        if snapshot.state in wanted:
            return snapshot
        if self._closed_error is not None:
            raise self._closed_error
        if self.ended:
            raise CallEndedError(call_id=self.id, result_info=self.result_info)
        self._table.claim(self)
        waiter: asyncio.Future[Call] = asyncio.get_running_loop().create_future()
        entry = (wanted, waiter)
        if not self._state_waiters:
            # A lost state notification is then recovered by reading the call back.
            self._waiting_since = time.monotonic()
        self._state_waiters.append(entry)
        try:
            done, _ = await asyncio.wait((waiter,), timeout=timeout)
            if not done:
                raise TimeoutError(
                    f"call {self.id} not in {sorted(map(str, wanted))} after {timeout} s"
                )
            return waiter.result()
        finally:
            self._state_waiters.remove(entry)
            if not self._state_waiters:
                self._waiting_since = None

    def states(self) -> AsyncIterator[Call]:
        """Each new call snapshot whose state changed, from now on.

        When the call ends it yields the ``terminated`` snapshot, then ends
        (``StopAsyncIteration``); it also ends, with no error, when the client closes.
        """
        self._table.claim(self)
        return self._states.subscribe()

    def on_state(self, fn: Callable[[Call], Any]) -> None:
        """Call ``fn(snapshot)`` (sync or async) for each state change, the
        ``terminated`` one included; never after the call ended or the client closed.
        A callback that raises is logged (``graphcomms.callbacks``) and counted."""
        self._table.claim(self)
        self._states.add_callback(fn)

    def tones(self) -> AsyncIterator[ToneInfo]:
        """DTMF tones the caller presses (after ``subscribe_to_tone``), each once; ends
        when the call ends.

        It first yields the tones the call's buffer holds unread (pressed since the
        subscription, not yet taken by ``collect_tones`` or another iterator), then
        each tone as it arrives. Each tone it yields is taken from the buffer, so the
        next iterator or ``collect_tones`` does not see it again; ``on_tone`` watches
        without taking. Graph may deliver a tone late (out of order): it is still
        delivered, and its ``sequence_id`` says where it belongs. Repeats of a
        ``sequence_id`` are dropped.
        Ends (``StopAsyncIteration``) when the call ends or the client closes.
        """
        self._table.claim(self)
        buffer = self._tone_buffer
        replay = buffer.unread() if buffer is not None else ()
        return ToneIterator(self._tones.subscribe(), replay, self._read_tone)

    def on_tone(self, fn: Callable[[ToneInfo], Any]) -> None:
        """Call ``fn(tone)`` (sync or async) for each new tone; it takes nothing from
        the buffer that ``tones()`` and ``collect_tones`` read. Never called after the
        call ended or the client closed."""
        self._table.claim(self)
        self._tones.add_callback(fn)

    @property
    def tones_dropped(self) -> int:
        """Tones dropped from this call's full buffer before a reader took them
        (``Limits.buffered_tones``); also counted in ``client.stats.tones_dropped``."""
        return 0 if self._tone_buffer is None else self._tone_buffer.dropped

    def _read_tone(self, tone: ToneInfo) -> None:
        if self._tone_buffer is not None:
            self._tone_buffer.read(tone)

    def _buffer_tones(self) -> ToneBuffer:
        """The call's tone buffer, made when the bot first subscribes."""
        buffer = self._tone_buffer
        if buffer is None:
            buffer = self._tone_buffer = ToneBuffer(self._buffered_tones, self._stats)
            if self._closed_error is not None or self.ended:
                buffer.close(self._closed_error)
        return buffer

    def roster(self) -> AsyncIterator[tuple[Participant, ...]]:
        """Each roster update: the participants it names. Ends when the call ends or
        the client closes."""
        self._table.claim(self)
        return self._roster.subscribe()

    def on_roster(self, fn: Callable[[tuple[Participant, ...]], Any]) -> None:
        """Call ``fn(participants)`` (sync or async) for each roster update."""
        self._table.claim(self)
        self._roster.add_callback(fn)

    def participant(self, participant_id: str) -> ParticipantHandle:
        return ParticipantHandle(self, participant_id)

    # -- driven by the call table --------------------------------------------------

    def _receive(self, change: ChangeType | str, update: Call) -> None:
        """A call snapshot from a notification or a read-back."""
        changed = self._state.apply(change, update)
        if changed.tone is not None:
            self._tones.publish(changed.tone)
            if self._tone_buffer is not None:
                self._tone_buffer.push(changed.tone)
        snapshot = changed.state_changed
        if snapshot is not None:
            self._states.publish(snapshot)
            for wanted, waiter in self._state_waiters:
                if snapshot.state in wanted and not waiter.done():
                    waiter.set_result(snapshot)
            if self._state.ended:
                self._close()

    def _receive_roster(self, participants: tuple[Participant, ...], deleted: bool) -> None:
        options = self._state.snapshot.call_options
        delta = self._delta_roster or bool(options and options.is_delta_roster_enabled)
        self._state.apply_roster(participants, delta=delta, deleted=deleted)
        self._roster.publish(participants)

    def _watched_since(self) -> float | None:
        """Since when (monotonic) a lost state notification matters to this call: the
        oldest current state waiter's start, or the accepted hang-up."""
        times = [t for t in (self._waiting_since, self._hung_up_at) if t is not None]
        return min(times) if times else None

    def _close(self, error: BaseException | None = None) -> None:
        """The call ended (``error`` is None) or the client closed (``error``): wake
        state waiters and end every iterator."""
        if error is not None:
            self._closed_error = error
        ended = error or CallEndedError(call_id=self.id, result_info=self.result_info)
        for wanted, waiter in self._state_waiters:
            if not waiter.done():
                if CallState.TERMINATED in wanted and error is None:
                    waiter.set_result(self._state.snapshot)
                else:
                    waiter.set_exception(ended)
        self._states.close()
        self._tones.close()
        self._roster.close()
        if self._tone_buffer is not None:
            self._tone_buffer.close(error)

    # -- sending -------------------------------------------------------------------

    @property
    def path(self) -> str:
        """``communications/calls/{id}``, the id encoded as one segment; built at the
        first request (an id that cannot name a call raises then, not here)."""
        path = self._path
        if path is None:
            path = self._path = call_path(self.id)
        return path

    def send(
        self,
        request: OperationRequest[OpT],
        *,
        timeout: float | None = None,
        participant_id: str | None = None,
    ) -> PendingAction[OpT]:
        """Send any operation action on this call; what every action method does.

        ``await`` the result for a tracker of the request's operation type.
        ``timeout`` overrides the client's ``operation_timeout`` for this operation.
        ``participant_id`` is for actions on one participant (see :meth:`participant`).
        Media operations (playPrompt, record, sendDtmfTones) can be cancelled through
        their tracker.

        Every action method takes ``client_context=``: Graph echoes it on the operation
        and its notifications. graphcomms generates a unique one when it is ``None``
        and registers the tracker under it before the request is sent. At most 256
        characters (Graph's limit): a longer one raises ``InvalidRequestError`` here,
        before anything is sent.
        """
        self._table.claim(self)
        return self._actions.send(
            self,
            request,
            participant_id=participant_id,
            timeout=timeout,
            cancel_hook=self._cancel_hook if request.media else None,
        )

    async def _control(self, request: ControlRequest, participant_id: str | None = None) -> None:
        self._table.claim(self)
        await self._actions.control(self.id, request, participant_id=participant_id)

    async def _cancel_media(self) -> object:
        return await self.cancel_media_processing()

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
        accepted (202); ``wait_for_state("established")`` follows the outcome. From then
        on the client keeps the call alive (``KeepAliveSettings``).

        ``media_config`` defaults to service-hosted media, which IVR actions need;
        ``callback_uri`` to the client's.
        """
        self._delta_roster = bool(call_options and call_options.is_delta_roster_enabled)
        await self._control(
            rq.AnswerRequest(
                callback_uri=self._actions.callback_for(callback_uri),
                media_config=media_config or ServiceHostedMediaConfig(),
                accepted_modalities=tuple(accepted_modalities),
                participant_capacity=participant_capacity,
                call_options=call_options,
            )
        )
        self._table.own(self)

    async def reject(
        self, *, reason: RejectReason | str | None = None, callback_uri: str | None = None
    ) -> None:
        await self._control(rq.RejectRequest(reason=reason, callback_uri=callback_uri))

    async def redirect(
        self,
        targets: Iterable[InvitationParticipantInfo],
        *,
        timeout: int | None = None,
        callback_uri: str | None = None,
        mask_callee: bool | None = None,
        mask_caller: bool | None = None,
    ) -> None:
        await self._control(
            rq.RedirectRequest(
                targets=tuple(targets),
                timeout=timeout,
                callback_uri=callback_uri,
                mask_callee=mask_callee,
                mask_caller=mask_caller,
            )
        )

    async def transfer(
        self,
        transfer_target: InvitationParticipantInfo,
        *,
        transferee: ParticipantInfo | None = None,
    ) -> None:
        """Ask Graph to transfer. Success ends this call (``terminated``, 0/7015); failure
        returns it to ``established`` with a 500/7000 resultInfo."""
        await self._control(
            rq.TransferRequest(transfer_target=transfer_target, transferee=transferee)
        )

    async def change_screen_sharing_role(self, role: ScreenSharingRole | str) -> None:
        await self._control(rq.ChangeScreenSharingRoleRequest(role=role))

    async def keep_alive(self) -> None:
        """Tell Graph the bot is alive (at least every 45 min). Raises ``NotFoundError``
        when the call has already ended."""
        await self._actions.request("POST", call_path(self.id, "keepAlive"))

    async def hang_up(self) -> None:
        """``DELETE`` the call; ``terminating`` then ``terminated`` notifications follow."""
        self._table.claim(self)
        # No keepAlive from here: its 404 would end the call before the `terminated`
        # notification that says why.
        owned = self._table.disown(self)
        try:
            await self._actions.request("DELETE", call_path(self.id))
        except BaseException:
            if owned:  # the call goes on: keep it alive again
                self._table.own(self)
            raise
        # If the `terminated` notification is lost, the call is read back (a 404 ends
        # it) rather than a dead call's handle being kept forever.
        self._hung_up_at = time.monotonic()

    async def refresh(self) -> Call:
        """``GET`` the call from Graph and lay it over the known snapshot."""
        call = await self._actions.get_call(self.id)
        # As a notification would go: an ended call also fails its pending operations.
        self._table.apply_read(self, call)
        return self._state.snapshot

    async def list_participants(self) -> list[Participant]:
        return await self._actions.list_participants(self.id)

    async def get_operation(self, operation_id: str) -> CommsOperation:
        """``GET .../operations/{id}``: Graph documents it for addLargeGalleryView only."""
        return await self._actions.get_operation(self.id, operation_id)

    # -- DTMF --------------------------------------------------------------------

    def subscribe_to_tone(
        self, *, client_context: str | None = None, timeout: float | None = None
    ) -> PendingAction[ops.SubscribeToToneOperation]:
        """Start receiving DTMF tones: see :meth:`collect_tones`, :meth:`tones` and
        :meth:`on_tone`.

        Awaiting it returns the tracker once the subscribeToTone operation has ended
        (Graph usually answers it ``completed`` at once), not merely once Graph accepted
        the request: if ``tracker.succeeded()``, the subscription is effective, and
        every key pressed from then on is kept in the call's tone buffer until a reader
        takes it. ``await`` the tracker to raise ``OperationFailedError`` when it
        failed. Keys pressed before Graph made the subscription effective are not
        reported by Graph at all. Tones are buffered from the moment this is sent, in
        case one overtakes the answer. ``timeout`` bounds the wait for an answer that
        is not yet terminal (``OperationTimeoutError``); ``CallEndedError`` when the
        call ends first.
        """
        request = rq.SubscribeToToneRequest(client_context=client_context)
        pending = self.send(request, timeout=timeout)

        async def subscribe() -> OperationTracker[ops.SubscribeToToneOperation]:
            self._buffer_tones()
            tracker = await pending
            await tracker.wait()
            return tracker

        return PendingAction(request, subscribe)

    async def collect_tones(
        self,
        *,
        max_tones: int | None = None,
        stop_tones: Iterable[Tone | str] | str = ("#",),
        first_tone_timeout: float | None = None,
        inter_tone_timeout: float | None = None,
        prompt: PromptLike | Iterable[PromptLike] | None = None,
        interrupt: bool = True,
        reorder_grace: float = REORDER_GRACE,
    ) -> ToneCollection:
        """Collect the keys the caller types, the way an IVR reads a menu choice or a
        number; returns the keys and why collection stopped
        (:class:`~graphcomms.CollectReason`).

        It reads the call's tone buffer: keys typed since ``subscribe_to_tone()``
        that nothing took yet count first (type-ahead). Without a subscription made
        through this handle it subscribes first. It stops at ``max_tones`` keys
        (without one, at ``Limits.buffered_tones`` keys: nothing the caller does grows
        it beyond that), at
        any of ``stop_tones`` (keys such as ``"#"``, Graph's names, or ``Tone``
        members; ``stop_tones=()`` for none; the stop tone is not among the keys), after
        ``first_tone_timeout`` seconds without a first key, after
        ``inter_tone_timeout`` seconds without a further key, or when the call ends
        (with the keys so far). Timeouts count from the end of the prompt, if any.

        ``prompt`` is played first (one prompt, a WAV URL, or several); with
        ``interrupt`` the first key stops it (barge-in, by cancelMediaProcessing,
        which stops all of the call's media), and a key already waiting means it is
        not played at all. A prompt still playing when the collection ends is
        stopped the same way. Its tracker is on the result and is never raised here.

        Keys after the ones used (typed after the stop tone) stay in the buffer for the
        next reader. Tones are put in ``sequenceId`` order; when the keys that would
        end the collection skip one, it waits up to ``reorder_grace`` seconds for it.

        Raises ``InvalidRequestError`` (a ``ValueError``) for bad arguments or a second
        collection on the same call, ``ClientClosedError`` when the client closes
        first. Cancelling it stops the prompt and returns the keys it took to the buffer.
        """
        spec = CollectSpec.build(
            max_tones=max_tones,
            stop_tones=stop_tones,
            first_tone_timeout=first_tone_timeout,
            inter_tone_timeout=inter_tone_timeout,
            interrupt=interrupt,
            reorder_grace=reorder_grace,
        )
        play = None
        if prompt is not None:
            # Refused here, before anything is sent, not halfway through.
            play = functools.partial(self.send, rq.PlayPromptRequest(prompts=prompt))
        if self._closed_error is not None:
            raise self._closed_error
        self._table.claim(self)
        if self._tone_buffer is None and not self.ended:
            with contextlib.suppress(CallEndedError):  # then it ends as the call did
                await (await self.subscribe_to_tone())
        return await collect(
            self._buffer_tones(),
            spec,
            call_id=self.id,
            ended=lambda: self.ended,
            play=play,
            cancel_media=self._cancel_media,
        )

    def __repr__(self) -> str:
        return f"<CallHandle {self.id} state={self.state!s}>"


class ParticipantHandle:
    """Actions on one participant of a call."""

    def __init__(self, call: CallHandle, participant_id: str) -> None:
        path_segment(participant_id, "participant id")  # refused here, not on send
        self.call = call
        self.id = participant_id

    def send(
        self, request: OperationRequest[OpT], *, timeout: float | None = None
    ) -> PendingAction[OpT]:
        """Send any operation action on this participant."""
        return self.call.send(request, timeout=timeout, participant_id=self.id)

    def mute(
        self, *, client_context: str | None = None
    ) -> PendingAction[ops.MuteParticipantOperation]:
        return self.send(rq.MuteParticipantRequest(client_context=client_context))

    def start_hold_music(
        self,
        *,
        custom_prompt: PromptLike | None = None,
        client_context: str | None = None,
        timeout: float | None = None,
    ) -> PendingAction[ops.StartHoldMusicOperation]:
        """Put the participant on hold (one participant at a time per call)."""
        request = rq.StartHoldMusicRequest(
            custom_prompt=custom_prompt, client_context=client_context
        )
        return self.send(request, timeout=timeout)

    def stop_hold_music(
        self, *, client_context: str | None = None, timeout: float | None = None
    ) -> PendingAction[ops.StopHoldMusicOperation]:
        return self.send(rq.StopHoldMusicRequest(client_context=client_context), timeout=timeout)

    def admit_from_lobby(
        self, *, client_context: str | None = None
    ) -> PendingAction[ops.AdmitFromLobbyOperation]:
        """beta"""
        return self.send(rq.AdmitFromLobbyRequest(client_context=client_context))

    def remove_from_lobby(
        self, *, client_context: str | None = None
    ) -> PendingAction[ops.RemoveFromLobbyOperation]:
        """beta"""
        return self.send(rq.RemoveFromLobbyRequest(client_context=client_context))

    async def remove(self) -> None:
        """Remove the participant from the call, or cancel a pending invite (204)."""
        path = call_path(self.call.id, "participants", path_segment(self.id, "participant id"))
        await self.call._actions.request("DELETE", path)

    def __repr__(self) -> str:
        return f"<ParticipantHandle {self.id} of call {self.call.id}>"


def _call_state(value: object) -> CallState:
    """A ``CallState`` to wait for, from a member or Graph's name in any casing;
    refuses the rest, and ``unknownFutureValue`` (Graph's evolvable-enum sentinel,
    which no call ever reaches)."""
    found = value if isinstance(value, CallState) else None
    if isinstance(value, str):
        found = CallState.lookup(value)
    if found is None or found is CallState.UNKNOWN_FUTURE_VALUE:
        states = ", ".join(s.value for s in CallState if s is not CallState.UNKNOWN_FUTURE_VALUE)
        raise InvalidRequestError(
            f"{value!r} is not a call state to wait for; Graph's are: {states}"
        )
    return found
