"""The notification envelope Graph POSTs to a call's callback URL."""

from __future__ import annotations

import attrs

from graphcomms.models._enums import ChangeType

__all__ = ["CommsNotification", "CommsNotifications"]


@attrs.frozen(kw_only=True)
class CommsNotification:
    """One change. ``resource_data`` is always a tuple: Graph sends one entity, a list,
    or nothing. Its items are structured by ``@odata.type`` (operations, ``Call``,
    ``Participant``); an item of a type graphcomms does not model stays a ``dict``.
    ``resource`` is the legacy ``/app/calls/...`` path, used when ``resource_url`` is
    missing.
    """

    change_type: ChangeType | str
    resource_url: str | None = None
    resource: str | None = None
    resource_data: tuple[object, ...] = ()
    callback_uri: str | None = None

    @property
    def path(self) -> str | None:
        """The changed resource's path: ``resource_url``, else the legacy ``resource``."""
        return self.resource_url or self.resource


@attrs.frozen(kw_only=True)
class CommsNotifications:
    value: tuple[CommsNotification, ...] = ()
