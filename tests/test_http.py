from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import socket
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aioresponses import aioresponses
from hypothesis import given
from hypothesis import strategies as st
from yarl import URL

from graphcomms._http import GRAPH_BETA, GRAPH_V1, HttpTransport
from graphcomms._http_errors import error_from_response
from graphcomms._settings import RetryPolicy
from graphcomms.auth import StaticTokenProvider
from graphcomms.errors import (
    BadRequestError,
    ClientClosedError,
    ConflictError,
    ForbiddenError,
    GraphCommsError,
    InvalidRequestError,
    NotFoundError,
    RequestTimeoutError,
    ResponseError,
    ServerError,
    ThrottledError,
    TokenAcquisitionError,
    TransportError,
    UnauthorizedError,
)

TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret-graph-token"
RECORDING_TOKEN = "recording-secret-token"
CALLS = GRAPH_V1 + "communications/calls"
PLAY = CALLS + "/call-1/playPrompt"
CALL = CALLS + "/call-1"


class Sleeps(list[float]):
    """Stands in for asyncio.sleep: records what was asked, waits for nothing."""

    async def __call__(self, delay: float) -> None:
        self.append(delay)


class RotatingTokens:
    """A provider whose token changes on every forced refresh."""

    def __init__(self) -> None:
        self.calls: list[bool] = []
        self.version = 1

    async def get_token(self, *, force_refresh: bool = False) -> str:
        self.calls.append(force_refresh)
        if force_refresh:
            self.version += 1
        return f"token-v{self.version}"


def graph_error(code: str, message: str, /, **inner: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "innerError": inner}}


def sent(mock: aioresponses, method: str, url: str) -> list[Any]:
    return list(mock.requests.get((method, URL(url)), []))


def header(call: Any, name: str) -> str | None:
    headers = {k.lower(): v for k, v in call.kwargs["headers"].items()}
    return headers.get(name.lower())


@pytest.fixture
def mock(mock_graph: aioresponses) -> aioresponses:
    return mock_graph


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
async def transport(sleeps: Sleeps) -> AsyncIterator[HttpTransport]:
    t = HttpTransport(
        base_url=GRAPH_V1,
        token_provider=StaticTokenProvider(TOKEN),
        sleep=sleeps,
        rng=random.Random(1234),
    )
    yield t
    await t.aclose()


def make_transport(sleeps: Sleeps, **kwargs: Any) -> HttpTransport:
    kwargs.setdefault("base_url", GRAPH_V1)
    kwargs.setdefault("token_provider", StaticTokenProvider(TOKEN))
    return HttpTransport(sleep=sleeps, rng=random.Random(99), **kwargs)


# --- request shape -------------------------------------------------------------------


async def test_post_sends_token_ids_and_compact_json(
    mock: aioresponses, transport: HttpTransport
) -> None:
    mock.post(
        PLAY,
        status=202,
        headers={"Location": CALL + "/operations/op-1", "request-id": "req-1"},
        body="",
    )
    body = {"clientContext": "ctx", "prompts": [{"@odata.type": "#microsoft.graph.mediaPrompt"}]}

    response = await transport.request("POST", "communications/calls/call-1/playPrompt", json=body)

    [call] = sent(mock, "POST", PLAY)
    assert header(call, "Authorization") == f"Bearer {TOKEN}"
    assert header(call, "Content-Type") == "application/json"
    assert header(call, "Accept") == "application/json"
    assert (header(call, "User-Agent") or "").startswith("graphcomms/")
    client_request_id = header(call, "client-request-id")
    assert client_request_id is not None
    assert uuid.UUID(client_request_id).version == 4
    assert call.kwargs["data"] == json.dumps(body, separators=(",", ":")).encode()
    assert call.kwargs["data"].startswith(b'{"clientContext":"ctx","prompts":[{')

    assert response.status == 202
    assert response.body is None
    assert response.location == CALL + "/operations/op-1"
    assert response.headers["LOCATION"] == response.location  # case-insensitive
    assert response.request_id == "req-1"
    assert response.client_request_id == client_request_id


async def test_every_request_gets_its_own_client_request_id(
    mock: aioresponses, transport: HttpTransport
) -> None:
    mock.get(CALL, payload={"id": "call-1"}, repeat=True)

    first = await transport.request("GET", "communications/calls/call-1")
    second = await transport.request("GET", "communications/calls/call-1")

    ids = [header(call, "client-request-id") for call in sent(mock, "GET", CALL)]
    assert ids == [first.client_request_id, second.client_request_id]
    assert len(set(ids)) == 2


