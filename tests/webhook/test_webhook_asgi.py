"""What only the ASGI adapter has: the lifespan, its own path check, other scope types,
and what it sends the server. The answers it shares with the aiohttp adapter are held
equal in test_webhook_http.py, which runs every case against both."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from test_webhook_http import head, raw, read_head, until_closed
from webhook_support import KeyServer, RecordingSink, SigningKey, envelope, make_token, serve

from graphcomms.webhook import ASGINotificationApp, NotificationReceiver

Message = dict[str, Any]


def channel(*messages: Message) -> Callable[[], Awaitable[Message]]:
    """An ASGI ``receive`` that gives ``messages`` in turn, then disconnects."""
    queue = list(messages)

    async def receive() -> Message:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    return receive


class Sent:
    """An ASGI ``send`` that records what it was sent."""

    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        status: int = self.messages[0]["status"]
        return status

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.messages[0]["headers"])


def scope(token: str | None, *, method: str = "POST", path: str = "/callback") -> Message:
    headers = [(b"content-type", b"application/json")]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return {"type": "http", "http_version": "1.1", "method": method, "path": path,
            "headers": headers}  # fmt: skip


async def test_a_whole_body_is_answered_without_closing_the_connection(
    receiver: NotificationReceiver, keys: dict[str, SigningKey], sink: RecordingSink
) -> None:
    body = json.dumps(envelope()).encode()
    sent = Sent()

    await ASGINotificationApp(receiver)(
        scope(make_token(keys["key1"])),
        channel({"type": "http.request", "body": body[:10], "more_body": True},
                {"type": "http.request", "body": body[10:]}),
        sent,
    )  # fmt: skip

    assert sent.status == 202
    assert b"connection" not in sent.headers
    assert sent.headers[b"content-length"] == b"0"
    assert sent.messages[1] == {"type": "http.response.body", "body": b""}
    assert sink.fed == [envelope()]


async def test_a_client_gone_mid_body_is_400_and_dispatches_nothing(
    receiver: NotificationReceiver, keys: dict[str, SigningKey], sink: RecordingSink
) -> None:
    """As under aiohttp: the part that came is judged, and is no notification."""
    sent = Sent()
    part = {"type": "http.request", "body": b'{"value": [', "more_body": True}

    await ASGINotificationApp(receiver)(scope(make_token(keys["key1"])), channel(part), sent)

    assert sent.status == 400
    assert receiver.stats.malformed == 1
    assert sink.fed == []


async def test_a_body_over_the_limit_is_413_and_the_rest_is_not_read(
    receiver: NotificationReceiver, keys: dict[str, SigningKey], sink: RecordingSink
) -> None:
    receiver.max_body_size = 100
    received: list[int] = []

    async def receive() -> Message:
        received.append(1)
        return {"type": "http.request", "body": b"x" * 60, "more_body": True}  # without end

    sent = Sent()
    await ASGINotificationApp(receiver)(scope(make_token(keys["key1"])), receive, sent)

    assert sent.status == 413
    assert sent.headers[b"connection"] == b"close"
    assert len(received) == 2  # 120 bytes: enough to know
    assert sink.fed == []


@pytest.mark.parametrize(
    ("method", "path", "status"), [("POST", "/other", 404), ("GET", "/callback", 405)]
)
async def test_another_path_or_method_is_refused_unread(
    receiver: NotificationReceiver, sink: RecordingSink, method: str, path: str, status: int
) -> None:
    sent = Sent()

    async def receive() -> Message:
        raise AssertionError("the body was read")

    app = ASGINotificationApp(receiver, path="/callback")
    await app(scope(None, method=method, path=path), receive, sent)

    assert sent.status == status
    assert sent.headers[b"connection"] == b"close"
    if status == 405:
        assert sent.headers[b"allow"] == b"POST"
    assert receiver.stats.rejected_auth == 0
    assert sink.fed == []


async def test_without_a_path_any_path_is_served(
    receiver: NotificationReceiver, keys: dict[str, SigningKey], sink: RecordingSink
) -> None:
    sent = Sent()
    body = {"type": "http.request", "body": json.dumps(envelope()).encode()}

    await ASGINotificationApp(receiver)(
        scope(make_token(keys["key1"]), path="/bot/7"), channel(body), sent
    )

    assert sent.status == 202
    assert len(sink.fed) == 1


async def test_a_websocket_is_closed_before_it_is_accepted(receiver: NotificationReceiver) -> None:
    sent = Sent()
    await ASGINotificationApp(receiver)({"type": "websocket"}, channel(), sent)
    assert sent.messages == [{"type": "websocket.close"}]


async def test_an_unknown_scope_type_raises(receiver: NotificationReceiver) -> None:
    with pytest.raises(ValueError, match="'telepathy'"):
        await ASGINotificationApp(receiver)({"type": "telepathy"}, channel(), Sent())


async def test_the_lifespan_loads_the_keys_and_closes_the_receiver(
    receiver: NotificationReceiver, key_server: KeyServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[bool] = []
    close = receiver.aclose

    async def aclose() -> None:
        closed.append(True)
        await close()

    monkeypatch.setattr(receiver, "aclose", aclose)
    sent = Sent()

    await ASGINotificationApp(receiver)(
        {"type": "lifespan"},
        channel({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}),
        sent,
    )

    assert sent.messages == [
        {"type": "lifespan.startup.complete"},
        {"type": "lifespan.shutdown.complete"},
    ]
    assert key_server.jwks_hits == 1
    assert closed == [True]


@pytest.mark.parametrize("phase", ["startup", "shutdown"])
async def test_a_lifespan_that_fails_says_so(
    receiver: NotificationReceiver, monkeypatch: pytest.MonkeyPatch, phase: str
) -> None:
    async def fail() -> None:
        raise RuntimeError("boom")

    assert receiver.validator is not None
    if phase == "startup":
        monkeypatch.setattr(receiver.validator, "refresh_keys", fail)
    else:
        monkeypatch.setattr(receiver.validator, "refresh_keys", _true)
        monkeypatch.setattr(receiver, "aclose", fail)
    sent = Sent()

    await ASGINotificationApp(receiver)(
        {"type": "lifespan"},
        channel({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}),
        sent,
    )

    assert sent.messages[-1] == {"type": f"lifespan.{phase}.failed", "message": "RuntimeError"}


async def _true() -> bool:
    return True


@pytest.mark.parametrize("server", ["uvicorn", "fastapi"])
async def test_under_uvicorn_the_keys_are_loaded_before_the_first_request(
    server: str, receiver: NotificationReceiver, key_server: KeyServer
) -> None:
    """Alone, uvicorn sends the app its lifespan; under FastAPI, the app's lifespan is
    the adapter's."""
    async with serve(server, receiver):
        assert key_server.jwks_hits == 1


