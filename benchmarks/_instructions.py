"""Instruction counts for the in-process rows (``python -m benchmarks --instructions``).

A wall-clock ratio on a shared two-core machine moves by a third from one round to the
next; the number of instructions a piece of work executes does not move when the
machine is busy. So the CPU-bound rows (ingest, scale, an action's client side) are
also counted, by the same :class:`~benchmarks._harness.Workload` code the timed rounds
run.

**How a count is taken (callgrind).** Each variant runs in a child process of its own
under ``valgrind --tool=callgrind --dump-before=getppid``. The child opens its workload
(clients, steady state), then runs three regions of ``w``, ``n`` and ``2n`` items; each
region is ``prepare`` (unmarked), then ``os.getppid()``, ``run``, ``os.getppid()``.
``getppid`` is a libc function nothing else in the child calls (the number of dumps is
checked, so a stray call fails the run), and ``--dump-before`` makes callgrind write its
counters each time it is entered and start again from zero. So each region's ``run``
has a dump of its own holding exactly the instructions between its two markers:
setup, preparation, the GC (held off while a region runs, as in the timed rounds) and
teardown are in other dumps. The ``w`` region warms the interpreter's caches and
specialisations and is dropped. Per item is ``(I(2n) - I(n)) / n``: whatever a region
costs once (the markers themselves, the loop's first pass) cancels out exactly;
``I(n) / n`` is kept beside it to show how small that was. Python's hash seed is fixed
(``PYTHONHASHSEED=0``); random ids still move a count by well under 1% between runs.
Callgrind counts user-space instructions only: the kernel's share (a syscall) is not in
it, and neither is what the instructions cost (cache misses are what the wall-clock
scale row shows).

**perf.** Where ``perf stat -e instructions:u`` works (checked with ``perf stat -e
instructions true``; on most VMs it says ``<not supported>``) it counts at native
speed: one child per region size, started with counting off (``--delay=-1``) and
switched on and off around the last region through perf's control FIFO; per item is
again ``(I(2n) - I(n)) / n``. ``--counter auto`` (the default) takes perf where it
works and callgrind elsewhere; each row says which counted.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks._harness import Row, Series, Sizes, Target, Workload
from benchmarks._procs import child_env, python_command

__all__ = [
    "CountSpec",
    "Counted",
    "Variant",
    "choose_counter",
    "count_variants",
    "counted_rows",
    "parse_callgrind_total",
    "parse_perf_total",
]

_MODULE = "benchmarks._instructions"
_MARKER = "getppid"
# A child under callgrind runs about fifty times slower than natively.
_CHILD_TIMEOUT_S = 3 * 3600


@dataclass(frozen=True)
class Variant:
    """A workload to count: ``factory`` is ``"module:Class"``, built with ``params``."""

    label: str
    factory: str
    params: dict[str, Any] = field(default_factory=dict)

    def key(self) -> str:
        return json.dumps([self.factory, self.params], sort_keys=True)


@dataclass
class Counted:
    """Instructions per item for one variant, and how they were counted."""

    label: str
    counter: str
    per_item: float
    item: str
    #: Items in a region -> instructions counted in it.
    regions: dict[int, int]
    facts: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        n = sorted(self.regions)[-2]
        return {
            "label": self.label,
            "counter": self.counter,
            "per_item": self.per_item,
            "first_region_per_item": self.regions[n] / n,
            "regions": {str(k): v for k, v in self.regions.items()},
            "facts": self.facts,
        }


@dataclass(frozen=True)
class CountSpec:
    """One row of counts: ``subject`` (graphcomms) against ``baseline``, or alone.

    ``ratio`` says which way the row's ratio goes, so that it reads like its wall-clock
    twin: ``"baseline/subject"`` for a floor (a throughput ratio), ``"subject/baseline"``
    for a cost ratio such as the scale row's.
    """

    key: str
    title: str
    target: Target | None
    subject: Variant
    baseline: Variant | None
    n: int
    warmup: int
    ratio: str = "baseline/subject"
    ratio_meaning: str = ""


# -- choosing the counter ----------------------------------------------------------


def _perf_problem() -> str | None:
    """Why ``perf stat`` cannot count instructions here, or ``None`` when it can."""
    if shutil.which("perf") is None:
        return "perf is not installed"
    try:
        done = subprocess.run(
            ["perf", "stat", "-x,", "-e", "instructions:u", "true"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return f"perf stat failed: {exc}"
    if parse_perf_total(done.stderr) is not None:
        return None
    said = next((ln.split(",")[0] for ln in done.stderr.splitlines() if "instructions" in ln), "")
    return f"perf stat -e instructions: {said or done.stderr.strip()[-200:] or 'no count'}"


def _valgrind_problem() -> str | None:
    if shutil.which("valgrind") is None:
        return "valgrind is not installed (apt-get install valgrind)"
    return None


def choose_counter(requested: str) -> tuple[str | None, str]:
    """``(counter, note)``: the counter to use (``None``: none can) and what was found."""
    perf = _perf_problem() if requested in ("auto", "perf") else "not asked for"
    valgrind = _valgrind_problem() if requested in ("auto", "callgrind") else "not asked for"
    if requested == "perf":
        return (None, perf) if perf else ("perf", "perf stat")
    if requested == "callgrind":
        return (None, valgrind) if valgrind else ("callgrind", "callgrind")
    if requested != "auto":
        raise ValueError(f"unknown counter {requested!r}: auto, perf or callgrind")
    if perf is None:
        return "perf", "perf stat"
    if valgrind is None:
        return "callgrind", f"callgrind ({perf})"
    return None, f"no instruction counter: {perf}; {valgrind}"


# -- the parent's side -------------------------------------------------------------


def parse_callgrind_total(text: str) -> int:
    """The ``Ir`` total of one callgrind dump."""
    for line in text.splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise ValueError("no summary line in the callgrind dump")


def parse_perf_total(text: str) -> int | None:
    """The count of the first ``instructions`` line of ``perf stat -x,`` output."""
    for line in text.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("instructions"):
            try:
                return int(fields[0])
            except ValueError:
                return None  # "<not supported>", "<not counted>"
    return None


def _run(command: list[str], workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=_CHILD_TIMEOUT_S,
        cwd=workdir,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"counted child failed ({done.returncode}): {done.stderr.strip()[-2000:]}"
        )
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def _spec(variant: Variant, regions: Sequence[int], counter: str, **more: Any) -> str:
    return json.dumps(
        {
            "factory": variant.factory,
            "params": variant.params,
            "regions": list(regions),
            "counter": counter,
            **more,
        }
    )


def _env() -> dict[str, str]:
    return child_env({"PYTHONHASHSEED": "0"})


def _callgrind(
    variant: Variant, n: int, warmup: int, workdir: Path, keep: Path | None = None
) -> Counted:
    regions = [warmup, n, 2 * n]
    out = workdir / "callgrind.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        f"--dump-before={_MARKER}",
        f"--callgrind-out-file={out}",
        f"--log-file={workdir / 'valgrind.log'}",
        *python_command(_MODULE, _spec(variant, regions, "callgrind")),
    ]
    report = _run(command, workdir, _env())
    dumps = sorted(workdir.glob("callgrind.out.*"), key=lambda p: int(p.suffix[1:]))
    if len(dumps) != 2 * len(regions):
        raise RuntimeError(
            f"expected {2 * len(regions)} callgrind dumps (two markers per region), found"
            f" {len(dumps)}: something else called {_MARKER}()"
        )
    # Dump 2i+1 (0-based) holds region i: from its first marker to its second.
    counts = [parse_callgrind_total(dumps[2 * i + 1].read_text()) for i in range(len(regions))]
    if keep is not None:
        # The last region's profile, for callgrind_annotate: where its instructions went,
        # by C function (the interpreter's, dict's, orjson's...).
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dumps[-1], keep / f"{_file_name(variant)}-{2 * n}.callgrind")
    return _counted(variant, "callgrind", regions, counts, report)


def _file_name(variant: Variant) -> str:
    module, _, name = variant.factory.partition(":")
    params = "".join(f"-{k}={v}" for k, v in sorted(variant.params.items()))
    return f"{module.rpartition('.')[2]}.{name}{params}"


def _perf(
    variant: Variant, n: int, warmup: int, workdir: Path, keep: Path | None = None
) -> Counted:
    counts = []
    for size in (n, 2 * n):
        control, ack = workdir / f"control-{size}", workdir / f"ack-{size}"
        os.mkfifo(control)
        os.mkfifo(ack)
        out = workdir / f"perf-{size}.csv"
        command = [
            "perf",
            "stat",
            "-x,",
            "-e",
            "instructions:u",
            "--delay=-1",
            f"--control=fifo:{control},{ack}",
            "-o",
            str(out),
            "--",
            *python_command(
                _MODULE,
                _spec(variant, [warmup, size], "perf", control=[str(control), str(ack)]),
            ),
        ]
        report = _run(command, workdir, _env())
        total = parse_perf_total(out.read_text())
        if total is None:
            raise RuntimeError(f"perf counted nothing: {out.read_text().strip()[-500:]}")
        counts.append(total)
    return _counted(variant, "perf", [n, 2 * n], counts, report, perf_split=True)


def _counted(
    variant: Variant,
    counter: str,
    regions: Sequence[int],
    counts: Sequence[int],
    report: dict[str, Any],
    *,
    perf_split: bool = False,
) -> Counted:
    by_size = dict(zip(regions, counts, strict=True))
    n, twice = sorted(by_size)[-2:]
    if twice != 2 * n:
        raise RuntimeError(f"regions {regions} do not end with n and 2n")
    per_item = (by_size[twice] - by_size[n]) / n
    facts = dict(report.get("facts", {}))
    if perf_split:
        facts["perf"] = "one child per region size; only the last region counted"
    return Counted(
        label=variant.label,
        counter=counter,
        per_item=per_item,
        item=str(report.get("item", "item")),
        regions=by_size,
        facts=facts,
    )


def count_variants(
    variants: Sequence[tuple[Variant, int, int]], counter: str, keep: Path | None = None
) -> dict[str, Counted | Exception]:
    """Count each ``(variant, n, warmup)``, as many at once as there are CPUs (a count
    does not depend on what else runs). Keyed by :meth:`Variant.key` and ``n``.
    ``keep``: a directory to copy each variant's callgrind profile into."""
    run = _callgrind if counter == "callgrind" else _perf

    def one(item: tuple[Variant, int, int]) -> Counted | Exception:
        variant, n, warmup = item
        with tempfile.TemporaryDirectory(prefix="graphcomms-count-") as tmp:
            try:
                return run(variant, n, warmup, Path(tmp), keep)
            except Exception as exc:  # reported in its row; the others still count
                return exc

    unique = {_variant_key(v, n): (v, n, w) for v, n, w in variants}
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        results = list(pool.map(one, unique.values()))
    return dict(zip(unique, results, strict=True))


