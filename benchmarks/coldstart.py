"""Comparison 6: cold start -- a fresh interpreter imports the library and reads its
first operation (the §5.5 playPrompt answer).

The time is taken inside the child, from before the import to after the decode, so the
interpreter's own start (the same for both) is left out; the parent's wall time per
process is kept in the row's ``extra``. One untimed run of each first writes the
bytecode caches, as any install does.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from benchmarks import _peers
from benchmarks._harness import Row, Series, Sizes, Target, paired
from benchmarks._payloads import encode, running_play_prompt
from benchmarks._procs import SYS_PATH_SETUP, child_env

__all__ = ["run_coldstart"]

ABSOLUTE_TARGET = Target("<=", 0.3, "s")
SDK_TARGET = Target("<=", 0.1)

_ROOT = Path(__file__).resolve().parent.parent

GRAPHCOMMS_CODE = """
import graphcomms
from graphcomms._converter import structure_operation
import json
operation = structure_operation(json.loads(BODY))
assert type(operation).__name__ == "PlayPromptOperation", operation
"""

# Wraps either snippet: BODY is the answer's bytes, the time goes to stdout. The
# child takes this process's import path first (untimed), so that it imports the
# library this run measures.
_HARNESS = """
{setup}
import time
_started = time.perf_counter()
BODY = {body!r}
{code}
print(time.perf_counter() - _started)
"""


def _cold(code: str) -> tuple[float, float]:
    """(seconds inside the child, the child's wall time seen from here)."""
    body = encode(running_play_prompt("0fe0623f-d628-42ed-b4bd-8ac290072cc5", "ctx"))
    env = child_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _HARNESS.format(setup=SYS_PATH_SETUP, body=body, code=code)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=_ROOT,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"cold start child failed: {done.stderr.strip()[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1]), wall


def run_coldstart(sizes: Sizes) -> list[Row]:
    absolute = Row(
        key="coldstart.absolute",
        title="6. cold start: import + first decode",
        target=ABSOLUTE_TARGET,
    )
    versus = Row(
        key="coldstart.sdk",
        title="6. cold start vs msgraph-beta-sdk",
        target=SDK_TARGET,
        ratio_meaning="graphcomms seconds / SDK seconds",
    )
    skip = _peers.skip_reason(sizes.peers)
    with_sdk = skip is None
    variants = [("graphcomms", GRAPHCOMMS_CODE)]
    if with_sdk:
        variants.append((_peers.PACKAGE, _peers.COLD_START_CODE))
    series = {name: Series(name, "s") for name, _ in variants}
    walls: dict[str, list[float]] = {name: [] for name, _ in variants}
    for _, code in variants:
        _cold(code)  # writes the bytecode caches
    for _ in range(sizes.coldstart_repeats):
        for name, code in variants:
            inside, wall = _cold(code)
            series[name].samples.append(inside)
            walls[name].append(wall)
    ours = series["graphcomms"]
    absolute.subject = ours
    absolute.extra["process_wall_s"] = walls["graphcomms"]
    if with_sdk:
        sdk = series[_peers.PACKAGE]
        versus.subject, versus.baseline = ours, sdk
        versus.ratios = paired(ours, sdk, lambda s, b: s / b)
        versus.extra["process_wall_s"] = walls
    else:
        versus.skipped = skip
    return [absolute, versus]
