"""TokenValidator on its own: key fetching, refetch limits, rotation, caching, lifecycle."""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from typing import Any

import aiohttp
import jwt
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from webhook_support import APP_ID, TENANT_ID, KeyServer, SigningKey, make_token

from graphcomms.webhook import (
    DEFAULT_ISSUERS,
    DEFAULT_OPENID_CONFIGURATION_URL,
    TokenRejectedError,
    TokenValidationSettings,
    TokenValidator,
)


async def test_valid_token_returns_its_claims(
    validator: TokenValidator, keys: dict[str, SigningKey]
) -> None:
    token = make_token(keys["key1"])

    validated = await validator.validate(token)

    assert validated.tenant_id == TENANT_ID
    assert validated.issuer == "https://api.botframework.com"
    assert validated.claims["aud"] == APP_ID


async def test_unknown_kid_refetches_once_per_interval(
    validator: TokenValidator, keys: dict[str, SigningKey], key_server: KeyServer
) -> None:
    await validator.validate(make_token(keys["key1"]))  # the first load
    assert key_server.jwks_hits == 1

    with pytest.raises(TokenRejectedError) as first:
        await validator.validate(make_token(keys["rogue"], kid="unknown-1"))
    assert first.value.status == 401
    assert key_server.jwks_hits == 2  # exactly one refetch

    with pytest.raises(TokenRejectedError):
        await validator.validate(make_token(keys["rogue"], kid="unknown-2"))
    assert key_server.jwks_hits == 2  # within the interval: no refetch
    assert validator.stats.verifications == 1


async def test_rotated_key_is_accepted_after_one_refetch(
    validator: TokenValidator, keys: dict[str, SigningKey], key_server: KeyServer
) -> None:
    await validator.validate(make_token(keys["key1"]))
    key_server.published = [keys["key1"], keys["key2"]]

    validated = await validator.validate(make_token(keys["key2"]))

    assert validated.tenant_id == TENANT_ID
    assert key_server.jwks_hits == 2
    await validator.validate(make_token(keys["key1"], tid="another"))  # old key still there


async def test_concurrent_unknown_kids_share_one_refetch(
    validator: TokenValidator, keys: dict[str, SigningKey], key_server: KeyServer
) -> None:
    await validator.validate(make_token(keys["key1"]))
    key_server.published = [keys["key1"], keys["key2"]]
    key_server.delay = 0.2
    tokens = [make_token(keys["key2"], jti=str(n)) for n in range(10)]

    results = await asyncio.gather(*(validator.validate(t) for t in tokens))

    assert len(results) == 10
    assert key_server.jwks_hits == 2


async def test_first_requests_share_the_initial_load(
    validator: TokenValidator, keys: dict[str, SigningKey], key_server: KeyServer
) -> None:
    key_server.delay = 0.2
    tokens = [make_token(keys["key1"], jti=str(n)) for n in range(10)]

    await asyncio.gather(*(validator.validate(t) for t in tokens))

    assert key_server.jwks_hits == 1


async def test_cancelled_request_does_not_cancel_the_shared_fetch(
    validator: TokenValidator, keys: dict[str, SigningKey], key_server: KeyServer
) -> None:
    key_server.delay = 0.2
    first = asyncio.ensure_future(validator.validate(make_token(keys["key1"], jti="a")))
    second = asyncio.ensure_future(validator.validate(make_token(keys["key1"], jti="b")))
    await asyncio.sleep(0.05)
    first.cancel()

    assert (await second).tenant_id == TENANT_ID
    with pytest.raises(asyncio.CancelledError):
        await first
    assert key_server.jwks_hits == 1


