"""The client's settings, grouped as value objects: how operations are tracked, the
bounds on what notifications can make it hold, when a request is sent again, and how
the calls it owns are kept alive."""

from __future__ import annotations

import math
import random
from typing import Any

import attrs

__all__ = ["KeepAliveSettings", "Limits", "RetryPolicy", "TrackingSettings"]


def _seconds(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and (not value >= 0 or math.isinf(value)):  # NaN too
        raise ValueError(f"{attribute.name} must be a finite number >= 0, got {value!r}")


def _positive_seconds(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and (not value > 0 or math.isinf(value)):
        raise ValueError(f"{attribute.name} must be a finite number > 0, got {value!r}")


def _count(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be an int >= 1, got {value!r}")


@attrs.frozen(kw_only=True)
class TrackingSettings:
    """How the client follows operations to their end.

    - ``operation_timeout``: each tracker's own deadline in seconds (default none):
      after it the tracker fails with ``OperationTimeoutError``. Against real Graph,
      set one: a lost terminal notification can only be recovered by reading the
      operation back for the types Graph documents that for (see the README's
      Reliability section).
    - ``late_result_grace``: how long after a tracker ended its outcome is remembered,
      so that a redelivered notification counts as a duplicate, and a terminal one
      after the deadline is kept on ``tracker.late_operation`` and passed to
      ``on_late_result``.
    - ``reconcile_after``: a tracker Graph has been silent about for this long, or a
      call whose state someone awaits, is read back from Graph (``None``: never);
      each call at most once per ``reconcile_interval``.
    - ``callback_grace``: on ``aclose()``, how long callbacks already queued (done
      callbacks of the trackers the close fails, state and tone callbacks) may run
      before they are cancelled.
    """

    operation_timeout: float | None = attrs.field(default=None, validator=_positive_seconds)
    late_result_grace: float = attrs.field(default=300.0, validator=_seconds)
    reconcile_after: float | None = attrs.field(default=60.0, validator=_seconds)
    reconcile_interval: float = attrs.field(default=30.0, validator=_seconds)
    callback_grace: float = attrs.field(default=1.0, validator=_seconds)


@attrs.frozen(kw_only=True)
class Limits:
    """Bounds on what notifications can make a client hold; each has a counter in
    ``client.stats``.

    - ``early_notifications``: operations not yet known that notifications are kept
      for (the oldest go first; ``stats.early_expired``), each for ``early_ttl``
      seconds, each with at most ``early_snapshots_per_operation`` snapshots
      (``stats.early_dropped``).
    - ``finished_operations``: finished operations remembered for the grace window.
    - ``untracked_calls``: handles of calls that only notifications told the client
      about (incoming calls not yet answered, calls created elsewhere); the least
      recently heard of are released beyond it (``stats.untracked_released``).
    - ``ended_calls``: ended calls remembered, so a straggling notification is not
      taken for a new call.
    - ``buffered_tones``: DTMF tones kept per call, after ``subscribe_to_tone()``, until
      ``collect_tones()`` or a ``tones()`` iterator reads them; beyond it the oldest
      unread one is dropped (``stats.tones_dropped``, ``call.tones_dropped``).
    """

    early_notifications: int = attrs.field(default=10_000, validator=_count)
    early_snapshots_per_operation: int = attrs.field(default=16, validator=_count)
    early_ttl: float = attrs.field(default=60.0, validator=_seconds)
    finished_operations: int = attrs.field(default=100_000, validator=_count)
    untracked_calls: int = attrs.field(default=1_000, validator=_count)
    ended_calls: int = attrs.field(default=10_000, validator=_count)
    buffered_tones: int = attrs.field(default=256, validator=_count)


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When and how long the HTTP transport waits before sending again.

    What is sent again: a 429 (any method); a 503 for an idempotent method (GET, DELETE,
    ...) or with ``Retry-After``; a 504 for an idempotent method; a connection error
    before the request was sent, or after it for an idempotent method. An action POST
    that may have reached Graph is never re-sent. A 401 is sent once more with a fresh
    token, outside this policy. Nothing else is retried.

    ``max_attempts`` counts every try, the first included (1 turns retries off; the single
    re-send after a 401 with a refreshed token is not counted). ``max_delay`` is the
    longest single wait, ever: a longer ``Retry-After`` is cut to it. Without
    ``Retry-After`` the wait is ``base_delay * 2**(retry - 1)``. ``jitter`` spreads waits
    so that many clients throttled together do not come back together: backoff waits
    move by up to ``±jitter`` of themselves, ``Retry-After`` waits only upwards (by up to
    ``+jitter``) so we never come back sooner than the service asked (unless it asked
    for more than ``max_delay``).
    """

    max_attempts: int = attrs.field(default=4, validator=attrs.validators.ge(1))
    max_delay: float = attrs.field(default=30.0, validator=_seconds)
    base_delay: float = attrs.field(default=0.5, validator=_seconds)
    jitter: float = attrs.field(default=0.1, validator=[_seconds, attrs.validators.le(1.0)])

    def delay(self, retry: int, *, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first re-send)."""
        if retry_after is not None:
            wait = min(retry_after, self.max_delay) * (1.0 + rng.uniform(0.0, self.jitter))
        else:
            # Cap the exponent: 2.0**1100 overflows a float long before max_delay applies.
            exponent = min(retry - 1, 64)
            wait = min(self.base_delay * 2.0**exponent, self.max_delay)
            wait *= 1.0 + rng.uniform(-self.jitter, self.jitter)
        return max(0.0, min(wait, self.max_delay))


@attrs.frozen(kw_only=True)
class KeepAliveSettings:
    """How the client keeps the calls it owns alive.

    Graph ends a call that has had no ``POST .../keepAlive`` for 45 minutes, with
    ``408/8537``; it recommends one every 15 minutes (reference §9.2). The client sends
    one for every call it created or answered, for as long as the call is live, from one
    task: the calls' due times are spread over ``interval`` (the first one at random
    within it, each later one ``interval`` away, moved by up to ``±jitter`` of it), and
    at most ``max_in_flight`` keepAlives are on the wire at once.

    - ``enabled``: ``False`` sends none (the bot then calls ``call.keep_alive()``).
    - ``interval``: seconds between two keepAlives of one call (default 15 minutes).
    - ``window``: how long Graph keeps a call without one (45 minutes). A failed
      keepAlive (a 429 or 5xx the HTTP retries did not get past, a lost connection) is
      tried again after ``retry_delay`` seconds, doubling up to ``max_retry_delay``;
      when a call goes ``window`` seconds without an accepted one it is logged as an
      error and counted (``stats.keep_alives_overdue``), and tried on.
    - A keepAlive answered 404 means Graph has ended the call: it ends here too (its
      pending operations fail with ``CallEndedError``, its state waiters wake).
    """

    enabled: bool = True
    interval: float = attrs.field(default=900.0, validator=_positive_seconds)
    jitter: float = attrs.field(default=0.1, validator=[_seconds, attrs.validators.le(0.5)])
    window: float = attrs.field(default=2700.0, validator=_positive_seconds)
    retry_delay: float = attrs.field(default=30.0, validator=_positive_seconds)
    max_retry_delay: float = attrs.field(default=300.0, validator=_positive_seconds)
    max_in_flight: int = attrs.field(default=16, validator=_count)

    def __attrs_post_init__(self) -> None:
        if self.interval >= self.window:
            raise ValueError(
                f"interval ({self.interval} s) must be shorter than window ({self.window} s)"
            )
        if self.retry_delay > self.max_retry_delay:
            raise ValueError(
                f"retry_delay ({self.retry_delay} s) must not exceed "
                f"max_retry_delay ({self.max_retry_delay} s)"
            )
