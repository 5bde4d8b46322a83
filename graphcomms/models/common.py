"""Value types shared by calls, participants, operations and request bodies."""

from __future__ import annotations

import attrs

from graphcomms.models._base import GraphObject
from graphcomms.models._enums import EndpointType, MediaState, Tone

__all__ = [
    "AppHostedMediaConfig",
    "CallMediaState",
    "ChatInfo",
    "Identity",
    "IdentitySet",
    "IncomingCallOptions",
    "InvitationParticipantInfo",
    "JoinMeetingIdMeetingInfo",
    "MediaConfig",
    "MediaInfo",
    "MediaPrompt",
    "MeetingInfo",
    "OrganizerMeetingInfo",
    "OutgoingCallOptions",
    "ParticipantInfo",
    "Prompt",
    "ResultInfo",
    "ServiceHostedMediaConfig",
    "TokenMeetingInfo",
    "ToneInfo",
]


@attrs.frozen(kw_only=True)
class ResultInfo(GraphObject):
    """Outcome of an operation or reason a call ended: ``code`` 2xx is success."""

    code: int | None = None
    """An HTTP-like status: 2xx success; for a call's end, e.g. 200 (hung up
    normally), 408 (``subcode`` 8537: no keepAlive for 45 minutes)."""
    subcode: int | None = None
    """Graph's finer reason (e.g. 4097 for a caller who hung up)."""
    message: str | None = None
    """Graph's text; for people, not for branching on."""

    @property
    def is_success(self) -> bool:
        """True when ``code`` is 2xx. A missing code is not a failure by itself."""
        return self.code is None or 200 <= self.code < 300


@attrs.frozen(kw_only=True)
class Identity(GraphObject):
    """One party's identity (Graph's ``identity``); which kind it is depends on the
    ``IdentitySet`` field that holds it."""

    id: str | None = None
    """A user's or application's id, an application instance's id, or a phone number
    in E.164 form."""
    display_name: str | None = None
    """The name clients show."""
    tenant_id: str | None = None
    """The tenant of a user (for calls across tenants)."""
    identity_provider: str | None = None
    """Where the identity comes from (Graph's ``identityProvider``), when sent."""


@attrs.frozen(kw_only=True)
class IdentitySet(GraphObject):
    """Graph's ``identitySet`` / ``communicationsIdentitySet``: who a party is."""

    user: Identity | None = None
    application: Identity | None = None
    application_instance: Identity | None = None
    device: Identity | None = None
    phone: Identity | None = None
    guest: Identity | None = None
    encrypted: Identity | None = None
    on_premises: Identity | None = None

    @classmethod
    def for_user(
        cls, user_id: str, *, display_name: str | None = None, tenant_id: str | None = None
    ) -> IdentitySet:
        return cls(user=Identity(id=user_id, display_name=display_name, tenant_id=tenant_id))

    @classmethod
    def for_phone(cls, number: str) -> IdentitySet:
        """A PSTN party, ``number`` in E.164 form (``"+14255550100"``)."""
        return cls(phone=Identity(id=number))

    @classmethod
    def for_application(cls, app_id: str, *, display_name: str | None = None) -> IdentitySet:
        return cls(application=Identity(id=app_id, display_name=display_name))


@attrs.frozen(kw_only=True)
class ParticipantInfo(GraphObject):
    """Who a participant is and where from (Graph's ``participantInfo``)."""

    identity: IdentitySet | None = None
    """The participant's identities (user, application, application instance, phone)."""
    endpoint_type: EndpointType | str | None = None
    """The kind of client (``default``, ``voicemail``, ``skypeForBusiness``, ...)."""
    region: str | None = None
    """The home region of the participant, as Graph reports it."""
    language_id: str | None = None
    """The participant's language, as Graph reports it."""
    country_code: str | None = None
    """The participant's country code (ISO 3166-1 alpha-2), as Graph reports it."""
    participant_id: str | None = None
    """The participant's id in the call."""
    platform_id: str | None = None
    """The client platform's id, as Graph reports it."""


