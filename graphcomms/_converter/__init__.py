"""The one place that turns Graph's JSON into models and back.

- :mod:`._wire`: Graph's wire knowledge (key names, ``@odata.type`` tags, legacy keys,
  enum tables, untagged polymorphic objects);
- :mod:`._hooks`: the cattrs converter built from it, as hook factories;
- :mod:`._fast`: the faster generated readers, fed an explicit plan, beside the plain
  cattrs ones they must equal;
- :mod:`._errors`: what did not fit and where, never quoting the payload.

Reading is lenient, because Graph is inconsistent (reference §5.8): a property no field
names is kept on the model's ``additional_data`` (and written back), ``@odata.*``
annotations are ignored, enums match case-insensitively and keep a value they do not
know as a plain ``str``, ``resultInfo`` codes may be strings, keys may use legacy
spellings. What still does not fit raises :class:`DeserializationError`, whose
message says what and where but never quotes the payload (it may hold a recording
access token); the payload itself is on ``.payload``.

Writing produces Graph's own shapes: camelCase keys, no ``None`` values, an
``@odata.type`` on every Graph object, none on a request body itself, and each model's
``additional_data`` beside its fields (a field wins over a key of the same name).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar, overload

import cattrs

from graphcomms._converter._errors import failure
from graphcomms._converter._hooks import make_converter
from graphcomms.models.calls import Call, Participant
from graphcomms.models.operations import CommsOperation

__all__ = [
    "CONVERTER",
    "make_converter",
    "structure_call",
    "structure_operation",
    "structure_participant",
    "unstructure",
]

OpT = TypeVar("OpT", bound=CommsOperation)

#: The converter the module functions use.
CONVERTER: Final[cattrs.Converter] = make_converter()

_read_call: Final = CONVERTER.get_structure_hook(Call)
_read_participant: Final = CONVERTER.get_structure_hook(Participant)
_operation_readers: dict[type[CommsOperation], Callable[[Any, Any], Any]] = {}


@overload
def structure_operation(data: Mapping[str, Any]) -> CommsOperation: ...


@overload
def structure_operation(data: Mapping[str, Any], default: type[OpT]) -> OpT: ...


def structure_operation(
    data: Mapping[str, Any], default: type[CommsOperation] = CommsOperation
) -> CommsOperation:
    """An operation of ``default``'s type, or of the subtype ``@odata.type`` names (any
    casing, prefix optional). A tag that names no subtype of ``default`` is read as
    ``default``: what an action returns stays the type it declares. With the base
    :class:`CommsOperation` as ``default``, an unknown tag reads as the base, keeping
    the tag on ``odata_type``. Raises :class:`DeserializationError`."""
    read = _operation_readers.get(default)
    if read is None:
        read = _operation_readers[default] = CONVERTER.get_structure_hook(default)
    try:
        operation: CommsOperation = read(data, default)
    except Exception as exc:
        raise failure("an operation", data, exc) from None
    return operation


def structure_call(data: Mapping[str, Any]) -> Call:
    """A (possibly partial) :class:`Call`. Raises :class:`DeserializationError`."""
    try:
        call: Call = _read_call(data, Call)
    except Exception as exc:
        raise failure("a call", data, exc) from None
    return call


def structure_participant(data: Mapping[str, Any]) -> Participant:
    """A :class:`Participant`. Raises :class:`DeserializationError`."""
    try:
        participant: Participant = _read_participant(data, Participant)
    except Exception as exc:
        raise failure("a participant", data, exc) from None
    return participant


def unstructure(model: object) -> dict[str, Any]:
    """Graph's JSON for a model: camelCase keys, ``None`` omitted, ``@odata.type`` on
    every Graph object. A request model gives exactly its POST body; a :class:`Call`
    gives a create-call body."""
    body = CONVERTER.unstructure(model)
    if not isinstance(body, dict):
        raise TypeError(f"{type(model).__name__} is not a graphcomms model")
    return body
