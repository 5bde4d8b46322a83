"""What every comparison shares: sizes, interleaved rounds, statistics, rows, targets.

A comparison runs its variants interleaved in one process (A, B, A, B, ...), so that
whatever drifts on a shared two-core machine (frequency, a neighbour's load, the heap)
drifts for all of them alike. Each round yields one number per variant; a row keeps
every number and reports the median with the min-max.
"""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

__all__ = [
    "FULL",
    "QUICK",
    "Row",
    "Series",
    "Sizes",
    "Target",
    "Workload",
    "interleave",
    "paired",
    "timed",
    "timed_async",
    "workload_round",
]


@dataclass(frozen=True)
class Sizes:
    """How much work each comparison does; :data:`QUICK` and :data:`FULL` are the presets.

    Every count is per round and per variant. ``peers`` runs the msgraph-beta-sdk rows
    when that package is installed. ``network_repeats`` is the rounds of the rows that
    go through loopback sockets (roundtrip, webhook), whose spread is the widest.

    ``finished_limit`` is the client's ``Limits.finished_operations`` in the ingest,
    scale and webhook rows (``None``: the library's default); that many operations are
    resolved before any timing starts, so every measured resolution evicts, as in a bot
    that has run for a while. ``instructions`` adds the instruction-count rows, whose
    sizes are the ``instr_*`` fields (see :mod:`benchmarks._instructions`); ``timing``
    off leaves only those.
    """

    name: str
    repeats: int = 5
    network_repeats: int = 15
    ingest_n: int = 20_000
    # The SDK spends about 13 ms per notification: fewer per round keeps a round short,
    # and a per-notification cost does not depend on how many there are.
    ingest_sdk_n: int = 300
    finished_limit: int | None = None
    action_n: int = 5_000
    scale_big: int = 100_000
    scale_small: int = 1_000
    scale_batch: int = 1_000
    memory_pending: int = 100_000
    roundtrip_n: int = 1_000
    roundtrip_n_concurrent: int = 2_500
    roundtrip_sdk_n: int = 100
    roundtrip_sdk_n_concurrent: int = 200
    webhook_n: int = 10_000
    concurrency: int = 64
    #: The fleet rows: notifications per round, and the pending trackers recovered.
    fleet_n: int = 1_000
    fleet_recover: int = 10_000
    coldstart_repeats: int = 7
    peers: bool = True
    timing: bool = True
    instructions: bool = False
    counter: str = "auto"
    #: A directory for each counted variant's callgrind profile (``None``: not kept).
    keep_profiles: str | None = None
    instr_n: int = 2_000
    instr_warmup: int = 200
    instr_finished_limit: int = 1_000
    instr_scale_big: int = 20_000
    instr_scale_small: int = 1_000
    instr_scale_n: int = 250
    instr_action_n: int = 1_000

    def __post_init__(self) -> None:
        if self.repeats < 5 or self.network_repeats < 5:
            # The issue asks for the median and spread of at least five: fewer is noise.
            raise ValueError("repeats must be at least 5")
        if 4 * self.instr_scale_n > self.instr_scale_small:
            # The small pool would run dry during the counted regions (n, then 2n).
            raise ValueError("instr_scale_small must be at least 4 * instr_scale_n")

    def with_repeats(self, repeats: int) -> Sizes:
        return replace(
            self,
            repeats=repeats,
            network_repeats=max(repeats, self.network_repeats),
            coldstart_repeats=max(repeats, 5),
        )


QUICK = Sizes(
    name="quick",
    network_repeats=5,
    ingest_n=3_000,
    ingest_sdk_n=300,
    # A small limit that stays at its size: steady state without resolving 100,000
    # operations first (the full mode fills the default).
    finished_limit=5_000,
    action_n=1_000,
    scale_big=30_000,
    scale_small=1_000,
    scale_batch=500,
    memory_pending=5_000,
    roundtrip_n=200,
    roundtrip_n_concurrent=600,
    roundtrip_sdk_n=50,
    roundtrip_sdk_n_concurrent=100,
    webhook_n=1_500,
    fleet_n=200,
    coldstart_repeats=5,
    # The SDK takes seconds to import and is an optional extra: the quick mode (CI's
    # smoke run) must neither need it nor wait for it.
    peers=False,
    instr_n=300,
    instr_warmup=50,
    instr_scale_big=5_000,
    instr_scale_n=100,
    instr_action_n=200,
)

