"""The soak harness (issue #6): thousands of operations over many concurrent calls,
through the emulator and the real webhook with token validation on, under a seeded
mix of faults, checked against the emulator's own record of what happened.

``python -m qa soak`` runs :func:`run_soak`. What it proves, in one run:

* every ``await`` ended: success, failure, ``CallEndedError``, or a timeout at the
  tracker's own deadline; none hung;
* every tracker resolved exactly once (a done-callback counts it);
* every operation whose terminal notification reached the bot got exactly that
  outcome (status and ``resultInfo.code``), and every one whose notification was
  dropped was recovered by reconciliation (a GET of the operation: the emulator runs
  with ``readable_operations="all"``, more than Graph documents);
* at the end the registry holds nothing, and once closed no task, socket or warning
  of ours is left behind.

With ``close_midway=True`` it calls ``client.aclose()`` halfway and checks instead
that everything pending failed with ``ClientClosedError`` at once.

The ground truth is the emulator: its operations (by the ``clientContext`` the
harness gives each action) and its delivery log (sent, dropped, duplicated,
reordered). Nothing the client says about itself is taken on trust.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import resource
import sys
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from random import Random
from typing import IO, Any

from graphcomms import CallHandle, OperationTracker, PendingAction, TrackingSettings
from graphcomms.errors import (
    CallEndedError,
    ClientClosedError,
    GraphCommsError,
    NotFoundError,
    OperationTimeoutError,
)
from graphcomms.models import (
    CommsOperation,
    IdentitySet,
    InvitationParticipantInfo,
    MediaPrompt,
)
from graphcomms.testing._emulator import GraphEmulator
from graphcomms.testing._emulator_faults import Faults
from graphcomms.testing._emulator_state import Delivery, EmulatedCall, EmulatedOperation
from graphcomms.testing._harness import EmulatedBot, emulated_bot

__all__ = ["DEFAULT_FAULTS", "SoakReport", "run_soak"]

#: The fault mix of issue #6: 5% duplicated, 5% reordered, 2% delivered before the
#: action's response, 1% dropped, 1% of requests answered 429 with ``Retry-After``.
#: (Callers hanging up are the harness's doing: ``hangup_rate``.)
DEFAULT_FAULTS = Faults(
    duplicate=0.05, reorder=0.05, early=0.02, drop=0.01, throttle=0.01, retry_after=1
)

_PROMPT = MediaPrompt.from_uri("https://media.example.com/soak/prompt.wav")

# Weighted action mix. Media actions share the call's media queue (so they also fail
# when a cancelMediaProcessing lands), timed ones end on a timer, and "immediate" ones
# are already terminal in the action's response (Graph sends no notification).
_KINDS: tuple[tuple[str, int], ...] = (
    ("playPrompt", 34),
    ("recordResponse", 14),
    ("sendDtmfTones", 12),
    ("addLargeGalleryView", 8),
    ("invite", 5),
    ("subscribeToTone", 8),
    ("mute", 4),
    ("unmute", 4),
    ("updateRecordingStatus", 5),
    ("cancelMediaProcessing", 6),
)
_PROBE = "deadlineProbe"

# A timeout must end within this much of its deadline to count as "at its deadline";
# generous because a loaded 2-core box delays timers.
_DEADLINE_SLACK = 2.0


class Outcome(str, Enum):
    """How one ``await`` ended."""

    SUCCESS = "success"
    FAILED = "failed"  # terminal, not a success (OperationFailedError on await)
    CALL_ENDED = "call ended"
    TIMEOUT = "timeout"  # OperationTimeoutError at the tracker's deadline
    CLOSED = "client closed"
    REFUSED = "request refused"  # the action itself raised (404 call gone, 429, ...)
    HUNG = "HUNG"  # still pending long after its deadline: a bug
    ERROR = "unexpected error"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class _Plan:
    """What the harness does for operation ``index``, drawn up front from the seed so a
    seed always means the same actions, hang-ups and probes whatever the scheduling."""

    kind: str
    hangup: bool
    hangup_delay: float


@dataclass(eq=False)
class _Op:
    index: int
    kind: str
    context: str
    call_id: str
    hangup: bool
    started: float
    timeout: float | None
    issued: float | None = None
    waited: float | None = None  # when the await itself ended (before any clean-up)
    ended: float | None = None
    outcome: Outcome | None = None
    status: str | None = None
    code: int | None = None
    error: str | None = None
    tracker: OperationTracker[Any] | None = None
    resolutions: int = 0
    resolved_at: float | None = None  # when the tracker resolved (first done-callback)
    done_at_issue: bool = False
    pending_at_close: bool = False


@dataclass(eq=False)
class _Slot:
    """One live call and its share of the work."""

    call: CallHandle
    budget: int
    ended: bool = False


@dataclass
class SoakReport:
    """What a soak run saw. ``ok`` is True when ``violations`` is empty."""

    operations: int = 0
    calls_requested: int = 0
    seed: int = 0
    close_midway: bool = False
    elapsed: float = 0.0
    calls_created: int = 0
    call_create_failures: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[str] = field(default_factory=Counter)
    faults_seen: Counter[str] = field(default_factory=Counter)
    resolutions: Counter[int] = field(default_factory=Counter)
    latency_ms: dict[str, tuple[float, float, float, float]] = field(default_factory=dict)
    client_stats: dict[str, int] = field(default_factory=dict)
    receiver_stats: dict[str, int] = field(default_factory=dict)
    registry_holds_nothing: bool = False
    pending_after: int = -1
    early_pending_after: int = -1
    live_call_handles_after: int = -1
    tasks_left: list[str] = field(default_factory=list)
    sockets_before: int | None = None
    sockets_left: int | None = None
    warnings: list[str] = field(default_factory=list)
    loop_errors: list[str] = field(default_factory=list)
    logged: Counter[str] = field(default_factory=Counter)
    close_latency_ms: float | None = None
    aclose_ms: float | None = None
    close_pending: int = 0
    close_request_latency_ms: float | None = None
    peak_rss_mib: float = 0.0
    violations: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def violation(self, text: str) -> None:
        self.violations.append(text)

    def render(self) -> str:
        """The final report, as printed."""
        sections = (
            self._render_head(),
            self._render_outcomes(),
            self._render_checks(),
            self._render_counters(),
            self._render_end(),
            self._render_verdict(),
        )
        return "\n".join(line for section in sections for line in (*section, ""))

    def _render_head(self) -> list[str]:
        title = "aclose() midway" if self.close_midway else "full run"
        rate = self.operations / max(self.elapsed, 1e-9)
        lines = [
            "",
            f"graphcomms soak ({title}): {self.operations} operations, {self.calls_requested}"
            f" concurrent calls, seed {self.seed}, {self.elapsed:.1f} s ({rate:.0f} ops/s)",
            f"  calls placed {self.calls_created} (create failures {self.call_create_failures}),"
            f" peak RSS {self.peak_rss_mib:.0f} MiB",
            "",
            "  faults injected (from the emulator's delivery and request logs)",
        ]
        for name in ("duplicate", "reorder", "early", "drop", "throttled", "hangup", "probe"):
            lines.append(f"    {name:<28}{self.faults_seen.get(name, 0):>8}")
        return lines

    def _render_outcomes(self) -> list[str]:
        lines = ["  how every await ended                count   p50 ms   p99 ms   max ms"]
        for outcome in Outcome:
            n = self.outcomes.get(outcome.value, 0)
            if not n and outcome in (Outcome.ERROR, Outcome.CLOSED):
                continue
            p50, _, p99, top = self.latency_ms.get(outcome.value, (0.0, 0.0, 0.0, 0.0))
            lines.append(f"    {outcome.value:<30}{n:>8} {p50:>8.1f} {p99:>8.1f} {top:>8.1f}")
        return lines

    def _render_checks(self) -> list[str]:
        lines = ["  checked against the emulator's ground truth"]
        for verdict, n in sorted(self.verdicts.items()):
            lines.append(f"    {verdict:<56}{n:>8}")
        resolved = ", ".join(f"{k}x: {v}" for k, v in sorted(self.resolutions.items()))
        lines.append(f"    {'trackers by times resolved':<56}{resolved:>8}")
        return lines

    def _render_counters(self) -> list[str]:
        shown = (
            "notifications",
            "duplicates",
            "reconciliations",
            "reconciled",
            "call_ended",
            "timed_out",
            "late_results",
            "early_buffered",
            "closed",
        )
        cs = self.client_stats
        lines = [
            "  client stats   " + "  ".join(f"{k} {cs.get(k, 0)}" for k in shown),
            "  webhook stats  " + "  ".join(f"{k} {v}" for k, v in self.receiver_stats.items()),
        ]
        if self.logged:
            common = ", ".join(f"{k} x{v}" for k, v in self.logged.most_common(6))
            lines.append(f"  graphcomms log  {common}")
        if self.close_midway:
            lines.append(
                f"  aclose(): returned in {_ms(self.aclose_ms)} with every tracker resolved;"
                f" of {self.close_pending} awaits pending, tracker waits ended within"
                f" {_ms(self.close_latency_ms)}, in-flight actions within"
                f" {_ms(self.close_request_latency_ms)}"
            )
        return lines

    def _render_end(self) -> list[str]:
        sockets = "n/a" if self.sockets_left is None else str(self.sockets_left)
        return [
            "  at the end",
            f"    registry holds nothing        {self.registry_holds_nothing}",
            f"    pending trackers              {self.pending_after}",
            f"    early notifications held      {self.early_pending_after}",
            f"    live call handles             {self.live_call_handles_after}",
            f"    tasks of ours left            {len(self.tasks_left)}",
            f"    sockets of ours left open     {sockets}",
            f"    warnings / loop errors        {len(self.warnings)} / {len(self.loop_errors)}",
        ]

    def _render_verdict(self) -> list[str]:
        lines = [f"NOTE: {text}" for text in self.notes]
        if self.ok:
            lines.append("OK: every check passed")
            return lines
        lines.append(f"FAILED: {len(self.violations)} violation(s)")
        lines.extend(f"  - {text}" for text in self.violations[:40])
        if len(self.violations) > 40:
            lines.append(f"  ... and {len(self.violations) - 40} more")
        return lines


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


# -- process-level probes ---------------------------------------------------------------


def _open_sockets() -> set[str] | None:
    """The inodes of this process's open sockets (Linux /proc), None elsewhere."""
    fd_dir = "/proc/self/fd"
    if not os.path.isdir(fd_dir):
        return None
    found: set[str] = set()
    for name in os.listdir(fd_dir):
        with contextlib.suppress(OSError):
            target = os.readlink(os.path.join(fd_dir, name))
            if target.startswith("socket:"):
                found.add(target)
    return found


