from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from aioresponses import core as aioresponses_core
from yarl import URL

PAYLOADS = Path(__file__).parent / "payloads"


def load_payload(name: str) -> Any:
    """A recorded Graph payload from tests/payloads/<name>.json, decoded."""
    return json.loads((PAYLOADS / f"{name}.json").read_text())


@pytest.fixture
def payload() -> Any:
    return load_payload


class _NoStreamWriter:
    output_size = 0


class _CompatResponse(aiohttp.ClientResponse):
    """aiohttp 3.14 added a required ``stream_writer`` argument that aioresponses 0.7.9
    does not pass (pnuckowski/aioresponses#289); give it a stand-in until it does."""

    def __init__(self, method: str, url: URL, **kwargs: Any) -> None:
        if "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters:
            kwargs.setdefault("stream_writer", _NoStreamWriter())
        super().__init__(method, url, **kwargs)


@pytest.fixture
def mock_graph(monkeypatch: pytest.MonkeyPatch) -> Iterator[aioresponses]:
    """Mocked HTTP for tests where only the request shape matters (no network)."""
    monkeypatch.setattr(aioresponses_core, "ClientResponse", _CompatResponse)
    with aioresponses() as mock:
        yield mock
