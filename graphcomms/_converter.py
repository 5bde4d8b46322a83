"""The one place that knows Graph's JSON: key names, ``@odata.type`` strings and quirks.

:func:`make_converter` builds a cattrs converter for every model in
:mod:`graphcomms.models`; the module functions use the default one, :data:`CONVERTER`.

Reading is lenient, because Graph is inconsistent (reference §5.8): unknown keys and
``@odata.*`` annotations are ignored, enums match case-insensitively and keep a value
they do not know as a plain ``str``, ``resultInfo`` codes may be strings, keys may use
legacy spellings. What still does not fit raises :class:`DeserializationError`, whose
message says what and where but never quotes the payload (it may hold a recording
access token); the payload itself is on ``.payload``.

Writing produces Graph's own shapes: camelCase keys, no ``None`` values, an
``@odata.type`` on every Graph object, none on a request body itself.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from enum import Enum
from functools import lru_cache
from typing import Any, Final, NamedTuple, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    IterableValidationNote,
    StructureHandlerNotFoundError,
)
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from graphcomms._routing import ResourceKind, parse_resource_path
from graphcomms.errors import DeserializationError
from graphcomms.models import _enums, calls, common, notifications, operations, requests
from graphcomms.models.calls import Call, Participant
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
from graphcomms.models.notifications import CommsNotification, CommsNotifications
from graphcomms.models.operations import CommsOperation, RecordOperation
from graphcomms.models.requests import ActionRequest

__all__ = [
    "CONVERTER",
    "decode_notifications",
    "loads",
    "make_converter",
    "read_operation",
    "structure_call",
    "structure_entity",
    "structure_operation",
    "structure_participant",
    "unstructure",
]

StructureHook = Callable[[Any, Any], Any]
UnstructureHook = Callable[[Any], Any]

_ODATA_TYPE: Final = "@odata.type"
_GRAPH_PREFIX: Final = "#microsoft.graph."
_NOTES: Final = "__notes__"  # set by name: BaseException.add_note is Python 3.11+
_NONE_TYPE: Final = type(None)

#: Every operation type, base first; ``@odata.type`` picks one of these.
_OPERATION_TYPES: Final[tuple[type[CommsOperation], ...]] = (
    CommsOperation,
    *(
        cls
        for name in operations.__all__
        if isinstance(cls := getattr(operations, name), type)
        and issubclass(cls, CommsOperation)
        and cls is not CommsOperation
    ),
)

_MODEL_ENUMS: Final[tuple[type[Enum], ...]] = tuple(
    cls
    for name in _enums.__all__
    if isinstance(cls := getattr(_enums, name), type) and issubclass(cls, Enum) and len(cls)
)

_MODEL_MODULES: Final = frozenset(
    m.__name__ for m in (calls, common, notifications, operations, requests)
)

#: Keys that older payloads use for a field: (legacy key, current key). Applies to
#: subclasses too.
_LEGACY_KEYS: Final[Mapping[type, tuple[tuple[str, str], ...]]] = {
    ResultInfo: (("subCode", "subcode"),),
    RecordOperation: (
        ("recordResourceLocation", "recordingLocation"),
        ("recordResourceAccessToken", "recordingAccessToken"),
    ),
}


_MISSING: Final = object()


def _slot_fillable(cls: type[Any]) -> bool:
    """True when building ``cls`` field by field is exactly what its ``__init__`` does:
    slotted, no validators, converters, factories or init hooks (true of every model
    Graph sends us; the request models, which validate, keep ``__init__``)."""
    if "__slots__" not in cls.__dict__:
        return False
    if any(hasattr(cls, h) for h in ("__attrs_pre_init__", "__attrs_post_init__")):
        return False
    return all(
        a.init
        and a.validator is None
        and a.converter is None
        and not isinstance(a.default, attrs.Factory)  # type: ignore[arg-type]
        for a in attrs.fields(cls)
    )


def _slot_reader(
    cls: type[Any],
    conv: cattrs.Converter,
    overrides: Mapping[str, Any],
    legacy: tuple[tuple[str, str], ...],
) -> StructureHook:
    """Read ``cls`` by filling its slots through their descriptors, with one generated
    function per class (as cattrs generates its own).

    A frozen attrs class sets each field through ``object.__setattr__`` in ``__init__``,
    which costs more than the rest of reading an operation; the slot descriptors do the
    same at C speed. The function is unrolled, and an optional field whose value is
    ``null`` or missing is set to ``None`` without calling its hook, because that is
    what the hook would return (checked below, when the function is built). This runs
    on every notification: a property test holds it equal to cattrs's own reading.
    """
    attrs.resolve_types(cls)
    what = _type_name(cls)
    names: dict[str, Any] = {
        "cls": cls,
        "new": object.__new__,
        "Mapping": Mapping,
        "_Invalid": _Invalid,
        "_MISSING": _MISSING,
    }
    lines = [
        "def read(value, _=None):",
        "    if value.__class__ is not dict and not isinstance(value, Mapping):",
        f"        raise _Invalid({what + ' must be a JSON object'!r})",
        "    get = value.get",
    ]
    for old, current in legacy:
        lines += [
            f"    if get({current!r}) is None and get({old!r}) is not None:",
            f"        value = {{**value, {current!r}: value[{old!r}]}}",
            "        get = value.get",
        ]
    lines.append("    obj = new(cls)")
    for index, a in enumerate(attrs.fields(cls)):
        spec = overrides.get(a.name)
        set_, hook, kind, default = f"s{index}", f"h{index}", f"t{index}", f"d{index}"
        names[set_] = getattr(cls, a.name).__set__
        names[default] = a.default
        if spec is not None and spec.omit:
            lines.append(f"    {set_}(obj, {default})")
            continue
        key = spec.rename if spec is not None and spec.rename else a.name
        structure = spec.struct_hook if spec is not None and spec.struct_hook else None
        names[hook] = structure or conv.get_structure_hook(a.type)
        names[kind] = a.type
        if a.default is None and _keeps_none(names[hook], a.type):
            # `X | None`: the reader does the None, the hook for X the rest.
            names[hook], names[kind] = getattr(names[hook], "inner", (names[hook], a.type))
            # Missing or null: None, no hook call. The common value of a scalar field
            # (a str for a str field, say) is taken as it is, and an enum's exact wire
            # value is looked up here: the hooks would return just that.
            lines.append(f"    raw = get({key!r})")
            same = _RETURNS_ITS_OWN.get(names[hook])
            exact = getattr(names[hook], "exact_members", None)
            if same is not None:
                names[f"c{index}"] = same
                lines.append(
                    f"    {set_}(obj, raw if raw is None or raw.__class__ is c{index}"
                    f" else {hook}(raw, {kind}))"
                )
            elif exact is not None:
                names[f"e{index}"] = exact.get
                lines += [
                    "    if raw is None:",
                    f"        {set_}(obj, None)",
                    "    else:",
                    f"        member = e{index}(raw) if raw.__class__ is str else None",
                    f"        {set_}(obj, member if member is not None else {hook}(raw, {kind}))",
                ]
            else:
                lines.append(f"    {set_}(obj, None if raw is None else {hook}(raw, {kind}))")
            continue
        lines.append(f"    raw = get({key!r}, _MISSING)")
        if a.default is attrs.NOTHING:
            lines += ["    if raw is _MISSING:", f"        raise KeyError({key!r})"]
            lines.append(f"    {set_}(obj, {hook}(raw, {kind}))")
        else:
            lines.append(f"    {set_}(obj, {default} if raw is _MISSING else {hook}(raw, {kind}))")
    lines.append("    return obj")
    exec(compile("\n".join(lines), f"<graphcomms read {cls.__name__}>", "exec"), names)  # noqa: S102
    read: StructureHook = names["read"]
    return read


#: How many distinct resultInfo values a converter keeps for reuse.
_RESULT_INFO_CACHE_SIZE: Final = 256


def _interning_result_info(read: StructureHook) -> StructureHook:
    """``read`` for ResultInfo, reusing one frozen instance per (code, subcode, message).

    A handful of those triples (200/0 "Action completed successfully." above all) make
    up nearly every resultInfo Graph sends, so most notifications skip building one.
    Only plain int/str/None values are keyed: equal keys then read to equal objects
    (``True == 1`` would not). The cache stops growing at its size; what does not fit
    is read as before.
    """
    cache: dict[tuple[Any, Any, Any], Any] = {}

    def structure(value: Any, _: Any = None) -> Any:
        if value.__class__ is dict:
            code, subcode, message = value.get("code"), value.get("subcode"), value.get("message")
            if (
                (code is None or code.__class__ is int)
                and (subcode.__class__ is int or (subcode is None and "subCode" not in value))
                and (message is None or message.__class__ is str)
            ):
                key = (code, subcode, message)
                found = cache.get(key)
                if found is None:
                    found = read(value, ResultInfo)
                    if len(cache) < _RESULT_INFO_CACHE_SIZE:
                        cache[key] = found
                return found
        return read(value, ResultInfo)

    return structure


def _keeps_none(hook: StructureHook, kind: Any) -> bool:
    """True when ``hook`` reads ``null`` as ``None``: the generated reader then skips
    calling it for ``null``, which it may only do when the answer is the same."""
    try:
        return hook(None, kind) is None
    except Exception:
        return False


class _Invalid(ValueError):
    """A value does not fit. The message is ours and never quotes the value."""


class _Path(str):
    """A note on an exception that says where, in wire names (``.value[0]``)."""


def _note(exc: BaseException, segment: str) -> None:
    setattr(exc, _NOTES, [*getattr(exc, _NOTES, ()), _Path(segment)])


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _type_name(cls: type) -> str:
    """Graph's name for a model class: ``PlayPromptOperation`` -> ``playPromptOperation``."""
    return cls.__name__[:1].lower() + cls.__name__[1:]


