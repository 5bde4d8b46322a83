"""What the notifications so far say about one call: a pure projection.

No I/O, no asyncio, no callbacks: :class:`CallProjection` takes call snapshots and
rosters in the order they arrive and says what changed. The call handle publishes that
to the bot. Graph delivers out of order at times, so the projection never lets a late
notification undo a newer one: nothing follows ``terminated``; a late ``establishing``
does not regress an established call; a tone is delivered once per ``sequenceId``,
late or not, but a late one does not replace the newer ``toneInfo``; a participant's
older record (``rosterSequenceNumber``) does not overwrite its newer one.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Final, NamedTuple

import attrs

from graphcomms.models import Call, CallState, ChangeType, Participant, ToneInfo

__all__ = ["CallChange", "CallProjection"]

#: Tones remembered per call for de-duplication; a call has few.
TONES_REMEMBERED: Final = 1024

# Graph may deliver `establishing` after `established`; these never follow it.
_BEFORE_ESTABLISHED: Final = frozenset(
    {CallState.INCOMING, CallState.ESTABLISHING, CallState.RINGING}
)


class CallChange(NamedTuple):
    """What one snapshot changed: the call's new snapshot when its state changed (else
    ``None``), and the tone it carried when that tone is new (else ``None``)."""

    state_changed: Call | None
    tone: ToneInfo | None


_NOTHING: Final = CallChange(None, None)


class CallProjection:
    """One call's latest snapshot and roster, as notifications describe them."""

    __slots__ = ("_latest_tone", "_tones_order", "_tones_seen", "participants", "snapshot")

    def __init__(self, snapshot: Call) -> None:
        self.snapshot = snapshot
        #: The roster as last reported, by participant id.
        self.participants: dict[str, Participant] = {}
        self._tones_seen: set[int] = set()
        self._tones_order: deque[int] = deque()
        self._latest_tone = -1

    @property
    def ended(self) -> bool:
        return self.snapshot.state is CallState.TERMINATED

    def apply(self, change: ChangeType | str, update: Call) -> CallChange:
        """Lay a (partial) snapshot over the known one."""
        old = self.snapshot
        if old.state is CallState.TERMINATED:
            return _NOTHING  # nothing follows the end; a straggler must not revive the call
        new_state = update.state
        if change is ChangeType.DELETED and new_state is None:
            update = attrs.evolve(update, state=CallState.TERMINATED)
        elif (
            new_state in _BEFORE_ESTABLISHED
            and old.state is not None
            and old.state not in _BEFORE_ESTABLISHED
        ):
            update = attrs.evolve(update, state=None)  # a late `establishing`: keep the newer
        tone = update.tone_info
        new_tone = None
        if tone is not None:
            new_tone = tone if self._first_time(tone) else None
            seq = tone.sequence_id
            if seq is not None:
                if seq < self._latest_tone:
                    update = attrs.evolve(update, tone_info=None)  # keep the newer one
                else:
                    self._latest_tone = seq
        snapshot = old.merged(update)
        self.snapshot = snapshot
        return CallChange(snapshot if snapshot.state != old.state else None, new_tone)

    def apply_roster(
        self, participants: Sequence[Participant], *, delta: bool, deleted: bool
    ) -> None:
        """A roster notification. Without delta rosters Graph sends the whole roster, so
        it replaces the known one. ``rosterSequenceNumber`` says when each participant
        last changed, so a late, older record of a participant never overwrites a newer
        one (the number is per participant: a current roster may carry old numbers)."""
        full = not delta and not deleted
        before = self.participants
        after = {} if full else before  # a full roster replaces, a delta updates in place
        for p in participants:
            if p.id is None:
                continue
            old = before.get(p.id)
            if old is not None and _older(p, old):
                if full:
                    after[p.id] = old
            elif deleted or p.removed_state is not None:
                after.pop(p.id, None)
            else:
                after[p.id] = p
        self.participants = after

    def _first_time(self, tone: ToneInfo) -> bool:
        """True the first time a ``sequenceId`` is seen (always, without one)."""
        seq = tone.sequence_id
        if seq is None:
            return True
        if seq in self._tones_seen:
            return False
        self._tones_seen.add(seq)
        self._tones_order.append(seq)
        if len(self._tones_order) > TONES_REMEMBERED:
            self._tones_seen.discard(self._tones_order.popleft())
        return True


def _older(update: Participant, known: Participant) -> bool:
    """True when ``update`` is an older record of ``known``'s participant."""
    new, old = update.roster_sequence_number, known.roster_sequence_number
    return new is not None and old is not None and new < old
