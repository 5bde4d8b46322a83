"""Routing between in-process instances through a round-robin proxy, on a real Redis."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import redis.asyncio as aioredis
from fleet_support import instance

from graphcomms import IdentitySet, InvitationParticipantInfo, MediaPrompt
from graphcomms.testing import GraphEmulator, RedisServer, RoundRobinProxy

TARGET = InvitationParticipantInfo(identity=IdentitySet.for_phone("+14255550100"))
PROMPT = MediaPrompt.from_uri("https://example.test/hello.wav")


async def test_operations_resolve_on_their_issuer_whichever_instance_is_hit(
    redis_server: RedisServer,
) -> None:
    async with AsyncExitStack() as stack:
        emulator = await stack.enter_async_context(GraphEmulator(prompt_seconds=0.01))
        proxy = RoundRobinProxy([])
        await stack.enter_async_context(proxy)
        callback = proxy.url + "/callback"
        a = await stack.enter_async_context(instance(emulator, redis_server.url, "a", callback))
        b = await stack.enter_async_context(instance(emulator, redis_server.url, "b", callback))
        proxy.backends[:] = [a.url, b.url]
        proxy.answered.update({a.url: 0, b.url: 0})

        calls = [await a.client.create_call(targets=[TARGET]) for _ in range(3)]
        # The callback URL Graph got names the owner's incarnation (generation 0 of a):
        # the hint for its first items.
        hinted = f"{callback}?gcInstance=a.0"
        assert all(emulator.calls[c.id].callback_uri == hinted for c in calls)
        for call in calls:
            await call.wait_for_state("established", timeout=10)
        trackers = [await call.play_prompt([PROMPT]) for call in calls for _ in range(3)]
        done = [await t.wait(timeout=10) for t in trackers]
        assert all(op.status == "completed" for op in done)
        for call in calls:
            await call.hang_up()
            await call.wait_for_state("terminated", timeout=10)
        await emulator.drain()
        assert a.relay.stats.inbox_items > 0, "some of a's items came through b"
        assert b.relay.stats.forwarded_items == a.relay.stats.inbox_items
        assert a.client.stats.unmatched == 0
        assert b.client.stats.unmatched == 0
        assert b.client.stats.pending == 0
        assert b.client.stats.live_calls == 0
        assert all(d.ok for d in emulator.deliveries)
        # Nothing is left in Redis for the finished calls and operations.
        direct = aioredis.Redis.from_url(redis_server.url)
        try:
            for _ in range(100):
                left = await direct.keys("gc:{test}:call:*") + await direct.hkeys(
                    "gc:{test}:state:a"
                )
                if not left:
                    break
                await asyncio.sleep(0.05)
            assert left == []
        finally:
            await direct.aclose()


async def test_items_naming_no_instance_of_the_fleet_make_no_stream(
    redis_server: RedisServer,
) -> None:
    """A validly signed body may name any instance in an operation's clientContext or
    in the callback hint: no inbox stream is created for a name no instance runs
    under, so the number of streams stays the number of instances."""
    async with AsyncExitStack() as stack:
        emulator = await stack.enter_async_context(GraphEmulator(prompt_seconds=0.01))
        a = await stack.enter_async_context(
            instance(emulator, redis_server.url, "a", "https://bot.test/callback")
        )
        names = [f"ghost{n}" for n in range(20)]
        body = {
            "value": [
                {
                    "changeType": "deleted",
                    "resourceUrl": f"/communications/calls/call-{n}/operations/op-{n}",
                    "resourceData": {
                        "@odata.type": "#microsoft.graph.playPromptOperation",
                        "id": f"op-{n}",
                        "status": "completed",
                        "clientContext": f"{name}.1.{n}",
                    },
                }
                for n, name in enumerate(names)
            ]
        }
        assert await a.client.deliver(body, "ghost-hint") == len(names)
        assert a.relay.stats.stranger_items == len(names)
        assert a.relay.stats.forwarded_items == 0
        # Applied here like any item nobody waits for: the bounded early buffer.
        assert a.client.stats.early_buffered == len(names)
        direct = aioredis.Redis.from_url(redis_server.url)
        try:
            streams = sorted(k.decode() for k in await direct.keys("gc:{test}:inbox:*"))
            assert streams == ["gc:{test}:inbox:a"]
        finally:
            await direct.aclose()