def _normalise_tag(tag: str) -> str:
    """``#Microsoft.Graph.PlayPromptOperation`` -> ``playpromptoperation``."""
    tag = tag.lower()
    if tag.startswith("#"):
        tag = tag[1:]
    if tag.startswith("microsoft.graph."):
        tag = tag[len("microsoft.graph.") :]
    return tag


def _tag_table(values: Mapping[type, Any]) -> dict[str, Any]:
    """Tag -> value, keyed both by the exact tag Graph sends (one lookup on the common
    path) and by the normalised tag (the fallback for other spellings)."""
    table: dict[str, Any] = {}
    for cls, value in values.items():
        table[_GRAPH_PREFIX + _type_name(cls)] = value
        table[_type_name(cls).lower()] = value
    return table


def _lookup(table: Mapping[str, Any], tag: str) -> Any:
    found = table.get(tag)
    return found if found is not None else table.get(_normalise_tag(tag))


def _is_mapping(value: object) -> bool:
    return value.__class__ is dict or isinstance(value, Mapping)


def _require_mapping(value: object, what: str) -> None:
    if value.__class__ is not dict and not isinstance(value, Mapping):
        raise _Invalid(f"{what} must be a JSON object")


# --- scalars ------------------------------------------------------------------------


def _structure_str(value: Any, _: Any = None) -> str:
    if value.__class__ is str:
        return value
    if isinstance(value, str):  # an enum member, say: its value, not its repr
        return str.__str__(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _Invalid("expected a string")


def _structure_optional_str(value: Any, _: Any = None) -> str | None:
    if value is None or value.__class__ is str:
        return value
    return _structure_str(value)


def _structure_int(value: Any, _: Any = None) -> int:
    if value.__class__ is int:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise _Invalid("expected an integer")


def _structure_lenient_int(value: Any, _: Any = None) -> int | None:
    """``resultInfo`` codes: Graph sends ``"200"`` at times. A code that is not a number
    at all becomes ``None`` rather than losing the whole notification: the operation
    still resolves on its status and completionReason."""
    if value is None or value.__class__ is int:
        return value
    try:
        return _structure_int(value)
    except _Invalid:
        return None


def _structure_bool(value: Any, _: Any = None) -> bool:
    if value is True or value is False:
        return value
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    raise _Invalid("expected a boolean")


#: Scalar hooks that return a value of this exact class unchanged (the generated
#: readers skip the call for it).
_RETURNS_ITS_OWN: Final[dict[Callable[..., Any], type]] = {
    _structure_str: str,
    _structure_optional_str: str,
    _structure_int: int,
    _structure_lenient_int: int,
    _structure_bool: bool,
}


# .NET writes 7 fractional digits and "Z"; Python 3.10's fromisoformat takes neither.
_DATETIME: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)


