"""The receiver end to end: real servers (each adapter in turn), real HTTP, local key server.

Every test that takes the ``http`` fixture runs against each of webhook_support.SERVERS,
which holds the aiohttp and ASGI adapters to the same answers.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Callable
from importlib.metadata import version
from typing import Any, TypeAlias

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives import serialization
from webhook_support import (
    APP_ID,
    MISSING,
    TENANT_ID,
    KeyServer,
    LoopbackClient,
    RecordingSink,
    SigningKey,
    envelope,
    make_token,
    serve,
)

from graphcomms.webhook import NotificationReceiver, TokenValidator, add_routes, make_app

Client: TypeAlias = LoopbackClient


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned_token(header: dict[str, Any], claims: dict[str, Any], key: bytes = b"") -> str:
    """A token PyJWT would refuse to mint: alg=none, or HS256 keyed with a public key."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = b""
    if header["alg"] == "HS256":
        signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _claims() -> dict[str, Any]:
    now = int(time.time())
    return {"aud": APP_ID, "iss": "https://api.botframework.com", "tid": TENANT_ID,
            "nbf": now - 10, "exp": now + 3600}  # fmt: skip


JSON = {"Content-Type": "application/json"}  # what the platform sends


async def post(client: Client, token: str | None, body: Any = None, **headers: str) -> Any:
    headers = {**JSON, **headers}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(envelope() if body is None else body) if not isinstance(body, bytes) else body
    return await client.post("/callback", data=data, headers=headers)


async def test_valid_token_is_fed_and_answered_202(
    http: Client, keys: dict[str, SigningKey], sink: RecordingSink, receiver: NotificationReceiver
) -> None:
    response = await post(http, make_token(keys["key1"]))

    assert response.status == 202
    assert sink.fed == [envelope()]
    assert receiver.stats.accepted == 1


async def test_x5c_keys_verify_too(
    http: Client, keys: dict[str, SigningKey], key_server: KeyServer, sink: RecordingSink
) -> None:
    key_server.published = [keys["key2"]]

    response = await post(http, make_token(keys["key2"]))

    assert response.status == 202
    assert len(sink.fed) == 1


@pytest.mark.parametrize("issuer", ["https://api.botframework.com/", "https://graph.microsoft.com"])
async def test_other_accepted_issuers(
    http: Client, keys: dict[str, SigningKey], sink: RecordingSink, issuer: str
) -> None:
    assert (await post(http, make_token(keys["key1"], iss=issuer))).status == 202
    assert len(sink.fed) == 1


async def test_audience_list_containing_the_app_is_accepted(
    http: Client, keys: dict[str, SigningKey]
) -> None:
    token = make_token(keys["key1"], aud=["someone-else", APP_ID])
    assert (await post(http, token)).status == 202


def _now() -> int:
    return int(time.time())


REFUSED_TOKENS = {
    "wrong audience": (403, lambda k: make_token(k["key1"], aud="another-app")),
    "no audience": (401, lambda k: make_token(k["key1"], aud=MISSING)),
    "wrong issuer": (401, lambda k: make_token(k["key1"], iss="https://evil.example")),
    "no issuer": (401, lambda k: make_token(k["key1"], iss=MISSING)),
    "expired": (401, lambda k: make_token(k["key1"], exp=_now() - 120)),
    "no expiry": (401, lambda k: make_token(k["key1"], exp=MISSING)),
    "not yet valid": (401, lambda k: make_token(k["key1"], nbf=_now() + 600)),
    "issued in the future": (401, lambda k: make_token(k["key1"], iat=_now() + 600)),
    "expiry past what a float holds": (401, lambda k: make_token(k["key1"], exp=10**400)),
    "not-before past what a float holds": (401, lambda k: make_token(k["key1"], nbf=10**400)),
    "missing tid": (401, lambda k: make_token(k["key1"], tid=MISSING)),
    "empty tid": (401, lambda k: make_token(k["key1"], tid="")),
    "signed by another key, same kid": (401, lambda k: make_token(k["rogue"], kid="key1")),
    "no kid": (401, lambda k: make_token(k["key1"], kid="")),
    "alg none": (401, lambda k: _unsigned_token({"alg": "none", "kid": "key1"}, _claims())),
    "HS256 keyed with the public key": (
        401,
        lambda k: _unsigned_token(
            {"alg": "HS256", "kid": "key1", "typ": "JWT"},
            _claims(),
            k["key1"]
            .private.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        ),
    ),
    "RS512": (401, lambda k: _rs512(k["key1"])),
    "tampered claims": (401, lambda k: _tampered(make_token(k["key1"]))),
    "stray character base64 would skip": (401, lambda k: make_token(k["key1"]) + "+"),
}


