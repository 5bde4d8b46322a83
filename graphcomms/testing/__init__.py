"""Test your bot without a Microsoft tenant.

Builders for Graph-shaped operations and notifications, a notification source you push
into, and (with the ``testing`` extra) an emulator of Graph's calling service.
"""

from graphcomms.testing._factories import (
    FakeNotificationSource,
    make_envelope,
    make_notification,
    make_operation,
)

__all__ = [
    "FakeNotificationSource",
    "make_envelope",
    "make_notification",
    "make_operation",
]
