from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

PAYLOADS = Path(__file__).parent / "payloads"


def load_payload(name: str) -> Any:
    """A recorded Graph payload from tests/payloads/<name>.json, decoded."""
    return json.loads((PAYLOADS / f"{name}.json").read_text())


@pytest.fixture
def payload() -> Any:
    return load_payload
