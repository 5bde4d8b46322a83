"""Which peers are installed. Importing this module imports none of them."""

from __future__ import annotations

import importlib.util
from importlib.metadata import PackageNotFoundError, version

__all__ = ["COLD_START_CODE", "PACKAGE", "available", "skip_reason"]

PACKAGE = "msgraph-beta-sdk"

# What a bot on the SDK runs first: import it and read one operation.
COLD_START_CODE = """
import msgraph_beta
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from msgraph_beta.generated.models.comms_operation import CommsOperation
node = JsonParseNodeFactory().get_root_parse_node("application/json", BODY)
operation = node.get_object_value(CommsOperation)
assert type(operation).__name__ == "PlayPromptOperation", operation
"""


def available() -> str | None:
    """The installed SDK's version, or ``None`` when it is not installed."""
    if importlib.util.find_spec("msgraph_beta") is None:
        return None
    try:
        return version(PACKAGE)
    except PackageNotFoundError:
        return None


def skip_reason(enabled: bool) -> str | None:
    """Why the peer rows have no numbers, or ``None`` when they can run."""
    if not enabled:
        return "peers off (the quick mode skips them; pass --peers)"
    if available() is None:
        return f"{PACKAGE} is not installed (pip install -e '.[bench]')"
    return None