async def test_get_has_no_body_and_no_content_type(
    mock: aioresponses, transport: HttpTransport
) -> None:
    mock.get(CALL, payload={"id": "call-1", "state": "established"})

    response = await transport.request("get", "/communications/calls/call-1")

    [call] = sent(mock, "GET", CALL)
    assert call.kwargs["data"] is None
    assert header(call, "Content-Type") is None
    assert response.body == {"id": "call-1", "state": "established"}


async def test_absolute_url_is_used_as_is(mock: aioresponses, transport: HttpTransport) -> None:
    location = GRAPH_BETA + "communications/calls/call-1/operations/op-1"
    mock.get(location, payload={"status": "running"})

    response = await transport.request("GET", location)

    assert response.body == {"status": "running"}
    assert sent(mock, "GET", location)


async def test_base_url_without_trailing_slash(mock: aioresponses, sleeps: Sleeps) -> None:
    mock.get("https://graph.microsoft.us/v1.0/communications/calls/c", payload={})
    transport = make_transport(sleeps, base_url="https://graph.microsoft.us/v1.0")
    try:
        await transport.request("GET", "communications/calls/c")
    finally:
        await transport.aclose()


async def test_non_json_success_body_is_none_and_warned(
    mock: aioresponses, transport: HttpTransport, caplog: pytest.LogCaptureFixture
) -> None:
    mock.post(PLAY, status=200, body="<html>ok</html>", content_type="text/html")

    with caplog.at_level(logging.WARNING, logger="graphcomms.http"):
        response = await transport.request("POST", PLAY, json={})

    assert response.status == 200
    assert response.body is None
    assert "not JSON" in caplog.text


async def test_response_repr_hides_body(mock: aioresponses, transport: HttpTransport) -> None:
    mock.get(CALL, payload={"recordingAccessToken": RECORDING_TOKEN})

    response = await transport.request("GET", CALL)

    assert response.body == {"recordingAccessToken": RECORDING_TOKEN}
    assert RECORDING_TOKEN not in repr(response)


@pytest.mark.parametrize("bad", ["ftp://graph.microsoft.com/x", "file:///etc/passwd"])
async def test_non_http_url_is_refused(transport: HttpTransport, bad: str) -> None:
    with pytest.raises(InvalidRequestError):
        await transport.request("GET", bad)


def test_base_url_must_be_absolute() -> None:
    with pytest.raises(ValueError, match="base_url"):
        HttpTransport(base_url="graph.microsoft.com", token_provider=StaticTokenProvider("t"))


# --- status -> exception --------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, UnauthorizedError),
        (403, ForbiddenError),
        (404, NotFoundError),
        (405, ResponseError),
        (409, ConflictError),
        (412, ResponseError),
        (429, ThrottledError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
    ],
)
@pytest.mark.parametrize("json_body", [True, False], ids=["graph-json", "not-json"])
async def test_status_maps_to_exception(
    mock: aioresponses, sleeps: Sleeps, status: int, cls: type[ResponseError], json_body: bool
) -> None:
    if json_body:
        body = json.dumps(
            graph_error(
                "SomeCode",
                "Something went wrong.",
                code="moreSpecific",
                **{"request-id": "body-req", "client-request-id": "echoed"},
            )
        )
    else:
        body = "<html><body>Service Unavailable</body></html>"
    mock.post(PLAY, status=status, body=body, repeat=True)
    transport = make_transport(sleeps, retry=RetryPolicy(max_attempts=1))

    try:
        with pytest.raises(cls) as info:
            await transport.request("POST", PLAY, json={"clientContext": "c"})
    finally:
        await transport.aclose()

    exc = info.value
    assert type(exc) is cls
    assert exc.status == status
    assert exc.method == "POST"
    assert exc.url == PLAY
    last = sent(mock, "POST", PLAY)[-1]
    assert exc.client_request_id == header(last, "client-request-id")
    if json_body:
        assert (exc.code, exc.message, exc.inner_code) == (
            "SomeCode",
            "Something went wrong.",
            "moreSpecific",
        )
        assert exc.request_id == "body-req"
        assert exc.text is None
    else:
        assert exc.code is None
        assert exc.text == body
        assert "Service Unavailable" in str(exc)
    assert TOKEN not in str(exc)
    assert TOKEN not in repr(exc)
    assert TOKEN not in repr(exc.__dict__)


