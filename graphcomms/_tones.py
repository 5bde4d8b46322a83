"""DTMF after ``subscribeToTone``: the call's buffer of tones nobody has read yet, the
``tones()`` iterator over it, and ``collect_tones``.

**The buffer.** From the moment ``subscribe_to_tone()`` is sent, every new tone of the
call (each ``sequenceId`` once; the projection in ``_callstate`` drops repeats) is kept
in the call's :class:`ToneBuffer` until a *reader* takes it: ``collect_tones`` or a
``tones()`` iterator. ``on_tone`` callbacks only watch: they see every tone and take
none. The buffer holds ``Limits.buffered_tones`` tones; beyond that the oldest unread
one is dropped and counted (``client.stats.tones_dropped``, ``call.tones_dropped``). It
is kept in ``sequenceId`` order, so a tone Graph delivered late takes its place among
the unread ones.

**Readers.** ``collect_tones`` takes tones from the front of the buffer. A ``tones()``
iterator first yields what the buffer holds when it is made, then every tone that
arrives while it lives (all iterators see those, as before); each tone it yields is
taken from the buffer, with every unread tone before it. So a menu loop written with
a fresh iterator per menu, or with ``collect_tones``, sees each key once, and keys the
caller typed before the loop reached its read are not lost.

**Reordering.** Graph documents ``sequenceId`` as the order of tones. ``collect_tones``
keeps what it took in that order; when the tones that would end the collection leave
a hole in the sequence (the caller typed ``1 2 #`` and the ``#`` overtook the ``2``),
it waits up to ``reorder_grace`` seconds for the missing tone before it decides.
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from enum import Enum
from typing import Any, Final, Protocol

import attrs

from graphcomms._base_errors import InvalidRequestError
from graphcomms._events import cancel_and_wait
from graphcomms._tracker import OperationTracker
from graphcomms.models import PlayPromptOperation, Tone, ToneInfo

__all__ = ["CollectReason", "ToneBuffer", "ToneCollection", "ToneIterator"]

_log = logging.getLogger("graphcomms.tones")

#: How long ``collect_tones`` waits, by default, for a tone that a later one overtook.
REORDER_GRACE: Final = 0.3
#: ``Limits.buffered_tones``'s default: unread tones kept per call.
BUFFERED_TONES: Final = 256  # keep equal to Limits.buffered_tones


class _Counter(Protocol):
    """Where dropped tones are counted: the client's ``ClientStats``."""

    tones_dropped: int


class ToneBuffer:
    """One call's tones since its subscription that no reader has taken yet.

    Bounded: beyond ``limit`` the oldest unread tone is dropped and counted. In
    ``sequenceId`` order (a tone without one goes last). No I/O; one waiter at a time
    (``collect_tones`` refuses a second collection on the same call).
    """

    __slots__ = (
        "_closed",
        "_error",
        "_items",
        "_limit",
        "_stats",
        "_waiter",
        "collecting",
        "dropped",
        "last_read",
    )

    def __init__(self, limit: int, stats: _Counter | None = None) -> None:
        self._items: deque[ToneInfo] = deque()
        self._limit = limit
        self._stats = stats
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._error: BaseException | None = None
        #: Tones dropped because the buffer was full.
        self.dropped = 0
        #: The highest ``sequenceId`` a reader has taken for good (for spotting holes).
        self.last_read: int | None = None
        #: True while a ``collect_tones`` reads this buffer.
        self.collecting = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def limit(self) -> int:
        return self._limit

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def error(self) -> BaseException | None:
        """Why the buffer closed when it was not the call's end (the client closed)."""
        return self._error

    def push(self, tone: ToneInfo) -> None:
        """A new tone (never a repeat: the call's projection dropped those)."""
        self._insert(tone)
        if len(self._items) > self._limit:
            lost = self._items.popleft()
            self.dropped += 1
            if self._stats is not None:
                self._stats.tones_dropped += 1
            if self.dropped == 1:
                _log.warning(
                    "tone buffer full (%d unread): dropped tone %s (sequenceId %s); "
                    "read tones with collect_tones() or tones()",
                    self._limit,
                    lost.key,
                    lost.sequence_id,
                )
        self._wake()

    def take(self) -> ToneInfo | None:
        """The first unread tone, taken; ``None`` when there is none."""
        return self._items.popleft() if self._items else None

    def put_back(self, tones: Iterable[ToneInfo]) -> None:
        """Tones a reader took but did not use: unread again, in their place."""
        for tone in tones:
            self._insert(tone)
        self._wake()

    def unread(self) -> list[ToneInfo]:
        """What the buffer holds, in order, left in it."""
        return list(self._items)

    def read(self, tone: ToneInfo) -> None:
        """A reader used ``tone``: it, and every unread tone before it, are taken."""
        items = self._items
        at = next((i for i, item in enumerate(items) if item is tone), None)
        if at is not None:  # else another reader took it already
            for _ in range(at + 1):
                items.popleft()
        self.mark_read((tone,))

    def mark_read(self, tones: Iterable[ToneInfo]) -> None:
        for tone in tones:
            seq = tone.sequence_id
            if seq is not None and (self.last_read is None or seq > self.last_read):
                self.last_read = seq

    def close(self, error: BaseException | None = None) -> None:
        """The call ended (``error`` None: what is unread stays readable) or the client
        closed (``error``)."""
        if not self._closed:
            self._closed = True
            self._error = error
            self._wake()

    async def wait(self, other: asyncio.Future[Any] | None, timeout: float | None) -> None:
        """Until a tone arrives, the buffer closes, ``other`` is done or ``timeout``
        seconds pass, whichever is first."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            waits: set[asyncio.Future[Any]] = {waiter}
            if other is not None:
                waits.add(other)
            await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._waiter = None
            waiter.cancel()

    def _insert(self, tone: ToneInfo) -> None:
        # Mostly appended; a late tone walks back to its place.
        _insert(self._items, tone)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class _Live(Protocol):
    """A subscription to the call's tone channel (``graphcomms._events``)."""

    async def __anext__(self) -> ToneInfo: ...

    def close(self) -> None: ...


