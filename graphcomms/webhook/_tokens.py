"""Validation of the bearer JWT that Graph's calling platform puts on every callback.

The platform signs with its own certificates (not Entra ID), published through an
OpenID configuration. Reference §6 lists the checks; this module makes them, caches
the keys and every accepted token, and never lets a token into a log, a repr or an
exception message.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

import aiohttp
import attrs

from graphcomms._events import cancel_and_wait
from graphcomms._json import loads
from graphcomms.errors import GraphCommsError

try:
    import jwt
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from jwt.algorithms import RSAAlgorithm
    from jwt.types import Options  # PyJWT 2.11; the extras ask for 2.14 (pyproject.toml)
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError(
        "graphcomms.webhook validates tokens with PyJWT (2.14 or later) and cryptography: "
        "pip install 'graphcomms[webhook]'"
    ) from exc

__all__ = [
    "DEFAULT_ISSUERS",
    "DEFAULT_OPENID_CONFIGURATION_URL",
    "TokenRejectedError",
    "TokenValidationSettings",
    "TokenValidator",
    "TokenValidatorStats",
    "ValidatedToken",
]

logger = logging.getLogger("graphcomms.webhook")

DEFAULT_OPENID_CONFIGURATION_URL: Final = (
    "https://api.aps.skype.com/v1/.well-known/OpenIdConfiguration"
)
DEFAULT_ISSUERS: Final = frozenset({"https://api.botframework.com", "https://graph.microsoft.com"})

# Far above any real JWT, far below what would make hashing it for the cache costly.
_MAX_TOKEN_LENGTH: Final = 16 * 1024
# Compact JWS only. Base64 decoding skips stray characters, so without this a token with
# a space or a "+" in it could verify as its clean twin under a different cache key.
_COMPACT_JWS: Final = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
_BASE64URL: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# The bits of a segment's last character that encode nothing, by the segment's length
# mod 4 (1 is no valid length at all). Base64 decoders ignore them, so a set bit is a
# second spelling of the same bytes: the same token under another cache key.
_UNUSED_BITS: Final = {2: 0b1111, 3: 0b11}

# Far below what would make arithmetic on a claim fail (a JSON integer can have any
# number of digits) and far above any real token's times: year 10000.
_LATEST_TIME: Final = 253_402_300_800.0

_DECODE_OPTIONS: Final[Options] = {
    "verify_signature": True,
    # Lifetime, issuer and audience are checked here, against our own clock and with
    # distinct outcomes (401 vs 403), so PyJWT only checks the signature.
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
    # A short platform key is a misconfiguration to refuse, not a warning per request.
    "enforce_minimum_key_length": True,
}


def _issuers(value: Iterable[str]) -> frozenset[str]:
    return frozenset(issuer.rstrip("/") for issuer in value)


def _tenants(value: Iterable[str] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(tenant.lower() for tenant in value)


def _non_empty(_: object, attribute: attrs.Attribute[str], value: str) -> None:
    if not value.strip():
        raise ValueError(f"{attribute.name} must not be empty")


def _not_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must not be negative")


def _positive(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive")


@attrs.frozen(kw_only=True)
class TokenValidationSettings:
    """What an inbound token must satisfy, and how signing keys are kept.

    ``app_id`` is the bot's Microsoft App ID (the token's ``aud``). Issuers compare
    without a trailing ``/``; ``allowed_tenants`` (``None``: any tenant) compare
    case-insensitively. Times are seconds. ``leeway`` is deliberately small: it only
    absorbs clock skew between the platform and this host. ``token_cache_size=0`` turns
    the accepted-token cache off. The OpenID configuration and the JWKS are read up to
    ``max_openid_configuration_size`` and ``max_jwks_size`` bytes; a larger one is a
    failed fetch (the old keys stay).
    """

    app_id: str = attrs.field(validator=_non_empty)
    openid_configuration_url: str = DEFAULT_OPENID_CONFIGURATION_URL
    issuers: frozenset[str] = attrs.field(default=DEFAULT_ISSUERS, converter=_issuers)
    allowed_tenants: frozenset[str] | None = attrs.field(default=None, converter=_tenants)
    leeway: float = attrs.field(default=60.0, validator=_not_negative)
    key_refresh_interval: float = attrs.field(default=24 * 3600.0, validator=_not_negative)
    unknown_key_refetch_interval: float = attrs.field(default=60.0, validator=_not_negative)
    token_cache_size: int = attrs.field(default=10_000, validator=_not_negative)
    fetch_timeout: float = attrs.field(default=10.0, validator=_not_negative)
    max_openid_configuration_size: int = attrs.field(default=64 * 1024, validator=_positive)
    max_jwks_size: int = attrs.field(default=512 * 1024, validator=_positive)


@attrs.frozen(kw_only=True)
class ValidatedToken:
    """The claims of a token that passed every check. ``expires_at`` is epoch seconds."""

    tenant_id: str
    issuer: str
    expires_at: float
    claims: Mapping[str, Any] = attrs.field(repr=False, eq=False)


@attrs.define(kw_only=True)
class TokenValidatorStats:
    """Running counts: RSA ``verifications``, token ``cache_hits``, key fetches, and of
    the failed fetches those refused for a document over its size cap."""

    verifications: int = 0
    cache_hits: int = 0
    key_fetches: int = 0
    key_fetch_failures: int = 0
    documents_too_large: int = 0


class TokenRejectedError(GraphCommsError):
    """The token was refused. ``status`` is 401 (not a valid platform token) or 403 (a
    valid token, but not for this app or tenant); ``reason`` is a fixed phrase that never
    contains the token.
    """

    def __init__(self, reason: str, *, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


def _reject(reason: str) -> TokenRejectedError:
    return TokenRejectedError(reason, status=401)


def _forbid(reason: str) -> TokenRejectedError:
    return TokenRejectedError(reason, status=403)


def _time(value: object) -> float | None:
    """A NumericDate claim as epoch seconds, or ``None`` if it is not a plausible one:
    not a number, not finite, or beyond year 10000 (an integer of any size is JSON)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    if not -_LATEST_TIME <= value <= _LATEST_TIME:  # exact for ints of any size; False for NaN
        return None
    return float(value)


