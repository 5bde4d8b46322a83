"""Graph's actions on a call, each a one-liner over :meth:`CallHandle.send`.

Each action is declared once, as a request model (:mod:`graphcomms.models.requests`):
its path, body, limits and operation type. The methods here build that model and hand
it to ``send``; :class:`~graphcomms.CallHandle` inherits them, beside the call's state,
events and lifecycle in ``_call``. Split out so that neither half is a 800-line file.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from graphcomms._actions import PendingAction
from graphcomms.models import (
    CommsOperation,
    InvitationParticipantInfo,
    OperationRequest,
    Prompt,
    RecordingStatus,
    Tone,
)
from graphcomms.models import operations as ops
from graphcomms.models import requests as rq

__all__ = ["CallActions", "PromptLike"]

OpT = TypeVar("OpT", bound=CommsOperation)

PromptLike = Prompt | str
"""A prompt, or the URL of a WAV file (``MediaPrompt.from_uri``)."""


class CallActions:
    """The operation actions of a call; :class:`~graphcomms.CallHandle` provides
    :meth:`send`."""

    __slots__ = ()

    def send(
        self,
        request: OperationRequest[OpT],
        *,
        timeout: float | None = None,
        participant_id: str | None = None,
    ) -> PendingAction[OpT]:
        """Send any operation action on this call (see :meth:`CallHandle.send`)."""
        raise NotImplementedError

    # -- media and operation actions ----------------------------------------------

    def play_prompt(
        self,
        prompts: PromptLike | Iterable[PromptLike],
        *,
        client_context: str | None = None,
        loop: bool | None = None,
        timeout: float | None = None,
    ) -> PendingAction[ops.PlayPromptOperation]:
        """Play one prompt or up to 20 (a ``MediaPrompt``, or a WAV file's URL).
        ``loop`` (beta) plays until cancelled and never sends a completion."""
        request = rq.PlayPromptRequest(prompts=prompts, client_context=client_context, loop=loop)
        return self.send(request, timeout=timeout)

    def record_response(
        self,
        *,
        prompts: PromptLike | Iterable[PromptLike] | None = None,
        barge_in_allowed: bool | None = None,
        initial_silence_timeout: int | None = None,
        max_silence_timeout: int | None = None,
        max_record_duration: int | None = None,
        play_beep: bool | None = None,
        stop_tones: Iterable[str] | None = None,
        client_context: str | None = None,
        stream_while_recording: bool | None = None,
        timeout: float | None = None,
        legacy: bool = False,
    ) -> PendingAction[ops.RecordOperation]:
        """Record the caller. Timeouts are whole seconds, 1 to 120 each. Fetch the
        result with ``client.download_recording(operation)``. ``legacy`` posts to the
        old beta ``record`` action instead (see :meth:`record`)."""
        request = (rq.RecordRequest if legacy else rq.RecordResponseRequest)(
            prompts=prompts,
            barge_in_allowed=barge_in_allowed,
            initial_silence_timeout_in_seconds=initial_silence_timeout,
            max_silence_timeout_in_seconds=max_silence_timeout,
            max_record_duration_in_seconds=max_record_duration,
            play_beep=play_beep,
            stop_tones=None if stop_tones is None else tuple(stop_tones),
            client_context=client_context,
            stream_while_recording=stream_while_recording,
        )
        return self.send(request, timeout=timeout)

    def record(self, **kwargs: Any) -> PendingAction[ops.RecordOperation]:
        """The legacy beta ``record`` action: ``record_response``'s arguments, posted to
        ``.../record``."""
        return self.record_response(**kwargs, legacy=True)

    def cancel_media_processing(
        self, *, client_context: str | None = None
    ) -> PendingAction[ops.CancelMediaProcessingOperation]:
        """Cancel every queued and running media operation on the call."""
        return self.send(rq.CancelMediaProcessingRequest(client_context=client_context))

    def send_dtmf_tones(
        self,
        tones: Iterable[Tone | str],
        *,
        delay_between_tones_ms: int | None = None,
        client_context: str | None = None,
        timeout: float | None = None,
    ) -> PendingAction[ops.SendDtmfTonesOperation]:
        """Send tones: ``Tone`` members, Graph's names (``"tone1"``), or keypad keys
        (``"1"``, ``"*"``, ``"#"``) — ``send_dtmf_tones("123#")`` works."""
        request = rq.SendDtmfTonesRequest(
            tones=tones,
            delay_between_tones_ms=delay_between_tones_ms,
            client_context=client_context,
        )
        return self.send(request, timeout=timeout)

    def mute(
        self, *, client_context: str | None = None
    ) -> PendingAction[ops.MuteParticipantOperation]:
        """Mute the bot itself (group calls)."""
        return self.send(rq.MuteRequest(client_context=client_context))

    def unmute(
        self, *, client_context: str | None = None
    ) -> PendingAction[ops.UnmuteParticipantOperation]:
        return self.send(rq.UnmuteRequest(client_context=client_context))

    def update_recording_status(
        self, status: RecordingStatus | str, *, client_context: str | None = None
    ) -> PendingAction[ops.UpdateRecordingStatusOperation]:
        """Report ``recording`` before persisting any media, ``notRecording`` after."""
        return self.send(
            rq.UpdateRecordingStatusRequest(status=status, client_context=client_context)
        )

    def add_large_gallery_view(
        self, *, client_context: str | None = None
    ) -> PendingAction[ops.AddLargeGalleryViewOperation]:
        return self.send(rq.AddLargeGalleryViewRequest(client_context=client_context))

    def invite(
        self,
        participants: Iterable[InvitationParticipantInfo],
        *,
        client_context: str | None = None,
        timeout: float | None = None,
    ) -> PendingAction[ops.InviteParticipantsOperation]:
        """Invite up to 5 participants (more than one needs a call with chatInfo)."""
        request = rq.InviteParticipantsRequest(
            participants=tuple(participants), client_context=client_context
        )
        return self.send(request, timeout=timeout)

    def mute_all(
        self, participants: Iterable[str] | None = None, *, client_context: str | None = None
    ) -> PendingAction[ops.MuteParticipantsOperation]:
        """beta"""
        request = rq.MuteAllRequest(
            participants=None if participants is None else tuple(participants),
            client_context=client_context,
        )
        return self.send(request)

    def start_transcription(
        self, *, language: str | None = "en-us", client_context: str | None = None
    ) -> PendingAction[ops.StartTranscriptionOperation]:
        """beta"""
        return self.send(
            rq.StartTranscriptionRequest(language=language, client_context=client_context)
        )

    def stop_transcription(
        self, *, language: str | None = None, client_context: str | None = None
    ) -> PendingAction[ops.StopTranscriptionOperation]:
        """beta"""
        return self.send(
            rq.StopTranscriptionRequest(language=language, client_context=client_context)
        )

    def start_recording(
        self, *, client_context: str | None = None
    ) -> PendingAction[ops.StartRecordingOperation]:
        """beta"""
        return self.send(rq.StartRecordingRequest(client_context=client_context))

    def stop_recording(
        self, *, client_context: str | None = None
    ) -> PendingAction[ops.StopRecordingOperation]:
        """beta"""
        return self.send(rq.StopRecordingRequest(client_context=client_context))

    def admit_all_from_lobby(
        self, *, client_context: str | None = None
    ) -> PendingAction[ops.AdmitAllFromLobbyOperation]:
        """beta"""
        return self.send(rq.AdmitAllFromLobbyRequest(client_context=client_context))