FULL = Sizes(name="full", repeats=7)


@dataclass(frozen=True)
class Target:
    """``value op limit``, e.g. ratio >= 0.75 or bytes <= 1024."""

    op: Literal[">=", "<="]
    limit: float
    unit: str = "x"

    def met(self, value: float) -> bool:
        return value >= self.limit if self.op == ">=" else value <= self.limit

    def __str__(self) -> str:
        sign = "≥" if self.op == ">=" else "≤"
        limit = f"{self.limit:,.0f}" if self.limit >= 1000 else f"{self.limit:g}"
        return f"{sign} {limit}{_unit_suffix(self.unit)}"


@dataclass
class Series:
    """One variant's numbers, one per round."""

    label: str
    unit: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def low(self) -> float:
        return min(self.samples)

    @property
    def high(self) -> float:
        return max(self.samples)

    def describe(self) -> str:
        if not self.samples:
            return "-"
        if len(self.samples) == 1:  # a count, not rounds: no spread to show
            return f"{_num(self.samples[0])} {self.unit}"
        return f"{_num(self.median)} {self.unit} ({_num(self.low)}-{_num(self.high)})"

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "median": self.median if self.samples else None,
            "min": self.low if self.samples else None,
            "max": self.high if self.samples else None,
            "quartiles": _quartiles(self.samples),
            "samples": self.samples,
        }


@dataclass
class Row:
    """One line of the table: graphcomms (``subject``) against ``baseline``, or alone.

    ``value`` is what the target judges: a ratio (median of the per-round ratios, so
    each round's pair shares its conditions) or, without a baseline, the subject's
    median. ``skipped`` says why a row has no numbers; ``error`` that it broke.
    """

    key: str
    title: str
    target: Target | None
    subject: Series | None = None
    baseline: Series | None = None
    ratios: list[float] = field(default_factory=list)
    ratio_meaning: str = ""
    #: Said after the ratio in the table (e.g. the multiples a restated target uses).
    detail: str = ""
    skipped: str | None = None
    error: str | None = None
    notes: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def value(self) -> float | None:
        if self.ratios:
            return statistics.median(self.ratios)
        if self.baseline is None and self.subject is not None and self.subject.samples:
            return self.subject.median
        return None

    @property
    def passed(self) -> bool | None:
        value = self.value
        if value is None or self.target is None:
            return None
        return self.target.met(value)

    @property
    def verdict(self) -> str:
        if self.error is not None:
            return "ERROR"
        if self.skipped is not None:
            return "SKIP"
        passed = self.passed
        return "-" if passed is None else "PASS" if passed else "MISS"

    def describe_value(self) -> str:
        value = self.value
        if value is None:
            return "-"
        if self.ratios:
            spread = (
                ""
                if len(self.ratios) == 1
                else f" ({_num(min(self.ratios))}-{_num(max(self.ratios))})"
            )
            detail = f"; {self.detail}" if self.detail else ""
            return f"{_num(value)}x{spread}{detail}"
        assert self.subject is not None
        return f"{_num(value)}{_unit_suffix(self.subject.unit)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "target": None if self.target is None else str(self.target),
            "value": self.value,
            "ratio_meaning": self.ratio_meaning or None,
            "ratios": self.ratios,
            "ratio_quartiles": _quartiles(self.ratios),
            "detail": self.detail or None,
            "result": self.verdict,
            "subject": None if self.subject is None else self.subject.to_json(),
            "baseline": None if self.baseline is None else self.baseline.to_json(),
            "skipped": self.skipped,
            "error": self.error,
            "notes": self.notes or None,
            **({"extra": self.extra} if self.extra else {}),
        }