def test_request_id_header_wins_and_is_carried() -> None:
    exc = error_from_response(
        status=404,
        headers={"request-id": "header-req", "Date": "Wed, 01 Jan 2025 00:00:00 GMT"},
        text=json.dumps(graph_error("itemNotFound", "gone", **{"request-id": "body-req"})),
        method="DELETE",
        url=CALL,
        client_request_id="mine",
    )
    assert isinstance(exc, NotFoundError)
    assert exc.request_id == "header-req"
    assert exc.client_request_id == "mine"
    assert "header-req" in str(exc)
    assert "mine" in str(exc)


def test_nested_and_lowercase_inner_error() -> None:
    text = json.dumps(
        {
            "error": {
                "code": "badRequest",
                "message": "nope",
                "innererror": {
                    "code": "invalidRange",
                    "request-id": "r1",
                    "innerError": {"code": "evenMoreSpecific"},
                },
            }
        }
    )
    exc = error_from_response(
        status=400, headers={}, text=text, method="POST", url=PLAY, client_request_id=None
    )
    assert exc.inner_code == "evenMoreSpecific"
    assert exc.request_id == "r1"


def test_client_request_id_falls_back_to_the_echo() -> None:
    text = json.dumps(graph_error("UnknownError", "x", **{"client-request-id": "echoed"}))
    exc = error_from_response(
        status=500, headers={}, text=text, method="POST", url=PLAY, client_request_id=None
    )
    assert exc.client_request_id == "echoed"


@pytest.mark.parametrize(
    "text",
    ["", "null", "[1, 2]", '{"error": "flat string"}', '{"odata.error": {}}', "\x00\xff"],
)
def test_odd_bodies_never_break_the_mapping(text: str) -> None:
    exc = error_from_response(
        status=400, headers={}, text=text, method="GET", url=CALL, client_request_id="c"
    )
    assert type(exc) is BadRequestError
    assert exc.code is None
    assert exc.text == (text or None)


def test_long_text_is_truncated() -> None:
    exc = error_from_response(
        status=502, headers={}, text="x" * 100_000, method="GET", url=CALL, client_request_id="c"
    )
    assert exc.text is not None
    assert len(exc.text) <= 2000
    assert len(str(exc)) < 1000


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        ("0", 0.0),
        (" 1.5 ", 1.5),
        ("-3", None),
        ("soon", None),
        ("nan", None),
        ("Wed, 01 Jan 2025 00:00:30 GMT", 30.0),  # measured against the Date header
        ("Tue, 31 Dec 2024 23:59:00 GMT", 0.0),  # already past
    ],
)
def test_retry_after_parsing(value: str, expected: float | None) -> None:
    exc = error_from_response(
        status=429,
        headers={"retry-after": value, "Date": "Wed, 01 Jan 2025 00:00:00 GMT"},
        text="",
        method="POST",
        url=PLAY,
        client_request_id="c",
    )
    assert isinstance(exc, ThrottledError)
    assert exc.retry_after == expected


def test_retry_after_date_without_date_header_uses_the_clock() -> None:
    in_a_minute = email.utils.formatdate(__import__("time").time() + 60, usegmt=True)
    exc = error_from_response(
        status=503,
        headers={"Retry-After": in_a_minute},
        text="",
        method="GET",
        url=CALL,
        client_request_id="c",
    )
    assert isinstance(exc, ServerError)
    assert exc.retry_after is not None
    assert 55 <= exc.retry_after <= 61


# --- retries ----------------------------------------------------------------------------


THROTTLED = graph_error("TooManyRequests", "Please retry again later.", code="429")


async def test_429_post_is_retried_after_retry_after_then_succeeds(
    mock: aioresponses, transport: HttpTransport, sleeps: Sleeps
) -> None:
    mock.post(PLAY, status=429, headers={"Retry-After": "2"}, payload=THROTTLED)
    mock.post(PLAY, status=429, headers={"Retry-After": "120"}, payload=THROTTLED)
    mock.post(PLAY, status=200, payload={"id": "op-1", "status": "running"})

    response = await transport.request("POST", PLAY, json={"clientContext": "c"})

    assert response.body == {"id": "op-1", "status": "running"}
    calls = sent(mock, "POST", PLAY)
    assert len(calls) == 3
    assert all(c.kwargs["data"] == b'{"clientContext":"c"}' for c in calls)
    assert len({header(c, "client-request-id") for c in calls}) == 3
    assert response.client_request_id == header(calls[-1], "client-request-id")
    first, second = sleeps
    # Never sooner than Graph asked; jitter only adds, up to 10 %.
    assert 2.0 <= first <= 2.2
    # 120 s is cut to max_delay, which no wait ever exceeds.
    assert second == 30.0