@pytest.mark.parametrize("server", ["uvicorn", "fastapi"])
async def test_a_refused_answer_closes_the_connection_even_with_the_body_sent(
    server: str, receiver: NotificationReceiver, sink: RecordingSink
) -> None:
    """The body came with the headers, unread: the server must not keep the connection
    for a next request that would start inside it."""
    body = json.dumps(envelope()).encode()
    async with (
        serve(server, receiver) as http,
        raw(http.host, http.port) as (reader, writer),
    ):
        writer.write(head({}, length=len(body)) + body)
        status, headers = await read_head(reader)
        rest = await until_closed(reader)

    assert status == 401
    assert headers["connection"] == "close"
    assert rest == b"missing or malformed bearer token"
    assert sink.fed == []


async def test_the_repr_says_where_and_what_checks(sink: RecordingSink) -> None:
    receiver = NotificationReceiver(sink, validate=False)
    assert repr(ASGINotificationApp(receiver, path="/callback")) == (
        "<ASGINotificationApp on '/callback' with <NotificationReceiver NOT validating"
        " max_body_size=1048576 body_timeout=5.0>>"
    )
    assert "on any path" in repr(ASGINotificationApp(receiver))


async def test_without_token_checks_the_lifespan_only_closes(sink: RecordingSink) -> None:
    """validate=False (local development): no keys to load, nothing to fetch."""
    sent = Sent()
    app = ASGINotificationApp(NotificationReceiver(sink, validate=False))

    await app(
        {"type": "lifespan"},
        channel({"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}),
        sent,
    )

    assert [m["type"] for m in sent.messages] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]