@attrs.frozen(kw_only=True)
class InvitationParticipantInfo(GraphObject):
    """A party to invite, redirect or transfer to."""

    identity: IdentitySet | None = None
    hidden: bool | None = None
    participant_id: str | None = None
    remove_from_default_audio_routing_group: bool | None = None
    replaces_call_id: str | None = None
    endpoint_type: EndpointType | str | None = None


@attrs.frozen(kw_only=True)
class MediaInfo(GraphObject):
    """A media file the service fetches: WAV, mono, 16-bit, 16 kHz, reachable by Graph."""

    uri: str
    resource_id: str | None = None


@attrs.frozen(kw_only=True)
class Prompt(GraphObject):
    """Base of Graph's ``prompt``; in practice every prompt is a :class:`MediaPrompt`."""


@attrs.frozen(kw_only=True)
class MediaPrompt(Prompt):
    media_info: MediaInfo
    loop: int | None = None  # beta: 0 loops forever

    @classmethod
    def from_uri(cls, uri: str, *, resource_id: str | None = None) -> MediaPrompt:
        return cls(media_info=MediaInfo(uri=uri, resource_id=resource_id))


@attrs.frozen(kw_only=True)
class ToneInfo(GraphObject):
    """A DTMF tone the caller pressed; ``sequence_id`` orders them.

    ``key`` is the keypad key as a plain ``str`` (what a bot usually wants); ``tone``
    is Graph's value, a :class:`Tone` or, for a value this version does not know, the
    string Graph sent.
    """

    sequence_id: int | None = None
    """Graph's order of the key presses: tones may arrive out of order."""
    tone: Tone | str | None = None
    """The key, as a :class:`Tone` (``Tone.TONE1``, ``Tone.POUND``; ``.key`` gives
    ``"1"``, ``"#"``), or Graph's string for a tone graphcomms does not know."""

    @property
    def key(self) -> str:
        """The key pressed: ``"0"`` to ``"9"``, ``"*"``, ``"#"``, ``"A"`` to ``"D"``, or
        ``"!"`` for flash (see :attr:`Tone.key`). A tone this version does not know
        gives Graph's own name for it, and a notification that named no tone ``""``."""
        tone = self.tone
        if isinstance(tone, Tone):
            return tone.key
        if not tone:
            return ""
        known = Tone.lookup(tone)
        return tone if known is None else known.key


@attrs.frozen(kw_only=True)
class MediaConfig(GraphObject):
    """Base of the two media configurations."""


@attrs.frozen(kw_only=True)
class ServiceHostedMediaConfig(MediaConfig):
    """Graph hosts the media: needed for playPrompt, recordResponse, subscribeToTone."""

    pre_fetch_media: tuple[MediaInfo, ...] | None = None


@attrs.frozen(kw_only=True)
class AppHostedMediaConfig(MediaConfig):
    blob: str | None = None


@attrs.frozen(kw_only=True)
class CallMediaState(GraphObject):
    audio: MediaState | str | None = None


@attrs.frozen(kw_only=True)
class ChatInfo(GraphObject):
    thread_id: str | None = None
    message_id: str | None = None
    reply_chain_message_id: str | None = None


@attrs.frozen(kw_only=True)
class MeetingInfo(GraphObject):
    """Base of the meeting-join descriptions."""


@attrs.frozen(kw_only=True)
class OrganizerMeetingInfo(MeetingInfo):
    organizer: IdentitySet | None = None


@attrs.frozen(kw_only=True)
class TokenMeetingInfo(MeetingInfo):
    token: str | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class JoinMeetingIdMeetingInfo(MeetingInfo):
    join_meeting_id: str | None = None
    passcode: str | None = attrs.field(default=None, repr=False)


@attrs.frozen(kw_only=True)
class IncomingCallOptions(GraphObject):
    hide_bot_after_escalation: bool | None = None
    is_content_sharing_notification_enabled: bool | None = None
    is_delta_roster_enabled: bool | None = None
    is_interactive_roster_enabled: bool | None = None


@attrs.frozen(kw_only=True)
class OutgoingCallOptions(GraphObject):
    hide_bot_after_escalation: bool | None = None
    is_content_sharing_notification_enabled: bool | None = None
    is_delta_roster_enabled: bool | None = None
    is_interactive_roster_enabled: bool | None = None
