"""Graph's wire knowledge, in one place: key names, ``@odata.type`` tags, legacy keys,
enum tables, and what an untagged polymorphic object is taken to be.

Nothing here knows cattrs; the hooks read these tables (reference §5.8 lists the quirks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import Any, Final, Generic, TypeVar

from graphcomms.models import _enums, calls, common, operations, requests
from graphcomms.models._base import EMPTY_DATA, AdditionalData
from graphcomms.models.common import (
    AppHostedMediaConfig,
    IncomingCallOptions,
    JoinMeetingIdMeetingInfo,
    MediaConfig,
    MediaPrompt,
    MeetingInfo,
    OrganizerMeetingInfo,
    OutgoingCallOptions,
    Prompt,
    ResultInfo,
    ServiceHostedMediaConfig,
    TokenMeetingInfo,
)
from graphcomms.models.operations import CommsOperation, RecordOperation
from graphcomms.models.requests import ActionRequest

__all__ = [
    "ADDITIONAL_DATA",
    "GRAPH_PREFIX",
    "LENIENT_INTEGERS",
    "ODATA_TYPE",
    "OPERATION_TYPES",
    "POLYMORPHIC",
    "POLYMORPHIC_UNIONS",
    "EnumTable",
    "Polymorphic",
    "TagTable",
    "is_tagged",
    "known_keys",
    "legacy_keys",
    "model_enums",
    "tag_of",
    "type_name",
    "unknown_properties",
    "wire_name",
]

T = TypeVar("T")

ODATA_TYPE: Final = "@odata.type"
GRAPH_PREFIX: Final = "#microsoft.graph."

#: The field that keeps the properties no other field names (``models._base``).
ADDITIONAL_DATA: Final = "additional_data"

#: The OData annotations Graph puts on resources, counted as known keys so that the
#: readers' one-lookup check (no key outside the known ones) passes on them; any
#: other annotation is dropped too, only by the slower path (:func:`unknown_properties`).
_ANNOTATIONS: Final = frozenset({ODATA_TYPE, "@odata.id", "@odata.etag", "@odata.context"})

#: Every operation type, the base first; ``@odata.type`` picks one of these.
OPERATION_TYPES: Final[tuple[type[CommsOperation], ...]] = (
    CommsOperation,
    *(
        cls
        for name in operations.__all__
        if isinstance(cls := getattr(operations, name), type)
        and issubclass(cls, CommsOperation)
        and cls is not CommsOperation
    ),
)

_MODEL_MODULES: Final = frozenset(m.__name__ for m in (calls, common, operations, requests))

#: Keys older payloads use for a field: (legacy key, current key). Subclasses too.
_LEGACY_KEYS: Final[Mapping[type, tuple[tuple[str, str], ...]]] = {
    ResultInfo: (("subCode", "subcode"),),
    RecordOperation: (
        ("recordResourceLocation", "recordingLocation"),
        ("recordResourceAccessToken", "recordingAccessToken"),
    ),
}

#: Integer fields Graph sends as strings at times (``"code": "200"``); a value that is
#: no number at all reads as ``None`` rather than losing the whole notification.
LENIENT_INTEGERS: Final[Mapping[type, frozenset[str]]] = {
    ResultInfo: frozenset({"code", "subcode"}),
}


def wire_name(field: str) -> str:
    """Graph's key for a model field: ``client_context`` -> ``clientContext``."""
    head, *rest = field.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def type_name(cls: type) -> str:
    """Graph's name for a model class: ``PlayPromptOperation`` -> ``playPromptOperation``."""
    return cls.__name__[:1].lower() + cls.__name__[1:]


def tag_of(cls: type) -> str:
    """The ``@odata.type`` Graph writes for ``cls``."""
    return GRAPH_PREFIX + type_name(cls)


def _folded(tag: str) -> str:
    """``#Microsoft.Graph.PlayPromptOperation`` -> ``playpromptoperation``."""
    tag = tag.lower()
    if tag.startswith("#"):
        tag = tag[1:]
    if tag.startswith("microsoft.graph."):
        tag = tag[len("microsoft.graph.") :]
    return tag


def is_tagged(cls: type) -> bool:
    """Graph objects carry ``@odata.type``; request bodies and foreign classes do not."""
    return cls.__module__ in _MODEL_MODULES and not issubclass(cls, ActionRequest)


def legacy_keys(cls: type) -> tuple[tuple[str, str], ...]:
    return next((keys for base, keys in _LEGACY_KEYS.items() if issubclass(cls, base)), ())