class ToneIterator(AsyncIterator[ToneInfo]):
    """What ``call.tones()`` returns: the unread tones buffered when it was made, then
    each new tone; every tone it yields is taken from the call's buffer.

    Dropped without ``aclose()`` (``break`` out of ``async for``), it unsubscribes when
    it is collected, so an iterator per menu does not leave one queue per menu behind.
    """

    __slots__ = ("__weakref__", "_live", "_read", "_replay")

    def __init__(
        self,
        live: _Live,
        replay: Iterable[ToneInfo],
        read: Callable[[ToneInfo], None],
    ) -> None:
        self._live = live
        self._replay = deque(replay)
        self._read = read
        weakref.finalize(self, live.close).atexit = False

    def __aiter__(self) -> ToneIterator:
        return self

    async def __anext__(self) -> ToneInfo:
        tone = self._replay.popleft() if self._replay else await self._live.__anext__()
        self._read(tone)
        return tone

    async def aclose(self) -> None:
        """Stop receiving; frees the subscription at once."""
        self._replay.clear()
        self._live.close()


class CollectReason(str, Enum):
    """Why ``collect_tones`` stopped."""

    #: ``max_tones`` keys were collected.
    MAX_TONES = "maxTones"
    #: The caller pressed one of the ``stop_tones``.
    STOP_TONE = "stopTone"
    #: No key came within ``first_tone_timeout``.
    FIRST_TONE_TIMEOUT = "firstToneTimeout"
    #: No further key came within ``inter_tone_timeout`` of the last one.
    INTER_TONE_TIMEOUT = "interToneTimeout"
    #: The call ended first.
    CALL_ENDED = "callEnded"

    def __str__(self) -> str:
        return str(self.value)


@attrs.frozen(kw_only=True)
class ToneCollection:
    """What ``call.collect_tones()`` returns.

    ``keys`` are the keypad keys collected, in ``sequenceId`` order, without the stop
    tone (``stop_tone`` says which one ended the collection). ``tones`` are the tones
    taken, the stop tone included. ``prompt`` is the tracker of the prompt played, if
    one was: it may still be pending on return when the prompt was cancelled (its
    ``canceled`` result follows as a notification) and is never raised from here.
    """

    keys: str
    reason: CollectReason
    tones: tuple[ToneInfo, ...] = ()
    stop_tone: str | None = None
    prompt: OperationTracker[PlayPromptOperation] | None = attrs.field(
        default=None, eq=False, repr=False
    )

    @property
    def timed_out(self) -> bool:
        return self.reason in (CollectReason.FIRST_TONE_TIMEOUT, CollectReason.INTER_TONE_TIMEOUT)


