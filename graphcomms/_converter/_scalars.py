"""Reading JSON scalars as Graph sends them: strings, integers that may be strings,
booleans, .NET timestamps, and enums that may hold values graphcomms does not know.

Every hook takes ``(value, type)``, as cattrs calls it, and raises :class:`Invalid`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any, Final

from graphcomms._converter._errors import Invalid
from graphcomms._converter._wire import EnumTable, type_name

__all__ = [
    "StructureHook",
    "enum_hook",
    "enum_or_str_hook",
    "structure_bool",
    "structure_datetime",
    "structure_int",
    "structure_lenient_int",
    "structure_plain_dict",
    "structure_str",
    "unstructure_datetime",
]

StructureHook = Callable[[Any, Any], Any]


def structure_str(value: Any, _: Any = None) -> str:
    if isinstance(value, str):
        # An enum member is a str too: its value, not its repr.
        return value if value.__class__ is str else str.__str__(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise Invalid("expected a string")


def structure_int(value: Any, _: Any = None) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise Invalid("expected an integer")


def structure_lenient_int(value: Any, _: Any = None) -> int | None:
    """``resultInfo`` codes: Graph sends ``"200"`` at times. A code that is not a number
    at all becomes ``None`` rather than losing the whole notification: the operation
    still resolves on its status and completionReason."""
    if value is None:
        return None
    try:
        return structure_int(value)
    except Invalid:
        return None


def structure_bool(value: Any, _: Any = None) -> bool:
    if value is True or value is False:
        return value
    if isinstance(value, str):
        lowered = value.lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    raise Invalid("expected a boolean")


def structure_plain_dict(value: Any, _: Any = None) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise Invalid("expected a JSON object")
    return dict(value)


# .NET writes 7 fractional digits and "Z"; Python 3.10's fromisoformat takes neither.
_DATETIME: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?"
    r"\s*(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)


def _parse_datetime(text: str) -> datetime | None:
    """An aware datetime from ISO-8601 text (UTC when no offset is given), or ``None``.

    ``datetime.fromisoformat`` reads Graph's spelling from Python 3.11 at C speed (the
    pattern below cost a playPrompt notification about a third of its instructions,
    for its two timestamps); what it refuses (everything on 3.10, surrounding blanks)
    goes to the pattern, and where both read a string they agree
    (``test_converter.py::test_datetime_readers_agree``).
    """
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return parse_datetime_by_pattern(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def parse_datetime_by_pattern(text: str) -> datetime | None:
    """:func:`_parse_datetime` by the ISO-8601 pattern alone: the plain version."""
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


def structure_datetime(value: Any, _: Any = None) -> datetime | None:
    """Timestamps are informational, so an unreadable one is ``None`` rather than a lost
    notification."""
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        return _parse_datetime(value)
    return None


def unstructure_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def enum_or_str_hook(table: EnumTable) -> StructureHook:
    """``SomeEnum | str``: a member, matched ignoring case, else the string as sent."""
    member = table.member
    enum_cls = table.enum
    what = type_name(enum_cls)

    def structure(value: Any, _: Any = None) -> Enum | str:
        if isinstance(value, str):
            found = member(value)
            return found if found is not None else structure_str(value)
        raise Invalid(f"expected a string for {what}")

    return structure


def enum_hook(table: EnumTable) -> StructureHook:
    """A bare enum type: matched ignoring case; no string to fall back to."""
    member = table.member
    what = type_name(table.enum)

    def structure(value: Any, _: Any = None) -> Enum:
        found = member(value) if isinstance(value, str) else None
        if found is None:
            raise Invalid(f"not a known {what}")
        return found

    return structure
