"""The cattrs converter for every graphcomms model: hook factories, as in cattrs's docs.

- every attrs class: its fields renamed to Graph's camelCase keys (a hook *factory*,
  not attrs ``alias=``, which would make the Python constructors camelCase);
- ``CommsOperation`` and its subclasses: a tagged union on ``@odata.type`` whose default
  is the type asked for, and an unknown tag read as the base that keeps its tag;
- fields typed as a base class (media config, meeting info, prompt, call options):
  a tagged union with a default inferred from the keys;
- ``SomeEnum | str``: a member when Graph's value is known (any casing), else the str;
- ``tuple[X, ...]`` from an array (``null`` is empty), ``X | None``, the scalars;
- writing: camelCase keys, ``None`` left out, ``@odata.type`` on every Graph object.

``make_converter(fast=False)`` reads with cattrs's own generated functions: the plain
version that the fast readers of :mod:`._fast` must equal.
"""

from __future__ import annotations

import functools
import operator
import types
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import Enum
from typing import Any, Final, Union, get_args, get_origin

import attrs
import cattrs
from cattrs.errors import StructureHandlerNotFoundError
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from graphcomms._converter import _wire
from graphcomms._converter._errors import Invalid, note
from graphcomms._converter._fast import FieldPlan, ReaderPlan, compile_reader, slot_fillable
from graphcomms._converter._scalars import (
    StructureHook,
    enum_hook,
    enum_or_str_hook,
    structure_bool,
    structure_datetime,
    structure_int,
    structure_lenient_int,
    structure_plain_dict,
    structure_str,
    unstructure_datetime,
)
from graphcomms.models.common import ResultInfo
from graphcomms.models.operations import CommsOperation

__all__ = ["make_converter"]

_NONE_TYPE: Final = type(None)
_SAME_CLASS: Final = frozenset({str, int, bool})

#: How many distinct resultInfo values a converter keeps for reuse.
RESULT_INFO_CACHE_SIZE: Final = 256


def make_converter(*, fast: bool = True) -> cattrs.Converter:
    """A new converter for every graphcomms model.

    ``converter.structure(data, CommsOperation)`` dispatches on ``@odata.type``; a
    subclass given as the type is the default when the data carries no tag.
    ``fast=False`` reads with cattrs's generated code only (slower; the reference the
    fast readers are tested against). Every failure carries the path where it happened.
    """
    conv = cattrs.Converter(detailed_validation=True)
    factories = _Factories(conv, fast=fast)
    conv.register_structure_hook(str, structure_str)
    conv.register_structure_hook(int, structure_int)
    conv.register_structure_hook(bool, structure_bool)
    conv.register_structure_hook(datetime, structure_datetime)
    conv.register_unstructure_hook(datetime, unstructure_datetime)
    for enum_cls in _wire.model_enums():
        # Else singledispatch hands these str subclasses to the str hooks.
        conv.register_structure_hook(enum_cls, enum_hook(_wire.EnumTable(enum_cls)))
        conv.register_unstructure_hook(enum_cls, _enum_value)
    conv.register_structure_hook_func(_is_plain_dict, structure_plain_dict)
    # Registered after cattrs's own factories, so these win; the most specific last.
    conv.register_structure_hook_factory(_is_attrs_class, factories.structure_attrs)
    conv.register_structure_hook_factory(_is_homogeneous_tuple, factories.structure_tuple)
    conv.register_structure_hook_factory(_is_union, factories.structure_union)
    conv.register_structure_hook_factory(_is_polymorphic, factories.structure_polymorphic)
    conv.register_structure_hook_factory(_is_operation, factories.structure_operation)
    conv.register_unstructure_hook_factory(_is_attrs_class, factories.unstructure_attrs)
    return conv


def _enum_value(member: Enum) -> Any:
    return member.value


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


def _is_polymorphic(t: Any) -> bool:
    return t in _wire.POLYMORPHIC


def _is_operation(t: Any) -> bool:
    return isinstance(t, type) and issubclass(t, CommsOperation)


def _overrides(values: dict[str, Any]) -> dict[str, Any]:
    # make_dict_*_fn take overrides as **kwargs beside their own typed flags.
    return values