def _parse_datetime(text: str) -> datetime | None:
    """An aware datetime from ISO-8601 text (UTC when no offset is given), or ``None``."""
    match = _DATETIME.fullmatch(text.strip())
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, _, sign, off_h, off_m = match.groups()
    try:
        tz = timezone.utc
        if sign:
            offset = timedelta(hours=int(off_h), minutes=int(off_m))
            tz = timezone(-offset if sign == "-" else offset)
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError:
        return None


def _structure_datetime(value: Any, _: Any = None) -> datetime | None:
    """Timestamps are informational (beta playPrompt only), so an unreadable one is
    ``None`` rather than a lost notification."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        return _parse_datetime(value)
    return None


def _unstructure_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _structure_plain_dict(value: Any, _: Any = None) -> dict[str, Any]:
    if not _is_mapping(value):
        raise _Invalid("expected a JSON object")
    return dict(value)


# --- enums --------------------------------------------------------------------------


def _enum_table(enum_cls: type[Enum]) -> dict[str, Enum]:
    table: dict[str, Enum] = {member.value.lower(): member for member in enum_cls}
    table.update({member.value: member for member in enum_cls})
    return table


def _enum_or_str_hook(enum_cls: type[Enum], *, optional: bool) -> StructureHook:
    """``SomeEnum | str``: a member, matched case-insensitively, else the raw string.

    The hook carries ``exact_members`` (wire value -> member), which the generated
    readers look up inline before calling it."""
    exact = {member.value: member for member in enum_cls}
    get = _enum_table(enum_cls).get
    what = _type_name(enum_cls)

    def structure(value: Any, _: Any = None) -> Enum | str | None:
        if value.__class__ is str:
            member = get(value)
            return member if member is not None else get(value.lower(), value)
        if value is None and optional:
            return None
        if isinstance(value, enum_cls):
            return value
        raise _Invalid(f"expected a string for {what}")

    structure.exact_members = exact  # type: ignore[attr-defined]
    return structure


def _enum_hook(enum_cls: type[Enum]) -> StructureHook:
    """A bare enum type: matched case-insensitively; no raw-string fallback to give."""
    lenient = _enum_or_str_hook(enum_cls, optional=False)
    what = _type_name(enum_cls)

    def structure(value: Any, _: Any = None) -> Enum:
        member = lenient(value, enum_cls)
        if not isinstance(member, enum_cls):
            raise _Invalid(f"not a known {what}")
        return member

    return structure


def _enum_value(member: Enum) -> Any:
    return member.value


# --- where a path goes (notifications carry no @odata.type at times) ----------------


def _path_kind(path: str | None) -> ResourceKind | None:
    """What a notification's resource path points at, by the one path parser."""
    ref = parse_resource_path(path)
    return None if ref is None else ref.kind


