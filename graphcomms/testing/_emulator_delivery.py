"""Notification delivery: one ordered outbox and one sender task per call.

Graph's notifications for a call reach the bot one after another; the emulator keeps
that order (one sender per call) unless a fault says otherwise. Faults are decided when
a notification is queued, from the call's own random stream, so the wire order and the
delivery log repeat under the same seed. A failed POST (refused, timed out, non-2xx) is
logged and not retried: Graph's retry policy is undocumented, and a test that wants a
resend asks for a ``duplicate``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

from graphcomms.testing._emulator_faults import FaultPlan, NotificationPlan
from graphcomms.testing._emulator_state import Delivery, EmulatedCall
from graphcomms.testing._emulator_wire import (
    JSON,
    USER_AGENT,
    apply_quirks,
    envelope,
    new_guid,
)

# How long a notification marked for reordering waits for a successor to swap with.
REORDER_WINDOW = 0.1


@dataclass(eq=False)
class _Pending:
    call: EmulatedCall
    url: str | None
    delivery: Delivery
    plan: NotificationPlan
    done: asyncio.Future[Delivery]
    original_message_id: str | None = None


@dataclass(eq=False)
class _Outbox:
    queue: deque[_Pending] = field(default_factory=deque)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    sender: asyncio.Task[None] | None = None


class Notifier:
    """Signs, queues and POSTs notifications; logs every attempt in ``log``."""

    def __init__(
        self,
        *,
        plan: FaultPlan,
        sign: Callable[[], str],
        log: list[Delivery],
        timeout: float = 10.0,
    ) -> None:
        self._plan = plan
        self._sign = sign
        self._log = log
        self._timeout = timeout
        self._outboxes: dict[str, _Outbox] = {}
        self._seq = 0
        self._session: aiohttp.ClientSession | None = None
        self._closed = False

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))

    def post(
        self,
        call: EmulatedCall,
        item: JSON,
        *,
        url: str | None = None,
        operation_id: str | None = None,
    ) -> asyncio.Future[Delivery]:
        """Queue one notification item for ``call``; the future resolves once it was
        sent, dropped or failed (never raises). ``url`` defaults to the call's callbackUri.
        """
        loop = asyncio.get_running_loop()
        target = url if url is not None else call.callback_uri
        change_type = str(item["changeType"])
        resource_url = str(item["resourceUrl"])
        plan = self._plan.notification(call.id, change_type, resource_url, call._rng)
        body = envelope(apply_quirks(item) if plan.quirks else item)
        applied = ("quirks",) if plan.quirks else ()

        def make(plan: NotificationPlan, original: Delivery | None = None) -> _Pending:
            self._seq += 1
            delivery = Delivery(
                seq=self._seq,
                call_id=call.id,
                operation_id=operation_id,
                change_type=change_type,
                resource_url=resource_url,
                url=target,
                message_id=new_guid(call._rng),
                faults=applied if original is None else (*applied, "duplicate"),
                body=body,
            )
            return _Pending(
                call=call,
                url=target,
                delivery=delivery,
                plan=plan,
                done=loop.create_future(),
                original_message_id=None if original is None else original.message_id,
            )

        first = make(plan)
        # The copy of a duplicate carries no faults of its own.
        pendings = [first, make(NotificationPlan(), first.delivery)] if plan.duplicate else [first]
        if self._closed:
            for pending in pendings:
                self._finish(pending, error="emulator closed")
            return first.done
        outbox = self._outboxes.setdefault(call.id, _Outbox())
        outbox.queue.extend(pendings)
        outbox.arrived.set()
        if outbox.sender is None:
            outbox.sender = asyncio.create_task(
                self._send_all(call.id, outbox), name=f"graphcomms-emulator-sender-{call.id}"
            )
        return first.done

    @property
    def closed(self) -> bool:
        return self._closed

    def busy(self) -> list[asyncio.Task[None]]:
        """The sender tasks still working; each ends once its outbox is empty."""
        return [box.sender for box in self._outboxes.values() if box.sender is not None]

    async def aclose(self) -> None:
        """Cancel queued deliveries (their futures resolve, logged as not sent)."""
        self._closed = True
        senders = self.busy()
        for task in senders:
            task.cancel()
        await asyncio.gather(*senders, return_exceptions=True)
        for box in self._outboxes.values():
            while box.queue:
                self._finish(box.queue.popleft(), error="emulator closed")
        self._outboxes.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _send_all(self, call_id: str, outbox: _Outbox) -> None:
        in_hand: list[_Pending] = []
        try:
            while outbox.queue:
                held = outbox.queue.popleft()
                in_hand = [held]
                if held.plan.reorder:
                    if not outbox.queue:
                        outbox.arrived.clear()
                        with contextlib.suppress(asyncio.TimeoutError):
                            await asyncio.wait_for(outbox.arrived.wait(), REORDER_WINDOW)
                    if outbox.queue:
                        held.delivery.faults = (*held.delivery.faults, "reorder")
                        in_hand = [outbox.queue.popleft(), held]
                for pending in in_hand:
                    await self._send(pending)
                in_hand = []
        finally:
            for pending in in_hand:
                if not pending.done.done():
                    self._finish(pending, error="emulator closed")
            # No await between the empty check above and here: post() starts a new
            # sender if it queues after this one has decided to stop.
            outbox.sender = None
            if not outbox.queue and self._outboxes.get(call_id) is outbox:
                del self._outboxes[call_id]

    async def _send(self, pending: _Pending) -> None:
        plan = pending.plan
        if plan.delay:
            pending.delivery.faults = (*pending.delivery.faults, "delay")
            await asyncio.sleep(plan.delay)
        if plan.drop:
            pending.delivery.faults = (*pending.delivery.faults, "drop")
            self._finish(pending)
            return
        if pending.url is None:
            self._finish(pending, error="no callback URI for this call")
            return
        assert self._session is not None
        delivery = pending.delivery
        headers = {
            "Authorization": f"Bearer {self._sign()}",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Microsoft-Skype-Chain-ID": pending.call.call_chain_id,
            "X-Microsoft-Skype-Message-ID": delivery.message_id,
            "Scenario-Id": pending.call.call_chain_id,
        }
        if pending.original_message_id is not None:
            headers["X-Microsoft-Skype-Original-Message-ID"] = pending.original_message_id
        data = json.dumps(delivery.body).encode("utf-8")
        try:
            # A 302 asks Graph to move the call to another region; the emulator has one
            # region, so it is logged like any other status instead of followed.
            async with self._session.post(
                pending.url, data=data, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            self._finish(pending, error=f"{type(exc).__name__}: {exc}")
            return
        self._finish(pending, status=status)

    def _finish(
        self, pending: _Pending, *, status: int | None = None, error: str | None = None
    ) -> None:
        delivery = pending.delivery
        delivery.status = status
        delivery.error = error
        call = pending.call
        if "drop" in delivery.faults:
            call.notifications_dropped += 1
        elif delivery.ok:
            call.notifications_delivered += 1
            if delivery.operation_id is not None:
                # Only an operation's result names it: from here GET stops finding it
                # (unless every operation is readable, see CallingService.get_operation).
                operation = call.operations.get(delivery.operation_id)
                if operation is not None:
                    operation.result_delivered = True
        else:
            call.notifications_failed += 1
        self._log.append(delivery)
        if not pending.done.done():
            pending.done.set_result(delivery)