async def test_429_without_retry_after_backs_off(
    mock: aioresponses, transport: HttpTransport, sleeps: Sleeps
) -> None:
    mock.post(PLAY, status=429, payload=THROTTLED)
    mock.post(PLAY, status=429, payload=THROTTLED)
    mock.post(PLAY, status=202, body="")

    await transport.request("POST", PLAY, json={})

    first, second = sleeps
    assert 0.45 <= first <= 0.55
    assert 0.9 <= second <= 1.1


async def test_attempts_exhausted_raises_throttled_with_retry_after(
    mock: aioresponses, transport: HttpTransport, sleeps: Sleeps
) -> None:
    mock.post(PLAY, status=429, headers={"Retry-After": "1"}, payload=THROTTLED, repeat=True)

    with pytest.raises(ThrottledError) as info:
        await transport.request("POST", PLAY, json={})

    assert info.value.retry_after == 1.0
    assert info.value.code == "TooManyRequests"
    assert len(sent(mock, "POST", PLAY)) == 4
    assert len(sleeps) == 3
    assert all(1.0 <= s <= 1.1 for s in sleeps)


async def test_503_post_without_retry_after_is_not_retried(
    mock: aioresponses, transport: HttpTransport, sleeps: Sleeps
) -> None:
    mock.post(PLAY, status=503, payload=graph_error("serviceNotAvailable", "busy"), repeat=True)

    with pytest.raises(ServerError) as info:
        await transport.request("POST", PLAY, json={})

    assert info.value.retry_after is None
    assert len(sent(mock, "POST", PLAY)) == 1
    assert sleeps == []


async def test_503_post_with_retry_after_is_retried(
    mock: aioresponses, transport: HttpTransport, sleeps: Sleeps
) -> None:
    mock.post(PLAY, status=503, headers={"Retry-After": "3"}, body="")
    mock.post(PLAY, status=202, body="")

    response = await transport.request("POST", PLAY, json={})

    assert response.status == 202
    assert len(sleeps) == 1
    assert 3.0 <= sleeps[0] <= 3.3


async def test_503_get_without_retry_after_is_retried(
    mock: aioresponses, transport: HttpTransport, sleeps: Sleeps
) -> None:
    mock.get(CALL, status=503, body="")
    mock.get(CALL, status=200, payload={"id": "call-1"})

    await transport.request("GET", CALL)

    assert len(sleeps) == 1


async def test_504_post_is_not_retried(
    mock: aioresponses, transport: HttpTransport, sleeps: Sleeps
) -> None:
    mock.post(PLAY, status=504, headers={"Retry-After": "1"}, body="", repeat=True)

    with pytest.raises(ServerError):
        await transport.request("POST", PLAY, json={})

    assert len(sent(mock, "POST", PLAY)) == 1
    assert sleeps == []


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_504_idempotent_is_retried_with_backoff(
    mock: aioresponses, transport: HttpTransport, sleeps: Sleeps, method: str
) -> None:
    mock.add(CALL, method, status=504, body="gateway timeout", repeat=True)

    with pytest.raises(ServerError) as info:
        await transport.request(method, CALL)

    assert info.value.status == 504
    assert info.value.text == "gateway timeout"
    assert len(sent(mock, method, CALL)) == 4
    for retry, delay in enumerate(sleeps, start=1):
        nominal = 0.5 * 2 ** (retry - 1)
        assert nominal * 0.9 <= delay <= nominal * 1.1


@pytest.mark.parametrize("status", [400, 403, 404, 409, 500, 502])
async def test_other_errors_are_not_retried(
    mock: aioresponses, transport: HttpTransport, sleeps: Sleeps, status: int
) -> None:
    mock.get(CALL, status=status, body="", repeat=True)

    with pytest.raises(ResponseError):
        await transport.request("GET", CALL)

    assert len(sent(mock, "GET", CALL)) == 1
    assert sleeps == []


async def test_max_attempts_one_means_no_retry(mock: aioresponses, sleeps: Sleeps) -> None:
    mock.get(CALL, status=429, headers={"Retry-After": "1"}, body="", repeat=True)
    transport = make_transport(sleeps, retry=RetryPolicy(max_attempts=1))
    try:
        with pytest.raises(ThrottledError):
            await transport.request("GET", CALL)
    finally:
        await transport.aclose()
    assert sleeps == []


