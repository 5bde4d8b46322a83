"""The benchmark suite still runs: every comparison of the quick mode, on tiny sizes.

This checks that each row produced numbers and that the JSON was written -- never a
time: on a shared machine a time proves nothing, and the targets are the suite's to
report, not this test's to enforce.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks._harness import QUICK, Sizes
from benchmarks._suite import COMPARISONS, run_suite

# The quick mode's machinery (its helper processes, its peers switched off) at a size
# that takes seconds.
TINY: Sizes = replace(
    QUICK,
    name="tiny",
    ingest_n=200,
    ingest_sdk_n=5,
    scale_big=2_000,
    scale_small=200,
    scale_batch=100,
    memory_pending=300,
    roundtrip_n=20,
    roundtrip_n_concurrent=64,
    webhook_n=100,
    concurrency=8,
    coldstart_repeats=5,
)


def _numbers(series: dict[str, object] | None) -> list[float]:
    assert series is not None
    samples = series["samples"]
    assert isinstance(samples, list)
    return [float(x) for x in samples]


def test_quick_mode_machinery_produces_every_row(tmp_path: Path) -> None:
    out = tmp_path / "results" / "bench.json"
    log = io.StringIO()

    document = run_suite(TINY, json_paths=[out], log=log)

    assert json.loads(out.read_text()) == json.loads(json.dumps(document))
    rows = document["rows"]
    keys = {row["key"] for row in rows}
    assert {"ingest.floor", "memory", "scale", "webhook", "coldstart.absolute"} <= keys
    assert {"roundtrip.c1.aiohttp", "roundtrip.c8.aiohttp"} <= keys
    for row in rows:
        assert row["result"] != "ERROR", (row, log.getvalue())
        if row["result"] == "SKIP":
            # Only the peer rows may be skipped, and the quick mode skips them.
            assert "sdk" in row["key"], row
            assert row["skipped"]
            continue
        assert row["result"] in {"PASS", "MISS"}, row
        assert row["value"] is not None, row
        assert math.isfinite(row["value"]), row
        samples = _numbers(row["subject"])
        assert len(samples) >= 5
        assert all(math.isfinite(x) and x > 0 for x in samples), row
        if row["baseline"] is not None:
            assert len(_numbers(row["baseline"])) == len(samples)
            assert len(row["ratios"]) == len(samples)
    assert document["machine"]["nproc"]
    assert "| comparison" in document["table"]


def test_every_comparison_is_in_the_suite() -> None:
    assert list(COMPARISONS) == ["ingest", "roundtrip", "webhook", "memory", "scale", "coldstart"]


def test_fewer_than_five_repeats_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 5"):
        replace(QUICK, repeats=4)
