"""``ClientStats``: what an operator reads to see what a client is doing."""

from __future__ import annotations

import attrs

__all__ = ["ClientStats"]


@attrs.define(slots=True)
class ClientStats:
    """Counters of one client, read as ``client.stats``.

    Current sizes (they go up and down): ``pending``, ``early_pending``, ``live_calls``,
    ``untracked_calls``, ``kept_alive_calls``. Every other field counts since the client
    was made.
    """

    pending: int = 0
    """Operations being tracked now."""
    resolved: int = 0
    """Trackers resolved with a terminal snapshot that is a success."""
    failed: int = 0
    """Trackers resolved with a terminal snapshot that is not a success."""
    call_ended: int = 0
    """Trackers failed with ``CallEndedError`` (their call ended first)."""
    timed_out: int = 0
    """Trackers failed at their own deadline (``OperationTimeoutError``)."""
    closed: int = 0
    """Trackers failed because the client closed."""
    duplicates: int = 0
    """Operation notifications about finished work (redeliveries), ignored."""
    early_buffered: int = 0
    """Notifications for an operation not yet known, kept until it is."""
    early_applied: int = 0
    """Early notifications applied when their operation became known."""
    early_expired: int = 0
    """Early notifications dropped by age or by the buffer's size limit."""
    early_dropped: int = 0
    """Snapshots dropped because one unknown operation already had its limit buffered."""
    early_pending: int = 0
    """Early notifications held now."""
    late_results: int = 0
    """Terminal snapshots that arrived after their tracker's deadline (kept, reported)."""
    notifications: int = 0
    """Notification items fed."""
    unmatched: int = 0
    """Items about resources graphcomms does not follow, or naming nothing it knows."""
    bad_items: int = 0
    """Items that could not be read (logged), and bodies a source yielded that were
    not notifications at all.
    """
    oversized_contexts: int = 0
    """``clientContext`` values over Graph's 256 characters in notifications, ignored."""
    callback_errors: int = 0
    """User callbacks that raised (logged)."""
    reconciliations: int = 0
    """Read-backs (GET operation or call) for work Graph had gone silent about."""
    reconciled: int = 0
    """Trackers those read-backs resolved (lost notifications recovered)."""
    live_calls: int = 0
    """Live calls the bot created, answered, asked for or acts on, held now."""
    untracked_calls: int = 0
    """Handles of calls nobody here created, answered or asked for, held now (bounded)."""
    untracked_released: int = 0
    """Such handles released to keep within the bound."""
    kept_alive_calls: int = 0
    """Calls this client keeps alive now (the ones it created or answered, still live)."""
    keep_alives_sent: int = 0
    """keepAlives Graph accepted."""
    keep_alives_failed: int = 0
    """keepAlives that failed (throttled, 5xx, connection lost): each is tried again."""
    keep_alives_overdue: int = 0
    """Times a call went ``KeepAliveSettings.window`` (Graph's 45 minutes) without an
    accepted keepAlive (logged as an error): Graph may have ended it.
    """
    calls_found_gone: int = 0
    """Calls a keepAlive found gone (404): ended here, their operations failed."""
    tones_dropped: int = 0
    """DTMF tones dropped from a call's full tone buffer (``Limits.buffered_tones``)
    before ``collect_tones()`` or a ``tones()`` iterator read them."""