# --- the converter ------------------------------------------------------------------


class _Readers(NamedTuple):
    """The entry points of one converter, raising raw exceptions (the public functions
    turn those into :class:`DeserializationError`)."""

    operation: Callable[[Any, type[CommsOperation]], CommsOperation]
    entity: Callable[[Any, str | None], object]
    notifications: Callable[[Any, Any], CommsNotifications]
    call: Callable[[Any], Call]
    participant: Callable[[Any], Participant]


def _is_union(t: Any) -> bool:
    return get_origin(t) in (Union, types.UnionType)


def _is_homogeneous_tuple(t: Any) -> bool:
    args = get_args(t)
    return get_origin(t) is tuple and len(args) == 2 and args[1] is Ellipsis


def _is_plain_dict(t: Any) -> bool:
    origin: Any = get_origin(t)
    return origin is dict


def _is_attrs_class(t: Any) -> bool:
    return isinstance(t, type) and attrs.has(t)


def _is_tagged(cls: type) -> bool:
    """Graph objects carry ``@odata.type``; request bodies and foreign classes do not."""
    return cls.__module__ in _MODEL_MODULES and not issubclass(cls, ActionRequest)


def _overrides(values: dict[str, Any]) -> dict[str, Any]:
    # make_dict_*_fn take overrides as **kwargs beside their own typed flags.
    return values


