"""Property: under any interleaving of responses, early / duplicate / reordered /
terminal notifications, call ends and deadlines, each tracker resolves exactly once, to
what a plain reference model of DESIGN.md §3 says, and nothing stays registered.

Notifications go in as ``commsNotifications`` items through the ingestion, with resource
URLs spelled each way Graph spells them, and the model holds every spelling to the same
contract."""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from graphcomms._converter import unstructure
from graphcomms._events import CallbackRunner
from graphcomms._ingest import Ingestor
from graphcomms._registry import OperationRegistry
from graphcomms._settings import Limits
from graphcomms._stats import ClientStats
from graphcomms._tracker import OperationTracker
from graphcomms.errors import (
    CallEndedError,
    ClientClosedError,
    OperationFailedError,
    OperationTimeoutError,
)
from graphcomms.models import OperationStatus, PlayPromptOperation

NON_TERMINAL = [OperationStatus.NOT_STARTED, OperationStatus.RUNNING, None]
CALLS = ["0000000000000000000000000000000a", "0000000000000000000000000000000b"]
#: How a notification names the operation: Graph's usual form, then two it also uses,
#: then a hyphenated upper-case id.
SPELLINGS = [
    "/communications/calls/{call}/operations/{op}",
    "communications/calls/{call}/operations/{op}",
    "https://graph.microsoft.com/v1.0/communications/calls/{call}/operations/{op}",
    "/communications/calls/{call}/operations/{hyphenated}",
]
TERMINAL = [OperationStatus.COMPLETED, OperationStatus.FAILED]


@dataclass
class Op:
    index: int
    call: str
    final: OperationStatus  # the one true terminal status Graph reports for it
    response_terminal: bool
    # (terminal?, matched by "id"/"ctx"/"both", deleted?, URL spelling: see `item`)
    notes: list[tuple[bool, str, bool, int]]


@dataclass
class Model:
    """The contract, written as plainly as possible."""

    sent: bool = False
    bound: bool = False
    knows_id: bool = False  # by its response, or by a matched notification naming it
    outcome: str | None = None
    buffered: list[tuple[bool, str, bool]] = field(default_factory=list)


ops_strategy = st.lists(
    st.builds(
        Op,
        index=st.just(0),
        call=st.sampled_from(CALLS),
        final=st.sampled_from(TERMINAL),
        response_terminal=st.booleans(),
        notes=st.lists(
            st.tuples(
                st.booleans(),
                st.sampled_from(["id", "ctx", "both"]),
                st.booleans(),
                st.integers(0, len(SPELLINGS) - 1),
            ),
            max_size=4,
        ),
    ),
    min_size=1,
    max_size=5,
)


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[Op], list[tuple[Any, ...]]]:
    ops = draw(ops_strategy)
    for i, op in enumerate(ops):
        op.index = i
    events: list[tuple[Any, ...]] = []
    for op in ops:
        events.append(("send", op.index))
        events.append(("respond", op.index))
        events.extend(("note", op.index, n) for n in range(len(op.notes)))
        if draw(st.booleans()):
            events.append(("deadline", op.index))
    events.extend(("end", call) for call in draw(st.sets(st.sampled_from(CALLS))))
    order = draw(st.permutations(events))
    # A response can only follow its request.
    order = list(order)
    for op in ops:
        s = order.index(("send", op.index))
        r = order.index(("respond", op.index))
        if r < s:
            order[s], order[r] = order[r], order[s]
    return ops, order


def op_id(i: int) -> str:
    return f"{i:032x}"


def snapshot(op: Op, terminal: bool, by: str) -> PlayPromptOperation:
    status = op.final if terminal else NON_TERMINAL[op.index % len(NON_TERMINAL)]
    return PlayPromptOperation(
        id=op_id(op.index) if by in ("id", "both") else None,
        client_context=f"ctx-{op.index}" if by in ("ctx", "both") else None,
        status=status,
    )


def item(op: Op, terminal: bool, by: str, deleted: bool, spelling: int) -> dict[str, Any]:
    """One notification item. Matched by context alone, its URL names no operation id
    (as a multi-party invite's ``.../operations/participants`` does)."""
    op_segment = op_id(op.index) if by != "ctx" else "participants"
    url = SPELLINGS[spelling].format(
        call=op.call,
        op=op_segment.upper(),
        hyphenated=str(uuid.UUID(op_segment)).upper() if by != "ctx" else op_segment,
    )
    change = "deleted" if deleted else "updated"
    return {
        "changeType": change.capitalize() if spelling % 2 else change,
        "resourceUrl": url,
        "resourceData": unstructure(snapshot(op, terminal, by)),
    }