class _Factories:
    """The hook factories of one converter."""

    def __init__(self, conv: cattrs.Converter, *, fast: bool) -> None:
        self.conv = conv
        self.fast = fast
        self._readers: dict[type, StructureHook] = {}
        self._operations: _wire.TagTable[tuple[StructureHook, type]] | None = None
        self._unknown_operation: StructureHook | None = None

    # -- reading -----------------------------------------------------------------------

    def structure_attrs(self, cls: type[Any]) -> StructureHook:
        """``cls`` from a JSON object whose keys are its fields in camelCase.

        ``odata_type`` stays ``None``: the class already says what a known type is, so
        a structured operation equals one built in Python. Only the reader for unknown
        operation types fills it in (:meth:`structure_operation`).
        """
        read = self._readers.get(cls)
        if read is None:
            if self.fast and slot_fillable(cls):
                read = compile_reader(self.plan(cls))
                if cls is ResultInfo:
                    read = _interning(read)
            else:
                read = self._cattrs_reader(cls)
            self._readers[cls] = read
        return read

    def plan(self, cls: type[Any], *, keep_tag: bool = False) -> ReaderPlan:
        """What :func:`compile_reader` needs to read ``cls``, from its fields' types."""
        attrs.resolve_types(cls)
        lenient = _wire.LENIENT_INTEGERS.get(cls, frozenset())
        fields = []
        names = [a.name for a in attrs.fields(cls)]
        for a in attrs.fields(cls):
            if a.name == _wire.ADDITIONAL_DATA:
                continue
            if a.name == "odata_type":
                tag = FieldPlan(
                    name=a.name,
                    key=_wire.ODATA_TYPE,
                    hook=structure_str,
                    type=str,
                    nullable=True,
                    same=str,
                    omit=not keep_tag,
                )
                fields.append(tag)
                continue
            fields.append(self._field_plan(a, lenient=a.name in lenient))
        known = _wire.known_keys(cls, names) if _wire.ADDITIONAL_DATA in names else None
        return ReaderPlan(
            cls, _wire.type_name(cls), _wire.legacy_keys(cls), tuple(fields), known=known
        )

    def _field_plan(self, a: attrs.Attribute[Any], *, lenient: bool) -> FieldPlan:
        key = _wire.wire_name(a.name)
        required = a.default is attrs.NOTHING
        args = get_args(a.type) if _is_union(a.type) else ()
        if a.default is not None or _NONE_TYPE not in args:
            hook = structure_lenient_int if lenient else self.conv.get_structure_hook(a.type)
            return FieldPlan(
                name=a.name,
                key=key,
                hook=hook,
                type=a.type,
                default=None if required else a.default,
                required=required,
            )
        # `X | None` defaulting to None: the reader does the None, X's hook the rest.
        rest = tuple(t for t in args if t is not _NONE_TYPE)
        inner: Any = functools.reduce(operator.or_, rest)
        hook = structure_lenient_int if lenient else self.conv.get_structure_hook(inner)
        enum = _enum_of(rest)
        return FieldPlan(
            name=a.name,
            key=key,
            hook=hook,
            type=inner,
            nullable=True,
            same=inner if inner in _SAME_CLASS else None,
            members=_wire.EnumTable(enum).exact if enum is not None else None,
        )

    def _cattrs_reader(self, cls: type[Any], *, keep_tag: bool = False) -> StructureHook:
        lenient = _wire.LENIENT_INTEGERS.get(cls, frozenset())
        overrides: dict[str, Any] = {}
        names = [a.name for a in attrs.fields(cls)]
        for a in attrs.fields(cls):
            if a.name == _wire.ADDITIONAL_DATA:
                overrides[a.name] = override(omit=True)
            elif a.name == "odata_type":
                overrides[a.name] = (
                    override(rename=_wire.ODATA_TYPE) if keep_tag else override(omit=True)
                )
            elif a.name in lenient:
                overrides[a.name] = override(
                    rename=_wire.wire_name(a.name), struct_hook=structure_lenient_int
                )
            else:
                overrides[a.name] = override(rename=_wire.wire_name(a.name))
        generated = make_dict_structure_fn(cls, self.conv, **_overrides(overrides))
        what = _wire.type_name(cls)
        legacy = _wire.legacy_keys(cls)
        known = _wire.known_keys(cls, names) if _wire.ADDITIONAL_DATA in names else None

        def structure(value: Any, _: Any = None) -> Any:
            # The generated code would take a string's characters for keys.
            if not isinstance(value, Mapping):
                raise Invalid(f"{what} must be a JSON object")
            for old, new in legacy:
                if value.get(new) is None and value.get(old) is not None:
                    value = {**value, new: value[old]}
            obj = generated(value, cls)
            if known is None:
                return obj
            # The reference: every key looked at, whatever the fast reader skips.
            extra = _wire.unknown_properties(value, known)
            return attrs.evolve(obj, additional_data=extra) if extra else obj

        return structure

    def structure_operation(self, cls: type[CommsOperation]) -> StructureHook:
        """A tagged union on ``@odata.type`` with ``cls`` as its default: the subclass of
        ``cls`` the tag names (any casing, prefix optional), else ``cls``. Asked for the
        base, an unknown tag reads as the base keeping its tag (``odata_type``)."""
        by_tag, unknown = self._operation_readers()
        read_default = self.structure_attrs(cls)
        # Graph's own spelling of each tag this default may narrow to: one dict lookup
        # on the common path; any other spelling goes through the TagTable.
        exact = {
            _wire.tag_of(t): (self.structure_attrs(t), t)
            for t in _wire.OPERATION_TYPES
            if issubclass(t, cls)
        }

        def structure(value: Any, _: Any = None) -> Any:
            if value.__class__ is not dict and not isinstance(value, Mapping):
                raise Invalid("an operation must be a JSON object")
            tag = value.get(_wire.ODATA_TYPE)
            if tag is None:
                return read_default(value, cls)
            found = exact.get(tag)
            if found is not None:
                return found[0](value, found[1])
            if not isinstance(tag, str):
                raise Invalid("@odata.type must be a string")
            found = by_tag.get(tag)
            if found is not None and issubclass(found[1], cls):
                return found[0](value, found[1])
            if found is None and cls is CommsOperation:
                return unknown(value, CommsOperation)
            return read_default(value, cls)

        return structure

    def _operation_readers(
        self,
    ) -> tuple[_wire.TagTable[tuple[StructureHook, type]], StructureHook]:
        """Every operation class's reader by tag, and the reader for unknown tags."""
        if self._operations is None or self._unknown_operation is None:
            self._operations = _wire.TagTable(
                {t: (self.structure_attrs(t), t) for t in _wire.OPERATION_TYPES}
            )
            self._unknown_operation = (
                compile_reader(self.plan(CommsOperation, keep_tag=True))
                if self.fast
                else self._cattrs_reader(CommsOperation, keep_tag=True)
            )
        return self._operations, self._unknown_operation

    def structure_polymorphic(self, base: type) -> StructureHook:
        return self._tagged_union(_wire.POLYMORPHIC[base])

    def _tagged_union(self, spec: _wire.Polymorphic) -> StructureHook:
        """The class ``@odata.type`` names, else one inferred from the keys."""
        readers = {cls: self.structure_attrs(cls) for cls in spec.classes}
        by_tag = _wire.TagTable({cls: cls for cls in spec.classes})
        infer, unknown = spec.untagged, spec.unknown
        what = _wire.type_name(spec.classes[0])

        def structure(value: Any, _: Any = None) -> Any:
            if not isinstance(value, Mapping):
                raise Invalid(f"{what} must be a JSON object")
            tag = value.get(_wire.ODATA_TYPE)
            cls = (by_tag.get(tag) or unknown) if isinstance(tag, str) else infer(value)
            return readers[cls](value, cls)

        return structure

    def structure_tuple(self, t: Any) -> StructureHook:
        """``tuple[X, ...]`` from a JSON array; cattrs's own would take a string's
        characters for items."""
        item_type = get_args(t)[0]
        item_hook = self.conv.get_structure_hook(item_type)

        def structure(value: Any, _: Any = None) -> tuple[Any, ...]:
            if value is None:  # a null collection is an empty one
                return ()
            if not isinstance(value, (list, tuple)):
                raise Invalid("expected a JSON array")
            items = []
            for index, item in enumerate(value):
                try:
                    items.append(item_hook(item, item_type))
                except Exception as exc:
                    note(exc, f"[{index}]")
                    raise
            return tuple(items)

        return structure

    def structure_union(self, t: Any) -> StructureHook:
        """The unions the models use: ``SomeEnum | str``, ``X | None`` and the call
        options. Any other is refused when its hook is built, never per value."""
        args = get_args(t)
        optional = _NONE_TYPE in args
        rest = tuple(a for a in args if a is not _NONE_TYPE)
        inner: Any
        enum = _enum_of(rest)
        if enum is not None:
            inner, inner_hook = t, enum_or_str_hook(_wire.EnumTable(enum))
        elif frozenset(rest) in _wire.POLYMORPHIC_UNIONS:
            inner = t
            inner_hook = self._tagged_union(_wire.POLYMORPHIC_UNIONS[frozenset(rest)])
        elif len(rest) == 1:
            inner = rest[0]
            inner_hook = self.conv.get_structure_hook(inner)
        else:
            raise StructureHandlerNotFoundError(f"graphcomms reads no union {t!r}", t)
        if not optional:
            return inner_hook

        def structure_optional(value: Any, _: Any = None) -> Any:
            return None if value is None else inner_hook(value, inner)

        return structure_optional

    # -- writing -----------------------------------------------------------------------

    def unstructure_attrs(self, cls: type[Any]) -> Callable[[Any], Any]:
        """Graph's JSON for ``cls``: camelCase keys, ``None`` fields left out, and an
        ``@odata.type`` first unless ``cls`` is a request body."""
        conv = self.conv
        overrides = {
            a.name: override(omit=True)
            if a.name in ("odata_type", _wire.ADDITIONAL_DATA)
            else override(rename=_wire.wire_name(a.name), omit_if_default=a.default is None)
            for a in attrs.fields(cls)
        }
        open_type = any(a.name == _wire.ADDITIONAL_DATA for a in attrs.fields(cls))
        generated = make_dict_unstructure_fn(cls, conv, **_overrides(overrides))
        tag = _wire.tag_of(cls) if _wire.is_tagged(cls) else None
        # Only the base keeps a tag of its own: that of an operation type we do not know.
        keeps_own_tag = cls is CommsOperation

        def unstructure(obj: Any) -> Any:
            if obj.__class__ is not cls:  # declared as a base, holding a subclass
                return conv.unstructure(obj, obj.__class__)
            body = generated(obj)
            if open_type and obj.additional_data:
                # What Graph sent and graphcomms does not model goes back; a field wins.
                extra = conv.unstructure(dict(obj.additional_data))
                body = {**extra, **body}
                if tag is not None:
                    body.pop(_wire.ODATA_TYPE, None)  # the class says what it is
            if tag is None:
                return body
            return {_wire.ODATA_TYPE: (keeps_own_tag and obj.odata_type) or tag, **body}

        return unstructure


