"""Several bot instances behind one callback URL, on Redis (the ``redis`` extra).

::

    relay = Relay("rediss://:secret@redis:6380/0", app="ivr", instance=POD_NAME,
                  on_recovered=resume)
    async with CommsClient(token, callback_uri=PUBLIC_URL, fleet=relay) as client:
        ...  # mount NotificationReceiver(client, validator) as usual

Notifications reach the instance that waits for them whichever instance Graph's POST
reached; pending operations and owned calls survive a restart (they come back marked
``recovered``) and are adopted by a survivor when an instance does not come back. The
README's "Running several instances" gives the guarantees and what an outage loses.
"""

from graphcomms.errors import RelayUnavailableError
from graphcomms.fleet._relay import (
    IdentityTakenError,
    RecoveredCall,
    RecoveredOperation,
    Recovery,
    Relay,
)
from graphcomms.fleet._store import RelayStats

__all__ = [
    "IdentityTakenError",
    "RecoveredCall",
    "RecoveredOperation",
    "Recovery",
    "Relay",
    "RelayStats",
    "RelayUnavailableError",
]