def _rs512(key: SigningKey) -> str:
    return jwt.encode(_claims(), key.private, algorithm="RS512", headers={"kid": key.kid})


def _tampered(token: str) -> str:
    header, _, signature = token.split(".")
    claims = {**_claims(), "tid": "ffffffff-0000-0000-0000-000000000000"}
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


@pytest.mark.parametrize("case", list(REFUSED_TOKENS))
async def test_refused_tokens_dispatch_nothing(
    http: Client,
    keys: dict[str, SigningKey],
    sink: RecordingSink,
    receiver: NotificationReceiver,
    case: str,
) -> None:
    status, token = REFUSED_TOKENS[case]

    response = await post(http, token(keys))

    assert response.status == status
    assert sink.fed == []
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert receiver.stats.rejected_auth == 1
    else:
        assert receiver.stats.rejected_forbidden == 1
    assert receiver.stats.accepted == 0


async def test_expiry_within_leeway_is_accepted(http: Client, keys: dict[str, SigningKey]) -> None:
    token = make_token(keys["key1"], exp=_now() - 10, nbf=_now() + 10)
    assert (await post(http, token)).status == 202


@pytest.mark.parametrize(
    "authorization",
    ["", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer a b", "garbage", "Bearer abc.def.ghi",
     "Bearer ....", "Bearer e30.e30.e30", "Token xyz"],
)  # fmt: skip
async def test_malformed_authorization_header(
    http: Client, sink: RecordingSink, authorization: str
) -> None:
    response = await http.post(
        "/callback", data=json.dumps(envelope()), headers={**JSON, "Authorization": authorization}
    )
    assert response.status == 401
    assert sink.fed == []


async def test_missing_authorization_header(http: Client, sink: RecordingSink) -> None:
    assert (await post(http, None)).status == 401
    assert sink.fed == []


async def test_scheme_is_case_insensitive(http: Client, keys: dict[str, SigningKey]) -> None:
    response = await http.post(
        "/callback",
        data=json.dumps(envelope()),
        headers={**JSON, "Authorization": f"bearer {make_token(keys['key1'])}"},
    )
    assert response.status == 202


async def test_tenant_allow_list(
    server: str, settings: Any, keys: dict[str, SigningKey], sink: RecordingSink
) -> None:
    validator = TokenValidator(settings(allowed_tenants={TENANT_ID.upper()}))
    receiver = NotificationReceiver(sink, validator)
    async with serve(server, receiver) as client:
        allowed = await post(client, make_token(keys["key1"]))
        other = await post(client, make_token(keys["key1"], tid="99999999-0000-0000-0000-0"))

    assert (allowed.status, other.status) == (202, 403)
    assert len(sink.fed) == 1
    assert receiver.stats.rejected_forbidden == 1


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"{", b"\xff\xfe\x00garbage", b"[1, 2]", b'"a string"', b"null",
     b"[" * 100_000, b'{"value": "not a list"}', b'{"unexpected": true}'],
    ids=["empty", "text", "truncated", "binary", "array", "string", "null", "deep", "shape",
         "unknown"],
)  # fmt: skip
async def test_garbage_body_is_400(
    http: Client,
    keys: dict[str, SigningKey],
    sink: RecordingSink,
    receiver: NotificationReceiver,
    body: bytes,
) -> None:
    response = await post(http, make_token(keys["key1"]), body)

    assert response.status == 400
    assert sink.fed == []
    assert receiver.stats.malformed == 1


async def test_unknown_odata_type_inside_an_envelope_is_accepted(
    http: Client, keys: dict[str, SigningKey], sink: RecordingSink
) -> None:
    body = envelope(**{"@odata.type": "#microsoft.graph.somethingNew"})
    assert (await post(http, make_token(keys["key1"]), body)).status == 202
    assert sink.fed == [body]