async def test_failed_fetch_keeps_the_old_keys(
    validator: TokenValidator,
    keys: dict[str, SigningKey],
    key_server: KeyServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await validator.validate(make_token(keys["key1"]))
    key_server.fail = True

    with caplog.at_level(logging.WARNING, logger="graphcomms.webhook"):
        assert await validator.refresh_keys() is True

    assert "keeping 1 known keys" in caplog.text
    assert validator.stats.key_fetch_failures == 1
    assert (await validator.validate(make_token(keys["key1"], jti="new"))).tenant_id == TENANT_ID


async def test_failed_unknown_kid_refetch_keeps_the_old_keys(
    validator: TokenValidator, keys: dict[str, SigningKey], key_server: KeyServer
) -> None:
    await validator.validate(make_token(keys["key1"]))
    key_server.fail = True

    with pytest.raises(TokenRejectedError):
        await validator.validate(make_token(keys["key2"]))

    assert validator.stats.key_fetch_failures == 1
    await validator.validate(make_token(keys["key1"], jti="new"))


async def test_unreachable_key_server_refuses_without_raising_anything_else(
    keys: dict[str, SigningKey],
) -> None:
    settings = TokenValidationSettings(
        app_id=APP_ID, openid_configuration_url="http://127.0.0.1:9/nothing", fetch_timeout=2
    )
    async with TokenValidator(settings) as validator:
        with pytest.raises(TokenRejectedError) as refused:
            await validator.validate(make_token(keys["key1"]))
        assert refused.value.status == 401
        assert validator.stats.key_fetch_failures == 1


@pytest.mark.parametrize(
    "document",
    [{"keys": []}, {"keys": [{"kid": "k", "kty": "RSA", "n": "!!", "e": "AQAB"}]}, {"no": 1}, []],
)
async def test_unusable_jwks_counts_as_a_failed_fetch(
    validator: TokenValidator, key_server: KeyServer, document: Any
) -> None:
    key_server.document = document

    assert await validator.refresh_keys() is False
    assert validator.stats.key_fetch_failures == 1


async def test_non_rsa_and_encryption_keys_are_skipped(
    validator: TokenValidator, keys: dict[str, SigningKey], key_server: KeyServer
) -> None:
    good = keys["key1"].jwk()
    key_server.document = {
        "keys": [
            {"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"},
            {**good, "kid": "enc", "use": "enc"},
            {"kty": "RSA"},
            {"kty": "RSA", "kid": "broken", "x5c": ["bm90IGEgY2VydA=="]},
            good,
        ]
    }

    assert await validator.refresh_keys() is True
    await validator.validate(make_token(keys["key1"]))
    for kid in ("enc", "ec", "broken"):
        with pytest.raises(TokenRejectedError, match="unknown key"):
            await validator.validate(make_token(keys["key1"], kid=kid))


async def test_cache_hit_skips_the_rsa_verification(
    validator: TokenValidator, keys: dict[str, SigningKey]
) -> None:
    token = make_token(keys["key1"])

    first = await validator.validate(token)
    second = await validator.validate(token)

    assert first is second
    assert validator.stats.verifications == 1
    assert validator.stats.cache_hits == 1

    await validator.validate(make_token(keys["key1"], jti="other"))
    assert validator.stats.verifications == 2


async def test_validated_answers_from_the_cache_only(
    settings: Any, keys: dict[str, SigningKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with TokenValidator(settings(leeway=0)) as validator:
        token = make_token(keys["key1"], exp=int(time.time()) + 60)
        assert validator.validated(token) is None  # never checked: no claims, no check
        assert validator.stats.verifications == 0
        claims = await validator.validate(token)
        assert validator.validated(token) is claims
        assert validator.validated(make_token(keys["key1"], jti="other")) is None
        later = time.time() + 120
        monkeypatch.setattr(time, "time", lambda: later)
        assert validator.validated(token) is None  # expired: dropped, not returned
        assert "cached_tokens=0" in repr(validator)


async def test_cached_token_still_expires(
    settings: Any, keys: dict[str, SigningKey], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with TokenValidator(settings(leeway=0)) as validator:
        token = make_token(keys["key1"], exp=int(time.time()) + 60)
        await validator.validate(token)
        later = time.time() + 120
        monkeypatch.setattr(time, "time", lambda: later)

        with pytest.raises(TokenRejectedError, match="expired"):
            await validator.validate(token)


async def test_cache_is_bounded(settings: Any, keys: dict[str, SigningKey]) -> None:
    async with TokenValidator(settings(token_cache_size=3)) as validator:
        tokens = [make_token(keys["key1"], jti=str(n)) for n in range(5)]
        for token in tokens:
            await validator.validate(token)
        await validator.validate(tokens[-1])
        await validator.validate(tokens[0])  # evicted: verified again

        assert validator.stats.verifications == 6
        assert validator.stats.cache_hits == 1
        assert "cached_tokens=3" in repr(validator)


async def test_withdrawn_key_clears_the_cache(
    validator: TokenValidator, keys: dict[str, SigningKey], key_server: KeyServer
) -> None:
    token = make_token(keys["key1"])
    await validator.validate(token)
    key_server.published = [keys["key2"]]

    await validator.refresh_keys()

    with pytest.raises(TokenRejectedError, match="unknown key"):
        await validator.validate(token)


async def test_stale_keys_refresh_in_the_background(
    settings: Any, keys: dict[str, SigningKey], key_server: KeyServer
) -> None:
    async with TokenValidator(settings(key_refresh_interval=0)) as validator:
        await validator.validate(make_token(keys["key1"]))
        assert key_server.jwks_hits == 1
        key_server.delay = 0.1

        await validator.validate(make_token(keys["key1"], jti="x"))
        assert key_server.jwks_hits == 1  # the request did not wait for the refresh

        await validator.refresh_keys()  # joins the refresh under way
        assert key_server.jwks_hits == 2


async def test_borrowed_session_is_not_closed(settings: Any, keys: dict[str, SigningKey]) -> None:
    async with aiohttp.ClientSession() as session:
        validator = TokenValidator(settings(), session=session)
        await validator.validate(make_token(keys["key1"]))
        await validator.aclose()
        await validator.aclose()
        assert not session.closed


async def test_aclose_is_idempotent_and_stops_fetching(
    settings: Any, keys: dict[str, SigningKey], key_server: KeyServer
) -> None:
    validator = TokenValidator(settings())
    await validator.validate(make_token(keys["key1"]))

    await validator.aclose()
    await validator.aclose()

    assert "closed" in repr(validator)
    with pytest.raises(TokenRejectedError):
        await validator.validate(make_token(keys["key2"]))
    assert key_server.jwks_hits == 1


async def test_aclose_cancels_a_fetch_under_way(
    settings: Any, keys: dict[str, SigningKey], key_server: KeyServer
) -> None:
    key_server.delay = 5
    validator = TokenValidator(settings())
    pending = asyncio.ensure_future(validator.validate(make_token(keys["key1"])))
    await asyncio.sleep(0.05)

    await validator.aclose()

    with pytest.raises(TokenRejectedError):
        await pending


def test_settings_defaults_and_normalisation() -> None:
    settings = TokenValidationSettings(
        app_id=APP_ID, issuers=["https://a.example/"], allowed_tenants=["ABC"]
    )

    assert settings.issuers == frozenset({"https://a.example"})
    assert settings.allowed_tenants == frozenset({"abc"})
    defaults = TokenValidationSettings(app_id=APP_ID)
    assert defaults.openid_configuration_url == DEFAULT_OPENID_CONFIGURATION_URL
    assert defaults.issuers == DEFAULT_ISSUERS
    assert defaults.allowed_tenants is None
    assert defaults.leeway == 60


@pytest.mark.parametrize(
    "overrides", [{"app_id": ""}, {"app_id": "  "}, {"app_id": APP_ID, "leeway": -1}]
)
def test_settings_refuse_nonsense(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        TokenValidationSettings(**overrides)


# -- claims that are not what they claim ---------------------------------------------------


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize(
    "value",
    [10**400, -(10**400), 10**20, float("inf"), float("nan"), "1700000000", True, [1], {}],
    ids=["10**400", "-10**400", "year 3e12", "inf", "nan", "string", "bool", "list", "object"],
)
async def test_a_time_claim_that_is_not_a_time_is_refused(
    validator: TokenValidator, keys: dict[str, SigningKey], claim: str, value: Any
) -> None:
    with pytest.raises(TokenRejectedError) as refused:
        await validator.validate(make_token(keys["key1"], **{claim: value}))

    assert refused.value.status == 401
    assert validator.cached_tokens == 0


async def test_a_token_issued_in_the_future_is_refused(
    validator: TokenValidator, keys: dict[str, SigningKey]
) -> None:
    now = int(time.time())

    with pytest.raises(TokenRejectedError, match="issued in the future") as refused:
        await validator.validate(make_token(keys["key1"], iat=now + 600))

    assert refused.value.status == 401
    # Within the leeway (60 s) it is clock skew, not the future.
    assert (await validator.validate(make_token(keys["key1"], iat=now + 30))).tenant_id


_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20),
    # Past what a float holds: arithmetic with these overflows.
    st.integers(min_value=10**400), st.integers(max_value=-(10**400)),
)  # fmt: skip
_claim_values = _scalars | st.lists(_scalars, max_size=3) | st.dictionaries(st.text(), _scalars)
_claims = st.fixed_dictionaries(
    {}, optional=dict.fromkeys(("exp", "nbf", "iat", "iss", "aud", "tid"), _claim_values)
)


@examples(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(claims=_claims)
async def test_any_signed_claims_are_accepted_or_refused_never_raise(
    validator: TokenValidator, keys: dict[str, SigningKey], claims: dict[str, Any]
) -> None:
    """Signed by the real key, so every value reaches the claim checks."""
    try:
        token = make_token(keys["key1"], **claims)
    except (TypeError, ValueError):
        return  # PyJWT will not sign it (a non-string iss, say)
    status = 200
    try:
        await validator.validate(token)
    except TokenRejectedError as exc:
        status = exc.status
    assert status in (200, 401, 403)


# -- one token, one spelling ---------------------------------------------------------------


def _respelled(token: str) -> str:
    """``token`` with its signature's last character changed in bits base64url ignores:
    the same signature bytes, another string."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    signature = token.rsplit(".", 1)[1]
    unused = {2: 0b1111, 3: 0b11}[len(signature) % 4]  # an RS256 signature: 342 chars
    last = alphabet.index(signature[-1])
    respelled = token[:-1] + alphabet[last ^ unused]
    assert base64.urlsafe_b64decode(signature + "==") == base64.urlsafe_b64decode(
        respelled.rsplit(".", 1)[1] + "=="
    )
    return respelled


async def test_a_respelled_signature_is_refused_and_cannot_ride_the_cache(
    validator: TokenValidator, keys: dict[str, SigningKey]
) -> None:
    token = make_token(keys["key1"])
    await validator.validate(token)  # the genuine spelling, now cached

    for _ in range(2):
        with pytest.raises(TokenRejectedError, match="not a JWT") as refused:
            await validator.validate(_respelled(token))
        assert refused.value.status == 401
    assert validator.validated(_respelled(token)) is None
    assert validator.cached_tokens == 1
    assert validator.stats.verifications == 1


def test_pyjwt_itself_refuses_a_respelled_signature(keys: dict[str, SigningKey]) -> None:
    """The floor in pyproject (pyjwt 2.14): earlier versions decode either spelling
    (GHSA-hxm8-2xgr-2p9m). The validator refuses it on its own too; this pins that the
    dependency does as well, at whatever version is installed."""
    token = make_token(keys["key1"])
    key = keys["key1"].private.public_key()
    jwt.decode(token, key, algorithms=["RS256"], audience=APP_ID)

    with pytest.raises(jwt.DecodeError):
        jwt.decode(_respelled(token), key, algorithms=["RS256"], audience=APP_ID)


# -- bounded key documents -----------------------------------------------------------------


@pytest.mark.parametrize("document", ["configuration", "jwks"])
@pytest.mark.parametrize("framing", ["Content-Length", "endless"])
async def test_an_oversized_key_document_is_refused_and_the_old_keys_kept(
    settings: Any,
    keys: dict[str, SigningKey],
    key_server: KeyServer,
    caplog: pytest.LogCaptureFixture,
    document: str,
    framing: str,
) -> None:
    cap = 4096
    caps = {"max_openid_configuration_size": cap, "max_jwks_size": cap}
    async with TokenValidator(settings(**caps)) as validator:
        await validator.validate(make_token(keys["key1"]))
        if framing == "endless":
            key_server.endless = document
        else:
            key_server.padding = (document, cap)

        with caplog.at_level(logging.WARNING, logger="graphcomms.webhook"):
            assert await validator.refresh_keys() is True

        assert validator.stats.key_fetch_failures == 1
        assert validator.stats.documents_too_large == 1
        assert f"over its {cap}-byte cap" in caplog.text
        assert (await validator.validate(make_token(keys["key1"], jti="new"))).tenant_id


async def test_key_documents_within_their_caps_are_read(
    settings: Any, keys: dict[str, SigningKey], key_server: KeyServer
) -> None:
    key_server.padding = ("jwks", 60_000)
    async with TokenValidator(settings(max_jwks_size=64 * 1024)) as validator:
        assert await validator.refresh_keys() is True
        assert validator.stats.documents_too_large == 0


def test_key_document_caps_have_sane_defaults_and_must_be_positive() -> None:
    defaults = TokenValidationSettings(app_id=APP_ID)
    assert defaults.max_openid_configuration_size == 64 * 1024
    assert defaults.max_jwks_size == 512 * 1024
    for name in ("max_openid_configuration_size", "max_jwks_size"):
        with pytest.raises(ValueError, match=name):
            TokenValidationSettings(app_id=APP_ID, **{name: 0})
