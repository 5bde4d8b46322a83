"""The benchmark suite still runs: every comparison of the quick mode, on tiny sizes, and
every workload the instruction mode counts.

This checks that each row produced numbers, that the premises the rows state hold
(steady state, every waiting task woken), and that the JSON was written -- never a time
or a count: on a shared machine a time proves nothing, and the targets are the suite's
to report, not this test's to enforce. The one test that runs valgrind is skipped where
valgrind is not installed (CI does not need it).
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import stat
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks._harness import QUICK, Sizes
from benchmarks._instructions import (
    CountSpec,
    Variant,
    choose_counter,
    counted_rows,
    parse_callgrind_total,
    parse_perf_total,
    run_child,
)
from benchmarks._suite import COMPARISONS, run_suite
from benchmarks.ingest import FloorIngest

# The quick mode's machinery (its helper processes, its peers switched off) at a size
# that takes seconds.
TINY: Sizes = replace(
    QUICK,
    name="tiny",
    ingest_n=200,
    ingest_sdk_n=5,
    finished_limit=300,
    action_n=50,
    scale_big=2_000,
    scale_small=200,
    scale_batch=100,
    memory_pending=300,
    roundtrip_n=20,
    roundtrip_n_concurrent=64,
    webhook_n=100,
    concurrency=8,
    coldstart_repeats=5,
    instr_n=20,
    instr_warmup=5,
    instr_finished_limit=50,
    instr_scale_big=400,
    instr_scale_small=100,
    instr_scale_n=20,
    instr_action_n=20,
    fleet_n=20,
    fleet_recover=200,
)

# The fleet rows need a redis-server; CI has one and says so (GRAPHCOMMS_REQUIRE_REDIS).
_FLEET_MAY_SKIP = shutil.which("redis-server") is None and (
    os.environ.get("GRAPHCOMMS_REQUIRE_REDIS") != "1"
)

# Every workload the instruction rows count, as the rows name them.
COUNTED = [
    ("benchmarks.ingest:GraphcommsIngest", {"finished_limit": 50}),
    ("benchmarks.ingest:FloorIngest", {"decoder": "orjson"}),
    ("benchmarks.ingest:FloorIngest", {"decoder": "json"}),
    ("benchmarks.ingest:FloorIngest", {"decoder": "orjson", "adds": "typed"}),
    ("benchmarks.ingest:FloorIngest", {"decoder": "orjson", "adds": "typed+path"}),
    ("benchmarks.ingest:ScalePool", {"pending": 100, "finished_limit": 50}),
    ("benchmarks.action:GraphcommsAction", {}),
    ("benchmarks.action:FloorAction", {}),
]


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
    rows = {row["key"]: row for row in document["rows"]}
    assert {
        "ingest.orjson",
        "ingest.json",
        "action",
        "memory",
        "scale",
        "webhook",
        "coldstart.absolute",
        "roundtrip.c1.aiohttp",
        "roundtrip.c8.aiohttp",
        "fleet.wrong_instance.p50",
        "fleet.forwarding",
        "fleet.relay_on_off",
        "fleet.relay_on_off.loopback",
        "fleet.recover",
    } <= set(rows)
    for row in rows.values():
        assert row["result"] != "ERROR", (row, log.getvalue())
        if row["result"] == "SKIP":
            # Only the peer rows may be skipped, and the quick mode skips them; and the
            # fleet rows where no redis-server is installed.
            assert "sdk" in row["key"] or (_FLEET_MAY_SKIP and row["key"].startswith("fleet.")), row
            assert row["skipped"]
            continue
        assert row["result"] in {"PASS", "MISS", "-"}, row
        assert row["value"] is not None, row
        assert math.isfinite(row["value"]), row
        samples = _numbers(row["subject"])
        assert len(samples) >= 5
        assert all(math.isfinite(x) and x > 0 for x in samples), row
        if row["baseline"] is not None:
            assert len(_numbers(row["baseline"])) == len(samples)
            assert len(row["ratios"]) == len(samples)
    # The network rows run their own (larger, at full size) number of rounds.
    assert len(rows["webhook"]["ratios"]) == TINY.network_repeats
    # Steady state held: finished-work memory was full at the start of every round.
    facts = rows["ingest.orjson"]["extra"]["graphcomms"]
    assert facts["finished_limit"] == TINY.finished_limit
    assert facts["finished_remembered_at_start"] == [TINY.finished_limit] * (TINY.repeats + 1)
    assert rows["webhook"]["extra"]["finished_limit"] == TINY.finished_limit
    assert document["machine"]["nproc"]
    assert document["machine"]["library"]["path"].endswith("graphcomms")
    assert set(document["load_average"]["per_comparison"]) == set(COMPARISONS)
    assert "| comparison" in document["table"]


@pytest.mark.parametrize(("factory", "params"), COUNTED)
def test_every_counted_workload_runs_its_regions(factory: str, params: dict[str, object]) -> None:
    # What a counted child runs, here and uncounted: open, then per region prepare,
    # run, check (which raises unless every item ended as it must), then close.
    report = run_child({"factory": factory, "params": params, "regions": [5, 10, 20]})

    assert report["regions"] == [5, 10, 20]
    assert len(report["seconds"]) == 3
    assert all(s > 0 for s in report["seconds"])
    assert report["item"] in {"notif", "action"}


@pytest.mark.parametrize(
    ("decoder", "adds"), [("json", "typed"), ("sdk", "typed"), ("orjson", "typed+json")]
)
def test_a_lower_bound_is_only_the_orjson_floor_plus_a_known_part(decoder: str, adds: str) -> None:
    with pytest.raises(ValueError, match="unknown addition"):
        FloorIngest(decoder=decoder, adds=adds)


def test_every_comparison_is_in_the_suite() -> None:
    assert list(COMPARISONS) == [
        "ingest",
        "roundtrip",
        "action",
        "webhook",
        "memory",
        "scale",
        "coldstart",
        "fleet",
    ]


def test_fewer_than_five_repeats_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 5"):
        replace(QUICK, repeats=4)
    with pytest.raises(ValueError, match="at least 5"):
        replace(QUICK, network_repeats=4)


# -- instruction counts -------------------------------------------------------------


def _floor_spec(n: int) -> CountSpec:
    return CountSpec(
        key="floors",
        title="orjson floor vs json floor",
        target=None,
        subject=Variant("orjson", "benchmarks.ingest:FloorIngest", {"decoder": "orjson"}),
        baseline=Variant("json", "benchmarks.ingest:FloorIngest", {"decoder": "json"}),
        n=n,
        warmup=10,
    )


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
def test_callgrind_counts_each_region_on_its_own() -> None:
    # The cheapest workloads, counted for real: each region's dump must hold that
    # region alone, so the count grows with the items in it (n, then 2n), and the
    # per-item count from the difference agrees with the first region's own.
    [row] = counted_rows([_floor_spec(100)], replace(TINY, counter="callgrind"), log=lambda _: None)

    assert row.error is None, row.error
    assert row.subject is not None
    assert row.baseline is not None
    for counted in (row.extra["subject"], row.extra["baseline"]):
        assert counted["counter"] == "callgrind"
        regions = {int(k): v for k, v in counted["regions"].items()}
        assert set(regions) == {10, 100, 200}
        assert 0 < regions[10] < regions[100] < regions[200]
        assert counted["per_item"] == pytest.approx(counted["first_region_per_item"], rel=0.05)
    # json.loads executes more instructions than orjson.loads for the same body.
    assert row.subject.samples[0] < row.baseline.samples[0]
    assert row.ratios == [row.baseline.samples[0] / row.subject.samples[0]]


def test_rows_are_skipped_with_the_reason_when_nothing_can_count(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # neither perf nor valgrind on it

    [row] = counted_rows([_floor_spec(10)], TINY, log=lambda _: None)

    assert row.verdict == "SKIP"
    assert row.skipped is not None
    assert "perf is not installed" in row.skipped
    assert "valgrind is not installed" in row.skipped


def test_counter_reports_perf_unsupported_and_falls_back_to_callgrind(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_tool(
        tmp_path / "perf", 'sys.stderr.write("<not supported>,,instructions:u,0,100.00,,\\n")'
    )
    _fake_tool(tmp_path / "valgrind", "")
    monkeypatch.setenv("PATH", str(tmp_path))

    counter, note = choose_counter("auto")

    assert counter == "callgrind"
    assert "<not supported>" in note


# A stand-in for perf that speaks its control-FIFO protocol (perf opens both FIFOs
# read-write and answers each command with "ack"), and reports as "instructions" the
# microseconds counting was enabled: enough to check the plumbing, not the counts.
_FAKE_PERF = """
import os, select, subprocess, time
args = sys.argv[1:]
if args[-1] == "true":
    sys.stderr.write("1000,,instructions:u,100,100.00,,\\n")
    raise SystemExit(0)
