"""Graph's calling resources as frozen attrs classes: pure data, no I/O, no client.

Attribute names are Graph's in snake_case (``created_date_time`` is
``createdDateTime``); the converter owns the camelCase wire names and the
``@odata.type`` strings. What holds for every model:

- ``None`` means Graph did not send the property. A notification often carries part of
  a resource; the call handle merges call snapshots, a tracker keeps the latest
  operation snapshot.
- An enum-typed field (``status``, ``state``, ``completion_reason``, ``tone``, ...) is
  a :class:`GraphEnum` member, matched in any casing; a value graphcomms does not know
  is kept as Graph's string (the field's type says ``| str``), never an error.
- Timestamps are timezone-aware :class:`~datetime.datetime` values, read from
  Graph's ISO 8601 strings (``Z`` or an offset, up to 7 fractional digits).
- The unknown-type fallback: an operation whose ``@odata.type`` graphcomms does not
  know is read as the type the action declared (``await call.play_prompt(...)``
  always gives a :class:`PlayPromptOperation`), or, where nothing was declared, as
  :class:`CommsOperation` with Graph's tag kept on ``odata_type``. A property
  graphcomms does not model is ignored; a value of the wrong JSON type raises
  :class:`~graphcomms.errors.DeserializationError`.
"""

from graphcomms.models._enums import *  # noqa: F403
from graphcomms.models._enums import __all__ as _enums_all
from graphcomms.models.calls import *  # noqa: F403
from graphcomms.models.calls import __all__ as _calls_all
from graphcomms.models.common import *  # noqa: F403
from graphcomms.models.common import __all__ as _common_all
from graphcomms.models.operations import *  # noqa: F403
from graphcomms.models.operations import __all__ as _operations_all
from graphcomms.models.requests import *  # noqa: F403
from graphcomms.models.requests import __all__ as _requests_all

__all__ = sorted(  # noqa: PLE0605  (a list, built from the submodules)
    [
        *_enums_all,
        *_calls_all,
        *_common_all,
        *_operations_all,
        *_requests_all,
    ]
)