class _Hooks:
    """The hook factories of one converter: camelCase keys, the quirks, the tags."""

    def __init__(self, conv: cattrs.Converter) -> None:
        self.conv = conv
        self.read_call_options: StructureHook | None = None

    def register(self) -> None:
        """Install every hook; generation is lazy, except for the polymorphic bases."""
        conv = self.conv
        conv.register_structure_hook(str, _structure_str)
        conv.register_structure_hook(int, _structure_int)
        conv.register_structure_hook(bool, _structure_bool)
        conv.register_structure_hook(datetime, _structure_datetime)
        conv.register_unstructure_hook(datetime, _unstructure_datetime)
        for enum_cls in _MODEL_ENUMS:
            # Else singledispatch hands these str subclasses to the str hooks.
            conv.register_structure_hook(enum_cls, _enum_hook(enum_cls))
            conv.register_unstructure_hook(enum_cls, _enum_value)
        conv.register_structure_hook_func(_is_plain_dict, _structure_plain_dict)
        # Registered after cattrs's own factories, so these win.
        conv.register_structure_hook_factory(_is_attrs_class, self.structure_attrs)
        conv.register_structure_hook_factory(_is_homogeneous_tuple, self.structure_tuple)
        conv.register_structure_hook_factory(_is_union, self.structure_union)
        conv.register_unstructure_hook_factory(_is_attrs_class, self.unstructure_attrs)
        # Only now: generating a class's function resolves its fields' hooks.
        self.read_call_options = self.polymorphic(
            (OutgoingCallOptions, IncomingCallOptions),
            # Untagged options are outgoing: a call body is the bot's create-call, and
            # answer's options are typed IncomingCallOptions, not this union. Both have
            # the same fields, so nothing is lost either way.
            lambda _: OutgoingCallOptions,
            OutgoingCallOptions,
        )
        conv.register_structure_hook_func(
            lambda t: t is MediaConfig,
            self.polymorphic(
                (MediaConfig, ServiceHostedMediaConfig, AppHostedMediaConfig),
                # An empty serviceHostedMediaConfig is what IVR bots send; blob is app-hosted.
                lambda v: AppHostedMediaConfig if "blob" in v else ServiceHostedMediaConfig,
                MediaConfig,
            ),
        )
        conv.register_structure_hook_func(
            lambda t: t is MeetingInfo,
            self.polymorphic(
                (MeetingInfo, OrganizerMeetingInfo, TokenMeetingInfo, JoinMeetingIdMeetingInfo),
                _infer_meeting_info,
                MeetingInfo,
            ),
        )
        conv.register_structure_hook_func(
            # mediaPrompt is the only prompt Graph has.
            lambda t: t is Prompt,
            self.polymorphic((MediaPrompt,), lambda _: MediaPrompt, MediaPrompt),
        )

    def structure_attrs(self, cls: type[Any]) -> StructureHook:
        """cattrs's generated function for ``cls``, keys renamed to camelCase.

        ``odata_type`` stays ``None``: the class already says what a known type is, and
        so a structured operation equals one built in Python. Only the reader for
        unknown operation types fills it in.
        """
        overrides = {
            a.name: override(omit=True)
            if a.name == "odata_type"
            else override(rename=_camel(a.name))
            for a in attrs.fields(cls)
        }
        if issubclass(cls, ResultInfo):
            overrides["code"] = override(rename="code", struct_hook=_structure_lenient_int)
            overrides["subcode"] = override(rename="subcode", struct_hook=_structure_lenient_int)
        legacy = next((keys for base, keys in _LEGACY_KEYS.items() if issubclass(cls, base)), ())
        if not self.conv.detailed_validation and _slot_fillable(cls):
            # The same reading, faster: see _slot_reader. The detailed converter keeps
            # cattrs's generated code, and a property test holds the two equal. (cattrs's
            # code is not generated here at all: that was half of the import's cost.)
            read = _slot_reader(cls, self.conv, overrides, legacy)
            return _interning_result_info(read) if cls is ResultInfo else read
        generated: Callable[[Any, Any], Any] = make_dict_structure_fn(
            cls, self.conv, **_overrides(overrides)
        )
        what = _type_name(cls)

        if not legacy:

            def structure(value: Any, _: Any = None) -> Any:
                # The generated code would take a string's characters for keys.
                if value.__class__ is not dict and not isinstance(value, Mapping):
                    raise _Invalid(f"{what} must be a JSON object")
                return generated(value, cls)

            return structure

        def structure_with_legacy_keys(value: Any, _: Any = None) -> Any:
            _require_mapping(value, what)
            for old, new in legacy:
                if value.get(new) is None and value.get(old) is not None:
                    value = {**value, new: value[old]}
            return generated(value, cls)

        return structure_with_legacy_keys

    def structure_tuple(self, t: Any) -> StructureHook:
        """``tuple[X, ...]`` from a JSON array; cattrs's own would take a string's
        characters for items."""
        item_type = get_args(t)[0]
        item_hook = self.conv.get_structure_hook(item_type)

        def structure(value: Any, _: Any = None) -> tuple[Any, ...]:
            if value is None:  # a null collection is an empty one
                return ()
            if value.__class__ is not list and not isinstance(value, (list, tuple)):
                raise _Invalid("expected a JSON array")
            items = []
            index = 0
            try:
                for item in value:
                    items.append(item_hook(item, item_type))
                    index += 1
            except Exception as exc:
                _note(exc, f"[{index}]")
                raise
            return tuple(items)

        return structure

    def polymorphic(
        self,
        classes: tuple[type, ...],
        infer: Callable[[Mapping[str, Any]], type],
        unknown: type,
    ) -> StructureHook:
        """A field typed as a base class: the class ``@odata.type`` names, else one
        inferred from the keys when there is no tag, else ``unknown``."""
        hooks = {cls: self.structure_attrs(cls) for cls in classes}
        by_tag = _tag_table({cls: cls for cls in classes})
        what = _type_name(classes[0])

        def structure(value: Any, _: Any = None) -> Any:
            _require_mapping(value, what)
            tag = value.get(_ODATA_TYPE)
            cls = (_lookup(by_tag, tag) or unknown) if tag.__class__ is str else infer(value)
            return hooks[cls](value, cls)

        return structure

    def structure_union(self, t: Any) -> StructureHook:
        """The unions the models use: ``SomeEnum | str``, ``X | None`` and the two call
        options. Any other is refused when its hook is built, never per value."""
        args = get_args(t)
        optional = _NONE_TYPE in args
        rest = tuple(a for a in args if a is not _NONE_TYPE)
        if len(rest) == 2 and str in rest:
            other = rest[0] if rest[1] is str else rest[1]
            if isinstance(other, type) and issubclass(other, Enum):
                return _enum_or_str_hook(other, optional=optional)
        inner: Any
        if set(rest) == {IncomingCallOptions, OutgoingCallOptions}:
            assert self.read_call_options is not None, "register() first"
            inner, inner_hook = IncomingCallOptions | OutgoingCallOptions, self.read_call_options
        elif len(rest) == 1:
            inner = rest[0]
            if inner is str:
                return _structure_optional_str
            inner_hook = self.conv.get_structure_hook(inner)
        else:
            raise StructureHandlerNotFoundError(f"graphcomms reads no union {t!r}", t)
        if not optional:
            return inner_hook

        def structure_optional(value: Any, _: Any = None) -> Any:
            return None if value is None else inner_hook(value, inner)

        # The generated readers call the inner hook themselves when the value is no null.
        structure_optional.inner = (inner_hook, inner)  # type: ignore[attr-defined]
        return structure_optional

    def unstructure_attrs(self, cls: type[Any]) -> UnstructureHook:
        """Graph's JSON for ``cls``: camelCase keys, ``None`` fields left out, and an
        ``@odata.type`` first unless ``cls`` is a request body."""
        conv = self.conv
        overrides = {
            a.name: override(omit=True)
            if a.name == "odata_type"
            else override(rename=_camel(a.name), omit_if_default=a.default is None)
            for a in attrs.fields(cls)
        }
        if cls is CommsNotification:
            overrides["resource_data"] = override(
                rename="resourceData",
                omit_if_default=True,
                unstruct_hook=self.unstructure_resource_data,
            )
        generated = make_dict_unstructure_fn(cls, conv, **_overrides(overrides))
        tag = _GRAPH_PREFIX + _type_name(cls) if _is_tagged(cls) else None
        # Only the base keeps a tag of its own: that of an operation type we do not know.
        keeps_own_tag = cls is CommsOperation

        def unstructure(obj: Any) -> Any:
            if obj.__class__ is not cls:  # declared as a base, holding a subclass
                return conv.unstructure(obj, obj.__class__)
            body = generated(obj)
            if tag is None:
                return body
            return {_ODATA_TYPE: (keeps_own_tag and obj.odata_type) or tag, **body}

        return unstructure

    def unstructure_resource_data(self, items: tuple[object, ...]) -> Any:
        # Graph's shape: one entity as an object, a roster as an array. Anything that
        # is not an object goes in an array, so that it reads back the same.
        if len(items) == 1 and not isinstance(items[0], Participant):
            body = self.conv.unstructure(items[0])
            if isinstance(body, dict):
                return body
        return [self.conv.unstructure(item) for item in items]


