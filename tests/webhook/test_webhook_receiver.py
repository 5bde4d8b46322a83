"""The framework-agnostic core: decisions, counters, secrets, and random input."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from webhook_support import RECORDING_TOKEN, RecordingSink, SigningKey, envelope, make_token

import graphcomms.webhook
from graphcomms.errors import ClientClosedError, DeserializationError
from graphcomms.webhook import (
    NotificationReceiver,
    ReceiverResult,
    TokenRejectedError,
    TokenValidator,
    is_legacy_notification,
)


def _body(document: Any = None) -> bytes:
    return json.dumps(envelope() if document is None else document).encode()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_public_api_is_sorted_and_importable() -> None:
    names = graphcomms.webhook.__all__
    assert names == sorted(names)
    for name in names:
        assert getattr(graphcomms.webhook, name) is not None


async def test_plain_dict_headers_in_any_case(
    receiver: NotificationReceiver, keys: dict[str, SigningKey], sink: RecordingSink
) -> None:
    result = await receiver.handle(_body(), {"authorization": f"Bearer {make_token(keys['key1'])}"})

    assert result == ReceiverResult(202, "accepted", dispatched=True)
    assert len(sink.fed) == 1


async def test_size_is_checked_before_the_token(
    receiver: NotificationReceiver, sink: RecordingSink
) -> None:
    receiver.max_body_size = 10

    declared = await receiver.handle(b"", {"Content-Length": "11"})
    actual = await receiver.handle(b"x" * 11, {"Content-Length": "5"})

    assert (declared.status, actual.status) == (413, 413)
    assert receiver.stats.too_large == 2
    assert receiver.stats.rejected_auth == 0
    assert sink.fed == []


async def test_validation_off_warns_loudly_and_accepts_without_a_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink = RecordingSink()
    with caplog.at_level(logging.WARNING, logger="graphcomms.webhook"):
        receiver = NotificationReceiver(sink, validate=False)

    assert any(
        r.levelno == logging.WARNING and "NOT checked" in r.getMessage() for r in caplog.records
    )
    assert "NOT validating" in repr(receiver)
    assert (await receiver.handle(_body(), {})).status == 202
    assert (await receiver.handle(b"nope", {})).status == 400
    assert len(sink.fed) == 1
    await receiver.aclose()


async def test_validator_is_required_unless_validation_is_off(validator: TokenValidator) -> None:
    with pytest.raises(ValueError, match="TokenValidator is required"):
        NotificationReceiver(RecordingSink())
    with pytest.raises(ValueError, match="not both"):
        NotificationReceiver(RecordingSink(), validator, validate=False)
    with pytest.raises(ValueError, match="max_body_size"):
        NotificationReceiver(RecordingSink(), validator, max_body_size=-1)
    for timeout in (0, -1, float("nan")):
        with pytest.raises(ValueError, match="body_timeout"):
            NotificationReceiver(RecordingSink(), validator, body_timeout=timeout)


async def test_check_decides_from_the_headers_and_accept_from_the_body(
    receiver: NotificationReceiver, keys: dict[str, SigningKey], sink: RecordingSink
) -> None:
    headers = {**_auth(make_token(keys["key1"])), "Content-Type": "application/json"}

    assert await receiver.check(headers) is None
    assert sink.fed == []  # the headers alone dispatch nothing
    assert receiver.accept(_body()) == ReceiverResult(202, "accepted", dispatched=True)
    assert receiver.accept(b"{") == ReceiverResult(400, "body is not JSON")
    receiver.max_body_size = 10
    assert receiver.accept(_body()).status == 413
    assert len(sink.fed) == 1
    assert (receiver.stats.accepted, receiver.stats.malformed) == (1, 1)
    assert receiver.stats.too_large == 1


async def test_the_headers_are_checked_size_then_media_type_then_token(
    receiver: NotificationReceiver, keys: dict[str, SigningKey]
) -> None:
    """Cheapest first: a token is only looked at for a request that could be read."""
    receiver.max_body_size = 10
    good = _auth(make_token(keys["key1"]))
    xml = {"Content-Type": "application/xml"}

    async def status(headers: dict[str, str]) -> int | None:
        result = await receiver.check(headers)
        return None if result is None else result.status

    assert await status({"Content-Length": "11", **xml}) == 413
    assert await status({"Content-Length": "10", **xml}) == 415
    assert await status({"Content-Length": "10"}) == 401
    assert await status({"Content-Length": "10", **good}) is None
    stats = receiver.stats
    assert (stats.too_large, stats.unsupported_media_type, stats.rejected_auth) == (1, 1, 1)


@pytest.mark.parametrize(
    ("content_type", "allowed"),
    [
        (None, True),
        ("", True),
        ("application/json", True),
        ("application/json;charset=UTF-8", True),
        (" application/json ; charset = utf-8 ", True),
        ('application/json; charset="Utf-8"; odata.streaming=true', True),
        ("application/octet-stream", True),
        ("application/json; charset=utf8", False),
        ("application/json; charset=latin-1", False),
        ("application/json; charset=utf-8; charset=punycode", False),
        ("application/json; charset=", False),
        ("application/problem+json", False),
        ("multipart/form-data; boundary=x", False),
        ("json", False),
    ],
)
async def test_only_utf8_json_passes_the_media_type_check(
    receiver: NotificationReceiver,
    keys: dict[str, SigningKey],
    content_type: str | None,
    allowed: bool,
) -> None:
    headers = _auth(make_token(keys["key1"]))
    if content_type is not None:
        headers["content-type"] = content_type

    result = await receiver.check(headers)

    assert (result is None) is allowed
    assert result is None or result.status == 415


async def test_handle_is_check_then_accept(
    receiver: NotificationReceiver, keys: dict[str, SigningKey], sink: RecordingSink
) -> None:
    punycode = {**_auth(make_token(keys["key1"])), "Content-Type": "text/json; charset=punycode"}

    assert (await receiver.handle(_body(), punycode)).status == 415
    assert (await receiver.handle(_body(), {})).status == 401
    assert sink.fed == []


def test_body_timed_out_is_408_and_counted(receiver: NotificationReceiver) -> None:
    assert receiver.body_timed_out() == ReceiverResult(408, "body not received in time")
    assert receiver.stats.timed_out == 1
    assert "body_timeout=5.0" in repr(receiver)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (DeserializationError("bad shape"), 400),
        (ValueError("bad value"), 400),
        (ClientClosedError("closed"), 503),
        (RuntimeError("bug"), 500),
    ],
)
async def test_sink_failures_map_to_statuses(
    receiver: NotificationReceiver,
    keys: dict[str, SigningKey],
    sink: RecordingSink,
    error: Exception,
    status: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink.error = error

    with caplog.at_level(logging.WARNING, logger="graphcomms.webhook"):
        result = await receiver.handle(_body(), _auth(make_token(keys["key1"])))

    assert result.status == status
    assert not result.dispatched
    assert receiver.stats.accepted == 0


@pytest.mark.parametrize(
    ("document", "legacy"),
    [
        ({"id": "x", "callState": "incoming", "presentedModalityTypes": ["audio"],
          "participants": []}, True),
        ({"Id": "x", "CallState": "Incoming", "Participants": []}, True),
        ({"id": "x", "callState": "terminated", "operationOutcome": {"type": "hangup"}}, True),
        ({"callState": "incoming"}, False),
        ({"participants": [], "presentedModalityTypes": ["audio"]}, False),
        ({"value": [], "callState": "incoming", "participants": []}, False),
        ({"Value": [], "callState": "incoming", "participants": []}, False),
        (envelope(), False),
    ],
)  # fmt: skip
def test_legacy_rule(document: dict[str, Any], legacy: bool) -> None:
    assert is_legacy_notification(document) is legacy


async def test_secrets_never_reach_logs_reprs_or_messages(
    receiver: NotificationReceiver,
    validator: TokenValidator,
    keys: dict[str, SigningKey],
    sink: RecordingSink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = make_token(keys["key1"])
    bad = make_token(keys["rogue"], kid="key1")
    forbidden = make_token(keys["key1"], aud="another-app")
    unknown = make_token(keys["key1"], kid="nope")
    secrets = [good, bad, forbidden, unknown, RECORDING_TOKEN]
    # The signature part alone would already be a leak.
    secrets += [token.rsplit(".", 1)[1] for token in (good, bad, forbidden, unknown)]
    outputs: list[str] = []

    with caplog.at_level(logging.DEBUG):
        for token in (good, bad, forbidden, unknown, good):
            outputs.append(repr(await receiver.handle(_body(), _auth(token))))
            for bogus_body in (b"{", b"[]", _body({"recordingAccessToken": RECORDING_TOKEN})):
                outputs.append(repr(await receiver.handle(bogus_body, _auth(token))))
        sink.error = DeserializationError("bad", payload=envelope())
        outputs.append(repr(await receiver.handle(_body(), _auth(good))))
        sink.error = RuntimeError("bug")
        outputs.append(repr(await receiver.handle(_body(), _auth(good))))
        for token in (bad, forbidden, unknown):
            with pytest.raises(TokenRejectedError) as refused:
                await validator.validate(token)
            outputs += [str(refused.value), repr(refused.value), refused.value.reason]

    outputs += [repr(receiver), repr(validator), repr(validator.settings), repr(receiver.stats)]
    outputs += [repr(await validator.validate(good))]
    text = caplog.text + "\n".join(outputs)
    assert "refused a notification" in caplog.text  # the logs were captured at all
    for secret in secrets:
        assert secret not in text


# -- random input ------------------------------------------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=6,
)
_envelope_like = st.fixed_dictionaries(
    {"value": st.one_of(st.lists(_json, max_size=3), _json)},
    optional={"@odata.type": st.text(max_size=40), "callState": st.text(max_size=8)},
)
_legacy_like = st.fixed_dictionaries(
    {"callState": _json},
    optional={"participants": _json, "presentedModalityTypes": _json, "id": _json},
)
_bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    _json.map(lambda d: json.dumps(d).encode()),
    _envelope_like.map(lambda d: json.dumps(d).encode()),
    _legacy_like.map(lambda d: json.dumps(d).encode()),
    st.sampled_from([b"[" * 5000, b"{}", b"\xef\xbb\xbf{}", b'{"value": []}']),
)
_header_names = st.sampled_from(
    ["Authorization", "authorization", "Content-Length", "content-type", "Content-Type", "X-Any"]
)
_tokens = st.sampled_from(["good", "garbage", "forbidden", "foreign-kid", "bad-signature"])
_authorization = st.one_of(
    st.just("token:good"),
    _tokens.map(lambda name: f"token:{name}"),
    st.text(max_size=60),
    st.builds(lambda prefix, rest: prefix + rest,
              st.sampled_from(["Bearer ", "bearer ", "Bearer  ", "Basic "]),
              st.text(max_size=80)),
)  # fmt: skip


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=_bodies,
    extra=st.dictionaries(_header_names, st.text(max_size=30), max_size=4),
    authorization=st.none() | _authorization,
    declared=st.none() | st.integers(min_value=-5, max_value=2_000_000).map(str),
)
async def test_random_input_gets_a_2xx_or_4xx_and_never_raises(
    receiver: NotificationReceiver,
    keys: dict[str, SigningKey],
    sink: RecordingSink,
    body: bytes,
    extra: dict[str, str],
    authorization: str | None,
    declared: str | None,
) -> None:
    """Each example goes in twice: with random headers, and with a good token so that
    every random body also reaches the parsing half.
    """
    tokens = _random_tokens(keys)
    headers = dict(extra)
    if declared is not None:
        headers["Content-Length"] = declared
    if authorization is not None:
        if authorization.startswith("token:"):
            authorization = f"Bearer {tokens[authorization.removeprefix('token:')]}"
        headers["Authorization"] = authorization

    for attempt in (headers, {**extra, "Authorization": f"Bearer {tokens['good']}"}):
        before = len(sink.fed)

        result = await receiver.handle(body, attempt)

        event(f"HTTP {result.status}")
        assert 200 <= result.status < 300 or 400 <= result.status < 500
        assert result.dispatched is (result.status == 202)
        assert len(sink.fed) == before + (1 if result.dispatched else 0)


_TOKENS: dict[int, dict[str, str]] = {}


def _random_tokens(keys: dict[str, SigningKey]) -> dict[str, str]:
    """Signing is slow next to the receiver, so each key set's tokens are minted once."""
    cached = _TOKENS.get(id(keys))
    if cached is None:
        cached = _TOKENS[id(keys)] = {
            "good": make_token(keys["key1"]),
            "garbage": "a.b.c",
            "forbidden": make_token(keys["key1"], aud="someone-else"),
            "foreign-kid": make_token(keys["rogue"]),
            "bad-signature": make_token(keys["rogue"], kid="key1"),
        }
    return cached
