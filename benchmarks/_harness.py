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
from typing import Any, Literal

__all__ = [
    "FULL",
    "QUICK",
    "Row",
    "Series",
    "Sizes",
    "Target",
    "interleave",
    "paired",
    "timed",
]


@dataclass(frozen=True)
class Sizes:
    """How much work each comparison does; :data:`QUICK` and :data:`FULL` are the presets.

    Every count is per round and per variant. ``peers`` runs the msgraph-beta-sdk rows
    when that package is installed.
    """

    name: str
    repeats: int = 5
    ingest_n: int = 20_000
    # The SDK spends about 13 ms per notification: fewer per round keeps a round short,
    # and a per-notification cost does not depend on how many there are.
    ingest_sdk_n: int = 300
    scale_big: int = 100_000
    scale_small: int = 1_000
    scale_batch: int = 1_000
    memory_pending: int = 100_000
    roundtrip_n: int = 2_000
    roundtrip_n_concurrent: int = 5_000
    roundtrip_sdk_n: int = 100
    roundtrip_sdk_n_concurrent: int = 200
    webhook_n: int = 10_000
    concurrency: int = 64
    coldstart_repeats: int = 7
    peers: bool = True

    def __post_init__(self) -> None:
        if self.repeats < 5:
            # The issue asks for the median and spread of at least five: fewer is noise.
            raise ValueError("repeats must be at least 5")

    def with_repeats(self, repeats: int) -> Sizes:
        return replace(self, repeats=repeats, coldstart_repeats=max(repeats, 5))


QUICK = Sizes(
    name="quick",
    ingest_n=3_000,
    ingest_sdk_n=300,
    scale_big=30_000,
    scale_small=1_000,
    scale_batch=500,
    memory_pending=5_000,
    roundtrip_n=200,
    roundtrip_n_concurrent=600,
    roundtrip_sdk_n=50,
    roundtrip_sdk_n_concurrent=100,
    webhook_n=1_500,
    coldstart_repeats=5,
    # The SDK takes seconds to import and is an optional extra: the quick mode (CI's
    # smoke run) must neither need it nor wait for it.
    peers=False,
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
        return f"{_num(self.median)} {self.unit} ({_num(self.low)}-{_num(self.high)})"

    def to_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "unit": self.unit,
            "median": self.median if self.samples else None,
            "min": self.low if self.samples else None,
            "max": self.high if self.samples else None,
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
            return f"{_num(value)}x ({_num(min(self.ratios))}-{_num(max(self.ratios))})"
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
