"""The one JSON codec: every body graphcomms reads or writes goes through here.

orjson (the ``fast`` extra) when installed, else the standard library; both give the
same values for the JSON Graph sends. Decoding never raises anything but
:class:`~graphcomms.errors.DeserializationError`, whose message never quotes the body.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from graphcomms.errors import DeserializationError

__all__ = ["dumps", "loads"]

_orjson_loads: Callable[[bytes | bytearray | str], Any] | None
_orjson_dumps: Callable[[Any], bytes] | None
try:
    # About three times faster than json at decoding a notification, many times at
    # encoding a request; optional, because the core install stays small.
    from orjson import dumps as _orjson_dumps
    from orjson import loads as _orjson_loads
except ImportError:  # pragma: no cover - depends on the extra
    _orjson_loads = _orjson_dumps = None


def loads(body: bytes | bytearray | str) -> Any:
    """The JSON value in ``body``; raises :class:`DeserializationError` (the body on
    ``.payload``) for anything that is not JSON text, whatever the reason."""
    if _orjson_loads is not None:
        try:
            return _orjson_loads(body)
        except (ValueError, TypeError):
            pass  # let the stdlib decoder say what is wrong, in the same words always
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        message = f"invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except UnicodeDecodeError:
        message = "invalid JSON: the body is not UTF-8, UTF-16 or UTF-32 text"
    except RecursionError:
        message = "invalid JSON: nested too deeply"
    except ValueError:
        # Python's own limits, such as an integer over 4,300 digits: its message would
        # quote part of the body.
        message = "invalid JSON: a value exceeds what can be decoded"
    except TypeError:
        message = f"invalid JSON: cannot decode a {type(body).__name__}"
    raise DeserializationError(message, payload=body)


def dumps(value: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON for a request body."""
    if _orjson_dumps is not None:
        return _orjson_dumps(value)  # UTF-8, not \\u escapes: equally valid JSON
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
