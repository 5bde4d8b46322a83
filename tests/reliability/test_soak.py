"""The soak harness at CI size (issue #6): the full run is ``python -m qa soak``.

Each run goes through the emulator and the real webhook with token validation on, and
checks itself against the emulator's record; these tests assert on its report.
"""

from __future__ import annotations

import gc
import io
import warnings

from graphcomms.testing import Faults
from qa.soak import DEFAULT_FAULTS, Outcome, SoakReport, run_soak


def assert_clean_end(report: SoakReport) -> None:
    assert report.registry_holds_nothing
    assert report.pending_after == 0
    assert report.tasks_left == []
    assert report.sockets_left in (0, None)
    assert report.warnings == []
    assert report.loop_errors == []


async def test_ci_sized_soak_passes_every_check() -> None:
    out = io.StringIO()
    report = await run_soak(operations=600, calls=20, seed=1, out=out)

    assert report.ok, report.render()
    assert "OK: every check passed" in out.getvalue()
    assert sum(report.outcomes.values()) == 600
    assert report.outcomes.get(Outcome.HUNG.value, 0) == 0
    # Every tracker handed out resolved exactly once.
    assert set(report.resolutions) == {1}
    assert report.verdicts["result delivered: exactly that outcome"] > 300
    assert report.receiver_stats["rejected"] == 0  # genuine tokens all pass, under load too
    assert_clean_end(report)


async def test_heavy_faults_are_recovered_not_hung() -> None:
    # Five times the drops and hang-ups of the default mix, so every path is taken
    # even at this size.
    faults = Faults(duplicate=0.1, reorder=0.1, early=0.05, drop=0.05, throttle=0.02, retry_after=0)
    report = await run_soak(
        operations=500, calls=20, seed=2, faults=faults, hangup_rate=0.02, out=io.StringIO()
    )

    assert report.ok, report.render()
    assert report.verdicts["result dropped: recovered by reconciliation"] > 0
    assert report.verdicts["call ended mid-operation: CallEndedError"] > 0
    assert report.faults_seen["duplicate"] > 0
    assert report.faults_seen["reorder"] > 0
    assert report.faults_seen["throttled"] > 0
    assert report.client_stats["duplicates"] > 0
    assert_clean_end(report)


async def test_deadline_probes_time_out_at_their_deadline_and_keep_the_late_result() -> None:
    report = await run_soak(
        operations=200, calls=10, seed=3, probe_rate=0.05, probe_timeout=0.3, out=io.StringIO()
    )

    assert report.ok, report.render()
    kept = report.verdicts["probe: timed out at deadline, late result kept"]
    assert kept > 0
    assert report.client_stats["late_results"] >= kept


async def test_aclose_midway_fails_everything_pending_at_once_and_leaves_nothing() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = await run_soak(
            operations=600, calls=20, seed=4, close_midway=True, out=io.StringIO()
        )
        gc.collect()  # an unclosed session or transport would warn here, as an error

    assert report.ok, report.render()
    assert report.outcomes[Outcome.CLOSED.value] > 0
    assert report.close_latency_ms is not None
    assert report.close_latency_ms < 1000
    # Nothing ran after the close: the unstarted rest of the plan was never issued.
    assert sum(report.outcomes.values()) < 600
    assert_clean_end(report)


async def test_the_harness_catches_a_lost_result() -> None:
    # Without reconciliation a dropped result can only time out: the harness must say
    # so rather than pass.
    report = await run_soak(
        operations=120,
        calls=6,
        seed=5,
        faults=Faults(drop=0.3),
        reconcile_after=None,
        operation_timeout=1.0,
        probe_rate=0.0,
        hangup_rate=0.0,
        out=io.StringIO(),
    )

    assert not report.ok
    assert any("not recovered before the 1.0 s deadline" in v for v in report.violations)
    assert report.outcomes[Outcome.TIMEOUT.value] > 0
    assert report.outcomes.get(Outcome.HUNG.value, 0) == 0


def test_the_default_fault_mix_is_the_issues() -> None:
    issue = Faults(
        duplicate=0.05, reorder=0.05, early=0.02, drop=0.01, throttle=0.01, retry_after=1
    )
    assert issue == DEFAULT_FAULTS
