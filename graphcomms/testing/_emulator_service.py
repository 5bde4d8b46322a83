"""The emulated calling service itself: calls, operations, media, call control.

The Graph behaviour lives here, apart from HTTP: each endpoint is a method that takes
the decoded body and returns a ``Reply`` or raises ``GraphError``; ``GraphEmulator``
wraps it in aiohttp.web. Emulation choices the docs leave open are marked "Emulator
choice" in comments.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from random import Random
from typing import Any, Literal, TypeAlias, TypeVar

from graphcomms.testing._emulator_delivery import Notifier
from graphcomms.testing._emulator_faults import FaultPlan
from graphcomms.testing._emulator_state import Delivery, EmulatedCall, EmulatedOperation
from graphcomms.testing._emulator_wire import (
    CANCELLED,
    ENDED_BY_BOT,
    ENDED_BY_CALLER,
    INTERRUPTED,
    JSON,
    KEEP_ALIVE_TIMEOUT,
    KEY_TONES,
    MAX_CLIENT_CONTEXT,
    MAX_RECORD_DURATION,
    ODATA,
    RECORDING_STATUSES,
    REJECT_REASONS,
    SCREEN_SHARING_ROLES,
    STOP_TONE,
    SUCCESS,
    TRANSFERRED,
    application_identity,
    bad_request,
    bearer_token,
    make_wav,
    new_guid,
    normalise_id,
    not_found,
    notification,
    operation_path,
    participant,
    participant_info,
    participants_path,
    phone_identity,
    result_info,
    same_secret,
    tone_name,
    unauthorized,
    user_identity,
)

_log = logging.getLogger("graphcomms.testing.emulator")

ReadableOperations: TypeAlias = Literal["documented", "all"]
READABLE_OPERATIONS: tuple[ReadableOperations, ...] = ("documented", "all")
# The one type whose GET Graph documents ("Get addLargeGalleryViewOperation", §7).
_DOCUMENTED_READS = frozenset({"addLargeGalleryViewOperation"})

_MAX_PROMPTS = 20
_MAX_INVITEES = 5
_MAX_REDIRECT_TARGETS = 25


@dataclass(frozen=True)
class Ctx:
    """What a handler needs from the HTTP request: its version's base URL and its path."""

    version_url: str
    path: str

    @property
    def beta(self) -> bool:
        return self.version_url.endswith("/beta/")


@dataclass(frozen=True)
class Reply:
    """A success response: status, JSON body (None: no body), ``Location`` header."""

    status: int
    body: JSON | None = None
    location: str | None = None


_Action = Callable[[Ctx, EmulatedCall, JSON], Awaitable[Reply]]
_ParticipantAction = Callable[[Ctx, EmulatedCall, JSON, JSON], Awaitable[Reply]]
_H = TypeVar("_H")
# (handler, beta only, call states it needs or None for any live call)
_ActionSpec = tuple[_H, bool, "frozenset[str] | None"]