def _is_canonical(token: str) -> bool:
    """True if no segment of ``token`` (already a compact JWS) sets a bit its last
    character does not encode: the one spelling of each segment's bytes."""
    for segment in token.split("."):
        remainder = len(segment) % 4
        if remainder == 1 or _BASE64URL.index(segment[-1]) & _UNUSED_BITS.get(remainder, 0):
            return False
    return True


def _public_key(jwk: Mapping[str, Any]) -> RSAPublicKey:
    """The RSA key of one JWK: from its ``x5c`` certificate, else from ``n``/``e``."""
    chain = jwk.get("x5c")
    key: object
    if isinstance(chain, list) and chain:
        certificate = x509.load_der_x509_certificate(base64.b64decode(chain[0]))
        key = certificate.public_key()
    else:
        key = RSAAlgorithm.from_jwk(dict(jwk))
    if not isinstance(key, RSAPublicKey):
        raise TypeError("not an RSA public key")
    return key


def _parse_jwks(document: object) -> dict[str, RSAPublicKey]:
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError("the JWKS document has no 'keys' list")
    keys: dict[str, RSAPublicKey] = {}
    for jwk in document["keys"]:
        if not isinstance(jwk, Mapping) or not isinstance(jwk.get("kid"), str):
            continue
        if (
            jwk.get("kty", "RSA") != "RSA"
            or jwk.get("use", "sig") != "sig"
            or jwk.get("alg", "RS256") != "RS256"
        ):
            continue
        try:
            keys[jwk["kid"]] = _public_key(jwk)
        except (ValueError, TypeError, KeyError, jwt.PyJWTError) as exc:
            # One unreadable key must not cost us the others.
            logger.warning("skipping signing key %r: %s", jwk["kid"], type(exc).__name__)
    if not keys:
        raise ValueError("the JWKS document has no usable RSA signing key")
    return keys