@pytest.mark.parametrize(
    "content_type",
    ["application/json; charset=punycode", "application/json; charset=Windows-1252",
     "application/json; charset=utf-16", "text/plain", "application/xml", "text/json"],
)  # fmt: skip
async def test_a_body_not_declared_as_utf8_json_is_415_and_not_dispatched(
    http: Client,
    keys: dict[str, SigningKey],
    sink: RecordingSink,
    receiver: NotificationReceiver,
    content_type: str,
) -> None:
    """RFC 8259: JSON between systems is UTF-8. Decoding with whatever codec a header
    names would run a stranger's choice of codec on a stranger's bytes (punycode is
    quadratic); an ASCII body would decode as anything, so this one is ASCII."""
    body = json.dumps(envelope()).encode()

    response = await post(http, make_token(keys["key1"]), body, **{"Content-Type": content_type})

    assert response.status == 415
    assert sink.fed == []
    assert receiver.stats.unsupported_media_type == 1
    assert receiver.stats.accepted == 0


@pytest.mark.parametrize(
    "content_type",
    ["application/json", "application/json; charset=utf-8", "APPLICATION/JSON;CHARSET=UTF-8",
     'application/json; charset="utf-8"', "application/json; odata.metadata=minimal",
     "application/octet-stream", None],
)  # fmt: skip
async def test_utf8_json_is_accepted_however_it_is_declared(
    http: Client, keys: dict[str, SigningKey], sink: RecordingSink, content_type: str | None
) -> None:
    body = json.dumps(envelope(displayName="Zoë"), ensure_ascii=False).encode()
    headers = {"Authorization": f"Bearer {make_token(keys['key1'])}"}
    if content_type is not None:
        headers["Content-Type"] = content_type

    response = await http.post(
        "/callback", data=body, headers=headers, skip_auto_headers=["Content-Type"]
    )

    assert response.status == 202
    assert "Content-Type" not in response.request_info.headers or content_type is not None
    assert sink.fed[0]["value"][0]["resourceData"]["displayName"] == "Zoë"


LEGACY_CONVERSATION = {
    "id": "b8f1a2c3-0000-0000-0000-000000000001",
    "participants": [
        {"identity": "29:caller", "languageId": "en-US", "originator": True},
        {"identity": "28:bot", "originator": False},
    ],
    "isMultiparty": False,
    "presentedModalityTypes": ["audio"],
    "callState": "incoming",
    "links": {"callback": "https://example.invalid/callback"},
}


async def test_legacy_format_is_answered_204(
    http: Client, keys: dict[str, SigningKey], sink: RecordingSink, receiver: NotificationReceiver
) -> None:
    response = await post(http, make_token(keys["key1"]), LEGACY_CONVERSATION)

    assert response.status == 204
    assert sink.fed == []
    assert receiver.stats.legacy == 1


async def test_legacy_format_still_needs_a_valid_token(http: Client, sink: RecordingSink) -> None:
    assert (await post(http, None, LEGACY_CONVERSATION)).status == 401


@pytest.fixture
def small_limit(receiver: NotificationReceiver) -> int:
    receiver.max_body_size = 4096
    return 4096


async def test_body_at_the_limit_is_read(
    http: Client, keys: dict[str, SigningKey], small_limit: int
) -> None:
    body = envelope(padding="")
    padding = small_limit - len(json.dumps(body).encode())
    body = envelope(padding="x" * padding)
    assert len(json.dumps(body).encode()) == small_limit
    assert (await post(http, make_token(keys["key1"]), body)).status == 202


async def test_oversized_body_is_413(
    http: Client,
    keys: dict[str, SigningKey],
    sink: RecordingSink,
    receiver: NotificationReceiver,
    small_limit: int,
) -> None:
    response = await post(http, make_token(keys["key1"]), envelope(padding="x" * small_limit))

    assert response.status == 413
    assert sink.fed == []
    assert receiver.stats.too_large == 1


