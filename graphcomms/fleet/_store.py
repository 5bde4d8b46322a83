"""Redis keys, the circuit breaker, and the counters of a relay.

Every key of one app shares the braced prefix ``gc:{app}:``, so a Redis Cluster keeps
them in one slot (the relay's pipelines and scripts touch several at once).
"""

from __future__ import annotations

import time
from typing import Any

import attrs

from graphcomms.errors import RelayUnavailableError

__all__ = ["Breaker", "Keys", "RelayStats", "text"]

GROUP = "owner"


def text(value: Any) -> str:
    """A Redis reply's string (redis-py answers bytes unless asked to decode)."""
    return value.decode() if isinstance(value, bytes) else str(value)


class Keys:
    """The key names of one app (``gc:{app}:...``)."""

    def __init__(self, app: str) -> None:
        self.prefix = f"gc:{{{app}}}:"
        #: Sorted set: instance id -> its lease's expiry (ms since the epoch).
        self.live = self.prefix + "live"
        #: Hash: incarnation ("iid.gen") -> the instance that adopted its work.
        self.adopted = self.prefix + "adopted"

    def lock(self, iid: str) -> str:
        return f"{self.prefix}lock:{iid}"

    def generation(self, iid: str) -> str:
        return f"{self.prefix}gen:{iid}"

    def inbox(self, iid: str) -> str:
        return f"{self.prefix}inbox:{iid}"

    def state(self, iid: str) -> str:
        return f"{self.prefix}state:{iid}"

    def adoptions(self, iid: str) -> str:
        """Set: the instances whose inboxes ``iid`` adopted (it reads them too)."""
        return f"{self.prefix}adoptions:{iid}"

    def call(self, key: str) -> str:
        return f"{self.prefix}call:{key}"

    def inbox_owner(self, stream: str) -> str:
        return stream.rsplit(":", 1)[1]


@attrs.define
class RelayStats:
    """Counters of one relay, read as ``relay.stats`` (current sizes: ``persist_pending``)."""

    #: Items applied here at once by the receiving webhook (this instance owns them).
    local_items: int = 0
    #: Items handed to another instance's inbox (XADD before the webhook's 202).
    forwarded_items: int = 0
    #: Of those, items read from this instance's inbox that were another's (its
    #: sender's view was stale, or this instance is back after its adoption), passed
    #: on once to their owner.
    rerouted_items: int = 0
    #: Items naming an owner that has no inbox in this fleet (a name no instance
    #: runs under): applied here, where they are unmatched; no stream is created.
    stranger_items: int = 0
    #: Items that could not be handed over (Redis unreachable, breaker open): 503.
    forward_failed: int = 0
    #: Inbox entries read and applied here (each one webhook body's items for us).
    inbox_entries: int = 0
    #: Items those entries held.
    inbox_items: int = 0
    #: Inbox entries seen again before their acknowledgement and skipped.
    inbox_duplicates: int = 0
    #: Inbox entries acknowledged and deleted.
    inbox_acked: int = 0
    #: Times the inbox reader lost Redis and started again from its pending entries.
    reader_restarts: int = 0
    #: Owner look-ups of calls this instance does not track (one GET each, cached).
    owner_lookups: int = 0
    #: Records written or deleted in Redis by the write-behind flusher.
    persisted: int = 0
    #: Records waiting to be written now (bounded by ``max_pending_writes``).
    persist_pending: int = 0
    #: Records not persisted because the write-behind queue was full.
    persist_dropped: int = 0
    #: Actions sent before their record was stored (Redis slow or away).
    persist_late: int = 0
    #: Flushes that failed (retried with the next one).
    persist_errors: int = 0
    #: Pending operations and owned calls recovered after a restart or by adoption.
    recovered_operations: int = 0
    recovered_calls: int = 0
    #: Records that could not be read back (skipped, logged).
    bad_records: int = 0
    #: Lost instances whose work this one adopted.
    adoptions: int = 0
    #: Recovered operations read back from Graph at once (where Graph serves them).
    read_backs: int = 0
    #: Redis commands that failed (connection refused, timeout, error reply).
    redis_errors: int = 0
    #: Times the circuit breaker opened (commands refused for ``breaker_cooldown``).
    breaker_opened: int = 0
    #: Heartbeats that found this instance's lock held by another process.
    identity_lost: int = 0
    #: Times a survivor adopted this instance's work while it ran, cut off from Redis
    #: for longer than ``adopt_after``: that work is the survivor's now (its outcomes
    #: go there), so restart this process; a liveness probe can watch this counter.
    adopted_while_away: int = 0


class Breaker:
    """Opens after ``threshold`` consecutive Redis errors; while open (``cooldown``
    seconds) every guarded call fails at once with ``RelayUnavailableError``."""

    def __init__(self, stats: RelayStats, *, threshold: int, cooldown: float) -> None:
        self._stats = stats
        self._threshold = threshold
        self._cooldown = cooldown
        self._failures = 0
        self._open_until = 0.0

    @property
    def open(self) -> bool:
        return time.monotonic() < self._open_until

    def check(self) -> None:
        if self._open_until and time.monotonic() < self._open_until:
            raise RelayUnavailableError("the fleet's Redis is unavailable (circuit open)")

    def succeeded(self) -> None:
        self._failures = 0
        self._open_until = 0.0

    def failed(self) -> None:
        self._stats.redis_errors += 1
        self._failures += 1
        if self._failures >= self._threshold and not self.open:
            self._open_until = time.monotonic() + self._cooldown
            self._stats.breaker_opened += 1
