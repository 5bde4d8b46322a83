"""Fixtures for the webhook tests; the helpers behind them are in webhook_support."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from webhook_support import (
    APP_ID,
    SERVERS,
    KeyServer,
    LoopbackClient,
    RecordingSink,
    SigningKey,
    private_key,
    serve,
)

from graphcomms.webhook import NotificationReceiver, TokenValidationSettings, TokenValidator


@pytest.fixture(scope="session")
def keys() -> dict[str, SigningKey]:
    """key1 published as n/e, key2 as an x5c certificate, rogue never published."""
    return {
        "key1": SigningKey("key1", private_key()),
        "key2": SigningKey("key2", private_key(), as_x5c=True),
        "rogue": SigningKey("rogue", private_key()),
    }


@pytest.fixture
async def key_server(keys: dict[str, SigningKey]) -> AsyncIterator[KeyServer]:
    server = KeyServer([keys["key1"]])
    await server.server.start_server()
    server.url = str(server.server.make_url("/.well-known/OpenIdConfiguration"))
    yield server
    await server.server.close()


SettingsFactory = Callable[..., TokenValidationSettings]


@pytest.fixture
def settings(key_server: KeyServer) -> SettingsFactory:
    def build(**overrides: Any) -> TokenValidationSettings:
        return TokenValidationSettings(
            app_id=APP_ID, openid_configuration_url=key_server.url, **overrides
        )

    return build


@pytest.fixture
async def validator(settings: SettingsFactory) -> AsyncIterator[TokenValidator]:
    async with TokenValidator(settings()) as validator:
        yield validator


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
async def receiver(
    sink: RecordingSink, validator: TokenValidator
) -> AsyncIterator[NotificationReceiver]:
    receiver = NotificationReceiver(sink, validator)
    yield receiver
    await receiver.aclose()


@pytest.fixture(params=SERVERS)
def server(request: pytest.FixtureRequest) -> str:
    """Which adapter and server a test's receiver is served by: each in turn."""
    kind: str = request.param
    return kind


@pytest.fixture
async def http(server: str, receiver: NotificationReceiver) -> AsyncIterator[LoopbackClient]:
    """An HTTP client for the receiver served on loopback by a real server (``server``)."""
    async with serve(server, receiver) as client:
        yield client