@given(
    retry=st.integers(min_value=1, max_value=200),
    retry_after=st.none() | st.floats(min_value=0, max_value=1e6),
    max_delay=st.floats(min_value=0, max_value=300),
    base_delay=st.floats(min_value=0, max_value=10),
    jitter=st.floats(min_value=0, max_value=1),
    seed=st.integers(),
)
def test_delay_is_bounded(
    retry: int,
    retry_after: float | None,
    max_delay: float,
    base_delay: float,
    jitter: float,
    seed: int,
) -> None:
    policy = RetryPolicy(max_delay=max_delay, base_delay=base_delay, jitter=jitter)
    delay = policy.delay(retry, retry_after=retry_after, rng=random.Random(seed))
    assert 0.0 <= delay <= max_delay
    if retry_after is not None:
        assert delay >= min(retry_after, max_delay)


@pytest.mark.parametrize(
    "kwargs",
    [{"max_attempts": 0}, {"max_delay": -1.0}, {"jitter": 1.5}, {"base_delay": float("nan")}],
)
def test_retry_policy_validates(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


# --- 401 ---------------------------------------------------------------------------------


async def test_401_refreshes_the_token_and_retries_once(mock: aioresponses, sleeps: Sleeps) -> None:
    tokens = RotatingTokens()
    mock.post(PLAY, status=401, payload=graph_error("InvalidAuthenticationToken", "expired"))
    mock.post(PLAY, status=202, body="")
    transport = make_transport(sleeps, token_provider=tokens)
    try:
        response = await transport.request("POST", PLAY, json={})
    finally:
        await transport.aclose()

    assert response.status == 202
    assert tokens.calls == [False, True]
    auth = [header(c, "Authorization") for c in sent(mock, "POST", PLAY)]
    assert auth == ["Bearer token-v1", "Bearer token-v2"]
    assert sleeps == []


async def test_second_401_is_raised(mock: aioresponses, sleeps: Sleeps) -> None:
    tokens = RotatingTokens()
    mock.post(
        PLAY, status=401, payload=graph_error("InvalidAuthenticationToken", "no"), repeat=True
    )
    transport = make_transport(sleeps, token_provider=tokens)
    try:
        with pytest.raises(UnauthorizedError) as info:
            await transport.request("POST", PLAY, json={})
    finally:
        await transport.aclose()

    assert len(sent(mock, "POST", PLAY)) == 2
    assert tokens.calls == [False, True]
    assert "token-v" not in str(info.value)


async def test_401_refresh_does_not_use_up_attempts(mock: aioresponses, sleeps: Sleeps) -> None:
    mock.get(CALL, status=401, body="")
    mock.get(CALL, status=200, payload={})
    transport = make_transport(
        sleeps, token_provider=RotatingTokens(), retry=RetryPolicy(max_attempts=1)
    )
    try:
        await transport.request("GET", CALL)
    finally:
        await transport.aclose()


# --- recordings --------------------------------------------------------------------------


RECORDING = "https://media.example.net/recordings/rec-1?sig=signed-secret"


async def test_request_bytes_uses_the_recording_token_only(
    mock: aioresponses, transport: HttpTransport
) -> None:
    mock.get(RECORDING, body=b"RIFF....WAVE", content_type="audio/wav")

    content = await transport.request_bytes(RECORDING, bearer=RECORDING_TOKEN)

    assert content == b"RIFF....WAVE"
    [call] = sent(mock, "GET", RECORDING)
    assert header(call, "Authorization") == f"Bearer {RECORDING_TOKEN}"
    assert TOKEN not in json.dumps(dict(call.kwargs["headers"]))


async def test_request_bytes_maps_errors_and_hides_secrets(
    mock: aioresponses, transport: HttpTransport, caplog: pytest.LogCaptureFixture
) -> None:
    mock.get(RECORDING, status=401, body="expired", repeat=True)

    with (
        caplog.at_level(logging.DEBUG, logger="graphcomms.http"),
        pytest.raises(UnauthorizedError) as info,
    ):
        await transport.request_bytes(RECORDING, bearer=RECORDING_TOKEN)

    assert len(sent(mock, "GET", RECORDING)) == 1  # this token cannot be refreshed
    assert info.value.url == RECORDING.split("?", maxsplit=1)[0]
    for secret in (RECORDING_TOKEN, "signed-secret"):
        assert secret not in str(info.value)
        assert secret not in caplog.text


async def test_request_bytes_refuses_relative_urls(transport: HttpTransport) -> None:
    with pytest.raises(InvalidRequestError):
        await transport.request_bytes("recordings/1", bearer=RECORDING_TOKEN)


# --- logging -----------------------------------------------------------------------------


async def test_logs_each_attempt_and_never_the_token(
    mock: aioresponses, transport: HttpTransport, caplog: pytest.LogCaptureFixture
) -> None:
    mock.post(
        PLAY,
        status=429,
        headers={"Retry-After": "1", "request-id": "req-429"},
        payload=THROTTLED,
    )
    mock.post(PLAY, status=202, headers={"request-id": "req-ok"}, body="")

    with caplog.at_level(logging.DEBUG, logger="graphcomms.http"):
        await transport.request("POST", PLAY, json={"clientContext": "c"})

    debug = [r for r in caplog.records if r.levelno == logging.DEBUG]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(debug) == 2
    assert [getattr(r, "request_id", None) for r in debug] == ["req-429", "req-ok"]
    ids = [header(c, "client-request-id") for c in sent(mock, "POST", PLAY)]
    assert [getattr(r, "client_request_id", None) for r in debug] == ids
    assert all("POST" in r.getMessage() and PLAY in r.getMessage() for r in debug)
    assert "429" in debug[0].getMessage()
    assert " ms " in debug[0].getMessage()
    [warning] = warnings
    assert warning.client_request_id == ids[0]  # type: ignore[attr-defined]
    assert "retrying in 1." in warning.getMessage()
    assert TOKEN not in caplog.text
    for record in caplog.records:
        assert TOKEN not in repr(record.__dict__)


# --- lifecycle ---------------------------------------------------------------------------


async def test_borrowed_session_is_not_closed(mock: aioresponses, sleeps: Sleeps) -> None:
    mock.get(CALL, payload={}, repeat=True)
    async with aiohttp.ClientSession() as session:
        transport = make_transport(sleeps, session=session)
        await transport.request("GET", CALL)
        await transport.aclose()
        await transport.aclose()
        assert transport.closed
        assert not session.closed
        async with session.get(CALL) as response:  # still usable by its owner
            assert response.status == 200


async def test_owned_session_is_closed(mock: aioresponses, transport: HttpTransport) -> None:
    mock.get(CALL, payload={})
    await transport.request("GET", CALL)
    session = transport._session
    assert session is not None

    await transport.aclose()
    await transport.aclose()

    assert session.closed
    assert transport.closed


async def test_aclose_before_any_request(sleeps: Sleeps) -> None:
    transport = make_transport(sleeps)
    await transport.aclose()
    assert transport.closed


async def test_request_after_aclose_raises(transport: HttpTransport) -> None:
    await transport.aclose()
    with pytest.raises(ClientClosedError):
        await transport.request("GET", CALL)
    with pytest.raises(ClientClosedError):
        await transport.request_bytes(RECORDING, bearer=RECORDING_TOKEN)


async def test_closed_borrowed_session_raises_client_closed(sleeps: Sleeps) -> None:
    session = aiohttp.ClientSession()
    await session.close()
    transport = make_transport(sleeps, session=session)
    with pytest.raises(ClientClosedError):
        await transport.request("GET", CALL)
    await transport.aclose()


async def test_aclose_during_backoff_stops_the_retries(mock: aioresponses) -> None:
    mock.get(CALL, status=503, body="", repeat=True)
    transport: HttpTransport

    async def close_while_sleeping(delay: float) -> None:
        await transport.aclose()

    transport = HttpTransport(
        base_url=GRAPH_V1, token_provider=StaticTokenProvider(TOKEN), sleep=close_while_sleeping
    )
    try:
        with pytest.raises(ClientClosedError):
            await transport.request("GET", CALL)
    finally:
        await transport.aclose()
    assert len(sent(mock, "GET", CALL)) == 1


async def test_aclose_wakes_a_long_back_off_at_once(mock: aioresponses) -> None:
    # A real sleep of Retry-After's 30 s: aclose() must end the request now, not then.
    mock.post(CALL, status=429, headers={"Retry-After": "30"}, body="", repeat=True)
    transport = HttpTransport(base_url=GRAPH_V1, token_provider=StaticTokenProvider(TOKEN))
    request = asyncio.ensure_future(transport.request("POST", CALL, json={}))
    while not sent(mock, "POST", CALL):
        await asyncio.sleep(0.001)
    await asyncio.sleep(0.01)
    await transport.aclose()
    with pytest.raises(ClientClosedError):
        await asyncio.wait_for(request, 1)


# --- real sockets ----------------------------------------------------------------------


def closed_port() -> int:
    """A loopback port nobody listens on: bound, then released."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("method", ["POST", "GET"])
async def test_connection_refused_is_retried_then_raised_as_not_sent(
    sleeps: Sleeps, method: str
) -> None:
    transport = make_transport(sleeps, base_url=f"http://127.0.0.1:{closed_port()}/v1.0/")
    try:
        with pytest.raises(TransportError) as info:
            await transport.request(method, "communications/calls", json={"a": 1})
    finally:
        await transport.aclose()

    assert type(info.value) is TransportError
    assert info.value.sent is False
    assert info.value.method == method
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)
    assert len(sleeps) == 3
    assert TOKEN not in str(info.value)


class FlakyServer:
    """A real aiohttp.web server on loopback that misbehaves on cue and counts hits."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.release = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/drop", self.drop)
        app.router.add_route("*", "/slow", self.slow)
        app.router.add_route("*", "/echo", self.echo)
        self.headers: list[dict[str, str]] = []
        self.runner = web.AppRunner(app)
        self.url = ""

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        host, port = self.runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/"

    async def stop(self) -> None:
        self.release.set()
        await self.runner.cleanup()

    async def drop(self, request: web.Request) -> web.Response:
        """Reads the request, then hangs up without answering."""
        self.hits.append(request.method)
        await request.read()
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    async def slow(self, request: web.Request) -> web.Response:
        self.hits.append(request.method)
        await self.release.wait()
        return web.Response()

    async def echo(self, request: web.Request) -> web.Response:
        """Answers with the headers it received."""
        self.hits.append(request.method)
        self.headers.append(dict(request.headers))
        return web.json_response({})


