"""Saying what did not fit, and where, without ever quoting the payload.

Readers raise :class:`Invalid` (or whatever a parse raised) and, as the exception rises,
each reader that passes it on adds the wire name of where it was as a note (``.value``,
``[0]``). cattrs's own generated code does the same with its validation notes.
:func:`failure` turns the first failure into a :class:`DeserializationError` whose
message is ours: Python's own messages may echo a value, and a value may be a recording
access token.
"""

from __future__ import annotations

from typing import Final

from cattrs.errors import AttributeValidationNote, BaseValidationError, IterableValidationNote

from graphcomms._converter._wire import wire_name
from graphcomms.errors import DeserializationError

__all__ = ["Invalid", "failure", "note"]

_NOTES: Final = "__notes__"  # set by name: BaseException.add_note is Python 3.11+


class Invalid(ValueError):
    """A value does not fit. The message is ours and never quotes the value."""


class _Where(str):
    """A note that says where, in wire names (``.value[0]``)."""


def note(exc: BaseException, where: str) -> None:
    """Record on ``exc`` that it rose through ``where`` (``.key`` or ``[index]``)."""
    setattr(exc, _NOTES, [*getattr(exc, _NOTES, ()), _Where(where)])


def _locate(exc: BaseException) -> tuple[str, BaseException]:
    """The path (in wire names) and the innermost exception of the first failure."""
    path = ["$"]
    while True:
        # Notes are appended as the exception rises, so reversed is outermost first.
        for found in reversed(getattr(exc, _NOTES, ())):
            if isinstance(found, _Where):
                path.append(found)
            elif isinstance(found, AttributeValidationNote):
                path.append("." + wire_name(found.name))
            elif isinstance(found, IterableValidationNote):
                path.append(f"[{found.index}]" if isinstance(found.index, int) else "[?]")
        if isinstance(exc, BaseValidationError) and exc.exceptions:
            exc = exc.exceptions[0]
            continue
        return "".join(path), exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, Invalid):
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


def failure(what: str, payload: object, exc: BaseException) -> DeserializationError:
    """The error to raise (``from None``) for ``exc``, raised reading ``what``."""
    where, leaf = _locate(exc)
    return DeserializationError(f"cannot read {what}: {_reason(leaf)} at {where}", payload=payload)