class NoCalls:
    def apply(self, *args: Any) -> None:
        raise AssertionError("no call notifications here")

    def apply_roster(self, *args: Any) -> None:
        raise AssertionError("no roster notifications here")


@settings(max_examples=int(os.environ.get("GRAPHCOMMS_PROPERTY_EXAMPLES", "400")), deadline=None)
@given(scenarios())
def test_every_tracker_resolves_exactly_once_to_the_contracts_outcome(
    scenario: tuple[list[Op], list[tuple[Any, ...]]],
) -> None:
    asyncio.run(run_scenario(*scenario))


async def run_scenario(ops: list[Op], events: list[tuple[Any, ...]]) -> None:
    runner = CallbackRunner()
    registry = OperationRegistry(stats=ClientStats(), runner=runner, limits=Limits(early_ttl=1e9))
    ingestor = Ingestor(registry, NoCalls(), registry.stats)
    trackers: dict[int, OperationTracker[PlayPromptOperation]] = {}
    resolutions: dict[int, int] = {}
    model = {op.index: Model() for op in ops}

    def expect_outcome(m: Model, outcome: str) -> None:
        if m.outcome is None:
            m.outcome = outcome

    def model_apply(op: Op, m: Model, terminal: bool, deleted: bool) -> None:
        if m.outcome is None and (terminal or deleted):
            m.outcome = op.final.value

    for event in events:
        kind = event[0]
        if kind == "send":
            op = ops[event[1]]
            tracker = OperationTracker(
                call_id=op.call,
                client_context=f"ctx-{op.index}",
                snapshot=PlayPromptOperation(),
                runner=runner,
            )
            tracker.add_done_callback(
                lambda t, i=op.index: resolutions.__setitem__(i, resolutions.get(i, 0) + 1)
            )
            trackers[op.index] = tracker
            registry.expect(tracker)
            model[op.index].sent = True
        elif kind == "respond":
            op = ops[event[1]]
            m = model[op.index]
            registry.bind(
                trackers[op.index], op_id(op.index), snapshot(op, op.response_terminal, "both")
            )
            if m.outcome is None:
                m.bound = m.knows_id = True
                model_apply(op, m, op.response_terminal, False)
                for terminal, _, deleted in m.buffered:
                    model_apply(op, m, terminal, deleted)
                m.buffered.clear()
        elif kind == "note":
            op = ops[event[1]]
            terminal, by, deleted, spelling = op.notes[event[2]]
            deleted = deleted and terminal  # Graph's `deleted` carries the final status
            m = model[op.index]
            assert ingestor.feed({"value": [item(op, terminal, by, deleted, spelling)]}) == 1
            assert registry.stats.bad_items == 0
            by_ctx = m.sent and by in ("ctx", "both")
            by_id = m.knows_id and by in ("id", "both")
            if m.outcome is not None:
                pass  # a duplicate: ignored
            elif by_ctx or by_id:
                if by == "both":
                    m.knows_id = True
                model_apply(op, m, terminal, deleted)
            else:
                m.buffered.append((terminal, by, deleted))
        elif kind == "deadline":
            op = ops[event[1]]
            if op.index in trackers:
                registry.time_out(trackers[op.index], 1.0)
                if model[op.index].sent:
                    expect_outcome(model[op.index], "timeout")
        elif kind == "end":
            registry.fail_call(event[1], None)
            for op in ops:
                if op.call == event[1] and model[op.index].sent:
                    expect_outcome(model[op.index], "ended")

    registry.close()
    for op in ops:
        if model[op.index].sent:
            expect_outcome(model[op.index], "closed")
    await asyncio.sleep(0)
    await runner.aclose()

    for op in ops:
        tracker = trackers[op.index]
        assert tracker.done()
        assert resolutions[op.index] == 1, f"op {op.index} resolved {resolutions[op.index]}x"
        expected = model[op.index].outcome
        got = outcome_of(tracker)
        if expected == "timeout":
            assert isinstance(got, OperationTimeoutError)
        elif expected == "ended":
            assert isinstance(got, CallEndedError)
        elif expected == "closed":
            assert isinstance(got, ClientClosedError)
        else:
            assert isinstance(got, PlayPromptOperation), (expected, got)
            assert got.status == expected
    assert registry.holds_nothing
    assert (registry.stats.pending, registry.stats.early_pending) == (0, 0)


def outcome_of(tracker: OperationTracker[PlayPromptOperation]) -> object:
    """What the tracker resolved with: its terminal snapshot, or the error it raises."""
    try:
        return tracker.result()
    except OperationFailedError as exc:
        return exc.operation
    except (OperationTimeoutError, CallEndedError, ClientClosedError) as exc:
        return exc