@pytest.fixture
async def flaky() -> AsyncIterator[FlakyServer]:
    server = FlakyServer()
    await server.start()
    yield server
    await server.stop()


@pytest.mark.parametrize("borrowed", [False, True])
async def test_headers_on_the_wire(flaky: FlakyServer, sleeps: Sleeps, borrowed: bool) -> None:
    """An owned session carries Accept and User-Agent as its defaults; a borrowed one
    gets them on each request. Either way the wire is the same."""
    session = aiohttp.ClientSession() if borrowed else None
    transport = make_transport(sleeps, base_url=flaky.url, session=session)
    try:
        await transport.request("POST", "echo", json={"clientContext": "c"})
        await transport.request("GET", "echo")
        await transport.request_bytes(flaky.url + "echo", bearer=RECORDING_TOKEN)
    finally:
        await transport.aclose()
        if session is not None:
            await session.close()
    post, get, recording = flaky.headers
    for sent_headers in (post, get):
        assert sent_headers["Accept"] == "application/json"
        assert sent_headers["Authorization"] == f"Bearer {TOKEN}"
    assert post["Content-Type"] == "application/json"
    assert "Content-Type" not in get
    assert recording["Accept"] == "*/*"
    assert recording["Authorization"] == f"Bearer {RECORDING_TOKEN}"
    for sent_headers in (post, get, recording):
        assert sent_headers["User-Agent"].startswith("graphcomms/")
        assert uuid.UUID(sent_headers["client-request-id"]).version == 4
    assert len({h["client-request-id"] for h in flaky.headers}) == 3