class CallingService:
    """Every call the emulator holds, and what Graph does to them.

    ``rng`` draws call ids and request-level faults; each call gets a child stream
    (``EmulatedCall._rng``) for its own ids and notification faults, so activity on one
    call never shifts what the seed gives another.
    """

    def __init__(
        self,
        *,
        rng: Random,
        plan: FaultPlan,
        app_id: str,
        tenant_id: str,
        prompt_seconds: float,
        readable_operations: ReadableOperations = "documented",
        keep_alive_window: float | None = None,
    ) -> None:
        self.app_id = app_id
        self.tenant_id = tenant_id
        self.prompt_seconds = prompt_seconds
        # Seconds a call lives without a keepAlive (None: forever); read at call creation.
        self.keep_alive_window = keep_alive_window
        self.readable_operations = readable_operations
        self.calls: dict[str, EmulatedCall] = {}
        self.transfer_failures: list[tuple[int, int, str]] = []
        # Set by GraphEmulator.start(): where notifications go out, and our own address.
        self.notifier: Notifier | None = None
        self.base_url = ""
        self._rng = rng
        self._plan = plan
        self._index: dict[str, EmulatedCall] = {}
        self._recordings: dict[str, tuple[str, bytes]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._call_actions = self._build_call_actions()
        self._participants_actions = self._build_participants_actions()
        self._participant_actions = self._build_participant_actions()

    def pending(self) -> list[asyncio.Task[None]]:
        """Media steps, timers and transfers still running."""
        return [task for task in self._tasks if not task.done()]

    async def aclose(self) -> None:
        for call in self.calls.values():
            _stop_keep_alive_timer(call)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the caller's side ----------------------------------------------------------------

    def simulate_incoming_call(self, *, caller: str, url: str) -> str:
        """Ring the bot at ``url``: a ``created`` notification with ``state: incoming``."""
        identity = (
            phone_identity(caller)
            if caller.startswith("+") or caller.isdigit()
            else user_identity(caller, self.tenant_id, "Emulated caller")
        )
        call = self._new_call(
            direction="incoming",
            callback_uri=url,
            source=participant_info(identity),
            targets=[
                {
                    "@odata.type": f"{ODATA}invitationParticipantInfo",
                    "identity": application_identity(self.app_id),
                }
            ],
            tenant_id=self.tenant_id,
            modalities=["audio"],
            media_config=None,
        )
        call.state = "incoming"
        self._add_participant(call, new_guid(call._rng), identity)
        data = self._call_data(
            call,
            state="incoming",
            direction="incoming",
            source=call.source,
            targets=call.targets,
            requestedModalities=call.requested_modalities,
            myParticipantId=call.my_participant_id,
            callChainId=call.call_chain_id,
            tenantId=call.tenant_id,
        )
        self._post(call, notification("created", call.path(), data))
        return call.id

    def press_keys(self, call_id: str, keys: str, *, during_prompt: bool = False) -> None:
        """The caller presses DTMF ``keys``: tones if subscribed, and stop tones.

        ``during_prompt``: while a prompt plays; now if one is playing, else as soon as
        the next one starts (keys still waiting when the call ends are never pressed).
        """
        call = self._find_call(call_id)
        if call.ended:
            raise ValueError(f"call {call_id} has ended")
        tones = []
        for key in keys:
            tone = KEY_TONES.get(key.upper())
            if tone is None:
                raise ValueError(f"not a DTMF key: {key!r}")
            tones.append(tone)
        if during_prompt and call.playing is None:
            call._keys_for_prompt += keys
            return
        self._press(call, tones)

    def _press(self, call: EmulatedCall, tones: list[str]) -> None:
        for tone in tones:
            if call.tone_subscribed:
                call.tone_sequence_id += 1
                data = {
                    "@odata.type": f"{ODATA}call",
                    "state": call.state,
                    "toneInfo": {
                        "@odata.type": f"{ODATA}toneInfo",
                        "sequenceId": call.tone_sequence_id,
                        "tone": tone,
                    },
                }
                self._post(call, notification("updated", call.path(), data))
            current = call._media_current
            if (
                current is not None
                and current.odata_type == "recordOperation"
                and tone in current._stop_tones
            ):
                self._finish(
                    call,
                    current,
                    "completed",
                    STOP_TONE,
                    completionReason="stopToneDetected",
                    **self._new_recording(call),
                )

    def _prompt_started(self, call: EmulatedCall) -> None:
        """A prompt starts playing: the keys waiting for one are pressed now."""
        keys, call._keys_for_prompt = call._keys_for_prompt, ""
        if keys and call.playing is not None:
            self._press(call, [KEY_TONES[key.upper()] for key in keys])

    def caller_hangs_up(self, call_id: str) -> None:
        """The other side ends the call (200/4097), unless it has ended already."""
        call = self._find_call(call_id)
        if not call.ended:
            self._end_call(call, ENDED_BY_CALLER, terminating=False)

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(coro, name=f"graphcomms-emulator-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("emulator task %s failed", task.get_name(), exc_info=task.exception())

    # -- calls ---------------------------------------------------------------------------

    def _new_call(
        self,
        *,
        direction: str,
        callback_uri: str | None,
        source: JSON,
        targets: list[JSON],
        tenant_id: str,
        modalities: list[str],
        media_config: JSON | None,
    ) -> EmulatedCall:
        if self.notifier is None or self.notifier.closed:
            raise RuntimeError("the GraphEmulator is not running")
        call_id = new_guid(self._rng)
        rng = Random(self._rng.getrandbits(64))  # noqa: S311
        call = EmulatedCall(
            id=call_id,
            direction=direction,
            state="establishing",
            callback_uri=callback_uri,
            call_chain_id=new_guid(rng),
            my_participant_id=new_guid(rng),
            tenant_id=tenant_id,
            source=source,
            targets=targets,
            requested_modalities=modalities,
            media_config=media_config,
            _rng=rng,
        )
        self._add_participant(call, call.my_participant_id, application_identity(self.app_id))
        self.calls[call_id] = call
        self._index[normalise_id(call_id)] = call
        if self.keep_alive_window is not None:
            # Emulator choice: the window runs from the call's creation for every call,
            # an incoming one not yet answered included, and only keepAlive resets it.
            loop = asyncio.get_running_loop()
            call._keep_alive_deadline = loop.time() + self.keep_alive_window
            call._keep_alive_timer = loop.call_at(
                call._keep_alive_deadline, self._check_keep_alive, call
            )
        return call

    def _check_keep_alive(self, call: EmulatedCall) -> None:
        """The keepAlive timer: end an inactive call with 408/8537 as Graph does (§9.2),
        or look again at the deadline the last keepAlive moved."""
        call._keep_alive_timer = None
        if call.ended:
            return
        loop = asyncio.get_running_loop()
        if loop.time() < call._keep_alive_deadline:
            call._keep_alive_timer = loop.call_at(
                call._keep_alive_deadline, self._check_keep_alive, call
            )
            return
        _log.info("call %s received no keepAlive in time: ending it (408/8537)", call.id)
        self._end_call(call, KEEP_ALIVE_TIMEOUT, terminating=False)

    def _find_call(self, call_id: str) -> EmulatedCall:
        call = self._index.get(normalise_id(call_id))
        if call is None:
            raise KeyError(call_id)
        return call

    def _live_call(self, call_id: str) -> EmulatedCall:
        call = self._index.get(normalise_id(call_id))
        if call is None or call.ended:
            raise not_found(f"Call {call_id} was not found or has ended.")
        return call

    def _add_participant(
        self, call: EmulatedCall, participant_id: str, identity: JSON, *, in_lobby: bool = False
    ) -> JSON:
        entry = participant(participant_id, identity, in_lobby=in_lobby)
        entry["rosterSequenceNumber"] = call.next_roster_sequence()
        call.participants[participant_id] = entry
        return entry

    def _touch(self, call: EmulatedCall, entry: JSON, **changes: Any) -> None:
        entry.update(changes)
        entry["rosterSequenceNumber"] = call.next_roster_sequence()

    def _call_data(self, call: EmulatedCall, **fields: Any) -> JSON:
        return {
            "@odata.type": f"{ODATA}call",
            "@odata.id": call.path(),
            "@odata.etag": call.next_etag(),
            **fields,
        }

    def _post(
        self,
        call: EmulatedCall,
        item: JSON,
        *,
        url: str | None = None,
        operation_id: str | None = None,
    ) -> asyncio.Future[Delivery]:
        assert self.notifier is not None
        return self.notifier.post(call, item, url=url, operation_id=operation_id)

    def _set_state(self, call: EmulatedCall, state: str, **extra: Any) -> None:
        call.state = state
        data = self._call_data(call, state=state, direction=call.direction, id=call.id, **extra)
        self._post(call, notification("updated", call.path(), data, callback_uri=call.callback_uri))

    def _notify_roster(self, call: EmulatedCall) -> None:
        # Emulator choice: the full roster each time, as without isDeltaRosterEnabled.
        roster = [dict(entry) for entry in call.participants.values()]
        self._post(call, notification("updated", participants_path(call.id), roster))

    def _end_call(
        self,
        call: EmulatedCall,
        reason: tuple[int, int, str] | None,
        *,
        terminating: bool,
        url: str | None = None,
        minimal: bool = False,
        **extra: Any,
    ) -> None:
        """End ``call``: queued media is dropped without notifications, then the call's
        ``terminating`` (optional) and ``deleted`` notifications are queued."""
        call.result_info = result_info(reason) if reason is not None else None
        _stop_keep_alive_timer(call)
        call._media_queue.clear()
        call._media_current = None
        if call._media_task is not None:
            call._media_task.cancel()
        if terminating:
            call.state = "terminating"
            leaving = {"@odata.type": f"{ODATA}call", "state": "terminating"}
            self._post(call, notification("updated", call.path(), leaving), url=url)
        call.state = "terminated"
        if minimal:
            # After a reject Graph can send just the type and id (§5.3).
            data: JSON = {"@odata.type": f"{ODATA}call", "@odata.id": call.path()}
        else:
            data = {"@odata.type": f"{ODATA}call", "state": "terminated", **extra}
            if call.result_info is not None:
                data["resultInfo"] = call.result_info
        self._post(call, notification("deleted", call.path(), data), url=url)

    # -- the Graph endpoints ----------------------------------------------------------------

    async def create_call(self, ctx: Ctx, body: JSON) -> Reply:
        """``POST /communications/calls``: 201 with the call, then establishing/established."""
        callback_uri = body.get("callbackUri")
        if not isinstance(callback_uri, str) or not callback_uri:
            raise bad_request("callbackUri is required.")
        targets = body.get("targets")
        meeting_info = body.get("meetingInfo")
        if targets is None and meeting_info is None:
            raise bad_request("The call needs targets or meetingInfo.")
        if targets is not None and not _is_object_list(targets):
            raise bad_request("targets must be a collection of invitationParticipantInfo.")
        modalities = body.get("requestedModalities", ["audio"])
        if not isinstance(modalities, list) or not all(isinstance(m, str) for m in modalities):
            raise bad_request("requestedModalities must be a collection of modality.")
        media_config = _optional_object(body, "mediaConfig")
        source = _optional_object(body, "source") or participant_info(
            application_identity(self.app_id)
        )
        tenant_id = body.get("tenantId")
        call = self._new_call(
            direction="outgoing",
            callback_uri=callback_uri,
            source=source,
            targets=list(targets or []),
            tenant_id=tenant_id if isinstance(tenant_id, str) else self.tenant_id,
            modalities=list(modalities),
            media_config=media_config,
        )
        for target in call.targets:
            identity = target.get("identity")
            if isinstance(identity, dict):
                self._add_participant(call, new_guid(call._rng), identity)
        response = call.resource()
        response["@odata.context"] = f"{ctx.version_url}$metadata#communications/calls/$entity"
        # Emulator choice: the call is established at once; the notifications tell it.
        self._set_state(call, "establishing")
        self._set_state(call, "established")
        return Reply(201, response, f"{ctx.version_url}communications/calls/{call.id}")

    def get_call(self, ctx: Ctx, call_id: str) -> Reply:
        body = self._live_call(call_id).resource()
        body["@odata.context"] = f"{ctx.version_url}$metadata#communications/calls/$entity"
        return Reply(200, body)

    def delete_call(self, call_id: str) -> Reply:
        """Hang up: 204, then ``terminating`` and ``deleted``/``terminated`` (§9.2)."""
        self._end_call(self._live_call(call_id), ENDED_BY_BOT, terminating=True)
        return Reply(204)

    def list_participants(self, ctx: Ctx, call_id: str) -> Reply:
        call = self._live_call(call_id)
        return Reply(
            200,
            {
                "@odata.context": f"{ctx.version_url}$metadata#communications/"
                f"calls('{call.id}')/participants",
                "value": list(call.participants.values()),
            },
        )

    def get_participant(self, call_id: str, participant_id: str) -> Reply:
        return Reply(200, self._participant(self._live_call(call_id), participant_id))

    def remove_participant(self, call_id: str, participant_id: str) -> Reply:
        call = self._live_call(call_id)
        entry = self._participant(call, participant_id)
        del call.participants[entry["id"]]
        self._notify_roster(call)
        return Reply(204)

    def get_operation(self, call_id: str, operation_id: str) -> Reply:
        """``GET .../operations/{id}``: the op's current snapshot, while the call lives.

        ``readable_operations == "documented"`` promises no more than Graph documents
        (§7): the GET of an addLargeGalleryView operation, and nothing about whether an
        operation outlives its ``deleted`` notification. So only that type answers, and
        only until its result has reached the bot (Emulator choice: a result that was
        dropped or refused leaves it readable). Anything else gets the 404 an unknown
        id gets. ``"all"`` answers for every operation, terminal ones included.
        """
        call = self._live_call(call_id)
        wanted = normalise_id(operation_id)
        for op in call.operations.values():
            if normalise_id(op.id) == wanted and self._readable(op):
                return Reply(200, op.snapshot())
        raise not_found(f"Operation {operation_id} was not found.")

    def _readable(self, op: EmulatedOperation) -> bool:
        if self.readable_operations == "all":
            return True
        return op.odata_type in _DOCUMENTED_READS and not op.result_delivered

    async def call_action(self, ctx: Ctx, call_id: str, segment: str, body: JSON) -> Reply:
        """``POST /communications/calls/{id}/{action}``."""
        call = self._live_call(call_id)
        action, states = _lookup(ctx, segment, self._call_actions)
        _require_state(call, states)
        _client_context(body)  # before the action changes anything
        return await action(ctx, call, body)

    async def participants_action(self, ctx: Ctx, call_id: str, segment: str, body: JSON) -> Reply:
        """``POST /communications/calls/{id}/participants/{action}`` (invite, muteAll, ...)."""
        call = self._live_call(call_id)
        action, states = _lookup(ctx, segment, self._participants_actions)
        _require_state(call, states)
        _client_context(body)
        return await action(ctx, call, body)

    async def participant_action(
        self, ctx: Ctx, call_id: str, participant_id: str, segment: str, body: JSON
    ) -> Reply:
        """``POST /communications/calls/{id}/participants/{participantId}/{action}``."""
        call = self._live_call(call_id)
        action, states = _lookup(ctx, segment, self._participant_actions)
        entry = self._participant(call, participant_id)
        _require_state(call, states)
        _client_context(body)
        return await action(ctx, call, body, entry)

    def recording(self, recording_id: str, authorization: str) -> bytes:
        """A recording's WAV bytes, for ``Authorization: Bearer <recordingAccessToken>``."""
        stored = self._recordings.get(recording_id)
        if stored is None:
            raise not_found("The recording was not found.")
        token, audio = stored
        given = bearer_token(authorization)
        if given is None or not same_secret(given, token):
            raise unauthorized(
                "The recording access token is not valid.", token_given=given is not None
            )
        return audio

    def _participant(self, call: EmulatedCall, participant_id: str) -> JSON:
        for pid, entry in call.participants.items():
            if normalise_id(pid) == normalise_id(participant_id):
                return entry
        raise not_found(f"Participant {participant_id} was not found.")

    def _build_call_actions(self) -> Mapping[str, _ActionSpec[_Action]]:
        incoming = frozenset({"incoming"})
        live = frozenset({"established"})
        return {
            "answer": (self._answer, False, incoming),
            "reject": (self._reject, False, incoming),
            "redirect": (self._redirect, False, incoming),
            "transfer": (self._transfer, False, live),
            "changescreensharingrole": (self._change_screen_sharing_role, False, live),
            "keepalive": (self._keep_alive, False, None),
            "playprompt": (self._play_prompt, False, live),
            "recordresponse": (self._record_response, False, live),
            "record": (self._record_legacy, True, live),
            "cancelmediaprocessing": (self._cancel_media_processing, False, live),
            "subscribetotone": (self._subscribe_to_tone, False, live),
            "senddtmftones": (self._send_dtmf_tones, False, live),
            "mute": (self._mute_self, False, live),
            "unmute": (self._unmute_self, False, live),
            "updaterecordingstatus": (self._update_recording_status, False, live),
            "addlargegalleryview": (self._add_large_gallery_view, False, live),
            "starttranscription": (self._start_transcription, True, live),
            "stoptranscription": (self._stop_transcription, True, live),
            "startrecording": (self._start_recording, True, live),
            "stoprecording": (self._stop_recording, True, live),
        }

    def _build_participants_actions(self) -> Mapping[str, _ActionSpec[_Action]]:
        live = frozenset({"established"})
        return {
            "invite": (self._invite, False, live),
            "muteall": (self._mute_all, True, live),
            "admitallfromlobby": (self._admit_all_from_lobby, True, live),
        }

    def _build_participant_actions(self) -> Mapping[str, _ActionSpec[_ParticipantAction]]:
        live = frozenset({"established"})
        return {
            "mute": (self._mute_participant, False, live),
            "startholdmusic": (self._start_hold_music, False, live),
            "stopholdmusic": (self._stop_hold_music, False, live),
            "admitfromlobby": (self._admit_from_lobby, True, live),
            "removefromlobby": (self._remove_from_lobby, True, live),
        }

    # -- operations ------------------------------------------------------------------------

    def _new_operation(
        self,
        call: EmulatedCall,
        odata_type: str,
        body: JSON,
        *,
        completed: bool = False,
        include_id: bool = True,
        duration: float | None = 0.0,
        **fields: Any,
    ) -> EmulatedOperation:
        op = EmulatedOperation(
            id=new_guid(call._rng),
            call_id=call.id,
            odata_type=odata_type,
            client_context=_client_context(body),
            include_id=include_id,
            fields=dict(fields),
            _duration=duration,
        )
        if completed:
            op.status = "completed"
            op.result_info = result_info(SUCCESS)
        call.operations[op.id] = op
        return op

    async def _respond(
        self,
        ctx: Ctx,
        call: EmulatedCall,
        op: EmulatedOperation,
        http_status: int,
        *,
        complete: Callable[[], asyncio.Future[Delivery] | None] | None = None,
        overrides: JSON | None = None,
    ) -> Reply:
        """The action's response: the op's snapshot now, with ``Location``.

        ``complete`` finishes the op as it would end by itself; an ``early`` fault calls
        it before answering and waits until its notification was delivered.
        """
        body = {**op.snapshot(), **(overrides or {})}
        location = f"{ctx.version_url}communications/calls/{call.id}/operations/{op.id}"
        if complete is not None and not op.terminal and self._plan.early(ctx.path, self._rng):
            delivered = complete()
            if delivered is not None:
                await delivered
        return Reply(http_status, body, location)

    def _finish(
        self,
        call: EmulatedCall,
        op: EmulatedOperation,
        status: str,
        result: tuple[int, int, str] | None,
        **fields: Any,
    ) -> asyncio.Future[Delivery] | None:
        """Make ``op`` terminal and queue its ``deleted`` notification (none if the call
        has ended). Returns the delivery's future, or None."""
        if op.terminal:
            return None
        op.status = status
        op.result_info = result_info(result) if result is not None else None
        op.fields.update(fields)
        if op in call._media_queue:
            call._media_queue.remove(op)
        op._interrupt.set()
        if call._media_current is op:
            call._media_current = None
            self._kick_media(call)
        if call.ended:
            return None
        item = notification(
            "deleted",
            operation_path(call.id, op.id),
            op.notification_data(call.next_etag()),
        )
        return self._post(call, item, operation_id=op.id)

    def _complete_later(
        self,
        call: EmulatedCall,
        op: EmulatedOperation,
        complete: Callable[[], asyncio.Future[Delivery] | None],
    ) -> None:
        async def run() -> None:
            await asyncio.sleep(self.prompt_seconds)
            if not op.terminal and not call.ended:
                complete()

        self._spawn(run(), f"timer-{op.id}")

    def _finish_success(
        self, call: EmulatedCall, op: EmulatedOperation, *, with_result: bool = True, **fields: Any
    ) -> Callable[[], asyncio.Future[Delivery] | None]:
        return lambda: self._finish(
            call, op, "completed", SUCCESS if with_result else None, **fields
        )

    # -- media queue (playPrompt, recordResponse) --------------------------------------------

    def _queue_media(self, call: EmulatedCall, op: EmulatedOperation, *, barge_in: bool) -> None:
        if barge_in:
            # Emulator choice: barge-in jumps the queue and interrupts what is playing;
            # the interrupted op fails the way a cancelled one does.
            call._media_queue.appendleft(op)
            current = call._media_current
            if current is not None:
                self._cancel_media_op(call, current, INTERRUPTED)
        else:
            call._media_queue.append(op)
        self._kick_media(call)

    def _kick_media(self, call: EmulatedCall) -> None:
        if (
            call._media_task is None
            and call._media_current is None
            and call._media_queue
            and not call.ended
        ):
            call._media_task = self._spawn(self._run_media(call), f"media-{call.id}")

    async def _run_media(self, call: EmulatedCall) -> None:
        """Play the call's media queue in order, one op at a time."""
        try:
            while call._media_queue and not call.ended:
                op = call._media_queue.popleft()
                call._media_current = op
                if call._keys_for_prompt:
                    self._prompt_started(call)
                if op._duration is None:
                    # Loops forever: it holds the queue until cancelled or the call ends.
                    return
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(op._interrupt.wait(), op._duration)
                if call._media_current is op:
                    call._media_current = None
                if not op.terminal and not call.ended:
                    self._complete_media(call, op)
        finally:
            call._media_task = None

    def _complete_media(
        self, call: EmulatedCall, op: EmulatedOperation
    ) -> asyncio.Future[Delivery] | None:
        if op.odata_type == "recordOperation":
            return self._finish(
                call,
                op,
                "completed",
                MAX_RECORD_DURATION,
                completionReason="maxRecordDurationReached",
                **self._new_recording(call),
            )
        return self._finish(
            call, op, "completed", SUCCESS, completionReason="completedSuccessfully"
        )

    def _cancel_media_op(
        self, call: EmulatedCall, op: EmulatedOperation, reason: tuple[int, int, str]
    ) -> None:
        if op.odata_type == "recordOperation":
            self._finish(
                call,
                op,
                "failed",
                reason,
                completionReason="operationCanceled",
                recordingLocation="",
                recordingAccessToken="",
            )
        else:
            self._finish(call, op, "failed", reason, completionReason="mediaOperationCanceled")

    def _new_recording(self, call: EmulatedCall) -> JSON:
        recording_id = new_guid(call._rng)
        token = f"{call._rng.getrandbits(256):064x}"
        self._recordings[recording_id] = (token, make_wav())
        return {
            "recordingLocation": f"{self.base_url}recordings/{recording_id}",
            "recordingAccessToken": token,
        }

    def _media_op_response(
        self, ctx: Ctx, call: EmulatedCall, op: EmulatedOperation, status: int
    ) -> Awaitable[Reply]:
        complete = None if op._duration is None else (lambda: self._complete_media(call, op))
        return self._respond(ctx, call, op, status, complete=complete)

    async def _play_prompt(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        _require_service_hosted(call, "playPrompt")
        prompts = body.get("prompts")
        if not isinstance(prompts, list) or not prompts:
            raise bad_request("prompts is required and must not be empty.")
        if len(prompts) > _MAX_PROMPTS:
            raise bad_request(f"At most {_MAX_PROMPTS} prompts are allowed.")
        steps = sum(_prompt_repeats(prompt) for prompt in prompts)
        loop = body.get("loop")
        if loop is not None and not isinstance(loop, bool):
            raise bad_request("loop must be a boolean.")
        forever = loop is True or 0 in (_prompt_repeats(p) for p in prompts)
        op = self._new_operation(
            call,
            "playPromptOperation",
            body,
            duration=None if forever else self.prompt_seconds * steps,
        )
        self._queue_media(call, op, barge_in=False)
        return await self._media_op_response(ctx, call, op, 200)

    async def _record_response(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        return await self._record(ctx, call, body, status=200)

    async def _record_legacy(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        # The old beta `record` page answered 202 (reference §2.1).
        return await self._record(ctx, call, body, status=202)

    async def _record(self, ctx: Ctx, call: EmulatedCall, body: JSON, *, status: int) -> Reply:
        _require_service_hosted(call, "recordResponse")
        prompts = body.get("prompts", [])
        if prompts is None:
            prompts = []
        if not isinstance(prompts, list) or len(prompts) > 1:
            raise bad_request("recordResponse takes at most 1 prompt.")
        for prompt in prompts:
            _prompt_repeats(prompt)
        for name in (
            "initialSilenceTimeoutInSeconds",
            "maxSilenceTimeoutInSeconds",
            "maxRecordDurationInSeconds",
        ):
            value = body.get(name)
            if value is not None and (not _is_int(value) or not 1 <= value <= 120):
                raise bad_request(f"{name} must be an integer from 1 to 120.")
        for name in ("bargeInAllowed", "playBeep", "streamWhileRecording"):
            if body.get(name) is not None and not isinstance(body.get(name), bool):
                raise bad_request(f"{name} must be a boolean.")
        stop_tones = body.get("stopTones") or []
        if not isinstance(stop_tones, list) or not all(isinstance(t, str) for t in stop_tones):
            raise bad_request("stopTones must be a collection of strings.")
        names = {tone_name(t) for t in stop_tones}
        if None in names:
            raise bad_request("stopTones holds an unknown tone.")
        op = self._new_operation(
            call,
            "recordOperation",
            body,
            duration=self.prompt_seconds * (len(prompts) + 1),
            recordingLocation=None,
            recordingAccessToken=None,
        )
        op._stop_tones = frozenset(n for n in names if n is not None)
        self._queue_media(call, op, barge_in=body.get("bargeInAllowed") is True)
        return await self._media_op_response(ctx, call, op, status)

    async def _cancel_media_processing(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        op = self._new_operation(call, "cancelMediaProcessingOperation", body, completed=True)
        victims = [call._media_current] if call._media_current is not None else []
        victims += list(call._media_queue)
        for victim in victims:
            self._cancel_media_op(call, victim, CANCELLED)
        return await self._respond(ctx, call, op, 200)

    async def _subscribe_to_tone(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        _require_service_hosted(call, "subscribeToTone")
        op = self._new_operation(call, "subscribeToToneOperation", body, completed=True)
        call.tone_subscribed = True
        return await self._respond(ctx, call, op, 200)

    async def _send_dtmf_tones(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        tones = body.get("tones")
        if not isinstance(tones, list) or not tones:
            raise bad_request("tones is required and must not be empty.")
        if not all(isinstance(t, str) and tone_name(t) == t for t in tones):
            raise bad_request("tones must hold tone values such as 'tone1', 'star', 'pound'.")
        delay = body.get("delayBetweenTonesMs")
        if delay is not None and (not _is_int(delay) or delay < 0):
            raise bad_request("delayBetweenTonesMs must be a non-negative integer.")
        op = self._new_operation(call, "sendDtmfTonesOperation", body)
        # The documented completion has a completionReason and no resultInfo (§5.4).
        complete = self._finish_success(
            call, op, with_result=False, completionReason="completedSuccessfully"
        )
        self._complete_later(call, op, complete)
        return await self._respond(ctx, call, op, 200, complete=complete)

    async def _mute_self(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        me = call.participants[call.my_participant_id]
        return await self._set_muted(ctx, call, body, me, muted=True)

    async def _unmute_self(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        me = call.participants[call.my_participant_id]
        return await self._set_muted(ctx, call, body, me, muted=False)

    async def _mute_participant(
        self, ctx: Ctx, call: EmulatedCall, body: JSON, entry: JSON
    ) -> Reply:
        return await self._set_muted(ctx, call, body, entry, muted=True)

    async def _set_muted(
        self, ctx: Ctx, call: EmulatedCall, body: JSON, entry: JSON, *, muted: bool
    ) -> Reply:
        odata_type = "muteParticipantOperation" if muted else "unmuteParticipantOperation"
        op = self._new_operation(call, odata_type, body, completed=True)
        self._touch(call, entry, isMuted=muted)
        # The op is already completed; the roster update is the only later signal (§5.3).
        self._notify_roster(call)
        context = f"{ctx.version_url}$metadata#{odata_type}"
        return await self._respond(ctx, call, op, 200, overrides={"@odata.context": context})

    async def _update_recording_status(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        if body.get("status") not in RECORDING_STATUSES:
            raise bad_request(f"status must be one of {sorted(RECORDING_STATUSES)}.")
        op = self._new_operation(call, "updateRecordingStatusOperation", body, completed=True)
        return await self._respond(ctx, call, op, 200)

    async def _timed_operation(
        self,
        ctx: Ctx,
        call: EmulatedCall,
        body: JSON,
        odata_type: str,
        *,
        status: int = 202,
        include_id: bool = True,
    ) -> Reply:
        op = self._new_operation(call, odata_type, body, include_id=include_id)
        complete = self._finish_success(call, op)
        self._complete_later(call, op, complete)
        return await self._respond(ctx, call, op, status, complete=complete)

    async def _add_large_gallery_view(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        return await self._timed_operation(ctx, call, body, "addLargeGalleryViewOperation")

    async def _start_transcription(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        _check_language(body)
        # The beta examples have no `id` in the body: Location is the only place for it.
        return await self._timed_operation(
            ctx, call, body, "startTranscriptionOperation", include_id=False
        )

    async def _stop_transcription(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        _check_language(body)
        op = self._new_operation(
            call, "stopTranscriptionOperation", body, completed=True, include_id=False
        )
        return await self._respond(ctx, call, op, 202)

    async def _start_recording(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        return await self._timed_operation(
            ctx, call, body, "startRecordingOperation", include_id=False
        )

    async def _stop_recording(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        op = self._new_operation(
            call, "stopRecordingOperation", body, completed=True, include_id=False
        )
        return await self._respond(ctx, call, op, 202)

    # -- participants ------------------------------------------------------------------

    async def _invite(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        invitees = body.get("participants")
        if not _is_object_list(invitees) or not invitees:
            raise bad_request("participants is required.")
        if len(invitees) > _MAX_INVITEES:
            raise bad_request(f"At most {_MAX_INVITEES} participants can be invited at once.")
        if not all(isinstance(p.get("identity"), dict) for p in invitees):
            raise bad_request("Every invited participant needs an identity.")
        echoed = [{"@odata.type": f"{ODATA}invitationParticipantInfo", **p} for p in invitees]
        op = self._new_operation(call, "inviteParticipantsOperation", body, participants=echoed)

        def complete() -> asyncio.Future[Delivery] | None:
            for invitee in invitees:
                pid = invitee.get("participantId")
                self._add_participant(
                    call, pid if isinstance(pid, str) else new_guid(call._rng), invitee["identity"]
                )
            self._notify_roster(call)
            return self._finish(call, op, "completed", None)

        self._complete_later(call, op, complete)
        # The v1.0 invite example answers with PascalCase "Running" (§5.5).
        return await self._respond(
            ctx, call, op, 200, complete=complete, overrides={"status": "Running"}
        )

    async def _mute_all(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        wanted = body.get("participants")
        if wanted is not None and (
            not isinstance(wanted, list) or not all(isinstance(p, str) for p in wanted)
        ):
            raise bad_request("participants must be a collection of participant ids.")
        muted = []
        for pid, entry in call.participants.items():
            if pid != call.my_participant_id and (wanted is None or pid in wanted):
                self._touch(call, entry, isMuted=True)
                muted.append(pid)
        op = self._new_operation(
            call, "muteParticipantsOperation", body, completed=True, participants=muted
        )
        self._notify_roster(call)
        return await self._respond(ctx, call, op, 200)

    async def _admit_all_from_lobby(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        for entry in call.participants.values():
            if entry.get("isInLobby"):
                self._touch(call, entry, isInLobby=False)
        op = self._new_operation(call, "admitAllFromLobbyOperation", body, completed=True)
        self._notify_roster(call)
        return await self._respond(ctx, call, op, 200)

    async def _admit_from_lobby(
        self, ctx: Ctx, call: EmulatedCall, body: JSON, entry: JSON
    ) -> Reply:
        self._touch(call, entry, isInLobby=False)
        op = self._new_operation(call, "admitFromLobbyOperation", body, completed=True)
        self._notify_roster(call)
        return await self._respond(ctx, call, op, 200)

    async def _remove_from_lobby(
        self, ctx: Ctx, call: EmulatedCall, body: JSON, entry: JSON
    ) -> Reply:
        call.participants.pop(entry["id"], None)
        op = self._new_operation(call, "removeFromLobbyOperation", body, completed=True)
        self._notify_roster(call)
        return await self._respond(ctx, call, op, 200)

    async def _start_hold_music(
        self, ctx: Ctx, call: EmulatedCall, body: JSON, entry: JSON
    ) -> Reply:
        if _optional_object(body, "customPrompt") is not None:
            _prompt_repeats(body["customPrompt"])
        if call.on_hold is not None and call.on_hold != entry["id"]:
            raise bad_request("Only one participant can be on hold at a time.")
        call.on_hold = entry["id"]
        op = self._new_operation(call, "startHoldMusicOperation", body)
        complete = self._finish_success(call, op, with_result=False)
        self._complete_later(call, op, complete)
        return await self._respond(ctx, call, op, 202, complete=complete)

    async def _stop_hold_music(
        self, ctx: Ctx, call: EmulatedCall, body: JSON, entry: JSON
    ) -> Reply:
        if call.on_hold == entry["id"]:
            call.on_hold = None
        op = self._new_operation(call, "stopHoldMusicOperation", body)
        complete = self._finish_success(call, op, with_result=False)
        self._complete_later(call, op, complete)
        return await self._respond(ctx, call, op, 202, complete=complete)

    # -- call control without an operation ----------------------------------------------------

    async def _answer(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        media_config = _optional_object(body, "mediaConfig")
        if media_config is None:
            raise bad_request("mediaConfig is required.")
        callback_uri = body.get("callbackUri")
        if callback_uri is not None and not isinstance(callback_uri, str):
            raise bad_request("callbackUri must be a string.")
        modalities = body.get("acceptedModalities")
        if modalities is not None and not isinstance(modalities, list):
            raise bad_request("acceptedModalities must be a collection of modality.")
        # Without callbackUri the bot's global webhook stays in use (reference §2.2).
        call.callback_uri = callback_uri or call.callback_uri
        call.media_config = media_config
        self._set_state(call, "establishing")
        self._set_state(call, "established")
        return Reply(202)

    async def _reject(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        reason = body.get("reason")
        if reason is not None and reason not in REJECT_REASONS:
            raise bad_request(f"reason must be one of {sorted(REJECT_REASONS)}.")
        url = body.get("callbackUri")
        if url is not None and not isinstance(url, str):
            raise bad_request("callbackUri must be a string.")
        self._end_call(call, None, terminating=False, url=url, minimal=True)
        return Reply(202)

    async def _redirect(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        targets = body.get("targets")
        if not _is_object_list(targets) or not targets:
            raise bad_request("targets is required.")
        if len(targets) > _MAX_REDIRECT_TARGETS:
            raise bad_request(f"At most {_MAX_REDIRECT_TARGETS} targets are allowed.")
        timeout = body.get("timeout")
        if timeout is not None and (not _is_int(timeout) or not 15 <= timeout <= 90):
            raise bad_request("timeout must be an integer from 15 to 90.")
        url = body.get("callbackUri")
        if url is not None and not isinstance(url, str):
            raise bad_request("callbackUri must be a string.")
        self._end_call(call, None, terminating=False, url=url)
        return Reply(202)

    async def _transfer(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        if _optional_object(body, "transferTarget") is None:
            raise bad_request("transferTarget is required.")
        _optional_object(body, "transferee")
        failure = self.transfer_failures.pop(0) if self.transfer_failures else None
        self._set_state(call, "transferring")

        async def run() -> None:
            await asyncio.sleep(self.prompt_seconds)
            if call.ended:
                return
            if failure is not None:
                # The failure examples spell the key `subCode` (§4.2).
                code, subcode, message = failure
                self._set_state(
                    call,
                    "established",
                    resultInfo={
                        "@odata.type": f"{ODATA}resultInfo",
                        "code": code,
                        "subCode": subcode,
                        "message": message,
                    },
                )
                return
            self._set_state(call, "transferAccepted")
            self._end_call(call, TRANSFERRED, terminating=False, terminationReason="AppTransferred")

        self._spawn(run(), f"transfer-{call.id}")
        return Reply(202)

    async def _change_screen_sharing_role(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        role = body.get("role")
        if role not in SCREEN_SHARING_ROLES:
            raise bad_request(f"role must be one of {sorted(SCREEN_SHARING_ROLES)}.")
        self._touch(call, call.participants[call.my_participant_id])
        self._notify_roster(call)
        return Reply(202)

    async def _keep_alive(self, ctx: Ctx, call: EmulatedCall, body: JSON) -> Reply:
        """200 with no body; the call's inactivity window starts again. An ended call
        never gets here: it answers 404 (§2.1)."""
        call.keep_alives += 1
        if self.keep_alive_window is not None:
            # The timer itself is moved lazily, when it fires: a keepAlive costs no
            # timer churn.
            call._keep_alive_deadline = asyncio.get_running_loop().time() + self.keep_alive_window
        return Reply(200)


def _stop_keep_alive_timer(call: EmulatedCall) -> None:
    if call._keep_alive_timer is not None:
        call._keep_alive_timer.cancel()
        call._keep_alive_timer = None


# -- request checks, shared by the handlers -----------------------------------------------


def _client_context(body: JSON) -> str | None:
    value = body.get("clientContext")
    if value is None:
        return None
    if not isinstance(value, str):
        raise bad_request("clientContext must be a string.")
    if len(value) > MAX_CLIENT_CONTEXT:
        raise bad_request(f"clientContext must be at most {MAX_CLIENT_CONTEXT} characters.")
    return value


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_object_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _optional_object(body: JSON, name: str) -> JSON | None:
    value = body.get(name)
    if value is not None and not isinstance(value, dict):
        raise bad_request(f"{name} must be an object.")
    return value


def _prompt_repeats(prompt: Any) -> int:
    """How many times a mediaPrompt plays (beta ``loop``; 0 is forever); 400 if malformed."""
    media = prompt.get("mediaInfo") if isinstance(prompt, dict) else None
    if not isinstance(media, dict) or not isinstance(media.get("uri"), str) or not media["uri"]:
        raise bad_request("Every prompt needs mediaInfo.uri.")
    repeats = prompt.get("loop", 1)
    if not _is_int(repeats) or repeats < 0:
        raise bad_request("A prompt's loop must be a non-negative integer.")
    return int(repeats)


def _require_state(call: EmulatedCall, states: frozenset[str] | None) -> None:
    if states is not None and call.state not in states:
        raise bad_request(
            f"The call is {call.state}; this action needs it {' or '.join(sorted(states))}."
        )


def _require_service_hosted(call: EmulatedCall, action: str) -> None:
    if not call.service_hosted_media:
        raise bad_request(f"{action} needs a call with serviceHostedMediaConfig.")


def _check_language(body: JSON) -> None:
    language = body.get("language")
    if language is not None and (not isinstance(language, str) or language.lower() != "en-us"):
        raise bad_request("Only language 'en-us' is supported.")


def _lookup(
    ctx: Ctx, segment: str, table: Mapping[str, _ActionSpec[_H]]
) -> tuple[_H, frozenset[str] | None]:
    name = segment.removeprefix("microsoft.graph.").lower()
    entry = table.get(name)
    if entry is None or (entry[1] and not ctx.beta):
        # What Graph answers for a segment its metadata (for this version) lacks.
        raise bad_request(f"Resource not found for the segment '{segment}'.")
    return entry[0], entry[2]
