"""Graph's calling resources as frozen attrs classes: pure data, no I/O, no client.

Attribute names are Graph's in snake_case; the converter owns the camelCase wire names
and the ``@odata.type`` strings.
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
