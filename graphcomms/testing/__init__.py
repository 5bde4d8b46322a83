"""Test your bot without a Microsoft tenant.

Builders for Graph-shaped operations and notifications and a notification source you
push into (no extra needed), and, with the ``testing`` extra, ``GraphEmulator``: an
emulator of Graph's calling service on loopback that signs its notifications. The
pytest plugin (``graphcomms.testing.pytest_plugin``) hands both to your tests.
``RedisServer`` and ``RoundRobinProxy`` are for testing a fleet (``graphcomms.fleet``):
a throwaway ``redis-server`` and a load balancer in front of several instances.
"""

from typing import TYPE_CHECKING, Any

from graphcomms.testing._factories import (
    FakeNotificationSource,
    make_envelope,
    make_notification,
    make_operation,
)

if TYPE_CHECKING:
    from graphcomms.testing._emulator import (
        Delivery,
        EmulatedCall,
        Faults,
        GraphEmulator,
        run_emulator,
    )
    from graphcomms.testing._fleet import RedisServer, RedisServerMissingError, RoundRobinProxy
    from graphcomms.testing._harness import EmulatedBot, emulated_bot

__all__ = [
    "Delivery",
    "EmulatedBot",
    "EmulatedCall",
    "FakeNotificationSource",
    "Faults",
    "GraphEmulator",
    "RedisServer",
    "RedisServerMissingError",
    "RoundRobinProxy",
    "emulated_bot",
    "make_envelope",
    "make_notification",
    "make_operation",
    "run_emulator",
]

_EMULATOR = {"Delivery", "EmulatedCall", "Faults", "GraphEmulator", "run_emulator"}
_HARNESS = {"EmulatedBot", "emulated_bot"}
_FLEET = {"RedisServer", "RedisServerMissingError", "RoundRobinProxy"}


def __getattr__(name: str) -> Any:
    # The emulator signs tokens (pyjwt, cryptography: the `testing` extra); import it
    # only when asked for, so the builders above work with the core install.
    if name in _EMULATOR:
        from graphcomms.testing import _emulator

        return getattr(_emulator, name)
    if name in _FLEET:
        from graphcomms.testing import _fleet

        return getattr(_fleet, name)
    if name in _HARNESS:
        from graphcomms.testing import _harness

        return getattr(_harness, name)
    raise AttributeError(f"module 'graphcomms.testing' has no attribute {name!r}")