def _infer_meeting_info(value: Mapping[str, Any]) -> type:
    if "organizer" in value:
        return OrganizerMeetingInfo
    if "token" in value:
        return TokenMeetingInfo
    if "joinMeetingId" in value:
        return JoinMeetingIdMeetingInfo
    return MeetingInfo


def _operation_readers(
    hooks: _Hooks,
) -> tuple[
    Callable[[Any, type[CommsOperation]], CommsOperation],
    StructureHook,
    dict[type, StructureHook],
]:
    """The ``@odata.type`` dispatch for operations: one dict lookup to a generated
    function. Also returns the reader for unknown types and the hook per class."""
    conv = hooks.conv
    by_class = {cls: hooks.structure_attrs(cls) for cls in _OPERATION_TYPES}
    by_tag = _tag_table({cls: (by_class[cls], cls) for cls in _OPERATION_TYPES})
    unknown_overrides = {
        a.name: override(rename=_camel(a.name)) for a in attrs.fields(CommsOperation)
    }
    unknown_overrides["odata_type"] = override(rename=_ODATA_TYPE)
    read_unknown = make_dict_structure_fn(CommsOperation, conv, **_overrides(unknown_overrides))

    def read_operation(value: Any, default: type[CommsOperation]) -> CommsOperation:
        if value.__class__ is not dict and not isinstance(value, Mapping):
            raise _Invalid("an operation must be a JSON object")
        tag = value.get(_ODATA_TYPE)
        if tag is None:
            hook = by_class.get(default) or conv.get_structure_hook(default)
            return hook(value, default)  # type: ignore[no-any-return]
        if tag.__class__ is not str:
            raise _Invalid("@odata.type must be a string")
        entry = by_tag.get(tag) or by_tag.get(_normalise_tag(tag))
        if entry is None:
            return read_unknown(value, CommsOperation)
        return entry[0](value, entry[1])  # type: ignore[no-any-return]

    return read_operation, read_unknown, by_class


def _entity_reader(
    operation_hooks: Mapping[type, StructureHook],
    read_unknown_operation: StructureHook,
    read_call: StructureHook,
    read_participant: StructureHook,
) -> Callable[[Any, str | None], object]:
    """An entity by ``@odata.type``; without one, by the path it changed (if given)."""
    by_tag = _tag_table(
        {
            **{cls: (operation_hooks[cls], cls) for cls in _OPERATION_TYPES},
            Call: (read_call, Call),
            Participant: (read_participant, Participant),
        }
    )
    by_path_kind: dict[ResourceKind | None, tuple[StructureHook, type]] = {
        ResourceKind.OPERATION: (operation_hooks[CommsOperation], CommsOperation),
        ResourceKind.CALL: (read_call, Call),
        ResourceKind.PARTICIPANT: (read_participant, Participant),
        ResourceKind.PARTICIPANTS: (read_participant, Participant),
    }

    def read_entity(value: Any, path: str | None = None) -> object:
        if value.__class__ is not dict and not isinstance(value, Mapping):
            return value
        tag = value.get(_ODATA_TYPE)
        if tag.__class__ is str:
            entry = by_tag.get(tag) or by_tag.get(_normalise_tag(tag))
            if entry is not None:
                return entry[0](value, entry[1])
            # Graph's operation types all end in "Operation": a new one still tracks.
            if _normalise_tag(tag).endswith("operation") or (
                _path_kind(path) is ResourceKind.OPERATION
            ):
                return read_unknown_operation(value, CommsOperation)
            return value
        if tag is None:
            entry = by_path_kind.get(_path_kind(path))
            if entry is not None:
                return entry[0](value, entry[1])
        return value

    return read_entity


def _read_optional_str(item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key)
    if value is None or value.__class__ is str:
        return value
    try:
        return _structure_str(value)
    except _Invalid as exc:
        _note(exc, f".{key}")
        raise