@attrs.frozen
class CollectSpec:
    """``collect_tones``'s arguments, checked."""

    max_tones: int | None
    stop_keys: frozenset[str]
    first_tone_timeout: float | None
    inter_tone_timeout: float | None
    interrupt: bool
    reorder_grace: float

    @classmethod
    def build(
        cls,
        *,
        max_tones: int | None,
        stop_tones: Iterable[Tone | str] | Tone | str,
        first_tone_timeout: float | None,
        inter_tone_timeout: float | None,
        interrupt: bool,
        reorder_grace: float,
    ) -> CollectSpec:
        if max_tones is not None and not _is_count(max_tones):
            raise InvalidRequestError(f"max_tones must be an int >= 1 or None, got {max_tones!r}")
        if isinstance(stop_tones, str):
            # One tone (a member, or Graph's name), or a run of keys: "#", "#*".
            stop_tones = [stop_tones] if Tone.lookup(stop_tones) else list(stop_tones)
        stop_keys: set[str] = set()
        for stop in stop_tones:
            if not isinstance(stop, str):
                raise InvalidRequestError(f"stop_tones holds {stop!r}, not a tone or a key")
            try:
                stop_keys.add(Tone.parse(stop).key)
            except ValueError as exc:
                raise InvalidRequestError(f"stop_tones: {exc}") from None
        for name, value in (
            ("first_tone_timeout", first_tone_timeout),
            ("inter_tone_timeout", inter_tone_timeout),
        ):
            if value is not None and not (_is_seconds(value) and value > 0):
                raise InvalidRequestError(
                    f"{name} must be a finite number of seconds > 0 or None, got {value!r}"
                )
        if not _is_seconds(reorder_grace):
            raise InvalidRequestError(
                f"reorder_grace must be a finite number of seconds >= 0, got {reorder_grace!r}"
            )
        if (
            max_tones is None
            and not stop_keys
            and first_tone_timeout is None
            and (inter_tone_timeout is None)
        ):
            raise InvalidRequestError(
                "collect_tones would only end with the call: give max_tones, stop_tones "
                "or a timeout"
            )
        return cls(
            max_tones,
            frozenset(stop_keys),
            None if first_tone_timeout is None else float(first_tone_timeout),
            None if inter_tone_timeout is None else float(inter_tone_timeout),
            bool(interrupt),
            float(reorder_grace),
        )

    def end(self, taken: Sequence[ToneInfo], limit: int) -> tuple[int, CollectReason] | None:
        """Where ``taken`` ends the collection (the index of the last tone used) and
        why; ``None`` while it does not. Without ``max_tones`` a collection still ends
        at ``limit`` keys (the call's tone buffer size): the caller cannot make it hold
        more than that."""
        most = self.max_tones if self.max_tones is not None else limit
        for i, tone in enumerate(taken):
            if tone.key in self.stop_keys:
                return i, CollectReason.STOP_TONE
            if i + 1 >= most:  # i keys before this one, none of them a stop tone
                return i, CollectReason.MAX_TONES
        return None


PlayPrompt = Callable[[], Awaitable[OperationTracker[PlayPromptOperation]]]


async def collect(
    buffer: ToneBuffer,
    spec: CollectSpec,
    *,
    call_id: str,
    ended: Callable[[], bool],
    play: PlayPrompt | None,
    cancel_media: Callable[[], Awaitable[object]],
) -> ToneCollection:
    """``call.collect_tones()``: read ``buffer`` until ``spec`` says stop; ``play`` the
    prompt first if there is one (not if ``spec.interrupt`` and a tone is already
    waiting: the caller typed ahead). ``cancel_media`` sends cancelMediaProcessing.
    Leaves nothing running: the prompt is cancelled if it still plays and the task that
    watched it is ended, on return and on cancellation.
    """
    if buffer.collecting:
        raise InvalidRequestError(f"collect_tones is already running on call {call_id}")
    buffer.collecting = True
    run = _Collection(buffer, spec, call_id, ended, cancel_media)
    try:
        typed_ahead = spec.interrupt and len(buffer) > 0
        if play is not None and not typed_ahead and not ended() and buffer.error is None:
            await run.start_prompt(play)
        result = await run.read()
    except BaseException:
        buffer.put_back(run.taken)  # nothing is lost to a failed or cancelled collection
        raise
    finally:
        buffer.collecting = False
        await run.stop_prompt()
    buffer.mark_read(result.tones)
    return result