def known_keys(cls: type, fields: Iterable[str]) -> frozenset[str]:
    """Every key a JSON object read as ``cls`` may hold that is not an unknown
    property: its fields' wire names, their legacy spellings, OData annotations."""
    current = {wire_name(name) for name in fields if name not in (ADDITIONAL_DATA, "odata_type")}
    return frozenset(current | {old for old, _ in legacy_keys(cls)} | _ANNOTATIONS)


def unknown_properties(value: Mapping[Any, Any], known: frozenset[str]) -> Mapping[str, Any]:
    """The properties of ``value`` that no key in ``known`` names, read-only and as they
    came; annotations (keys starting with ``@``) are not properties and are left out."""
    found = {
        key: item
        for key, item in value.items()
        if key not in known and not (isinstance(key, str) and key.startswith("@"))
    }
    return AdditionalData(found) if found else EMPTY_DATA


class TagTable(Generic[T]):
    """``@odata.type`` -> value, for tags in any casing, with or without the prefix.

    The exact tag Graph writes is one lookup; any other spelling is folded first.
    """

    __slots__ = ("_table",)

    def __init__(self, values: Mapping[type, T]) -> None:
        self._table: dict[str, T] = {}
        for cls, value in values.items():
            self._table[tag_of(cls)] = value
            self._table[_folded(tag_of(cls))] = value

    def get(self, tag: str) -> T | None:
        found = self._table.get(tag)
        return found if found is not None else self._table.get(_folded(tag))

    @staticmethod
    def names_an_operation(tag: str) -> bool:
        """Graph's operation types all end in ``Operation``: a new one still tracks."""
        return _folded(tag).endswith("operation")


class EnumTable:
    """An enum's members by wire value: exact first, then ignoring case."""

    __slots__ = ("enum", "exact", "folded")

    def __init__(self, enum: type[Enum]) -> None:
        self.enum = enum
        self.exact: dict[str, Enum] = {member.value: member for member in enum}
        self.folded: dict[str, Enum] = {member.value.lower(): member for member in enum}

    def member(self, value: str) -> Enum | None:
        found = self.exact.get(value)
        return found if found is not None else self.folded.get(value.lower())


def model_enums() -> tuple[type[Enum], ...]:
    """Graph's enums the models use."""
    return tuple(
        cls
        for name in _enums.__all__
        if isinstance(cls := getattr(_enums, name), type) and issubclass(cls, Enum) and len(cls)
    )


class Polymorphic:
    """A field typed as a base class: the subclass ``@odata.type`` names, else the one
    ``untagged`` infers from the keys, else ``unknown`` for a tag not in ``classes``."""

    __slots__ = ("classes", "unknown", "untagged")

    def __init__(
        self,
        classes: tuple[type, ...],
        untagged: Callable[[Mapping[str, Any]], type],
        unknown: type,
    ) -> None:
        self.classes = classes
        self.untagged = untagged
        self.unknown = unknown


def _meeting_info(value: Mapping[str, Any]) -> type:
    if "organizer" in value:
        return OrganizerMeetingInfo
    if "token" in value:
        return TokenMeetingInfo
    if "joinMeetingId" in value:
        return JoinMeetingIdMeetingInfo
    return MeetingInfo


#: Fields typed as a base class, by that base.
POLYMORPHIC: Final[Mapping[type, Polymorphic]] = {
    MediaConfig: Polymorphic(
        (MediaConfig, ServiceHostedMediaConfig, AppHostedMediaConfig),
        # An empty serviceHostedMediaConfig is what IVR bots send; blob is app-hosted.
        lambda v: AppHostedMediaConfig if "blob" in v else ServiceHostedMediaConfig,
        MediaConfig,
    ),
    MeetingInfo: Polymorphic(
        (MeetingInfo, OrganizerMeetingInfo, TokenMeetingInfo, JoinMeetingIdMeetingInfo),
        _meeting_info,
        MeetingInfo,
    ),
    # mediaPrompt is the only prompt Graph has.
    Prompt: Polymorphic((MediaPrompt,), lambda _: MediaPrompt, MediaPrompt),
}

#: Fields typed as a union of classes, by the set of its classes.
POLYMORPHIC_UNIONS: Final[Mapping[frozenset[type], Polymorphic]] = {
    # Untagged options are outgoing: a call body is the bot's create-call, and answer's
    # options are typed IncomingCallOptions, not this union. Both have the same fields,
    # so nothing is lost either way.
    frozenset({IncomingCallOptions, OutgoingCallOptions}): Polymorphic(
        (OutgoingCallOptions, IncomingCallOptions),
        lambda _: OutgoingCallOptions,
        OutgoingCallOptions,
    ),
}