_read_change_type: Final = _enum_or_str_hook(_enums.ChangeType, optional=False)


def _read_resource_data(
    raw: Any, path: str | None, read_entity: Callable[[Any, str | None], object]
) -> tuple[object, ...]:
    if raw is None:
        return ()
    if raw.__class__ is not list:
        return (read_entity(raw, path),)
    entities = []
    for index, entity in enumerate(raw):
        try:
            entities.append(read_entity(entity, path))
        except Exception as exc:
            _note(exc, f"[{index}]")
            raise
    return tuple(entities)


def _notification_readers(
    read_entity: Callable[[Any, str | None], object],
) -> tuple[Callable[[Any, Any], CommsNotification], Callable[[Any, Any], CommsNotifications]]:
    """Readers for one ``commsNotification`` and for the envelope. Hand-written: how
    ``resourceData`` reads depends on its sibling ``resourceUrl``."""

    def read_notification(item: Any, _: Any = None) -> CommsNotification:
        _require_mapping(item, "a notification")
        if "changeType" not in item:
            raise _Invalid("a notification needs a changeType")
        try:
            change_type = _read_change_type(item["changeType"], None)
        except _Invalid as exc:
            _note(exc, ".changeType")
            raise
        resource_url = _read_optional_str(item, "resourceUrl")
        resource = _read_optional_str(item, "resource")
        try:
            data = _read_resource_data(
                item.get("resourceData"), resource_url or resource, read_entity
            )
        except Exception as exc:
            _note(exc, ".resourceData")
            raise
        return CommsNotification(
            change_type=change_type,
            resource_url=resource_url,
            resource=resource,
            resource_data=data,
            callback_uri=_read_optional_str(item, "callbackUri"),
        )

    def read_notifications(body: Any, _: Any = None) -> CommsNotifications:
        _require_mapping(body, "a notification body")
        items = body.get("value")
        if items.__class__ is not list and not isinstance(items, (list, tuple)):
            raise _Invalid("a notification body needs a 'value' array")
        out = []
        for index, item in enumerate(items):
            try:
                out.append(read_notification(item))
            except Exception as exc:
                _note(exc, f".value[{index}]")
                raise
        return CommsNotifications(value=tuple(out))

    return read_notification, read_notifications


def _build(detailed_validation: bool) -> tuple[cattrs.Converter, _Readers]:
    conv = cattrs.Converter(detailed_validation=detailed_validation)
    hooks = _Hooks(conv)
    hooks.register()
    read_operation, read_unknown_operation, operation_hooks = _operation_readers(hooks)
    read_call = hooks.structure_attrs(Call)
    read_participant = hooks.structure_attrs(Participant)
    read_entity = _entity_reader(
        operation_hooks, read_unknown_operation, read_call, read_participant
    )
    read_notification, read_notifications = _notification_readers(read_entity)
    conv.register_structure_hook_func(lambda t: t is CommsOperation, read_operation)
    conv.register_structure_hook_func(lambda t: t is CommsNotification, read_notification)
    conv.register_structure_hook_func(lambda t: t is CommsNotifications, read_notifications)
    return conv, _Readers(
        operation=read_operation,
        entity=read_entity,
        notifications=read_notifications,
        call=lambda value: read_call(value, Call),
        participant=lambda value: read_participant(value, Participant),
    )


def make_converter(*, detailed_validation: bool = False) -> cattrs.Converter:
    """A new converter for every graphcomms model.

    ``converter.structure(data, CommsOperation)`` dispatches on ``@odata.type``; a
    subclass given as the type is read as that class. ``detailed_validation`` makes
    cattrs collect every error with its path, at some cost in speed; the module
    functions find the path anyway when something fails.
    """
    return _build(detailed_validation)[0]


_DEFAULT: Final = _build(detailed_validation=False)
#: The converter the module functions use.
CONVERTER: Final[cattrs.Converter] = _DEFAULT[0]
_READERS: Final[_Readers] = _DEFAULT[1]

#: :func:`structure_operation` without its error translation: it raises whatever the
#: reading raised. For the ingestion's hot path, which calls ``structure_operation``
#: again for the error when this one raises.
read_operation: Final = _READERS.operation


@lru_cache(maxsize=1)
def _detailed_readers() -> _Readers:
    return _build(detailed_validation=True)[1]


# --- errors -------------------------------------------------------------------------


def _locate(exc: BaseException) -> tuple[str, BaseException]:
    """The path (in wire names) and the innermost exception of the first failure."""
    path = ["$"]
    while True:
        # Notes are appended as the exception rises, so reversed is outermost first.
        for note in reversed(getattr(exc, _NOTES, ())):
            if isinstance(note, _Path):
                path.append(note)
            elif isinstance(note, AttributeValidationNote):
                path.append("." + _camel(note.name))
            elif isinstance(note, IterableValidationNote):
                path.append(f"[{note.index}]" if isinstance(note.index, int) else "[?]")
        if isinstance(exc, BaseValidationError) and exc.exceptions:
            exc = exc.exceptions[0]
            continue
        return "".join(path), exc