def _peak_rss_mib() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


_LOG_LABELS = (
    ("retrying in", "HTTP retries"),
    ("ended after its deadline", "late results"),
    ("the client is closed", "webhook 503 (client closed)"),
    ("operation %s recovered", "recovered"),
)


class _LogCounter(logging.Handler):
    """Counts graphcomms' warnings and errors by message template. Being a handler in
    the hierarchy also keeps Python's last-resort handler from printing thousands of
    expected retry warnings to stderr; configured handlers still get every record."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.counts: Counter[str] = Counter()
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        template = str(record.msg)
        label = next((name for marker, name in _LOG_LABELS if marker in template), template[:48])
        self.counts[label] += 1
        if record.levelno >= logging.ERROR:
            self.errors.append(f"{record.name}: {record.getMessage()}"[:300])


@contextlib.contextmanager
def _counting_logs() -> Iterator[_LogCounter]:
    handler = _LogCounter()
    logger = logging.getLogger("graphcomms")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


def _percentiles(values: Sequence[float]) -> tuple[float, float, float, float]:
    if not values:
        return (0.0, 0.0, 0.0, 0.0)
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (pick(0.5), pick(0.95), pick(0.99), ordered[-1])


def _status_text(value: object) -> str | None:
    if value is None:
        return None
    text = value.value if isinstance(value, Enum) else value
    return str(text).lower()


# -- the run ------------------------------------------------------------------------------


class _Soak:
    """One run's state: the plan, the records, and the workers that fill them."""

    def __init__(
        self,
        *,
        bot: EmulatedBot,
        report: SoakReport,
        plans: Sequence[_Plan],
        calls: int,
        per_call: int,
        call_ops: tuple[int, int],
        seed: int,
        probe_timeout: float,
        hang_limit: float,
        out: IO[str],
        close_at: float | None,
    ) -> None:
        self.bot = bot
        self.client = bot.client
        self.emulator = bot.emulator
        self.report = report
        self.plans = plans
        self.calls = calls
        self.per_call = per_call
        self.call_ops = call_ops
        self.seed = seed
        self.probe_timeout = probe_timeout
        self.hang_limit = hang_limit
        self.out = out
        self.close_at = close_at
        self.ops: list[_Op] = []
        self.next_index = 0
        self.finished = 0
        self.in_flight = 0
        self.started_at = time.perf_counter()
        self.milestone = 0
        self.closing = False
        self.close_started: float | None = None
        self.close_returned: float | None = None
        self.unresolved_after_close = 0
        self.close_point = asyncio.Event()
        self.hangups: set[asyncio.Task[None]] = set()

    # -- workers ---------------------------------------------------------------------

    async def run(self) -> None:
        workers = [
            asyncio.create_task(self._worker(n), name=f"soak-worker-{n}") for n in range(self.calls)
        ]
        closer = (
            asyncio.create_task(self._close_midway(), name="soak-closer")
            if self.close_at is not None
            else None
        )
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            if closer is not None:
                # If every worker ended before the close point, close now: the variant
                # still checks what aclose() leaves behind.
                self.close_point.set()
                await asyncio.wait_for(closer, timeout=30)
            if self.hangups:
                await asyncio.gather(*self.hangups, return_exceptions=True)

    def _take(self, slot: _Slot) -> int | None:
        if self.closing or slot.ended or slot.budget <= 0 or self.next_index >= len(self.plans):
            return None
        slot.budget -= 1
        index = self.next_index
        self.next_index += 1
        if self.close_at is not None and self.next_index >= self.close_at * len(self.plans):
            self.close_point.set()
        return index

    async def _worker(self, n: int) -> None:
        rng = Random(f"{self.seed}/worker/{n}")  # noqa: S311 - determinism, not secrecy
        failures = 0
        target = InvitationParticipantInfo(identity=IdentitySet.for_phone(f"+1425555{n:04d}"))
        # Bounded: each pass either uses up budget or counts a failure.
        while self.next_index < len(self.plans) and not self.closing and failures <= 5:
            try:
                call = await self.client.create_call(targets=[target])
            except ClientClosedError:
                return
            except GraphCommsError as exc:
                failures += 1
                self.report.call_create_failures += 1
                self.report.logged[f"create_call failed: {type(exc).__name__}"] += 1
                await asyncio.sleep(0.05)
                continue
            self.report.calls_created += 1
            slot = _Slot(call, budget=rng.randint(*self.call_ops))
            await asyncio.gather(*(self._lane(slot) for _ in range(self.per_call)))
            if not slot.ended and not self.closing:
                # The bot ends the call it is done with, as a real one would.
                with contextlib.suppress(GraphCommsError):
                    await call.hang_up()

    async def _lane(self, slot: _Slot) -> None:
        while (index := self._take(slot)) is not None:
            await self._run_op(slot, index)

    def _issue(self, call: CallHandle, kind: str, context: str) -> PendingAction[Any]:
        if kind == "playPrompt":
            return call.play_prompt([_PROMPT], client_context=context)
        if kind == _PROBE:
            # Loops until cancelled: it can only end at its deadline, and its failure
            # notification (after our cancelMediaProcessing) is a late result.
            return call.play_prompt(
                [_PROMPT], client_context=context, loop=True, timeout=self.probe_timeout
            )
        if kind == "recordResponse":
            return call.record_response(max_record_duration=5, client_context=context)
        if kind == "sendDtmfTones":
            return call.send_dtmf_tones("12#", client_context=context)
        if kind == "addLargeGalleryView":
            return call.add_large_gallery_view(client_context=context)
        if kind == "invite":
            who = InvitationParticipantInfo(identity=IdentitySet.for_phone("+14255550199"))
            return call.invite([who], client_context=context)
        if kind == "subscribeToTone":
            return call.subscribe_to_tone(client_context=context)
        if kind == "mute":
            return call.mute(client_context=context)
        if kind == "unmute":
            return call.unmute(client_context=context)
        if kind == "updateRecordingStatus":
            return call.update_recording_status("recording", client_context=context)
        if kind == "cancelMediaProcessing":
            return call.cancel_media_processing(client_context=context)
        raise AssertionError(f"unknown kind {kind}")

    async def _run_op(self, slot: _Slot, index: int) -> None:
        plan = self.plans[index]
        loop = asyncio.get_running_loop()
        context = f"soak-{self.seed}-{index}"
        timeout = (
            self.probe_timeout if plan.kind == _PROBE else self.client.tracking.operation_timeout
        )
        op = _Op(
            index=index,
            kind=plan.kind,
            context=context,
            call_id=slot.call.id,
            hangup=plan.hangup,
            started=loop.time(),
            timeout=timeout,
        )
        self.ops.append(op)
        self.in_flight += 1
        try:
            await self._drive(slot, op, plan)
        finally:
            op.ended = loop.time()
            if op.waited is None:
                op.waited = op.ended
            self.in_flight -= 1
            self.finished += 1
            self._progress()

    async def _drive(self, slot: _Slot, op: _Op, plan: _Plan) -> None:
        try:
            tracker = await self._issue(slot.call, plan.kind, op.context)
        except ClientClosedError as exc:
            op.outcome, op.error = Outcome.REFUSED, type(exc).__name__
            return
        except NotFoundError as exc:
            # The call ended under us (a caller hang-up on another lane).
            slot.ended = True
            op.outcome, op.error = Outcome.REFUSED, type(exc).__name__
            return
        except GraphCommsError as exc:
            op.outcome, op.error = Outcome.REFUSED, type(exc).__name__
            return
        op.issued = asyncio.get_running_loop().time()
        op.tracker = tracker
        op.done_at_issue = tracker.done()

        def count(_: OperationTracker[Any]) -> None:
            # Runs on the loop turn after the resolution: close enough to time it.
            op.resolutions += 1
            if op.resolved_at is None:
                op.resolved_at = asyncio.get_running_loop().time()

        tracker.add_done_callback(count)
        if plan.hangup:
            self._hang_up_soon(slot, plan.hangup_delay)
        loop = asyncio.get_running_loop()
        try:
            final = await tracker.wait(timeout=self.hang_limit)
        except OperationTimeoutError:
            op.waited = loop.time()
            op.outcome = Outcome.TIMEOUT
            if plan.kind == _PROBE and not slot.ended and not self.closing:
                # Stop the looping prompt: its failure arrives after the deadline, inside
                # the grace window, and must be kept as the tracker's late result.
                with contextlib.suppress(GraphCommsError):
                    await slot.call.cancel_media_processing()
        except CallEndedError:
            op.waited = loop.time()
            op.outcome = Outcome.CALL_ENDED
            slot.ended = True
        except ClientClosedError:
            op.waited = loop.time()
            op.outcome = Outcome.CLOSED
        except TimeoutError:
            op.outcome = Outcome.HUNG  # the builtin one: wait() gave up, still pending
        except Exception as exc:
            op.outcome, op.error = Outcome.ERROR, f"{type(exc).__name__}: {exc}"
        else:
            op.waited = loop.time()
            op.outcome = Outcome.SUCCESS if tracker.succeeded() else Outcome.FAILED
            op.status = _status_text(final.status)
            op.code = final.result_info.code if final.result_info is not None else None

    def _hang_up_soon(self, slot: _Slot, delay: float) -> None:
        """The caller hangs up while the operation runs, from outside the bot."""

        async def hang_up() -> None:
            await asyncio.sleep(delay)
            if not slot.ended:
                slot.ended = True
                await self.emulator.caller_hangs_up(slot.call.id)

        task = asyncio.create_task(hang_up(), name="soak-caller-hangs-up")
        self.hangups.add(task)
        task.add_done_callback(self.hangups.discard)

    async def _close_midway(self) -> None:
        await self.close_point.wait()
        loop = asyncio.get_running_loop()
        self.closing = True
        for op in self.ops:
            if op.outcome is None:
                op.pending_at_close = True
        self.close_started = loop.time()
        await self.client.aclose()
        self.close_returned = loop.time()
        # "At once" means: by the time aclose() returns, every tracker is resolved.
        self.unresolved_after_close = sum(
            1 for op in self.ops if op.tracker is not None and not op.tracker.done()
        )

    def _progress(self) -> None:
        total = len(self.plans)
        step = max(total // 10, 1)
        if self.finished < self.milestone + step and self.finished != total:
            return
        self.milestone = self.finished - self.finished % step
        elapsed = time.perf_counter() - self.started_at
        stats = self.client.stats
        print(
            f"  [{100 * self.finished // max(total, 1):>3}%] {self.finished:>6}/{total} ops"
            f"  {elapsed:6.1f} s  {self.finished / max(elapsed, 1e-9):5.0f} ops/s"
            f"  in flight {self.in_flight:>4}  calls {self.report.calls_created:>4}"
            f"  duplicates {stats.duplicates:>4}  reconciled {stats.reconciled:>3}"
            f"  call ended {stats.call_ended:>3}",
            file=self.out,
            flush=True,
        )


# -- judging against the emulator ----------------------------------------------------------


class _Truth:
    """The emulator's record, indexed for the checks."""

    def __init__(self, emulator: GraphEmulator) -> None:
        self.by_context: dict[str, tuple[EmulatedCall, EmulatedOperation]] = {}
        for call in emulator.calls.values():
            for operation in call.operations.values():
                if operation.client_context:
                    self.by_context[operation.client_context] = (call, operation)
        self.deliveries: dict[str, list[Delivery]] = defaultdict(list)
        self.faults: Counter[str] = Counter()
        for delivery in emulator.deliveries:
            if delivery.operation_id is not None:
                self.deliveries[delivery.operation_id].append(delivery)
            for fault in delivery.faults:
                self.faults[fault] += 1
        self.reconciled_ops: set[str] = set()
        self.posts: Counter[str] = Counter()
        for request in emulator.requests:
            if request.method == "GET" and "/operations/" in request.path:
                self.reconciled_ops.add(_norm(request.path.rsplit("/", 1)[-1]))
            elif request.method == "POST" and isinstance(request.json, dict):
                context = request.json.get("clientContext")
                if isinstance(context, str):
                    self.posts[context] += 1


def _norm(guid: str) -> str:
    return guid.replace("-", "").lower()


def _matches(op: _Op, truth: EmulatedOperation) -> bool:
    info = truth.result_info
    code = info.get("code") if isinstance(info, dict) else None
    return op.status == truth.status.lower() and op.code == code


def _judge(soak: _Soak, report: SoakReport) -> None:  # noqa: PLR0915 - one table of cases
    truth = _Truth(soak.emulator)
    verdicts = report.verdicts
    report.faults_seen["duplicate"] = truth.faults["duplicate"]
    report.faults_seen["reorder"] = truth.faults["reorder"]
    report.faults_seen["drop"] = truth.faults["drop"]
    # A POST with our clientContext seen n times was throttled n - 1 times (the client
    # re-sends only what was not processed); other throttled requests (GETs, call
    # creation) are not told apart here.
    report.faults_seen["throttled"] = sum(n - 1 for n in truth.posts.values())
    latencies: dict[str, list[float]] = defaultdict(list)

    for op in soak.ops:
        outcome = op.outcome
        assert outcome is not None
        report.outcomes[outcome.value] += 1
        if op.waited is not None:
            latencies[outcome.value].append((op.waited - op.started) * 1000)
        if op.hangup:
            report.faults_seen["hangup"] += 1
        if op.kind == _PROBE:
            report.faults_seen["probe"] += 1
        label = f"op {op.index} ({op.kind}, call {op.call_id[:8]})"
        found = truth.by_context.get(op.context)

        if outcome is Outcome.HUNG:
            report.violation(f"{label}: still pending {soak.hang_limit:.0f} s after it began")
            continue
        if outcome is Outcome.ERROR:
            report.violation(f"{label}: unexpected {op.error}")
            continue
        if op.tracker is not None:
            report.resolutions[op.resolutions] += 1
            if op.resolutions != 1:
                report.violation(f"{label}: tracker resolved {op.resolutions} times")
        if outcome is Outcome.REFUSED:
            if found is not None and op.error != "ClientClosedError":
                report.violation(f"{label}: the action raised {op.error} but Graph ran it")
            elif op.error == "NotFoundError":
                verdicts["refused: the call had ended (404)"] += 1
            elif op.error == "ThrottledError":
                verdicts["refused: still throttled after every retry"] += 1
            elif op.error == "ClientClosedError":
                verdicts["refused: the client was closed"] += 1
            else:
                report.violation(f"{label}: the action raised {op.error}")
            continue
        if outcome is Outcome.CLOSED:
            if not soak.closing or not op.pending_at_close:
                report.violation(f"{label}: ClientClosedError without aclose()")
            else:
                verdicts["pending at aclose(): ClientClosedError"] += 1
            continue
        if found is None:
            report.violation(f"{label}: tracked, but Graph has no such operation")
            continue
        call, truth_op = found
        sent = truth.deliveries.get(truth_op.id, [])
        delivered = [d for d in sent if d.ok]
        dropped = [d for d in sent if "drop" in d.faults]
        if op.done_at_issue and delivered and not any("drop" in d.faults for d in sent):
            report.faults_seen["early"] += 1

        if outcome is Outcome.TIMEOUT:
            _judge_timeout(
                report=report,
                op=op,
                label=label,
                call=call,
                truth_op=truth_op,
                sent=sent,
                delivered=delivered,
                dropped=dropped,
            )
            continue
        if outcome is Outcome.CALL_ENDED:
            if not call.ended:
                report.violation(f"{label}: CallEndedError but the call is live")
            elif not truth_op.terminal:
                verdicts["call ended mid-operation: CallEndedError"] += 1
            elif delivered:
                # First to arrive wins: the call's end was applied before the result
                # (reordered behind the call's deletion, or reconciliation found the
                # call gone while the result was still queued).
                verdicts["result arrived after the call's end: CallEndedError"] += 1
            else:
                verdicts["result lost, call ended: CallEndedError"] += 1
            continue
        # A terminal snapshot: success or failure.
        if not truth_op.terminal:
            report.violation(f"{label}: ended {op.status} but Graph says {truth_op.status}")
        elif not _matches(op, truth_op):
            report.violation(
                f"{label}: got {op.status}/{op.code}, Graph says "
                f"{truth_op.status}/{(truth_op.result_info or {}).get('code')}"
            )
        elif delivered:
            verdicts["result delivered: exactly that outcome"] += 1
        elif dropped:
            if _norm(truth_op.id) in truth.reconciled_ops:
                verdicts["result dropped: recovered by reconciliation"] += 1
            else:
                report.violation(f"{label}: result dropped, recovered without a GET")
        elif sent:
            verdicts["result not delivered (bot refused): outcome read back"] += 1
        else:
            verdicts["terminal in the response: exactly that outcome"] += 1

    report.latency_ms = {k: _percentiles(v) for k, v in latencies.items()}


def _judge_timeout(
    *,
    report: SoakReport,
    op: _Op,
    label: str,
    call: EmulatedCall,
    truth_op: EmulatedOperation,
    sent: list[Delivery],
    delivered: list[Delivery],
    dropped: list[Delivery],
) -> None:
    """A timeout is a fine outcome only at the tracker's deadline, and only if what
    Graph said afterwards (within the grace window) was kept rather than dropped."""
    verdicts = report.verdicts
    # When the tracker failed, not when the await returned: a deadline that passes
    # while the action's POST is still out is only seen once the POST returns.
    ended = op.resolved_at if op.resolved_at is not None else op.waited
    assert ended is not None
    took = ended - op.started
    if op.timeout is None or not op.timeout - 0.01 <= took <= op.timeout + _DEADLINE_SLACK:
        report.violation(f"{label}: timed out after {took:.2f} s, deadline {op.timeout} s")
        return
    tracker = op.tracker
    assert tracker is not None
    late = tracker.late_operation
    probe = op.kind == _PROBE
    if late is not None:
        if _status_text(late.status) != truth_op.status.lower():
            report.violation(f"{label}: late result {late.status}, Graph says {truth_op.status}")
        elif probe:
            verdicts["probe: timed out at deadline, late result kept"] += 1
        else:
            verdicts["slow: timed out at deadline, late result kept"] += 1
    elif truth_op.terminal and delivered:
        report.violation(f"{label}: its result was delivered but neither resolved it nor was kept")
    elif not truth_op.terminal and call.ended:
        if probe:
            verdicts["probe: timed out at deadline, then the call ended"] += 1
        else:
            report.violation(f"{label}: timed out; the call's end was not learnt in time")
    elif truth_op.terminal and sent and not dropped and report.close_midway:
        # Its late result reached the webhook after aclose(): answered 503, not kept.
        verdicts["timed out at deadline, late result came after aclose()"] += 1
    elif truth_op.terminal and dropped:
        if probe:
            # Reconciliation follows pending trackers only; a finished one is not read
            # back, so a late result that Graph loses stays lost.
            verdicts["probe: timed out at deadline, late result dropped"] += 1
        else:
            report.violation(
                f"{label}: result dropped and not recovered before the {op.timeout} s deadline"
            )
    elif not truth_op.terminal:
        verdicts["timed out at deadline: Graph never finished it"] += 1
    else:
        report.violation(f"{label}: timed out though Graph says {truth_op.status}")


# -- entry point ------------------------------------------------------------------------------


def _plans(
    operations: int, seed: int, hangup_rate: float, probe_rate: float, prompt_seconds: float
) -> list[_Plan]:
    rng = Random(f"{seed}/plan")  # noqa: S311 - determinism, not secrecy
    names = [name for name, _ in _KINDS]
    weights = [weight for _, weight in _KINDS]
    plans = []
    for _ in range(operations):
        kind = _PROBE if rng.random() < probe_rate else rng.choices(names, weights)[0]
        hangup = rng.random() < hangup_rate
        plans.append(_Plan(kind, hangup, rng.uniform(0.0, prompt_seconds)))
    return plans


async def run_soak(
    *,
    operations: int = 10_000,
    calls: int = 100,
    seed: int = 0,
    out: IO[str] | None = None,
    per_call: int = 2,
    call_ops: tuple[int, int] = (20, 80),
    faults: Faults | None = None,
    hangup_rate: float = 0.005,
    probe_rate: float = 0.005,
    probe_timeout: float = 0.5,
    prompt_seconds: float = 0.05,
    operation_timeout: float = 10.0,
    reconcile_after: float | None = 0.5,
    reconcile_interval: float = 0.5,
    close_midway: bool = False,
    close_at: float = 0.5,
) -> SoakReport:
    """Run the soak and print its report to ``out`` (stdout by default).

    ``operations`` actions are spread over ``calls`` concurrent calls, ``per_call`` in
    flight on each; a call is hung up by the bot after a number of operations drawn
    from ``call_ops`` and replaced by a new one. ``faults`` defaults to
    :data:`DEFAULT_FAULTS`; ``hangup_rate`` of operations see the caller hang up while
    they run; ``probe_rate`` are looping prompts with a ``probe_timeout`` deadline, to
    exercise timeouts and the late-result window. ``close_midway`` calls
    ``client.aclose()`` once ``close_at`` of the operations have started.

    The load is closed-loop: ``calls * per_call`` operations are always in flight.
    The default (200) keeps a 2-core machine below saturation; far above it, latency
    rather than faults decides the outcome (see ``reconcile_after``: a tracker silent
    that long is read back, and under overload every tracker is).
    """
    stream = out if out is not None else sys.stdout
    report = SoakReport(
        operations=operations, calls_requested=calls, seed=seed, close_midway=close_midway
    )
    plans = _plans(operations, seed, hangup_rate, probe_rate, prompt_seconds)
    loop = asyncio.get_running_loop()
    current = asyncio.current_task()
    tasks_before = set(asyncio.all_tasks())
    sockets_before = _open_sockets()
    report.sockets_before = None if sockets_before is None else len(sockets_before)
    previous_handler = loop.get_exception_handler()

    def on_loop_error(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        report.loop_errors.append(str(context.get("message", context))[:300])

    late_results: list[tuple[OperationTracker[Any], CommsOperation]] = []

    def on_late_result(tracker: OperationTracker[Any], snapshot: CommsOperation) -> None:
        late_results.append((tracker, snapshot))

    print(
        f"graphcomms soak: {operations} operations over {calls} concurrent calls "
        f"(seed {seed}{', aclose() midway' if close_midway else ''})",
        file=stream,
        flush=True,
    )
    started = time.perf_counter()
    loop.set_exception_handler(on_loop_error)
    with warnings.catch_warnings(record=True) as caught, _counting_logs() as logs:
        warnings.simplefilter("always")
        try:
            async with (
                GraphEmulator(
                    seed=seed,
                    prompt_seconds=prompt_seconds,
                    faults=faults if faults is not None else DEFAULT_FAULTS,
                    # The recovery accounting below holds every dropped result to being
                    # read back; Graph documents that GET for addLargeGalleryView only,
                    # so this run asks the emulator for more than Graph promises.
                    readable_operations="all",
                ) as emulator,
                emulated_bot(
                    emulator,
                    tracking=TrackingSettings(
                        operation_timeout=operation_timeout,
                        reconcile_after=reconcile_after,
                        reconcile_interval=reconcile_interval,
                    ),
                    on_late_result=on_late_result,
                ) as bot,
            ):
                print(
                    f"  emulator {emulator.graph_url}  webhook {bot.callback_uri}"
                    " (token validation on)",
                    file=stream,
                    flush=True,
                )
                soak = _Soak(
                    bot=bot,
                    report=report,
                    plans=plans,
                    calls=calls,
                    per_call=per_call,
                    call_ops=call_ops,
                    seed=seed,
                    probe_timeout=probe_timeout,
                    hang_limit=max(operation_timeout, probe_timeout) + 15.0,
                    out=stream,
                    close_at=close_at if close_midway else None,
                )
                await soak.run()
                await _settle(soak, report)
            report.elapsed = time.perf_counter() - started
            _judge(soak, report)
            _check_close(soak, report)
        finally:
            # Everything of ours is closed now; what is left is a leak.
            await _after_close(report, current, tasks_before, sockets_before)
            loop.set_exception_handler(previous_handler)
        report.warnings = [f"{w.category.__name__}: {w.message}"[:300] for w in caught]
    report.logged.update(logs.counts)
    report.peak_rss_mib = _peak_rss_mib()
    _final_checks(report, logs, late_results)
    print(report.render(), file=stream, flush=True)
    return report


async def _settle(soak: _Soak, report: SoakReport) -> None:
    """Let in-flight deliveries and callbacks finish, then read the client's state."""
    emulator, client, bot = soak.emulator, soak.client, soak.bot
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(emulator.drain(), timeout=30)
    # Done-callbacks run on the loop's next turns; deliveries in the drain above may
    # have queued some.
    for _ in range(5):
        await asyncio.sleep(0.01)
    report.registry_holds_nothing = not (client.stats.pending or client.stats.early_pending)
    report.pending_after = client.stats.pending
    report.early_pending_after = client.stats.early_pending
    report.live_call_handles_after = client.stats.live_calls
    gone = [
        call_id
        for call_id, call in emulator.calls.items()
        if call.ended and client.stats.live_calls and not client.call(call_id).ended
    ]
    if gone:
        # Not a registry leak (no tracker is held), but the handle of a call whose
        # `deleted` notification was lost is never released: nothing reconciles a call
        # without pending operations.
        report.notes.append(
            f"{len(gone)} call handle(s) still held for calls Graph has ended "
            "(their `deleted` notification was dropped)"
        )
    report.client_stats = {
        name: int(getattr(client.stats, name))
        for name in client.stats.__slots__
        if not name.startswith("__")
    }
    rs = bot.receiver.stats
    report.receiver_stats = {
        "accepted": rs.accepted,
        "rejected": rs.rejected_auth + rs.rejected_forbidden,
        "malformed": rs.malformed,
        "failed": rs.failed,
    }


def _check_close(soak: _Soak, report: SoakReport) -> None:
    if not report.close_midway:
        return
    if soak.close_started is None:
        report.violation("aclose() was never called")
        return
    pending = [op for op in soak.ops if op.pending_at_close]
    report.close_pending = len(pending)
    if soak.close_returned is not None:
        report.aclose_ms = (soak.close_returned - soak.close_started) * 1000
    if soak.unresolved_after_close:
        report.violation(f"{soak.unresolved_after_close} trackers still pending after aclose()")
    trackers = [op for op in pending if op.tracker is not None and op.outcome is Outcome.CLOSED]
    requests = [op for op in pending if op.tracker is None]
    if trackers:
        report.close_latency_ms = max(
            ((op.waited or 0.0) - soak.close_started) * 1000 for op in trackers
        )
        # "At once": aclose() fails them synchronously; a few loop turns at most.
        if report.close_latency_ms > 1000:
            report.violation(
                f"pending trackers took {report.close_latency_ms:.0f} ms to fail after aclose()"
            )
    if requests:
        report.close_request_latency_ms = max(
            ((op.waited or 0.0) - soak.close_started) * 1000 for op in requests
        )
        if report.close_request_latency_ms > 250:
            # aclose() does not wake an action sleeping out a 429's Retry-After: it
            # raises ClientClosedError only when the back-off ends.
            report.notes.append(
                f"an action in flight at aclose() took {report.close_request_latency_ms:.0f} ms"
                " to raise (waiting out a Retry-After back-off)"
            )
    stats = soak.client.stats
    if stats.pending or stats.early_pending or stats.live_calls or stats.untracked_calls:
        report.violation("the client still holds work or calls after aclose()")
    # An HTTP session left open shows in _after_close's socket and warning checks.


async def _after_close(
    report: SoakReport,
    current: asyncio.Task[Any] | None,
    tasks_before: set[asyncio.Task[Any]],
    sockets_before: set[str] | None,
) -> None:
    # Closed transports release their sockets on the loop's next turns; give them a
    # bounded moment before calling anything a leak.
    left: list[asyncio.Task[Any]] = []
    sockets: set[str] | None = None
    for _ in range(50):
        await asyncio.sleep(0.02)
        gc.collect()
        left = [
            t
            for t in asyncio.all_tasks()
            if t is not current and t not in tasks_before and not t.done()
        ]
        now = _open_sockets()
        sockets = None if now is None or sockets_before is None else now - sockets_before
        if not left and not sockets:
            break
    report.tasks_left = [t.get_name() for t in left]
    report.sockets_left = None if sockets is None else len(sockets)


def _final_checks(
    report: SoakReport,
    logs: _LogCounter,
    late_results: list[tuple[OperationTracker[Any], CommsOperation]],
) -> None:
    if not report.registry_holds_nothing:
        report.violation("the registry still holds trackers, timers or early notifications")
    if report.pending_after != 0:
        report.violation(f"{report.pending_after} trackers still pending at the end")
    if report.tasks_left:
        report.violation(f"tasks left running: {', '.join(sorted(report.tasks_left)[:10])}")
    if report.sockets_left:
        report.violation(f"{report.sockets_left} sockets left open")
    for text in report.warnings[:10]:
        report.violation(f"warning: {text}")
    for text in report.loop_errors[:10]:
        report.violation(f"event loop error: {text}")
    for text in logs.errors[:10]:
        report.violation(f"logged error: {text}")
    rs = report.receiver_stats
    if rs.get("rejected"):
        report.violation(f"the webhook refused {rs['rejected']} genuine notifications")
    if rs.get("failed") and not report.close_midway:
        report.violation(f"the webhook failed {rs['failed']} notifications (500/503)")
    kept = sum(n for v, n in report.verdicts.items() if "late result kept" in v)
    if len(late_results) < kept:
        report.violation(f"on_late_result ran {len(late_results)} times for {kept} late results")
    expected_total = report.operations
    if sum(report.outcomes.values()) != expected_total and not report.close_midway:
        report.violation(
            f"{sum(report.outcomes.values())} operations ran, {expected_total} were planned"
        )