def paired(
    subject: Series, baseline: Series, ratio: Callable[[float, float], float]
) -> list[float]:
    """Per-round ratios: round i of the subject against round i of the baseline."""
    return [ratio(s, b) for s, b in zip(subject.samples, baseline.samples, strict=True)]


Round = Callable[[], Awaitable[float]]


async def interleave(
    variants: Sequence[tuple[Series, Round]], *, repeats: int, warmup: int = 1
) -> None:
    """Run every variant once per round, in the given order, ``repeats`` times; the
    ``warmup`` rounds before them fill caches, pools and connections and are dropped."""
    for _ in range(warmup):
        for _series, round_ in variants:
            await round_()
    for _ in range(repeats):
        for series, round_ in variants:
            series.samples.append(await round_())


async def compare(
    row: Row, subject: tuple[Series, Round], baseline: tuple[Series, Round], *, repeats: int
) -> None:
    """Interleave ``subject`` with ``baseline`` and fill ``row``: both series and the
    per-round ratios subject / baseline."""
    await interleave([subject, baseline], repeats=repeats)
    row.subject, row.baseline = subject[0], baseline[0]
    row.ratios = paired(subject[0], baseline[0], lambda s, b: s / b)


class Workload(Protocol):
    """One variant of an in-process comparison, as both modes run it.

    A wall-clock round is ``prepare(n)``, then ``run(n)`` timed, then ``check()``; an
    instruction-counted child (:mod:`benchmarks._instructions`) runs the same calls and
    counts only ``run``. Everything a bot would have done before the measured work
    happens (pending trackers, the tasks awaiting them, the bodies) is ``prepare``'s.
    """

    #: What one item is, for the units: "notif" or "action".
    item: str
    #: What the rows' ``extra`` should say about how it was measured.
    facts: dict[str, Any]

    async def open(self) -> None:
        """Once, untimed: clients, sessions, steady state."""

    async def prepare(self, count: int) -> None:
        """Untimed: make the next ``count`` items ready to run."""

    async def run(self, count: int) -> None:
        """The measured work: the ``count`` items ``prepare`` made ready."""

    def check(self) -> None:
        """Raise ``RuntimeError`` unless every item of the last run ended as it must."""

    async def aclose(self) -> None: ...


async def timed_async(fn: Callable[[], Awaitable[object]]) -> float:
    """Seconds ``await fn()`` takes, with the cyclic GC held off as in :func:`timed`."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        await fn()
        return time.perf_counter() - start
    finally:
        if was_enabled:
            gc.enable()


def workload_round(workload: Workload, n: int, *, per_item_us: bool = False) -> Round:
    """One wall-clock round of ``workload`` over ``n`` items: items per second, or
    microseconds per item with ``per_item_us``."""

    async def round_() -> float:
        await workload.prepare(n)
        seconds = await timed_async(lambda: workload.run(n))
        workload.check()
        return seconds / n * 1e6 if per_item_us else n / seconds

    return round_


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn()`` takes, with the cyclic GC held off (as ``timeit`` does) so that
    one variant does not pay for the garbage of another's setup."""
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start
    finally:
        if was_enabled:
            gc.enable()


def _quartiles(values: Sequence[float]) -> list[float] | None:
    """The 25th and 75th percentiles: a spread that one wild round does not set."""
    if len(values) < 4:
        return None
    q = statistics.quantiles(values, n=4)
    return [q[0], q[2]]


def _unit_suffix(unit: str) -> str:
    return unit if unit == "x" else f" {unit}"


def _num(value: float) -> str:
    """Three significant figures, no exponent for the sizes we print."""
    if value == 0 or not math.isfinite(value):
        return str(value)
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    digits = max(0, 2 - math.floor(math.log10(magnitude)))
    return f"{value:.{digits}f}"
