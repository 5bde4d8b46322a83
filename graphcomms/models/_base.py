"""What every model shares: the properties Graph sent that graphcomms does not model.

Graph's resources are open types, and Microsoft adds properties between releases
(reference §5.8). A property graphcomms has no field for is kept, as the decoded JSON
it was, on ``additional_data`` (Kiota's name for the same thing), and written back when
the model is sent: a request model's ``additional_data`` is how a bot sends a parameter
graphcomms does not know yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, NoReturn

import attrs

__all__ = ["EMPTY_DATA", "AdditionalData", "GraphObject"]


class AdditionalData(dict[str, Any]):
    """The read-only ``dict`` graphcomms keeps unknown properties in. A dict rather
    than a ``MappingProxyType``, which cannot be pickled or deep-copied (and so would
    make the models it sits on unpicklable)."""

    __slots__ = ()

    def _read_only(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("additional_data is read-only: build a new model (attrs.evolve)")

    __setitem__ = __delitem__ = __ior__ = _read_only
    clear = pop = popitem = setdefault = update = _read_only

    def __reduce__(self) -> tuple[type[AdditionalData], tuple[dict[str, Any]]]:
        return type(self), (dict(self),)  # dict.__init__ fills it: no __setitem__ call

    def __repr__(self) -> str:
        return f"AdditionalData({dict.__repr__(self)})"


#: The ``additional_data`` of a model that has none: one shared, read-only mapping.
EMPTY_DATA: Final[Mapping[str, Any]] = AdditionalData()


@attrs.frozen(kw_only=True)
class GraphObject:
    """Base of every model.

    ``additional_data`` holds the properties Graph sent that no field of the model names,
    keyed by Graph's own (camelCase) names, values as decoded JSON; OData annotations
    (``@odata.id``, ``@odata.etag``, ...) are about the payload, not the resource, and
    are not kept. Writing a model puts them back (a field of the model wins over a key
    of the same name). It takes part in ``==`` (two snapshots that differ there differ)
    but not in ``hash`` (its values may be JSON lists and objects), and stays out of
    ``repr``: a property graphcomms does not know may be a secret.
    """

    additional_data: Mapping[str, Any] = attrs.field(default=EMPTY_DATA, repr=False, hash=False)