class TokenValidator:
    """Checks inbound callback tokens against the platform's published signing keys.

    Keys are fetched with aiohttp on first use, refreshed every
    ``key_refresh_interval`` in the background, and refetched when a token names an
    unknown ``kid`` -- at most once per ``unknown_key_refetch_interval``, with
    concurrent requests sharing one fetch. A failed fetch logs a warning and keeps the
    old keys. Accepted tokens are cached until they expire, so a busy call costs one
    RSA verification per token.

    ``session`` is borrowed and never closed; without one the validator opens its own
    and ``aclose()`` closes it. ``aclose()`` is safe to call twice; a closed validator
    still checks tokens against the keys it has, but never fetches again.
    """

    def __init__(
        self,
        settings: TokenValidationSettings,
        *,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.settings = settings
        self.stats = TokenValidatorStats()
        self._session = session
        self._owns_session = session is None
        self._closed = False
        self._keys: dict[str, RSAPublicKey] = {}
        self._cache: dict[str, ValidatedToken] = {}
        self._refresh_task: asyncio.Task[None] | None = None
        self._fetched_once = False
        self._next_refresh_at = 0.0
        self._last_unknown_key_refetch = -float("inf")

    @property
    def cached_tokens(self) -> int:
        """How many validated tokens are cached now (at most ``token_cache_size``)."""
        return len(self._cache)

    def __repr__(self) -> str:
        return (
            f"<TokenValidator app_id={self.settings.app_id!r} keys={len(self._keys)}"
            f" cached_tokens={len(self._cache)}{' closed' if self._closed else ''}>"
        )

    async def __aenter__(self) -> TokenValidator:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop any key fetch under way and close the session if the validator owns it."""
        if self._closed:
            return
        self._closed = True
        if self._refresh_task is not None:
            await cancel_and_wait((self._refresh_task,))
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None
        self._cache.clear()

    async def refresh_keys(self) -> bool:
        """Fetch the signing keys now (joining a fetch under way); True if keys are held.

        Never raises for a failed fetch: the old keys stay and a warning is logged.
        """
        task = self._start_refresh()
        if task is not None:
            await asyncio.wait((task,))
        return bool(self._keys)

    def validated(self, token: str) -> ValidatedToken | None:
        """The claims of ``token`` if it was validated before and is still current,
        else ``None`` (then :meth:`validate` it). Synchronous: a webhook's every request
        after the first with a token takes this path, without a coroutine."""
        cached = self._cache.get(token)
        if cached is None:
            return None
        if time.time() <= cached.expires_at + self.settings.leeway:
            self.stats.cache_hits += 1
            return cached
        del self._cache[token]
        return None

    async def validate(self, token: str) -> ValidatedToken:
        """Check ``token`` (the JWT, without ``Bearer``) and return its claims.

        Raises :class:`TokenRejectedError` with status 401 for a token that is not a
        valid, current platform token, and 403 for one that is valid but whose audience
        or tenant is not this app's.
        """
        cached = self.validated(token)
        if cached is not None:
            return cached
        now = time.time()

        if len(token) > _MAX_TOKEN_LENGTH:
            raise _reject("token is too long")
        if _COMPACT_JWS.fullmatch(token) is None or not _is_canonical(token):
            raise _reject("token is not a JWT")
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
            raise _reject("token is not a JWT") from None
        # Fixing the algorithm before looking at the key closes the alg=none and
        # HS256-with-the-public-key tricks.
        if header.get("alg") != "RS256":
            raise _reject("token is not signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _reject("token names no signing key")
        key = await self._key_for(kid)
        if key is None:
            raise _reject("token is signed with an unknown key")

        self.stats.verifications += 1
        try:
            claims = jwt.decode(token, key, algorithms=["RS256"], options=_DECODE_OPTIONS)
        except jwt.InvalidSignatureError:
            raise _reject("token signature does not verify") from None
        except (jwt.PyJWTError, ValueError, TypeError, RecursionError):
            raise _reject("token cannot be decoded") from None

        validated = self._check_claims(claims, now)
        self._remember(token, validated)
        return validated

    def _check_claims(self, claims: dict[str, Any], now: float) -> ValidatedToken:
        settings = self.settings
        if claims.get("exp") is None:
            raise _reject("token has no expiry")
        expires_at = _time(claims["exp"])
        if expires_at is None:
            raise _reject("token expiry is not a valid time")
        if now > expires_at + settings.leeway:
            raise _reject("token has expired")
        # nbf and iat are optional (null counts as absent), but never in the future.
        for claim, refusal in (("nbf", "token is not valid yet"),
                               ("iat", "token is issued in the future")):  # fmt: skip
            value = claims.get(claim)
            if value is None:
                continue
            moment = _time(value)
            if moment is None:
                raise _reject(f"token {claim} is not a valid time")
            if now + settings.leeway < moment:
                raise _reject(refusal)
        issuer = claims.get("iss")
        if not isinstance(issuer, str) or issuer.rstrip("/") not in settings.issuers:
            raise _reject("token issuer is not trusted")
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or not audiences:
            raise _reject("token has no audience")
        if settings.app_id not in audiences:
            raise _forbid("token audience is not this app")
        tenant = claims.get("tid")
        if not isinstance(tenant, str) or not tenant:
            raise _reject("token has no tenant (tid)")
        allowed = settings.allowed_tenants
        if allowed is not None and tenant.lower() not in allowed:
            raise _forbid("token tenant is not allowed")
        return ValidatedToken(tenant_id=tenant, issuer=issuer, expires_at=expires_at, claims=claims)

    def _remember(self, token: str, validated: ValidatedToken) -> None:
        cache = self._cache
        if len(cache) >= self.settings.token_cache_size:
            if not cache:
                return
            # Insertion order is close to expiry order (tokens live about an hour), so
            # dropping the oldest entry is dropping the one closest to useless.
            del cache[next(iter(cache))]
        cache[token] = validated

    async def _key_for(self, kid: str) -> RSAPublicKey | None:
        key = self._keys.get(kid)
        now = time.monotonic()
        if key is not None:
            if now >= self._next_refresh_at and self._refresh_task is None:
                # Periodic refresh: the request goes on with the keys we have.
                self._start_refresh()
            return key
        task = self._refresh_task
        if task is None:
            if not self._fetched_once:
                task = self._start_refresh()
            elif now - self._last_unknown_key_refetch >= self.settings.unknown_key_refetch_interval:
                # A kid we do not know may be a rotated key; refetch, but at a bounded
                # rate, since anyone can send a token naming any kid.
                self._last_unknown_key_refetch = now
                task = self._start_refresh()
        if task is None:
            return None
        # asyncio.wait, not await: a request that is cancelled must not cancel the fetch
        # other requests are waiting on.
        await asyncio.wait((task,))
        return self._keys.get(kid)

    def _start_refresh(self) -> asyncio.Task[None] | None:
        if self._closed:
            return None
        if self._refresh_task is None:
            self._fetched_once = True
            task = asyncio.get_running_loop().create_task(
                self._fetch_keys(), name="graphcomms-webhook-key-refresh"
            )
            task.add_done_callback(self._refresh_done)
            self._refresh_task = task
        return self._refresh_task

    def _refresh_done(self, task: asyncio.Task[None]) -> None:
        if self._refresh_task is task:
            self._refresh_task = None

    async def _fetch_keys(self) -> None:
        self.stats.key_fetches += 1
        url = self.settings.openid_configuration_url
        try:
            keys = await self._download_keys(url)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.stats.key_fetch_failures += 1
            if isinstance(exc, DocumentTooLargeError):
                self.stats.documents_too_large += 1
            self._next_refresh_at = time.monotonic() + self.settings.unknown_key_refetch_interval
            logger.warning(
                "could not refresh token signing keys from %s (%s: %s); keeping %d known keys",
                url,
                type(exc).__name__,
                exc,
                len(self._keys),
            )
            return
        if not self._keys.keys() <= keys.keys():
            # A withdrawn key may have been revoked: tokens it signed are no longer
            # trusted on the strength of the cache.
            self._cache.clear()
        self._keys = keys
        self._next_refresh_at = time.monotonic() + self.settings.key_refresh_interval
        logger.debug("loaded %d token signing keys from %s", len(keys), url)

    async def _download_keys(self, url: str) -> dict[str, RSAPublicKey]:
        session = self._session
        if session is None:
            session = self._session = aiohttp.ClientSession()
        settings = self.settings
        timeout = aiohttp.ClientTimeout(total=settings.fetch_timeout)
        configuration = await _get_json(
            session, url, timeout, settings.max_openid_configuration_size, "OpenID configuration"
        )
        jwks_uri = configuration.get("jwks_uri") if isinstance(configuration, Mapping) else None
        if not isinstance(jwks_uri, str) or not jwks_uri:
            raise ValueError("the OpenID configuration has no jwks_uri")
        jwks = await _get_json(session, jwks_uri, timeout, settings.max_jwks_size, "JWKS")
        return _parse_jwks(jwks)


class DocumentTooLargeError(ValueError):
    """An OpenID configuration or JWKS over its size cap (never read past it)."""


async def _get_json(
    session: aiohttp.ClientSession,
    url: str,
    timeout: aiohttp.ClientTimeout,
    limit: int,
    name: str,
) -> Any:
    """The JSON document at ``url``, read up to ``limit`` bytes and no further."""
    async with session.get(url, timeout=timeout, raise_for_status=True) as response:
        declared = response.content_length
        if declared is not None and declared > limit:
            raise DocumentTooLargeError(
                f"the {name} is {declared} bytes, over its {limit}-byte cap"
            )
        chunks: list[bytes] = []
        size = 0
        while chunk := await response.content.read(limit + 1 - size):
            size += len(chunk)
            if size > limit:
                # Leaving the block drops the connection with the rest unread.
                raise DocumentTooLargeError(f"the {name} is over its {limit}-byte cap")
            chunks.append(chunk)
    return loads(b"".join(chunks))
