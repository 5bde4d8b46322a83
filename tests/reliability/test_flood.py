"""The webhook flood at CI size (issue #6): the full run is ``python -m qa flood``.

The load generator is another process; the receiver, with token validation on, and
the client it feeds are in this one, where memory is measured.
"""

from __future__ import annotations

import io

import pytest

from qa.flood import _Generator, run_flood


async def test_flood_answers_everything_dispatches_only_valid_and_stays_bounded() -> None:
    out = io.StringIO()
    report = await run_flood(
        seconds=25,
        requests=3_000,
        concurrency=32,
        early_limit=400,
        token_cache_size=100,
        valid_tokens=250,
        trace_memory=True,
        out=out,
    )

    assert report.ok, report.render()
    assert "OK: every check passed" in out.getvalue()
    assert report.sent == 3_000
    assert set(report.statuses["valid"]) == {"202"}
    assert set(report.statuses["forged"]) <= {"401", "403"}
    assert set(report.statuses["malformed"]) <= {"400", "413"}
    assert not report.transport_errors
    # Dispatched: exactly the valid requests (and the probes), nothing forged.
    assert report.foreign_dispatches == 0
    assert report.dispatched == report.statuses["valid"]["202"] + report.probes
    assert report.probes > 0
    assert report.probe_failures == 0
    # Bounded: the caps held and memory stopped growing once they were full.
    assert report.warm_index is not None
    assert max(s.early_pending for s in report.samples) == 400
    assert max(s.cached_tokens for s in report.samples) == 100
    assert report.traced_growth_after_warm_mib is not None
    assert report.traced_growth_after_warm_mib < 2.0


def test_the_generator_refuses_anything_but_loopback() -> None:
    config = {
        "url": "http://192.0.2.1:8080/callback",
        "seed": 0,
        "seconds": 1,
        "requests": 1,
        "concurrency": 1,
        "mix": [1, 0, 0],
        "valid_tokens": ["t"],
        "forged": [],
        "calls": ["c"],
        "max_body_size": 10,
    }
    with pytest.raises(SystemExit, match="loopback"):
        _Generator(config)
