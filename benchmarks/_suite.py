"""The suite: run the comparisons, print the table, write the JSON."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TextIO

from benchmarks._harness import Row, Sizes

__all__ = ["COMPARISONS", "COUNTED", "DEFAULT_JSON", "machine", "render_table", "run_suite"]

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latest.json"

Comparison = Callable[[Sizes], list[Row]]


def _ingest(sizes: Sizes) -> list[Row]:
    from benchmarks.ingest import run_ingest

    return run_ingest(sizes)


def _roundtrip(sizes: Sizes) -> list[Row]:
    from benchmarks.roundtrip import run_roundtrip

    return run_roundtrip(sizes)


def _action(sizes: Sizes) -> list[Row]:
    from benchmarks.action import run_action

    return run_action(sizes)


def _webhook(sizes: Sizes) -> list[Row]:
    from benchmarks.webhook import run_webhook

    return run_webhook(sizes)


def _memory(sizes: Sizes) -> list[Row]:
    from benchmarks.memory import run_memory

    return run_memory(sizes)


def _scale(sizes: Sizes) -> list[Row]:
    from benchmarks.ingest import run_scale

    return run_scale(sizes)


def _coldstart(sizes: Sizes) -> list[Row]:
    from benchmarks.coldstart import run_coldstart

    return run_coldstart(sizes)


def _fleet(sizes: Sizes) -> list[Row]:
    from benchmarks.fleet import run_fleet

    return run_fleet(sizes)


#: In the issue's order. Imported lazily: ``--only`` one of them loads only its module.
COMPARISONS: dict[str, Comparison] = {
    "ingest": _ingest,
    "roundtrip": _roundtrip,
    "action": _action,
    "webhook": _webhook,
    "memory": _memory,
    "scale": _scale,
    "coldstart": _coldstart,
    "fleet": _fleet,
}

#: The comparisons with instruction-count rows; the only ones ``--no-timing`` runs.
COUNTED = ("ingest", "action", "scale")

_PACKAGES = (
    "graphcomms",
    "aiohttp",
    "attrs",
    "cattrs",
    "PyJWT",
    "cryptography",
    "orjson",
    "msgraph-beta-sdk",
    "microsoft-kiota-abstractions",
    "microsoft-kiota-serialization-json",
    "microsoft-kiota-http",
    "httpx",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _revision(where: Path) -> str | None:
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=where,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _library() -> dict[str, Any]:
    """Which graphcomms was measured: a run against another checkout (PYTHONPATH)
    says so here, since package metadata names the installed one."""
    import graphcomms

    where = Path(graphcomms.__file__).resolve().parent
    return {"path": str(where), "revision": _revision(where)}


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    packages: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": packages,
        "revision": _revision(Path(__file__).resolve().parent),
        "library": _library(),
    }


def _load() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def render_table(rows: Sequence[Row]) -> str:
    """A Markdown table: one line per row, with its target and PASS/MISS."""
    header = ("comparison", "graphcomms", "baseline", "ratio / value", "target", "result")
    lines = [header]
    for row in rows:
        if row.error is not None or row.skipped is not None:
            reason = row.error if row.error is not None else row.skipped
            lines.append((row.title, "-", "-", str(reason), str(row.target or "-"), row.verdict))
            continue
        lines.append(
            (
                row.title,
                row.subject.describe() if row.subject is not None else "-",
                row.baseline.describe() if row.baseline is not None else "-",
                row.describe_value(),
                str(row.target or "-"),
                row.verdict,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def fmt(cells: Iterable[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [fmt(lines[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(fmt(line) for line in lines[1:])
    return "\n".join(out)


def run_suite(
    sizes: Sizes,
    *,
    only: Sequence[str] | None = None,
    json_paths: Sequence[Path] = (DEFAULT_JSON,),
    log: TextIO = sys.stderr,
    command: str | None = None,
) -> dict[str, Any]:
    """Run the comparisons named in ``only`` (all by default), in the issue's order.

    A comparison that raises becomes an ``ERROR`` row (traceback on ``log``) and the
    others still run. Returns the JSON document, which is also written to each of
    ``json_paths``. ``command`` is recorded as the way to reproduce the run.
    """
    names = list(COMPARISONS) if only is None else [n for n in COMPARISONS if n in only]
    if not sizes.timing:
        names = [n for n in names if n in COUNTED]
    unknown = set(only or ()) - set(COMPARISONS)
    if unknown:
        raise ValueError(f"unknown comparisons: {', '.join(sorted(unknown))}")
    started_at = datetime.datetime.now(datetime.timezone.utc)
    load_before = _load()
    started = time.perf_counter()
    rows: list[Row] = []
    loads: dict[str, list[float] | None] = {}
    for name in names:
        loads[name] = _load()
        print(
            f"[{time.perf_counter() - started:6.1f} s] running {name} (load {loads[name]}) ...",
            file=log,
            flush=True,
        )
        try:
            rows.extend(COMPARISONS[name](sizes))
        except Exception as exc:
            traceback.print_exc(file=log)
            error = f"{type(exc).__name__}: {exc}"
            rows.append(Row(key=name, title=name, target=None, error=error))
    document = {
        "suite": "graphcomms benchmarks",
        "mode": sizes.name
        + ("" if sizes.timing else ", no timing")
        + (", instructions" if sizes.instructions else ""),
        "command": command,
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - started, 1),
        # 1, 5 and 15 minutes, as os.getloadavg() gives them; two CPUs here, so a load
        # over 2 means the benchmark shared them with other work.
        "load_average": {"before": load_before, "per_comparison": loads, "after": _load()},
        "machine": machine(),
        "sizes": asdict(sizes),
        "rows": [row.to_json() for row in rows],
        "table": render_table(rows),
    }
    for path in json_paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return document