def _enum_of(types_: tuple[Any, ...]) -> type[Enum] | None:
    """The enum of a ``SomeEnum | str`` union's members, else ``None``."""
    if len(types_) == 2 and str in types_:
        other = types_[0] if types_[1] is str else types_[1]
        if isinstance(other, type) and issubclass(other, Enum):
            return other
    return None


def _interning(read: StructureHook) -> StructureHook:
    """``read`` for ResultInfo, reusing one frozen instance per (code, subcode, message).

    A handful of those triples (200/0 "Action completed successfully." above all) make
    up nearly every resultInfo Graph sends, so most notifications skip building one.
    Only an exact int code and subcode and a str message are keyed: equal keys then
    read to equal objects (``True == 1`` would not); and only when the object holds
    nothing but them and its tag, so a property graphcomms does not know is read, and
    kept, every time (two length checks, not a comparison of every key with a set: a
    fifth of the cost). The cache stops growing at its size; what does not fit is
    read as before.
    """
    cache: dict[tuple[Any, Any, Any], Any] = {}
    tag = _wire.ODATA_TYPE

    def structure(value: Any, _: Any = None) -> Any:
        if value.__class__ is dict:
            code, subcode, message = value.get("code"), value.get("subcode"), value.get("message")
            if (
                code.__class__ is int
                and subcode.__class__ is int
                and message.__class__ is str
                # Nothing else but the tag: then no property graphcomms does not know.
                and ((size := len(value)) == 3 or (size == 4 and tag in value))
            ):
                key = (code, subcode, message)
                found = cache.get(key)
                if found is None:
                    found = read(value, ResultInfo)
                    if len(cache) < RESULT_INFO_CACHE_SIZE:
                        cache[key] = found
                return found
        return read(value, ResultInfo)

    return structure