def _reason(exc: BaseException) -> str:
    # Only our own messages are quoted: Python's (int("..."), ...) may echo the value.
    if isinstance(exc, _Invalid):
        return str(exc)
    if isinstance(exc, KeyError):
        return "a required key is missing"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, (TypeError, AttributeError)):
        return "a value has the wrong JSON type"
    if isinstance(exc, ValueError):
        return "a value is not valid"
    return f"unexpected {type(exc).__name__}"


def _failure(
    what: str, payload: object, exc: Exception, retry: Callable[[_Readers], object]
) -> DeserializationError:
    if not isinstance(exc, BaseValidationError):
        # The fast converter does not track where; on this rare path, ask the slow one.
        try:
            retry(_detailed_readers())
        except Exception as detailed:
            exc = detailed
    where, leaf = _locate(exc)
    return DeserializationError(f"cannot read {what}: {_reason(leaf)} at {where}", payload=payload)


# --- the module API -----------------------------------------------------------------

_orjson_loads: Callable[[bytes | str], Any] | None
try:
    # orjson decodes a notification about three times faster than json; it is an
    # optional extra ("fast") because the core install stays small.
    from orjson import loads as _orjson_loads
except ImportError:  # pragma: no cover - depends on the extra
    _orjson_loads = None


def loads(body: bytes | str) -> Any:
    """Decode JSON (with orjson when the ``fast`` extra installed it, else ``json``);
    raises :class:`DeserializationError` (body on ``.payload``)."""
    if _orjson_loads is not None:
        try:
            return _orjson_loads(body)
        except (ValueError, TypeError):
            pass  # let the stdlib decoder say what is wrong, in the same words always
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        message = f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except UnicodeDecodeError:
        message = "invalid JSON: the body is not UTF-8, UTF-16 or UTF-32 text"
    except RecursionError:
        message = "invalid JSON: nested too deeply"
    except TypeError:
        message = f"invalid JSON: cannot decode a {type(body).__name__}"
    raise DeserializationError(message, payload=body)


def structure_operation(
    data: Mapping[str, Any], *, default: type[CommsOperation] = CommsOperation
) -> CommsOperation:
    """The operation subtype that ``@odata.type`` names (any casing, prefix optional).

    Without ``@odata.type``, ``default`` (the action's declared return type); with one
    graphcomms does not know, a base :class:`CommsOperation` whose ``odata_type`` keeps
    it. Raises :class:`DeserializationError`.
    """
    try:
        return _READERS.operation(data, default)
    except Exception as exc:
        raise _failure(
            "an operation", data, exc, lambda readers: readers.operation(data, default)
        ) from None


def structure_call(data: Mapping[str, Any]) -> Call:
    """A (possibly partial) :class:`Call`. Raises :class:`DeserializationError`."""
    try:
        return _READERS.call(data)
    except Exception as exc:
        raise _failure("a call", data, exc, lambda readers: readers.call(data)) from None


def structure_participant(data: Mapping[str, Any]) -> Participant:
    """A :class:`Participant`. Raises :class:`DeserializationError`."""
    try:
        return _READERS.participant(data)
    except Exception as exc:
        raise _failure(
            "a participant", data, exc, lambda readers: readers.participant(data)
        ) from None


def structure_entity(data: Any) -> object:
    """An operation, :class:`Call` or :class:`Participant` by ``@odata.type``.

    An unknown type whose name ends in ``Operation`` is a base :class:`CommsOperation`;
    any other unknown type, a missing type, or a non-object is returned as it is.
    Raises :class:`DeserializationError` when a known type does not fit.
    """
    try:
        return _READERS.entity(data, None)
    except Exception as exc:
        raise _failure("an entity", data, exc, lambda readers: readers.entity(data, None)) from None


def decode_notifications(body: bytes | str | Mapping[str, Any]) -> CommsNotifications:
    """The ``commsNotifications`` envelope Graph POSTs, as bytes, text or decoded JSON.

    Each ``resourceData`` becomes a tuple (object: one item, array: each, missing or
    null: none) of :func:`structure_entity` results; an item without ``@odata.type`` is
    read by its ``resourceUrl`` (``.../operations/...``, ``.../participants``, the call).
    Raises :class:`DeserializationError`, also for an envelope without a ``value`` array.
    """
    data = loads(body) if isinstance(body, (bytes, bytearray, str)) else body
    try:
        return _READERS.notifications(data, CommsNotifications)
    except Exception as exc:
        raise _failure(
            "notifications", data, exc, lambda readers: readers.notifications(data, None)
        ) from None


def unstructure(model: object) -> dict[str, Any]:
    """Graph's JSON for a model: camelCase keys, ``None`` omitted, ``@odata.type`` on
    every Graph object. A request model gives exactly its POST body; a :class:`Call`
    gives a create-call body."""
    body = CONVERTER.unstructure(model)
    if not isinstance(body, dict):
        raise TypeError(f"{type(model).__name__} is not a graphcomms model")
    return body
