"""Pending trackers made the way a bot makes them, for the in-process benchmarks.

Every tracker here comes from ``await call.play_prompt(...)`` on a client that borrows
a :class:`~benchmarks._fakegraph.FakeGraphSession`: graphcomms' public API end to end,
Graph's answer made in process. A task awaits each tracker whose notification a row
times (``await tracker``, as a bot writes it), started and suspended before timing.

Steady state: :func:`fill_finished` resolves as many operations as the client's
finished-work memory holds, so that every later resolution evicts the oldest entry, as
in a bot that has run for a while. Nothing leaves that memory by age during a run
(:data:`LATE_RESULT_GRACE`), only by its size bound, so "full" stays true however slow
the run (valgrind runs are ~50x slower). Reconciliation is off: it is a periodic scan,
not a per-notification cost, and the fake Graph answers only action POSTs.

:func:`finished_remembered` is the one place the benchmarks read a graphcomms
internal: to confirm that steady state holds, never to make or resolve anything.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from benchmarks._fakegraph import FakeGraphSession
from benchmarks._payloads import PROMPT_URI, completed_play_prompt
from graphcomms import CommsClient, MediaPrompt, OperationTracker

__all__ = [
    "LATE_RESULT_GRACE",
    "TOKEN",
    "CallPool",
    "await_each",
    "bot_client",
    "completions",
    "fill_finished",
    "finished_remembered",
    "play_prompts",
]

TOKEN = "benchmark-token"

#: Seconds finished work is remembered: longer than any run, so it leaves by size only.
LATE_RESULT_GRACE = 3600.0

# What finished-work memory held before the redesign made it a setting (fixed there).
_PRE_LIMITS_FINISHED = 100_000

Tracker = OperationTracker[Any]


def bot_client(
    session: FakeGraphSession, *, finished_limit: int | None = None
) -> tuple[CommsClient, int]:
    """A client borrowing ``session``, and how many finished operations it remembers.

    ``finished_limit`` is ``Limits.finished_operations`` (``None``: the default).
    """
    try:
        from graphcomms import Limits, TrackingSettings
    except ImportError:
        # The library before the redesign, so that one benchmark measures before and
        # after: its settings were keyword arguments, and its finished-work memory held
        # a fixed 100,000 (a smaller limit cannot be asked for there).
        client = CommsClient(
            TOKEN,
            session=session.as_session(),
            late_result_grace=LATE_RESULT_GRACE,
            reconcile_after=None,
        )
        return client, _PRE_LIMITS_FINISHED
    limits = Limits() if finished_limit is None else Limits(finished_operations=finished_limit)
    client = CommsClient(
        TOKEN,
        session=session.as_session(),
        tracking=TrackingSettings(late_result_grace=LATE_RESULT_GRACE, reconcile_after=None),
        limits=limits,
    )
    return client, limits.finished_operations


class CallPool:
    """Call ids (as Graph spells them) and their keys (as notifications name them),
    made on demand and reused: item ``i`` of every batch is on call ``i``."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.keys: list[str] = []

    def first(self, count: int) -> tuple[list[str], list[str]]:
        while len(self.ids) < count:
            call = uuid.uuid4()
            self.ids.append(str(call))
            self.keys.append(call.hex)
        return self.ids[:count], self.keys[:count]


async def play_prompts(
    client: CommsClient, call_ids: Iterable[str], contexts: Iterable[str | None] | None = None
) -> list[Tracker]:
    """``await client.call(id).play_prompt([prompt])`` on each call, one after another;
    the trackers, pending (the fake answers ``running``)."""
    trackers: list[Tracker] = []
    contexts = contexts if contexts is not None else itertools.repeat(None)
    for call_id, context in zip(call_ids, contexts):  # noqa: B905 - contexts may be endless
        call = client.call(call_id)
        trackers.append(
            await call.play_prompt([MediaPrompt.from_uri(PROMPT_URI)], client_context=context)
        )
    return trackers


def completions(call_keys: Sequence[str], trackers: Sequence[Tracker]) -> list[bytes]:
    """The §5.4 completed notification of each tracker (on the call of the same index)."""
    bodies = []
    for key, tracker in zip(call_keys, trackers, strict=True):
        if tracker.operation_id is None:
            raise RuntimeError("the fake Graph's answer gave the tracker no operation id")
        bodies.append(completed_play_prompt(key, tracker.operation_id, tracker.client_context))
    return bodies


async def _awaited(tracker: Tracker) -> object:
    return await tracker


async def await_each(awaitables: Sequence[Any]) -> list[asyncio.Task[Any]]:
    """A task in ``await x`` for each of ``awaitables``, every one of them started and
    suspended on return (what a bot's waiting tasks are when a notification comes)."""
    loop = asyncio.get_running_loop()
    tasks = [loop.create_task(_awaited(a)) for a in awaitables]
    # One pass of the loop starts every task; each then waits on its tracker's future.
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    if any(task.done() for task in tasks):
        raise RuntimeError("a waiting task ended before its notification was fed")
    return tasks


async def fill_finished(client: CommsClient, calls: CallPool, count: int) -> None:
    """Resolve ``count`` operations through the public API (action, then notification),
    in batches, so that finished-work memory holds ``count`` entries."""
    done = 0
    while done < count:
        batch = min(count - done, 1_000)
        ids, keys = calls.first(batch)
        trackers = await play_prompts(client, ids)
        for body in completions(keys, trackers):
            client.feed(body)
        if not all(tracker.done() for tracker in trackers):
            raise RuntimeError("a notification did not resolve its tracker while filling")
        done += batch


def finished_remembered(client: CommsClient) -> int | None:
    """How many finished operations the client remembers now, where the library can say.

    The one read of graphcomms internals in the benchmarks (the count has no public
    counter): it only confirms that steady state holds. ``None`` when not available.
    """
    registry = getattr(client, "_registry", None)
    count = getattr(registry, "finished_remembered", None)
    return count if isinstance(count, int) else None