def _variant_key(variant: Variant, n: int) -> str:
    return f"{variant.key()}@{n}"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def counted_rows(
    specs: Sequence[CountSpec], sizes: Sizes, log: Callable[[str], None] = _log
) -> list[Row]:
    """Count every variant ``specs`` name (each once) and make their rows; every row
    is skipped, with the reason, when no counter works here."""
    rows = [
        Row(key=s.key, title=s.title, target=s.target, ratio_meaning=s.ratio_meaning) for s in specs
    ]
    counter, note = choose_counter(sizes.counter)
    if counter is None:
        for row in rows:
            row.skipped = note
        return rows
    wanted = []
    for spec in specs:
        wanted.append((spec.subject, spec.n, spec.warmup))
        if spec.baseline is not None:
            wanted.append((spec.baseline, spec.n, spec.warmup))
    started = time.perf_counter()
    log(
        f"counting instructions with {note}: {len({_variant_key(v, n) for v, n, _ in wanted})}"
        " children"
    )
    keep = Path(sizes.keep_profiles) if sizes.keep_profiles else None
    results = count_variants(wanted, counter, keep)
    log(f"counted in {time.perf_counter() - started:.0f} s")
    for spec, row in zip(specs, rows, strict=True):
        subject = results[_variant_key(spec.subject, spec.n)]
        baseline = (
            results[_variant_key(spec.baseline, spec.n)] if spec.baseline is not None else None
        )
        failed = next((r for r in (subject, baseline) if isinstance(r, Exception)), None)
        if failed is not None:
            row.error = f"{type(failed).__name__}: {failed}"
            continue
        assert isinstance(subject, Counted)
        unit = f"instr/{subject.item}"
        row.subject = Series(subject.label, unit, [subject.per_item])
        row.extra["counter"] = note
        row.extra["n"], row.extra["warmup"] = spec.n, spec.warmup
        row.extra["subject"] = subject.to_json()
        if isinstance(baseline, Counted):
            row.baseline = Series(baseline.label, unit, [baseline.per_item])
            row.extra["baseline"] = baseline.to_json()
            row.ratios = [
                baseline.per_item / subject.per_item
                if spec.ratio == "baseline/subject"
                else subject.per_item / baseline.per_item
            ]
    return rows


