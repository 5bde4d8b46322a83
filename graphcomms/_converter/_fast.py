"""A faster reader for a model, generated from an explicit plan.

The plain reader is cattrs's own generated function (``_hooks.structure_attrs`` with
``fast=False``); this one must return exactly what that one returns, and
``tests/test_converter.py::test_fast_reader_equals_the_plain_one*`` holds the two equal
on every recorded payload and on generated ones.

Why it exists: a frozen attrs class sets each field through ``object.__setattr__`` in
``__init__``, which costs more than the rest of reading an operation; the slot
descriptors set the same fields at C speed. The function is unrolled, and a nullable
field whose value is ``null`` or missing, an exact ``str``/``int``/``bool`` for a field
of that type, or an enum's exact wire value is set without calling a hook, because
each is what the hook would return. Measured on the ingest benchmark when it was
written: a completed playPrompt notification read in about half the time.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Any, Final

import attrs

from graphcomms._converter._errors import Invalid, note
from graphcomms._converter._scalars import StructureHook
from graphcomms._converter._wire import ADDITIONAL_DATA, unknown_properties
from graphcomms.models._base import EMPTY_DATA

__all__ = ["FieldPlan", "ReaderPlan", "compile_reader", "slot_fillable"]

_MISSING: Final = object()


@attrs.frozen
class FieldPlan:
    """How to read one field.

    ``hook(raw, type)`` reads a value that is present (and, when ``nullable``, not
    null). A nullable field reads ``None`` for null or missing without calling it;
    ``same`` is a class whose exact instances the hook returns unchanged, and
    ``members`` maps an enum's exact wire values to its members: both are taken inline.
    ``required`` fields raise ``KeyError`` when missing; others take ``default``.
    ``omit`` fields are never read (always ``default``).
    """

    name: str
    key: str
    hook: StructureHook | None
    type: Any
    default: Any = None
    required: bool = False
    nullable: bool = False
    same: type | None = None
    members: Mapping[str, Enum] | None = None
    omit: bool = False


@attrs.frozen
class ReaderPlan:
    """A class to read, what to call it in errors, its legacy keys, and its fields.

    ``known`` is set for a class that keeps unknown properties (``additional_data``):
    every key that is not one.
    """

    cls: type
    what: str
    legacy: tuple[tuple[str, str], ...]
    fields: tuple[FieldPlan, ...]
    known: frozenset[str] | None = None


def slot_fillable(cls: type[Any]) -> bool:
    """True when filling ``cls`` field by field is exactly what its ``__init__`` does:
    slotted, and no validators, converters, factories or init hooks (true of every model
    Graph sends; the request models, which validate, keep ``__init__``)."""
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


def compile_reader(plan: ReaderPlan) -> StructureHook:
    """The reading function for ``plan``: ``read(value, _)``."""
    names: dict[str, Any] = {
        "cls": plan.cls,
        "new": object.__new__,
        "Mapping": Mapping,
        "Invalid": Invalid,
        "note": note,
        "MISSING": _MISSING,
    }
    lines = [
        "def read(value, _=None):",
        "    if value.__class__ is not dict and not isinstance(value, Mapping):",
        f"        raise Invalid({plan.what + ' must be a JSON object'!r})",
        "    get = value.get",
    ]
    for old, current in plan.legacy:
        lines += [
            f"    if get({current!r}) is None and get({old!r}) is not None:",
            f"        value = {{**value, {current!r}: value[{old!r}]}}",
            "        get = value.get",
        ]
    lines.append("    obj = new(cls)")
    for index, field in enumerate(plan.fields):
        set_, hook, kind, default = f"set{index}", f"hook{index}", f"type{index}", f"d{index}"
        names[set_] = getattr(plan.cls, field.name).__set__
        names[default] = field.default
        if field.omit:
            lines.append(f"    {set_}(obj, {default})")
            continue
        names[hook] = field.hook
        names[kind] = field.type
        call = f"{hook}(raw, {kind})"
        key = field.key
        where = f".{key}"
        if field.nullable:
            lines.append(f"    raw = get({key!r})")
            if field.same is not None:
                names[f"same{index}"] = field.same
                lines.append(f"    if raw is None or raw.__class__ is same{index}:")
                lines.append(f"        {set_}(obj, raw)")
            elif field.members is not None:
                names[f"member{index}"] = field.members.get
                lines.append("    if raw is None:")
                lines.append(f"        {set_}(obj, None)")
                lines.append(
                    f"    elif raw.__class__ is str and (found := member{index}(raw)) is not None:"
                )
                lines.append(f"        {set_}(obj, found)")
            else:
                lines.append("    if raw is None:")
                lines.append(f"        {set_}(obj, None)")
            lines.append("    else:")
            lines += _guarded(f"{set_}(obj, {call})", where, indent=8)
            continue
        lines.append(f"    raw = get({key!r}, MISSING)")
        lines.append("    if raw is MISSING:")
        if field.required:
            lines.append(f"        missing = KeyError({key!r})")
            lines.append(f"        note(missing, {where!r})")
            lines.append("        raise missing")
        else:
            lines.append(f"        {set_}(obj, {default})")
        lines.append("    else:")
        lines += _guarded(f"{set_}(obj, {call})", where, indent=8)
    if plan.known is not None:
        lines.append(_additional_data(plan.cls, plan.known, names))
    lines.append("    return obj")
    source = "\n".join(lines)
    exec(compile(source, f"<graphcomms read {plan.cls.__name__}>", "exec"), names)  # noqa: S102
    read: StructureHook = names["read"]
    return read


def _additional_data(cls: type, known: frozenset[str], names: dict[str, Any]) -> str:
    """The line that fills ``additional_data``. The common object has no key outside
    the known ones, which one C-level call proves; only one that has goes through
    :func:`unknown_properties`, the plain reader's own function."""
    names["set_extra"] = getattr(cls, ADDITIONAL_DATA).__set__
    names["all_known"] = known.issuperset
    names["known"] = known
    names["unknown"] = unknown_properties
    names["EMPTY"] = EMPTY_DATA
    return "    set_extra(obj, EMPTY if all_known(value) else unknown(value, known))"


def _guarded(statement: str, where: str, *, indent: int) -> list[str]:
    """``statement``, noting ``where`` on anything it raises (free until it does)."""
    pad = " " * indent
    return [
        f"{pad}try:",
        f"{pad}    {statement}",
        f"{pad}except Exception as exc:",
        f"{pad}    note(exc, {where!r})",
        f"{pad}    raise",
    ]
