"""Graph's action endpoint answered in process: the cheapest network that still goes
through graphcomms' public API.

A :class:`FakeGraphSession` is handed to ``CommsClient(session=...)``, the public way
to lend a client an ``aiohttp.ClientSession``. It implements the part of that session's
public API a client uses -- ``request(method, url, ...)`` as an async context manager,
the response's ``status``, ``headers`` and ``read()``, ``closed`` and ``close()`` --
and answers every POST at once as Graph answers an operation action (reference §5.5):
200, ``Location``, and the running operation with a fresh id and the request's
``clientContext``. Nothing else is sent anywhere.

So ``await call.play_prompt(...)`` runs graphcomms' whole client side -- the request
model, its body, the tracker and its registration, the answer read as the action's
operation, the bind -- without aiohttp's client, sockets, or a server. The benchmarks
use it to make pending trackers the way a bot does (untimed), and in the in-process
action row, where the floor goes through the same session.

What it costs per request is the same for graphcomms and for any floor that posts
through it: decoding the request body (to echo ``clientContext``), a fresh id, encoding
the answer, and a ``CIMultiDict`` for the headers.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, cast

from multidict import CIMultiDict, CIMultiDictProxy

try:
    from orjson import dumps as _dumps
    from orjson import loads as _loads
except ImportError:  # pragma: no cover - the bench and test extras install orjson
    import json

    _loads = json.loads

    def _dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":")).encode()


if TYPE_CHECKING:
    import aiohttp

__all__ = ["FakeGraphSession", "graph_guid"]

_PLAY_PROMPT_TYPE = "#microsoft.graph.playPromptOperation"


def graph_guid() -> str:
    """A random GUID as Graph's answers spell an operation id (lower case, hyphens)."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class _Answer:
    """One answer; its own async context manager, as aiohttp's request context is."""

    __slots__ = ("_body", "headers", "status")

    def __init__(self, status: int, headers: CIMultiDictProxy[str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self._body = body

    async def read(self) -> bytes:
        return self._body

    async def __aenter__(self) -> _Answer:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class FakeGraphSession:
    """Answers every POST ``.../calls/{id}/{action}`` as Graph answers an operation
    action; anything else is a bug in the benchmark and raises ``AssertionError``.

    ``operation_id(client_context)`` picks each answer's operation id (default: a
    random GUID); the webhook server uses it to hand out ids its load process knows.
    ``answered`` counts the answers.
    """

    def __init__(self, operation_id: Callable[[str], str] | None = None) -> None:
        self.closed = False
        self.answered = 0
        self._operation_id = operation_id

    def request(self, method: str, url: str, *, data: bytes | None = None, **_: Any) -> _Answer:
        if method != "POST" or data is None:
            raise AssertionError(f"the fake Graph answers only action POSTs, not {method} {url}")
        context = _loads(data).get("clientContext")
        operation_id = (
            self._operation_id(context) if self._operation_id is not None else graph_guid()
        )
        call_url = url.rpartition("/")[0]  # .../communications/calls/{id}
        headers = CIMultiDictProxy(
            CIMultiDict(
                {
                    "Content-Type": "application/json",
                    "Location": f"{call_url}/operations/{operation_id}",
                }
            )
        )
        body = _dumps(
            {
                "@odata.type": _PLAY_PROMPT_TYPE,
                "id": operation_id,
                "status": "running",
                "clientContext": context,
            }
        )
        self.answered += 1
        return _Answer(200, headers, body)

    async def close(self) -> None:
        self.closed = True

    def as_session(self) -> aiohttp.ClientSession:
        """This fake, typed as the session ``CommsClient(session=...)`` accepts."""
        return cast("aiohttp.ClientSession", self)