async def test_disconnect_after_post_is_not_resent(flaky: FlakyServer, sleeps: Sleeps) -> None:
    transport = make_transport(sleeps, base_url=flaky.url)
    try:
        with pytest.raises(TransportError) as info:
            await transport.request("POST", "drop", json={"clientContext": "c"})
    finally:
        await transport.aclose()

    assert info.value.sent is True
    assert isinstance(info.value.__cause__, aiohttp.ServerDisconnectedError)
    assert flaky.hits == ["POST"]
    assert sleeps == []


async def test_disconnect_on_get_is_retried(flaky: FlakyServer, sleeps: Sleeps) -> None:
    transport = make_transport(sleeps, base_url=flaky.url)
    try:
        with pytest.raises(TransportError) as info:
            await transport.request("GET", "drop")
    finally:
        await transport.aclose()

    assert info.value.sent is True
    assert len(sleeps) == 3
    # aiohttp may itself re-send an idempotent request once on a reused connection.
    assert len(flaky.hits) >= 4
    assert set(flaky.hits) == {"GET"}


async def test_read_timeout_on_post_is_not_resent(flaky: FlakyServer, sleeps: Sleeps) -> None:
    transport = make_transport(sleeps, base_url=flaky.url, timeout=0.2)
    try:
        with pytest.raises(RequestTimeoutError) as info:
            await transport.request("POST", "slow", json={})
    finally:
        await transport.aclose()

    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, TransportError)
    assert info.value.sent is True
    assert flaky.hits == ["POST"]
    assert sleeps == []


