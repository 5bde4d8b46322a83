"""Helpers for the webhook tests: a local stand-in for the platform's key server, token
minting, and a recording sink.

Everything runs on loopback: an aiohttp server publishes an OpenID configuration and a
JWKS for RSA keys generated here, and tokens are signed with those keys.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import time
from collections.abc import Mapping
from typing import Any

import attrs
import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm

from graphcomms.errors import DeserializationError

APP_ID = "11111111-2222-3333-4444-555555555555"
TENANT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
ISSUER = "https://api.botframework.com"
RECORDING_TOKEN = "recording-secret-eyJhbGciOiJub25lIn0.c2VjcmV0"

MISSING: Any = object()


def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@attrs.frozen
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey
    as_x5c: bool = False

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key()
        if not self.as_x5c:
            jwk: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(public))
            return {**jwk, "kid": self.kid, "use": "sig"}
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "graphcomms test")])
        now = datetime.datetime.now(datetime.timezone.utc)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self.private, hashes.SHA256())
        )
        der = certificate.public_bytes(serialization.Encoding.DER)
        return {"kty": "RSA", "kid": self.kid, "x5c": [base64.b64encode(der).decode()]}


def make_token(
    key: SigningKey,
    *,
    kid: str | None = None,
    headers: Mapping[str, Any] | None = None,
    **claims: Any,
) -> str:
    """A platform-style token signed by ``key``; a claim set to MISSING is left out."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "aud": APP_ID,
        "iss": ISSUER,
        "tid": TENANT_ID,
        "iat": now - 10,
        "nbf": now - 10,
        "exp": now + 3600,
    }
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not MISSING}
    header = {"kid": key.kid if kid is None else kid, **(headers or {})}
    return jwt.encode(payload, key.private, algorithm="RS256", headers=header)


def envelope(**resource_data: Any) -> dict[str, Any]:
    """A one-item commsNotifications body (an operation finishing, by default)."""
    data = {
        "@odata.type": "#microsoft.graph.recordOperation",
        "id": "op-1",
        "status": "completed",
        "recordingAccessToken": RECORDING_TOKEN,
        **resource_data,
    }
    return {
        "@odata.type": "#microsoft.graph.commsNotifications",
        "value": [
            {
                "@odata.type": "#microsoft.graph.commsNotification",
                "changeType": "deleted",
                "resourceUrl": "/communications/calls/call-1/operations/op-1",
                "resourceData": data,
            }
        ],
    }


class RecordingSink:
    """Stands in for CommsClient.feed: checks the envelope's shape, records what it applied."""

    def __init__(self) -> None:
        self.fed: list[Any] = []
        self.error: Exception | None = None

    def feed(self, payload: Any, /) -> object:
        if self.error is not None:
            raise self.error
        if isinstance(payload, (bytes, str)):
            payload = json.loads(payload)
        if not isinstance(payload, Mapping) or not isinstance(payload.get("value"), list):
            raise DeserializationError("not a commsNotifications envelope")
        self.fed.append(payload)
        return payload


class KeyServer:
    """The platform's OpenID configuration and JWKS, served on loopback."""

    def __init__(self, published: list[SigningKey]) -> None:
        self.published = published
        self.jwks_hits = 0
        self.fail = False
        self.delay = 0.0
        self.document: Any = None  # served instead of the published keys when set
        # "configuration" or "jwks": that document padded with this many extra bytes.
        self.padding: tuple[str, int] | None = None
        # "configuration" or "jwks": that document streamed without end (no length).
        self.endless: str | None = None
        self.streamed = 0
        self.url = ""
        app = web.Application()
        app.router.add_get("/.well-known/OpenIdConfiguration", self._configuration)
        app.router.add_get("/keys", self._jwks)
        self.server = TestServer(app, host="127.0.0.1", port=0)

    async def _configuration(self, request: web.Request) -> web.StreamResponse:
        if self.fail:
            return web.Response(status=500)
        jwks_uri = str(request.url.with_path("/keys"))
        return await self._serve(request, "configuration", {"issuer": ISSUER, "jwks_uri": jwks_uri})

    async def _jwks(self, request: web.Request) -> web.StreamResponse:
        self.jwks_hits += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            return web.Response(status=503)
        if self.document is not None:
            return web.json_response(self.document)
        document = {"keys": [key.jwk() for key in self.published]}
        return await self._serve(request, "jwks", document)

    async def _serve(
        self, request: web.Request, name: str, document: dict[str, Any]
    ) -> web.StreamResponse:
        if self.padding is not None and self.padding[0] == name:
            document = {**document, "padding": "x" * self.padding[1]}
        if self.endless != name:
            return web.json_response(document)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"padding": "')
        # Until the reader hangs up: then writing fails.
        with contextlib.suppress(ConnectionError):
            while True:
                await response.write(b"x" * 65536)
                self.streamed += 65536
        return response