# -- the child's side --------------------------------------------------------------


class _Markers:
    """Where a region's counting starts and stops."""

    def __init__(self, counter: str, control: Sequence[str] | None, last: int) -> None:
        self._counter = counter
        self._control = control
        self._last = last

    def start(self, region: int) -> None:
        if self._counter == "callgrind":
            os.getppid()
        elif self._counter == "perf" and region == self._last:
            self._command("enable")

    def stop(self, region: int) -> None:
        if self._counter == "callgrind":
            os.getppid()
        elif self._counter == "perf" and region == self._last:
            self._command("disable")

    def _command(self, command: str) -> None:
        assert self._control is not None
        control, ack = self._control
        with open(control, "w") as fifo:
            fifo.write(command + "\n")
        with open(ack) as fifo:
            if not fifo.readline().startswith("ack"):
                raise RuntimeError(f"perf did not acknowledge {command!r}")


def _factory(path: str) -> Callable[..., Workload]:
    module, _, name = path.partition(":")
    factory: Callable[..., Workload] = getattr(importlib.import_module(module), name)
    return factory


async def _child(spec: dict[str, Any]) -> dict[str, Any]:
    workload = _factory(spec["factory"])(**spec["params"])
    regions: list[int] = spec["regions"]
    markers = _Markers(spec["counter"], spec.get("control"), last=len(regions) - 1)
    seconds = []
    await workload.open()
    try:
        for index, count in enumerate(regions):
            await workload.prepare(count)
            gc.collect()
            gc.disable()
            try:
                started = time.perf_counter()
                markers.start(index)
                await workload.run(count)
                markers.stop(index)
                seconds.append(time.perf_counter() - started)
            finally:
                gc.enable()
            workload.check()
        facts = dict(workload.facts)
    finally:
        await workload.aclose()
    return {"item": workload.item, "regions": regions, "seconds": seconds, "facts": facts}


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one child's regions here, uncounted (``counter`` ``"none"``): what the smoke
    test uses to run every workload's counted path without valgrind."""
    return asyncio.run(_child({**spec, "counter": "none"}))


if __name__ == "__main__":
    report = asyncio.run(_child(json.loads(sys.argv[1])))
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