class _Collection:
    """One ``collect_tones`` in progress."""

    def __init__(
        self,
        buffer: ToneBuffer,
        spec: CollectSpec,
        call_id: str,
        ended: Callable[[], bool],
        cancel_media: Callable[[], Awaitable[object]],
    ) -> None:
        self.buffer = buffer
        self.spec = spec
        self.call_id = call_id
        self.ended = ended
        self.cancel_media = cancel_media
        self.loop = asyncio.get_running_loop()
        #: The tones taken so far, in sequenceId order.
        self.taken: list[ToneInfo] = []
        self.prompt: OperationTracker[PlayPromptOperation] | None = None
        # Done when the prompt's tracker is; None when no prompt plays.
        self.prompt_end: asyncio.Future[Any] | None = None
        self.cancelled_prompt = False
        self.previous = buffer.last_read

    async def start_prompt(self, play: PlayPrompt) -> None:
        try:
            self.prompt = await play()
        except asyncio.CancelledError:
            # The POST may have reached Graph: stop whatever it started.
            await self._cancel()
            raise
        if not self.prompt.done():
            self.prompt_end = asyncio.ensure_future(self.prompt.wait())

    @property
    def playing(self) -> bool:
        end = self.prompt_end
        return end is not None and not end.done() and not self.cancelled_prompt

    async def read(self) -> ToneCollection:
        spec, buffer, loop = self.spec, self.buffer, self.loop
        since = loop.time()  # when the current timeout started counting
        was_playing = self.playing
        grace_until: float | None = None
        while True:
            fresh = self._take()
            now = loop.time()
            playing = self.playing
            if fresh or (was_playing and not playing):
                since = now
            was_playing = playing
            if fresh and playing and spec.interrupt:
                await self._cancel()  # barge-in; Graph answers once the media stopped
                was_playing = False
                since = loop.time()
                continue  # read what came in meanwhile
            ended = spec.end(self.taken, buffer.limit)
            if ended is not None:
                last, reason = ended
                used = self.taken[: last + 1]
                hole = _has_hole(used, self.previous)
                if hole and grace_until is None and spec.reorder_grace:
                    grace_until = now + spec.reorder_grace
                if not hole or grace_until is None or now >= grace_until:
                    buffer.put_back(self.taken[last + 1 :])
                    return self._result(used, reason)
            if buffer.closed:
                if buffer.error is not None:
                    raise buffer.error
                return self._result(self.taken, CollectReason.CALL_ENDED)
            deadline = grace_until
            if deadline is None and not playing:
                limit = spec.inter_tone_timeout if self.taken else spec.first_tone_timeout
                if limit is not None:
                    deadline = since + limit
                    if now >= deadline:
                        return self._result(
                            self.taken,
                            CollectReason.INTER_TONE_TIMEOUT
                            if self.taken
                            else CollectReason.FIRST_TONE_TIMEOUT,
                        )
            await buffer.wait(
                self.prompt_end if playing else None,
                None if deadline is None else max(0.0, deadline - now),
            )

    async def stop_prompt(self) -> None:
        """End the task that watched the prompt, and stop the prompt if it still plays."""
        end = self.prompt_end
        if end is not None:
            # Its outcome stays on the tracker: gathered here, never raised.
            await cancel_and_wait([end])
        prompt = self.prompt
        if (
            prompt is not None
            and not prompt.done()
            and not self.cancelled_prompt
            and not self.ended()
            and self.buffer.error is None
        ):
            await self._cancel()

    def _take(self) -> bool:
        """Move the buffered tones into ``taken``; True if there were any."""
        tone = self.buffer.take()
        if tone is None:
            return False
        while tone is not None:
            _insert(self.taken, tone)
            tone = self.buffer.take()
        return True

    async def _cancel(self) -> None:
        """cancelMediaProcessing (it stops all of the call's media). A failure is
        logged: the collection goes on (a later key, or its end, tries again), and the
        prompt's tracker ends as Graph says."""
        try:
            await self.cancel_media()
        except Exception:
            _log.warning("cancelMediaProcessing failed on call %s", self.call_id, exc_info=True)
        else:
            self.cancelled_prompt = True

    def _result(self, tones: Sequence[ToneInfo], reason: CollectReason) -> ToneCollection:
        keys = [t.key for t in tones]
        stop = keys.pop() if reason is CollectReason.STOP_TONE else None
        return ToneCollection(
            keys="".join(keys),
            reason=reason,
            tones=tuple(tones),
            stop_tone=stop,
            prompt=self.prompt,
        )


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_seconds(value: object) -> bool:
    """A finite number >= 0 (NaN is not)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value < math.inf


def _insert(taken: list[ToneInfo] | deque[ToneInfo], tone: ToneInfo) -> None:
    """Put ``tone`` in its ``sequenceId`` place (one without goes last)."""
    seq = tone.sequence_id
    i = len(taken)
    if seq is not None:
        while i > 0:
            before = taken[i - 1].sequence_id
            if before is None or before < seq:
                break
            i -= 1
    taken.insert(i, tone)


def _has_hole(tones: Sequence[ToneInfo], previous: int | None) -> bool:
    """True when the ``sequenceId``s of ``tones`` skip one (counting from ``previous``,
    the last one read before, when known)."""
    last = previous
    for tone in tones:
        seq = tone.sequence_id
        if seq is None:
            continue
        if last is not None and seq > last + 1:
            return True
        last = seq
    return False