async def test_read_timeout_on_get_is_retried(flaky: FlakyServer, sleeps: Sleeps) -> None:
    transport = make_transport(
        sleeps, base_url=flaky.url, timeout=0.2, retry=RetryPolicy(max_attempts=2)
    )
    try:
        with pytest.raises(RequestTimeoutError):
            await transport.request("GET", "slow")
    finally:
        await transport.aclose()

    assert flaky.hits == ["GET", "GET"]
    assert len(sleeps) == 1


# --- a token provider that fails -------------------------------------------------------------


class FailingTokens:
    """A provider whose fetch raises ``error`` (after ``fail_after`` good tokens), or
    waits on ``gate`` first when one is set."""

    def __init__(self, error: BaseException, *, fail_after: int = 0) -> None:
        self.error = error
        self.fail_after = fail_after
        self.calls: list[bool] = []
        self.gate: asyncio.Event | None = None

    async def get_token(self, *, force_refresh: bool = False) -> str:
        self.calls.append(force_refresh)
        if self.gate is not None:
            await self.gate.wait()
        if len(self.calls) > self.fail_after:
            raise self.error
        return "good-token"


def azure_service_request_error() -> Exception:
    exceptions = pytest.importorskip("azure.core.exceptions")
    error: Exception = exceptions.ServiceRequestError(
        "Cannot connect to host login.microsoftonline.com:443"
    )
    return error


@pytest.mark.parametrize(
    "make_error",
    [
        lambda: RuntimeError(f"refresh with {TOKEN} failed"),  # a message quoting a secret
        lambda: TimeoutError("the identity endpoint did not answer"),
        azure_service_request_error,
    ],
    ids=["user-provider", "timeout", "azure-ServiceRequestError"],
)
async def test_a_failing_token_fetch_is_a_token_acquisition_error(
    mock: aioresponses, sleeps: Sleeps, make_error: Any
) -> None:
    error = make_error()
    transport = make_transport(sleeps, token_provider=FailingTokens(error))
    try:
        with pytest.raises(TokenAcquisitionError) as caught:
            await transport.request("POST", PLAY, json={})
    finally:
        await transport.aclose()

    assert isinstance(caught.value, GraphCommsError)
    assert caught.value.__cause__ is error
    assert (caught.value.method, caught.value.url, caught.value.refresh) == ("POST", PLAY, False)
    message = str(caught.value)
    assert type(error).__qualname__ in message
    assert "FailingTokens" in message
    assert str(error) not in message  # the provider's own words stay on the cause
    assert TOKEN not in message
    assert sent(mock, "POST", PLAY) == []
    assert sleeps == []  # not retried here


async def test_a_failing_refresh_after_401_is_a_token_acquisition_error(
    mock: aioresponses, sleeps: Sleeps
) -> None:
    error = RuntimeError("AAD is down")
    tokens = FailingTokens(error, fail_after=1)
    mock.post(PLAY, status=401, payload=graph_error("InvalidAuthenticationToken", "expired"))
    transport = make_transport(sleeps, token_provider=tokens)
    try:
        with pytest.raises(TokenAcquisitionError) as caught:
            await transport.request("POST", PLAY, json={})
    finally:
        await transport.aclose()

    assert caught.value.refresh is True
    assert caught.value.__cause__ is error
    assert tokens.calls == [False, True]
    assert len(sent(mock, "POST", PLAY)) == 1


async def test_a_graphcomms_error_from_the_provider_is_not_wrapped(sleeps: Sleeps) -> None:
    error = ClientClosedError("the provider's own client is closed")
    transport = make_transport(sleeps, token_provider=FailingTokens(error))
    try:
        with pytest.raises(ClientClosedError) as caught:
            await transport.request("GET", CALL)
    finally:
        await transport.aclose()
    assert caught.value is error


async def test_cancelling_a_request_waiting_for_its_token_is_not_wrapped(
    mock: aioresponses, sleeps: Sleeps
) -> None:
    tokens = FailingTokens(RuntimeError("unused"), fail_after=1)
    tokens.gate = asyncio.Event()
    transport = make_transport(sleeps, token_provider=tokens)
    try:
        task = asyncio.create_task(transport.request("GET", CALL))
        for _ in range(100):
            if tokens.calls:
                break
            await asyncio.sleep(0)
        assert tokens.calls == [False]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await transport.aclose()
    assert sent(mock, "GET", CALL) == []