async def test_oversized_chunked_upload_without_content_length_is_413(
    http: Client,
    keys: dict[str, SigningKey],
    sink: RecordingSink,
    receiver: NotificationReceiver,
    small_limit: int,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(16):
            yield b"x" * 1024

    response = await http.post(
        "/callback",
        data=chunks(),
        headers={"Authorization": f"Bearer {make_token(keys['key1'])}"},
    )

    assert response.status == 413
    assert "Content-Length" not in response.request_info.headers
    assert sink.fed == []
    assert receiver.stats.too_large == 1


async def test_small_chunked_upload_is_accepted(
    http: Client, keys: dict[str, SigningKey], sink: RecordingSink
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        data = json.dumps(envelope()).encode()
        for start in range(0, len(data), 100):
            yield data[start : start + 100]

    response = await http.post(
        "/callback", data=chunks(), headers={"Authorization": f"Bearer {make_token(keys['key1'])}"}
    )
    assert response.status == 202
    assert sink.fed == [envelope()]


async def test_declared_oversize_is_refused_before_the_body_is_read(
    http: Client, sink: RecordingSink, receiver: NotificationReceiver
) -> None:
    """The client declares 100 MiB and sends none of it: only the header can be judged."""
    reader, writer = await asyncio.open_connection(http.host, http.port)
    try:
        writer.write(
            b"POST /callback HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
        )
        await writer.drain()
        status_line = await asyncio.wait_for(reader.readline(), 5)
    finally:
        writer.close()
        await writer.wait_closed()

    assert status_line.startswith(b"HTTP/1.1 413")
    assert sink.fed == []
    assert receiver.stats.too_large == 1


# -- refusing before reading: raw sockets, so that nothing is sent unless the test says --


@contextlib.asynccontextmanager
async def raw(
    host: str, port: int
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


def head(headers: dict[str, str], *, length: int | None = 1000) -> bytes:
    """A notification POST's request line and headers; no body."""
    fields = {"Host": "localhost", **JSON, **headers}
    if length is not None:
        fields["Content-Length"] = str(length)
    lines = ["POST /callback HTTP/1.1", *(f"{name}: {value}" for name, value in fields.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """The next answer's status and headers (lower-case names), waiting at most 5 s."""
    status_line = await asyncio.wait_for(reader.readline(), 5)
    headers = {}
    while (line := await asyncio.wait_for(reader.readline(), 5)) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers


async def until_closed(reader: asyncio.StreamReader) -> bytes:
    """What is left to read when the server closes the connection (within 5 s).

    A server that closes while our bytes are still unread in its socket (uvicorn has
    no lingering close) makes the kernel send a reset: closed too, with nothing left."""
    try:
        return await asyncio.wait_for(reader.read(), 5)
    except ConnectionResetError:
        return b""


Headers = Callable[[dict[str, SigningKey]], dict[str, str]]


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


REFUSED_FROM_HEADERS: dict[str, tuple[int, Headers]] = {
    "no token": (401, lambda k: {}),
    "not a bearer token": (401, lambda k: {"Authorization": "Basic dXNlcjpwYXNz"}),
    "bad signature": (401, lambda k: _bearer(make_token(k["rogue"], kid="key1"))),
    "expired": (401, lambda k: _bearer(make_token(k["key1"], exp=_now() - 120))),
    "another app": (403, lambda k: _bearer(make_token(k["key1"], aud="another-app"))),
    "declared over the limit": (
        413,
        lambda k: {**_bearer(make_token(k["key1"])), "Content-Length": str(2 * 1024 * 1024)},
    ),
    "charset=punycode": (
        415,
        lambda k: {
            **_bearer(make_token(k["key1"])),
            "Content-Type": "application/json; charset=punycode",
        },
    ),
}


@pytest.mark.parametrize("case", list(REFUSED_FROM_HEADERS))
async def test_refused_from_the_headers_before_any_body_byte_is_sent(
    http: Client, keys: dict[str, SigningKey], sink: RecordingSink, case: str
) -> None:
    """The body never comes: an answer can only come from the headers. Then the
    connection closes rather than wait for (or drain) a body nobody will read."""
    status, headers = REFUSED_FROM_HEADERS[case]
    extra = headers(keys)
    length = int(extra.pop("Content-Length", "1000"))

    async with raw(http.host, http.port) as (reader, writer):
        writer.write(head(extra, length=length))
        answered, answer_headers = await read_head(reader)
        rest = await until_closed(reader)

    assert answered == status
    assert answer_headers["connection"] == "close"
    assert len(rest) == int(answer_headers["content-length"])  # the reason, then EOF
    assert sink.fed == []


async def test_a_refused_request_gets_no_100_continue(
    http: Client, sink: RecordingSink, receiver: NotificationReceiver
) -> None:
    async with raw(http.host, http.port) as (reader, writer):
        writer.write(head({"Expect": "100-continue"}))
        status, _ = await read_head(reader)
        await until_closed(reader)

    assert status == 401
    assert receiver.stats.rejected_auth == 1
    assert sink.fed == []


async def test_a_request_with_a_valid_token_gets_100_continue_then_its_answer(
    http: Client, keys: dict[str, SigningKey], sink: RecordingSink
) -> None:
    body = json.dumps(envelope()).encode()
    headers = {**_bearer(make_token(keys["key1"])), "Expect": "100-continue"}

    async with raw(http.host, http.port) as (reader, writer):
        writer.write(head(headers, length=len(body)))
        interim, _ = await read_head(reader)
        writer.write(body)
        final, _ = await read_head(reader)

    assert (interim, final) == (100, 202)
    assert sink.fed == [envelope()]


async def test_an_unknown_expectation_is_417(http: Client, keys: dict[str, SigningKey]) -> None:
    headers = {**_bearer(make_token(keys["key1"])), "Expect": "something-else"}
    async with raw(http.host, http.port) as (reader, writer):
        writer.write(head(headers))
        status, _ = await read_head(reader)
    assert status == 417


@pytest.mark.parametrize("framing", ["Content-Length", "chunked"])
async def test_a_body_not_received_in_time_gets_408_and_the_connection_closes(
    http: Client,
    keys: dict[str, SigningKey],
    sink: RecordingSink,
    receiver: NotificationReceiver,
    framing: str,
) -> None:
    receiver.body_timeout = 0.2
    headers = _bearer(make_token(keys["key1"]))
    if framing == "chunked":
        request = (
            head({**headers, "Transfer-Encoding": "chunked"}, length=None) + b'b\r\n{"value": [\r\n'
        )
    else:
        request = head(headers, length=1000) + b'{"value": ['

    async with raw(http.host, http.port) as (reader, writer):
        writer.write(request)  # and nothing more
        status, answer_headers = await read_head(reader)
        rest = await until_closed(reader)

    assert status == 408
    assert answer_headers["connection"] == "close"
    assert rest == b"body not received in time"
    assert receiver.stats.timed_out == 1
    assert sink.fed == []


@pytest.mark.parametrize("framing", ["Content-Length", "chunked"])
async def test_a_body_that_comes_late_but_in_time_is_accepted(
    http: Client, keys: dict[str, SigningKey], sink: RecordingSink, framing: str
) -> None:
    body = json.dumps(envelope()).encode()
    first, second = body[:20], body[20:]
    headers = _bearer(make_token(keys["key1"]))
    if framing == "chunked":
        request = head({**headers, "Transfer-Encoding": "chunked"}, length=None)
        parts = [
            b"%x\r\n%s\r\n" % (len(first), first),
            b"%x\r\n%s\r\n0\r\n\r\n" % (len(second), second),
        ]
    else:
        request, parts = head(headers, length=len(body)), [first, second]

    async with raw(http.host, http.port) as (reader, writer):
        writer.write(request + parts[0])
        await asyncio.sleep(0.2)
        writer.write(parts[1])
        status, _ = await read_head(reader)

    assert status == 202
    assert sink.fed == [envelope()]


async def test_the_body_deadline_is_for_the_whole_body_not_each_read(
    http: Client, keys: dict[str, SigningKey], sink: RecordingSink, receiver: NotificationReceiver
) -> None:
    """A byte every 50 ms keeps any per-read timeout happy for the 50 s this body
    would take; the deadline still falls at 0.3 s."""
    receiver.body_timeout = 0.3

    async with raw(http.host, http.port) as (reader, writer):
        writer.write(head(_bearer(make_token(keys["key1"])), length=1000))

        async def trickle() -> None:
            for _ in range(1000):
                writer.write(b" ")
                await asyncio.sleep(0.05)

        trickling = asyncio.ensure_future(trickle())
        try:
            status, _ = await read_head(reader)
            await until_closed(reader)
        finally:
            trickling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await trickling

    assert status == 408
    assert sink.fed == []


@pytest.mark.skipif(
    tuple(int(part) for part in version("aiohttp").split(".")[:3]) < (3, 14, 4),
    reason="aiohttp starts keepalive_timeout when a connection opens only from 3.14.4",
)
async def test_keepalive_timeout_closes_a_connection_whose_headers_never_end(
    receiver: NotificationReceiver,
) -> None:
    """What the README's deployment snippet relies on: aiohttp has no header timeout of
    its own, but from 3.14.4 ``keepalive_timeout`` also runs from the connection's start."""
    runner = web.AppRunner(make_app(receiver), keepalive_timeout=0.3)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        async with raw("127.0.0.1", runner.addresses[0][1]) as (reader, writer):
            writer.write(b"POST /callback HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            assert await until_closed(reader) == b""
    finally:
        await runner.cleanup()


async def test_only_post_is_served(http: Client) -> None:
    assert (await http.get("/callback")).status == 405


async def test_concurrent_requests_with_one_token_verify_once(
    http: Client, keys: dict[str, SigningKey], receiver: NotificationReceiver, sink: RecordingSink
) -> None:
    token = make_token(keys["key1"])
    await post(http, token)

    responses = await asyncio.gather(*(post(http, token) for _ in range(20)))

    assert {r.status for r in responses} == {202}
    assert len(sink.fed) == 21
    assert receiver.validator is not None
    assert receiver.validator.stats.verifications == 1


async def test_a_client_opened_in_cleanup_ctx_receives_through_routes_added_before(
    keys: dict[str, SigningKey], settings: Any, sink: RecordingSink
) -> None:
    """The deployment shape: routes while building the app, the client (here a sink)
    attached as the app starts; a request before that is 503 and dispatches nothing."""
    receiver = NotificationReceiver(validator=TokenValidator(settings()))
    app = web.Application()
    add_routes(app, receiver)
    attached = []

    async def graph(_: web.Application) -> AsyncIterator[None]:
        receiver.sink = sink
        attached.append(True)
        yield
        receiver.sink = None

    app.cleanup_ctx.append(graph)
    token = make_token(keys["key1"])
    # Not started: the receiver has no sink yet.
    assert await receiver.check({"Authorization": f"Bearer {token}"}) is not None
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as http:
        assert attached == [True]
        response = await post(http, token)
        assert response.status == 202
        assert sink.fed == [envelope()]
        assert (await post(http, None)).status == 401  # the token still comes first
    assert receiver.stats.accepted == 1


async def test_without_a_sink_a_valid_token_gets_503_and_nothing_is_read(
    keys: dict[str, SigningKey], settings: Any
) -> None:
    async with TokenValidator(settings()) as validator:
        receiver = NotificationReceiver(validator=validator)
        token = make_token(keys["key1"])
        result = await receiver.check({"Authorization": f"Bearer {token}"})
        assert result is not None
        assert (result.status, result.dispatched) == (503, False)
        no_token = await receiver.check({})
        assert no_token is not None
        assert no_token.status == 401
        assert receiver.accept(json.dumps(envelope()).encode()).status == 503
        assert receiver.stats.failed == 2
        assert receiver.stats.accepted == 0


async def test_add_routes_from_cleanup_ctx_with_the_client_opened_there(
    keys: dict[str, SigningKey], settings: Any, sink: RecordingSink
) -> None:
    """The code users write: the client (here a sink) and the routes made as the app
    starts. aiohttp refused this before (on_startup is frozen by then)."""
    app = web.Application()
    receivers: list[NotificationReceiver] = []

    async def graph(app: web.Application) -> AsyncIterator[None]:
        receiver = NotificationReceiver(sink, TokenValidator(settings()))
        add_routes(app, receiver)
        receivers.append(receiver)
        yield

    app.cleanup_ctx.append(graph)
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)) as http:
        assert (await post(http, make_token(keys["key1"]))).status == 202
        assert sink.fed == [envelope()]
        [receiver] = receivers
        assert receiver.validator is not None
        assert receiver.validator.stats.verifications == 1
    # The receiver was closed with the app: its validator's session is gone.
    assert receiver.validator._session is None or receiver.validator._session.closed


async def test_add_routes_on_a_started_app_says_what_to_do_instead(
    receiver: NotificationReceiver,
) -> None:
    app = web.Application()
    async with TestClient(TestServer(app, host="127.0.0.1", port=0)):
        with pytest.raises(RuntimeError, match=r"receiver\.sink = client"):
            add_routes(app, receiver)