control = next(a for a in args if a.startswith("--control=fifo:"))[len("--control=fifo:"):]
control, ack = control.split(",")
out = args[args.index("-o") + 1]
command = args[args.index("--") + 1:]
ctl_fd = os.open(control, os.O_RDWR | os.O_NONBLOCK)
ack_fd = os.open(ack, os.O_RDWR | os.O_NONBLOCK)
child = subprocess.Popen(command)
enabled_at, total, buffer = None, 0.0, b""
while child.poll() is None:
    if not select.select([ctl_fd], [], [], 0.01)[0]:
        continue
    buffer += os.read(ctl_fd, 4096)
    while b"\\n" in buffer:
        line, buffer = buffer.split(b"\\n", 1)
        if line == b"enable":
            enabled_at = time.perf_counter()
        elif line == b"disable" and enabled_at is not None:
            total += time.perf_counter() - enabled_at
        os.write(ack_fd, b"ack\\n")
with open(out, "w") as f:
    f.write(f"{int(total * 1e6)},,instructions:u,100,100.00,,\\n")
raise SystemExit(child.returncode)
"""


def _fake_tool(path: Path, body: str) -> None:
    path.write_text(f"#!{sys.executable}\nimport sys\n{textwrap.dedent(body)}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def test_perf_counts_only_the_last_region_through_its_control_fifo(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _fake_tool(tmp_path / "perf", _FAKE_PERF)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")

    [row] = counted_rows([_floor_spec(20)], replace(TINY, counter="perf"), log=lambda _: None)

    assert row.error is None, row.error
    for counted in (row.extra["subject"], row.extra["baseline"]):
        assert counted["counter"] == "perf"
        assert set(counted["regions"]) == {"20", "40"}
        # Enabled only around the region: its length, not the child's whole life.
        assert 0 < counted["regions"]["20"] < 2_000_000


def test_count_parsers_read_what_the_tools_write() -> None:
    assert parse_callgrind_total("events: Ir\nsummary: 12345\ntotals: 12345\n") == 12345
    assert parse_perf_total("123456,,instructions:u,1000,100.00,,\n") == 123456
    assert parse_perf_total("<not supported>,,instructions:u,0,100.00,,\n") is None
    with pytest.raises(ValueError, match="summary"):
        parse_callgrind_total("events: Ir\n")
