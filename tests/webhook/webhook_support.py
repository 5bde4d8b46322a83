"""Helpers for the webhook tests: a local stand-in for the platform's key server, token
minting, a recording sink, and the receiver served by each adapter.

Everything runs on loopback: an aiohttp server publishes an OpenID configuration and a
JWKS for RSA keys generated here, and tokens are signed with those keys.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import json
import socket
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
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
from graphcomms.webhook import ASGINotificationApp, NotificationReceiver, make_app

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


# -- the servers the HTTP tests run against: one receiver, each adapter ------------------

#: The same case matrix runs against each: the aiohttp adapter under aiohttp, and the
#: ASGI adapter under uvicorn, alone (uvicorn's h11 protocol) and as a FastAPI route
#: (uvicorn's httptools protocol, what ``uvicorn[standard]`` runs).
SERVERS = ["aiohttp", "uvicorn", "fastapi"]


class LoopbackClient:
    """An HTTP client for one server on loopback; each answer's body is read before it
    is returned, so a test can look at it after the connection is gone."""

    def __init__(self, session: aiohttp.ClientSession, host: str, port: int) -> None:
        self.session = session
        self.host = host
        self.port = port

    async def post(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self._request("POST", path, **kwargs)

    async def get(self, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        return await self._request("GET", path, **kwargs)

    async def _request(self, method: str, path: str, **kwargs: Any) -> aiohttp.ClientResponse:
        url = f"http://{self.host}:{self.port}{path}"
        async with self.session.request(method, url, **kwargs) as response:
            await response.read()
        return response


@contextlib.asynccontextmanager
async def uvicorn_server(app: Any, *, http: str) -> AsyncIterator[tuple[str, int]]:
    """Serve the ASGI ``app`` with uvicorn on a loopback port of its own, lifespan on;
    yields the host and port once it has started, and shuts it down on exit."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=http, lifespan="on", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        for _ in range(1000):  # 10 s at most: a failure bound, not a wait
            if server.started or serving.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            if serving.done():
                serving.result()  # its error, if it failed to start
            raise RuntimeError("uvicorn did not start")
        yield sock.getsockname()
    finally:
        server.should_exit = True
        await serving
        sock.close()


@contextlib.asynccontextmanager
async def serve(kind: str, receiver: NotificationReceiver) -> AsyncIterator[LoopbackClient]:
    """``receiver`` served on ``POST /callback`` by the adapter and server ``kind``."""
    if kind == "aiohttp":
        server = TestServer(make_app(receiver), host="127.0.0.1", port=0)
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as session:
                yield LoopbackClient(session, "127.0.0.1", server.port or 0)
        finally:
            await server.close()
        return
    app: Any
    if kind == "uvicorn":
        app, protocol = ASGINotificationApp(receiver, path="/callback"), "h11"
    else:
        from fastapi import FastAPI
        from starlette.routing import Route

        notifications = ASGINotificationApp(receiver)
        app = FastAPI(
            lifespan=notifications.lifespan,
            routes=[Route("/callback", notifications, methods=["POST"])],
        )
        protocol = "httptools"
    async with uvicorn_server(app, http=protocol) as (host, port), aiohttp.ClientSession() as s:
        yield LoopbackClient(s, host, port)
