from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

import pytest

from graphcomms.auth import (
    AzureIdentityTokenProvider,
    CallableTokenProvider,
    StaticTokenProvider,
    as_token_provider,
)
from graphcomms.typing import TokenProvider

SECRET = "eyJhbGciOi.secret-token"


# --- static and callable -----------------------------------------------------------------


async def test_static_returns_its_token_and_hides_it() -> None:
    provider = StaticTokenProvider(SECRET)

    assert await provider.get_token() == SECRET
    assert await provider.get_token(force_refresh=True) == SECRET
    assert repr(provider) == "StaticTokenProvider(token=<redacted>)"
    assert SECRET not in str(provider)
    assert isinstance(provider, TokenProvider)


@pytest.mark.parametrize(("bad", "error"), [("", ValueError), (b"bytes", TypeError)])
def test_static_refuses_non_tokens(bad: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        StaticTokenProvider(bad)


async def test_callable_is_awaited_every_time() -> None:
    calls = 0

    async def fetch() -> str:
        nonlocal calls
        calls += 1
        return f"token-{calls}"

    provider = CallableTokenProvider(fetch)

    assert await provider.get_token() == "token-1"
    assert await provider.get_token(force_refresh=True) == "token-2"
    assert "fetch" in repr(provider)


async def test_callable_must_be_async() -> None:
    provider = CallableTokenProvider(lambda: "sync")  # type: ignore[arg-type,return-value]

    with pytest.raises(TypeError, match="async"):
        await provider.get_token()


async def test_callable_must_produce_a_str() -> None:
    async def fetch() -> Any:
        return None

    with pytest.raises(TypeError, match="non-empty str"):
        await CallableTokenProvider(fetch).get_token()


# --- azure adapter -------------------------------------------------------------------------


class AccessToken(NamedTuple):
    """Shaped like azure.core.credentials.AccessToken."""

    token: str
    expires_on: int


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeCredential:
    """Shaped like an azure.identity.aio credential; counts fetches, can be held."""

    def __init__(self, clock: Clock, lifetime: int = 3600) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.scopes: list[tuple[str, ...]] = []
        self.gate: asyncio.Event | None = None
        self.fail_next = False

    @property
    def calls(self) -> int:
        return len(self.scopes)

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("AAD is down")
        return AccessToken(f"aad-{self.calls}", int(self.clock.now) + self.lifetime)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def credential(clock: Clock) -> FakeCredential:
    return FakeCredential(clock)


def adapter(credential: FakeCredential, clock: Clock, **kwargs: Any) -> AzureIdentityTokenProvider:
    return AzureIdentityTokenProvider(credential, clock=clock, **kwargs)


async def test_azure_asks_for_the_graph_scope_and_caches(
    credential: FakeCredential, clock: Clock
) -> None:
    provider = adapter(credential, clock)

    assert await provider.get_token() == "aad-1"
    clock.now += 3000  # 600 s left, more than the 300 s margin
    assert await provider.get_token() == "aad-1"

    assert credential.scopes == [("https://graph.microsoft.com/.default",)]
    assert "aad-1" not in repr(provider)


async def test_azure_refreshes_inside_the_margin(credential: FakeCredential, clock: Clock) -> None:
    provider = adapter(credential, clock, refresh_margin=300)
    await provider.get_token()

    clock.now += 3299  # 301 s left
    assert await provider.get_token() == "aad-1"
    clock.now += 1  # 300 s left: inside the margin
    assert await provider.get_token() == "aad-2"
    assert credential.calls == 2


async def test_azure_short_lived_token_is_not_fetched_every_time(clock: Clock) -> None:
    credential = FakeCredential(clock, lifetime=120)  # shorter than the margin
    provider = adapter(credential, clock, refresh_margin=300)

    await provider.get_token()
    clock.now += 59
    await provider.get_token()
    assert credential.calls == 1
    clock.now += 1  # half the lifetime
    await provider.get_token()
    assert credential.calls == 2


async def test_azure_force_refresh_bypasses_the_cache(
    credential: FakeCredential, clock: Clock
) -> None:
    provider = adapter(credential, clock)
    await provider.get_token()

    assert await provider.get_token(force_refresh=True) == "aad-2"
    assert await provider.get_token() == "aad-2"
    assert credential.calls == 2


async def test_azure_concurrent_callers_share_one_fetch(
    credential: FakeCredential, clock: Clock
) -> None:
    provider = adapter(credential, clock)
    credential.gate = asyncio.Event()

    tasks = [asyncio.create_task(provider.get_token()) for _ in range(10)]
    await asyncio.sleep(0)
    credential.gate.set()
    tokens = await asyncio.gather(*tasks)

    assert tokens == ["aad-1"] * 10
    assert credential.calls == 1


async def test_azure_concurrent_force_refreshes_share_one_fetch(
    credential: FakeCredential, clock: Clock
) -> None:
    provider = adapter(credential, clock)
    await provider.get_token()
    credential.gate = asyncio.Event()

    # A burst of 401s: every request asks for a fresh token at once.
    tasks = [asyncio.create_task(provider.get_token(force_refresh=True)) for _ in range(5)]
    await asyncio.sleep(0)
    credential.gate.set()
    tokens = await asyncio.gather(*tasks)

    assert tokens == ["aad-2"] * 5
    assert credential.calls == 2
    # A force_refresh asked for after that fetch finished gets a new one.
    credential.gate = None
    assert await provider.get_token(force_refresh=True) == "aad-3"


async def test_azure_failed_fetch_is_not_cached(credential: FakeCredential, clock: Clock) -> None:
    provider = adapter(credential, clock)
    credential.fail_next = True

    with pytest.raises(RuntimeError, match="AAD is down"):
        await provider.get_token()
    assert await provider.get_token() == "aad-2"


async def test_azure_custom_scopes(credential: FakeCredential, clock: Clock) -> None:
    scopes = ("https://graph.microsoft.us/.default",)
    provider = adapter(credential, clock, scopes=scopes)

    await provider.get_token()

    assert credential.scopes == [scopes]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"scopes": "https://graph.microsoft.com/.default"}, TypeError),
        ({"scopes": ()}, ValueError),
        ({"refresh_margin": -1.0}, ValueError),
        ({"timeout": 0}, ValueError),
        ({"timeout": float("inf")}, ValueError),
        ({"timeout": float("nan")}, ValueError),
    ],
)
def test_azure_validates_arguments(
    credential: FakeCredential, clock: Clock, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with pytest.raises(error):
        adapter(credential, clock, **kwargs)


# --- as_token_provider ---------------------------------------------------------------------


async def test_str_becomes_static() -> None:
    provider = as_token_provider(SECRET)
    assert isinstance(provider, StaticTokenProvider)
    assert await provider.get_token() == SECRET


def test_provider_is_returned_as_is() -> None:
    provider = StaticTokenProvider(SECRET)
    assert as_token_provider(provider) is provider


async def test_async_callables_become_callable_providers() -> None:
    async def fetch(prefix: str = "t") -> str:
        return prefix + "-1"

    class Fetcher:
        async def __call__(self) -> str:
            return "from-instance"

    candidates: list[tuple[Callable[[], Awaitable[str]], str]] = [
        (fetch, "t-1"),
        (functools.partial(fetch, "p"), "p-1"),
        (Fetcher(), "from-instance"),
    ]
    for fn, expected in candidates:
        provider = as_token_provider(fn)
        assert isinstance(provider, CallableTokenProvider)
        assert await provider.get_token() == expected


@pytest.mark.parametrize("bad", [None, 42, b"bytes", ["token"], object(), StaticTokenProvider])
def test_anything_else_is_a_type_error(bad: Any) -> None:
    with pytest.raises(TypeError, match="token must be a str, a TokenProvider"):
        as_token_provider(bad)


def test_bare_azure_credential_is_refused_with_a_hint(
    credential: FakeCredential,
) -> None:
    with pytest.raises(TypeError, match="AzureIdentityTokenProvider"):
        as_token_provider(credential)  # type: ignore[arg-type]


# --- a fetch that takes too long -------------------------------------------------------------


async def test_azure_gives_up_on_a_credential_that_never_answers(
    credential: FakeCredential, clock: Clock
) -> None:
    credential.gate = asyncio.Event()  # never set: the endpoint accepts and never answers
    provider = adapter(credential, clock, timeout=0.01)

    with pytest.raises(TimeoutError, match=r"FakeCredential.get_token gave no token within 0.01 s"):
        await provider.get_token()

    # Not cached: the next call asks again, and gets a token once the credential answers.
    credential.gate = None
    assert await provider.get_token() == "aad-2"


async def test_azure_a_timeout_the_credential_raises_itself_is_its_own(clock: Clock) -> None:
    class TimingOut(FakeCredential):
        async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            raise TimeoutError("azure-core's read timeout")

    with pytest.raises(TimeoutError, match="azure-core's read timeout"):
        await adapter(TimingOut(clock), clock).get_token()


async def test_azure_timeout_none_waits_as_long_as_the_credential(
    credential: FakeCredential, clock: Clock
) -> None:
    credential.gate = asyncio.Event()
    provider = adapter(credential, clock, timeout=None)
    task = asyncio.create_task(provider.get_token())
    for _ in range(100):
        if credential.calls:
            break
        await asyncio.sleep(0)
    assert not task.done()
    credential.gate.set()
    assert await task == "aad-1"
