"""The relay's parts on a real Redis: the 503 path, the inbox reader under
cancellation, one process per identity, restart recovery with tags."""

from __future__ import annotations

import ast
import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from aioresponses import aioresponses
from fleet_support import Instance, instance

from graphcomms import (
    CallHandle,
    CommsClient,
    IdentitySet,
    InvitationParticipantInfo,
    MediaPrompt,
)
from graphcomms.errors import OperationTimeoutError, RelayUnavailableError
from graphcomms.fleet import IdentityTakenError, Recovery, Relay
from graphcomms.fleet._store import GROUP
from graphcomms.testing import (
    GraphEmulator,
    RedisServer,
    RoundRobinProxy,
    make_envelope,
    make_notification,
    make_operation,
)
from graphcomms.webhook import NotificationReceiver

TARGET = InvitationParticipantInfo(identity=IdentitySet.for_phone("+14255550100"))
PROMPT = MediaPrompt.from_uri("https://example.test/hello.wav")
CALL = "11111111-2222-3333-4444-555555555555"


@asynccontextmanager
async def bare(redis_url: str, name: str, **options: Any) -> AsyncIterator[CommsClient]:
    """A fleet client that never talks to Graph (bodies are fed to it directly)."""
    options.setdefault("lease", 1.0)
    relay = Relay(redis_url, app="unit", instance=name, **options)
    async with CommsClient(
        "token", base_url="http://127.0.0.1:9/v1.0/", fleet=relay, keep_alive=None
    ) as client:
        yield client


@asynccontextmanager
async def on_a_call(
    redis_url: str, **relay_options: Any
) -> AsyncIterator[tuple[Instance, CallHandle]]:
    """Instance "a" alone behind a proxy, against the emulator, and a call established
    through it."""
    async with AsyncExitStack() as stack:
        emulator = await stack.enter_async_context(GraphEmulator(prompt_seconds=30.0))
        proxy = await stack.enter_async_context(RoundRobinProxy([]))
        a = await stack.enter_async_context(
            instance(emulator, redis_url, "a", proxy.url + "/callback", **relay_options)
        )
        proxy.backends.append(a.url)
        call = await a.client.create_call(targets=[TARGET])
        await call.wait_for_state("established", timeout=10)
        yield a, call


def foreign_body(owner: str, *also: str) -> bytes:
    """One operation item per owner named, each with that owner's clientContext."""
    items = [
        make_notification(
            make_operation(status="completed", client_context=f"{name}.0.abc"), call_id=CALL
        )
        for name in (owner, *also)
    ]
    return json.dumps(make_envelope(*items)).encode()


async def left_behind(direct: aioredis.Redis, name: str, **record_fields: str) -> None:
    """What an instance lost long ago leaves in Redis: the record of one pending
    playPrompt (clientContext ``{name}.0.abc``), a lease that ended, and its inbox."""
    record = {"c": CALL, "x": f"{name}.0.abc", "i": None, "t": "PlayPromptOperation"}
    record.update(s="running", **record_fields)
    await direct.hset(f"gc:{{unit}}:state:{name}", f"o:{name}.0.abc", json.dumps(record))
    await direct.zadd("gc:{unit}:live", {name: 1})
    await direct.xgroup_create(f"gc:{{unit}}:inbox:{name}", GROUP, id="0", mkstream=True)


async def until(condition: Callable[[], object], seconds: float = 5.0) -> None:
    """Wait until ``condition()`` holds, for at most ``seconds`` (the test then asserts
    what it needs: this never fails on its own)."""
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)


async def first_recovery(recoveries: list[Recovery]) -> Recovery:
    await until(lambda: recoveries)
    [recovery] = recoveries
    return recovery


@asynccontextmanager
async def adopter(
    redis_url: str, **options: Any
) -> AsyncIterator[tuple[CommsClient, Relay, Recovery]]:
    """Instance b, quick to adopt (lease and adopt_after 0.3 s), once it has adopted
    what was left behind (:func:`left_behind`): its client, relay and recovery."""
    recoveries: list[Recovery] = []
    options = {"lease": 0.3, "adopt_after": 0.3, **options}
    async with bare(redis_url, "b", on_recovered=recoveries.append, **options) as b:
        recovery = await first_recovery(recoveries)
        relay = b.fleet
        assert isinstance(relay, Relay)
        yield b, relay, recovery


async def test_foreign_items_go_to_the_owners_inbox_and_503_when_redis_is_away(
    redis_server: RedisServer,
) -> None:
    async with bare(redis_server.url, "b", timeout=0.5, block=0.2, breaker_threshold=1) as b:
        receiver = NotificationReceiver(b, validate=False)
        assert receiver.relays
        direct = aioredis.Redis.from_url(redis_server.url)
        try:
            # Instance a has run (its inbox exists, as every instance makes it at start)
            # and is away now: its items wait in its inbox.
            await direct.xgroup_create("gc:{unit}:inbox:a", GROUP, id="0", mkstream=True)
            result = await receiver.accept_relayed(foreign_body("a"))
            assert result.status == 202
            entries = await direct.xrange("gc:{unit}:inbox:a")
            assert len(entries) == 1
            assert json.loads(entries[0][1][b"b"])["value"][0]["resourceData"]["clientContext"] == (
                "a.0.abc"
            )
            redis_server.pause()
            try:
                # One item for a, one for b itself: b's own still applies.
                result = await receiver.accept_relayed(foreign_body("a", "b"))
                assert result.status == 503
                assert b.stats.notifications == 1
                # The breaker is open now: refused at once, nothing waits on Redis.
                result = await receiver.accept_relayed(foreign_body("a"))
                assert result.status == 503
            finally:
                redis_server.resume()
            assert receiver.stats.relay_unavailable == 2
            relay = b.fleet
            assert isinstance(relay, Relay)
            assert relay.stats.forward_failed == 2
            assert relay.stats.breaker_opened == 1
            assert relay.stats.local_items == 1
        finally:
            await direct.aclose()


async def test_a_body_failing_validation_is_never_forwarded(redis_server: RedisServer) -> None:
    async with GraphEmulator() as emulator, bare(redis_server.url, "b") as b:
        from fleet_support import validator_for

        receiver = NotificationReceiver(b, validator_for(emulator))
        headers = {"Authorization": "Bearer not-a-token", "Content-Type": "application/json"}
        assert (await receiver.check(headers)) is not None
        direct = aioredis.Redis.from_url(redis_server.url)
        try:
            assert await direct.exists("gc:{unit}:inbox:a") == 0
        finally:
            await direct.aclose()
        await receiver.aclose()


async def test_the_inbox_reader_survives_being_cancelled_mid_read(
    redis_server: RedisServer,
) -> None:
    async with bare(redis_server.url, "a", block=0.5) as a, bare(redis_server.url, "b") as b:
        relay = a.fleet
        assert isinstance(relay, Relay)
        reader = relay._tasks[0]
        await asyncio.sleep(0.1)  # blocked in XREADGROUP now
        reader.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reader
        # The reader's connection must not hold the cancelled command's reply.
        relay._tasks[0] = asyncio.get_running_loop().create_task(relay._read_inbox())
        await b.deliver(json.loads(foreign_body("a")))
        await until(lambda: relay.stats.inbox_acked)
        assert relay.stats.inbox_entries == 1
        assert relay.stats.inbox_acked == 1
        assert a.stats.notifications == 1


async def test_redis_py_blocking_read_cancelled_then_read_again(
    redis_server: RedisServer,
) -> None:
    client = aioredis.Redis.from_url(
        redis_server.url, socket_timeout=2.0, single_connection_client=True
    )
    try:
        await client.xgroup_create("s", "g", id="0", mkstream=True)
        read = asyncio.ensure_future(client.xreadgroup("g", "c", {"s": ">"}, block=1000))
        await asyncio.sleep(0.1)
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
        await client.xadd("s", {"k": "v"})
        answer = await client.xreadgroup("g", "c", {"s": ">"}, block=1000)
        assert answer[0][1][0][1] == {b"k": b"v"}
        assert await client.ping()
    finally:
        await client.aclose()


async def test_every_callback_url_a_fleet_client_gives_graph_names_its_incarnation(
    redis_server: RedisServer, mock_graph: aioresponses
) -> None:
    """The client's own callback URL and one given to a single call, for a call it
    places and for one it answers: each names the instance's incarnation, the hint an
    item about a call nobody recorded yet is routed by."""
    graph_url = "http://127.0.0.1:9/v1.0/communications/calls"
    async with bare(redis_server.url, "a") as client:
        client.callback_uri = "https://bot.example/callback"
        graph = mock_graph
        graph.post(graph_url, status=201, payload={"id": CALL, "state": "establishing"})
        graph.post(f"{graph_url}/{CALL}/answer", status=202, repeat=True)
        await client.create_call(targets=[TARGET])
        await client.call(CALL).answer()
        await client.call(CALL).answer(callback_uri="https://other.example/cb?x=1")
        sent = [
            json.loads(kwargs["data"])["callbackUri"]
            for calls in graph.requests.values()
            for _, kwargs in calls
        ]
    assert sorted(sent) == [
        "https://bot.example/callback?gcInstance=a.0",
        "https://bot.example/callback?gcInstance=a.0",
        "https://other.example/cb?x=1&gcInstance=a.0",
    ]
    assert client.callback_uri == "https://bot.example/callback"


async def test_one_process_per_identity(redis_server: RedisServer) -> None:
    async with bare(redis_server.url, "a", lease=5.0):
        with pytest.raises(IdentityTakenError):
            async with bare(redis_server.url, "a", lease=5.0, lock_wait=0.3):
                pass


async def test_a_restart_gives_pending_work_back_tagged(redis_server: RedisServer) -> None:
    recoveries: list[Recovery] = []
    async with AsyncExitStack() as stack:
        # Long enough that the prompt is still playing when a has closed, however slow
        # the machine (the test waits for its end, not for a time).
        emulator = await stack.enter_async_context(GraphEmulator(prompt_seconds=3.0))
        proxy = await stack.enter_async_context(RoundRobinProxy([]))
        callback = proxy.url + "/callback"
        b = await stack.enter_async_context(instance(emulator, redis_server.url, "b", callback))
        proxy.backends.append(b.url)
        proxy.answered[b.url] = 0
        async with instance(emulator, redis_server.url, "a", callback) as a:
            proxy.backends.insert(0, a.url)
            call = await a.client.create_call(targets=[TARGET])
            a.relay.tag(call, "the-call")
            await call.wait_for_state("established", timeout=10)
            with a.relay.tagged("greeting"):
                tracker = await call.play_prompt([PROMPT])
            proxy.backends.remove(a.url)
        # a is gone (closed as a deploy closes it): its records stay, b forwards for it.
        async with instance(
            emulator, redis_server.url, "a", callback, on_recovered=recoveries.append
        ) as a2:
            await until(lambda: recoveries)
            [recovery] = recoveries
            assert recovery.adopted_from is None
            [op] = recovery.operations
            [rcall] = recovery.calls
            assert op.tag == "greeting"
            assert rcall.tag == "the-call"
            assert op.tracker.recovered
            assert rcall.call.recovered
            assert op.tracker.client_context == tracker.client_context
            done = await op.tracker.wait(timeout=10)
            assert done.status == "completed"
            await rcall.call.hang_up()
            await rcall.call.wait_for_state("terminated", timeout=10)
            assert a2.relay.stats.recovered_operations == 1


async def test_an_instance_back_after_its_adoption_gets_its_new_work(
    redis_server: RedisServer,
) -> None:
    """A StatefulSet pod lost for longer than ``adopt_after`` comes back under its
    name: the survivor keeps the old work it adopted, and everything the instance does
    afresh is routed to it, although every notification lands on the survivor."""
    recoveries: list[Recovery] = []
    fast = {"lease": 0.3, "adopt_after": 0.3}
    async with AsyncExitStack() as stack:
        emulator = await stack.enter_async_context(GraphEmulator(prompt_seconds=1.0))
        proxy = await stack.enter_async_context(RoundRobinProxy([]))
        callback = proxy.url + "/callback"
        b = await stack.enter_async_context(
            instance(
                emulator, redis_server.url, "b", callback, on_recovered=recoveries.append, **fast
            )
        )
        proxy.backends.append(b.url)
        async with instance(emulator, redis_server.url, "a", callback, **fast) as a:
            old_call = await a.client.create_call(targets=[TARGET])
            await old_call.wait_for_state("established", timeout=10)
            old = await old_call.play_prompt([PROMPT])
        # a is gone with work pending, and stays away until b has adopted it.
        recovery = await first_recovery(recoveries)
        assert recovery.adopted_from == "a"
        [adopted] = recovery.operations
        assert adopted.tracker.client_context == old.client_context
        async with instance(emulator, redis_server.url, "a", callback, **fast) as a2:
            call = await a2.client.create_call(targets=[TARGET])
            await call.wait_for_state("established", timeout=10)
            prompts = [await call.play_prompt([PROMPT]) for _ in range(4)]
            for tracker in prompts:
                assert (await tracker.wait(timeout=10)).status == "completed"
            assert (await adopted.tracker.wait(timeout=10)).status == "completed"
            await call.hang_up()
            await call.wait_for_state("terminated", timeout=10)
            assert a2.client.stats.unmatched == b.client.stats.unmatched == 0
            assert a2.relay.stats.forwarded_items == 0  # nothing landed on it


def readme_resume() -> Callable[[Recovery], Awaitable[None]]:
    """The README's ``resume`` hook as the README spells it, with its block's imports
    (not the block's ``main()``, which serves for ever against a real deployment)."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    [block] = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "def resume(" in b]
    kept = [
        node
        for node in ast.parse(block).body
        if isinstance(node, (ast.Import, ast.ImportFrom))
        or (isinstance(node, ast.AsyncFunctionDef) and node.name == "resume")
    ]
    namespace: dict[str, Any] = {}
    exec(compile(ast.Module(body=kept, type_ignores=[]), "README.md", "exec"), namespace)
    hook: Callable[[Recovery], Awaitable[None]] = namespace["resume"]
    return hook


async def test_the_readme_resume_hook_runs_on_a_real_restart(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """a restarts with two calls and a prompt pending on each; one call ended while it
    was down. The README's hook reports both outcomes and hangs up what is still up."""
    resume = readme_resume()
    recoveries: list[Recovery] = []
    async with AsyncExitStack() as stack:
        emulator = await stack.enter_async_context(GraphEmulator(prompt_seconds=3.0))
        proxy = await stack.enter_async_context(RoundRobinProxy([]))
        callback = proxy.url + "/callback"
        b = await stack.enter_async_context(instance(emulator, redis_server.url, "b", callback))
        proxy.backends.append(b.url)
        async with instance(emulator, redis_server.url, "a", callback) as a:
            proxy.backends.insert(0, a.url)
            calls = [await a.client.create_call(targets=[TARGET]) for _ in range(2)]
            for call, tag in zip(calls, ("greeting", "goodbye"), strict=True):
                await call.wait_for_state("established", timeout=10)
                with a.relay.tagged(tag):
                    await call.play_prompt([PROMPT])
            proxy.backends.remove(a.url)
        await emulator.caller_hangs_up(calls[1].id)  # b forwards its end to a's inbox
        async with instance(
            emulator, redis_server.url, "a", callback, on_recovered=recoveries.append
        ):
            recovery = await first_recovery(recoveries)
            await asyncio.wait_for(resume(recovery), 15)
        printed = capsys.readouterr().out.splitlines()
        assert "greeting completed" in printed
        assert [line for line in printed if line.startswith("goodbye no outcome:")]
        assert [emulator.calls[c.id].ended for c in calls] == [True, True]


async def test_a_survivor_adopts_a_lost_instances_work(redis_server: RedisServer) -> None:
    direct = aioredis.Redis.from_url(redis_server.url)
    await left_behind(direct, "lost", g="step 2")
    await direct.hset("gc:{unit}:state:lost", "o:junk", "not a record")
    await direct.xadd("gc:{unit}:inbox:lost", {"b": foreign_body("lost"), "f": "x", "t": "0"})
    try:
        async with adopter(redis_server.url) as (b, relay, recovery):
            assert recovery.adopted_from == "lost"
            [op] = recovery.operations
            assert op.tag == "step 2"
            assert op.tracker.recovered
            # Its inbox is read here too: the buffered completion resolves the tracker.
            done = await op.tracker.wait(timeout=10)
            assert done.status == "completed"
            # Items for the lost instance's work are now this instance's own.
            await b.deliver(json.loads(foreign_body("lost")))
            assert relay.stats.adoptions == 1
            assert relay.stats.bad_records == 1
            assert relay.stats.forwarded_items == 0
            assert await direct.exists("gc:{unit}:state:lost") == 0
            assert await direct.hget("gc:{unit}:adopted", "lost.0") == b"b"
    finally:
        await direct.aclose()


async def test_an_inbox_entry_for_another_instance_is_passed_on_once(
    redis_server: RedisServer,
) -> None:
    """Back after its adoption, an instance reads its own inbox alone (its adopter
    stops reading it), and passes an entry about the adopted work on to the adopter."""
    direct = aioredis.Redis.from_url(redis_server.url)
    await left_behind(direct, "a")
    fast = {"lease": 0.3, "adopt_after": 0.3}
    try:
        async with adopter(redis_server.url, block=0.1) as (b, b_relay, recovery):
            [adopted] = recovery.operations
            assert "gc:{unit}:inbox:a" in b_relay._inboxes
            async with bare(redis_server.url, "a", **fast) as a2:
                a_relay = a2.fleet
                assert isinstance(a_relay, Relay)
                assert a_relay.new_client_context().startswith("a.1.")
                await until(lambda: "gc:{unit}:inbox:a" not in b_relay._inboxes)
                assert b_relay._inboxes == ["gc:{unit}:inbox:b"]
                assert await direct.smembers("gc:{unit}:adoptions:b") == set()
                # A blocking read b began before it let the inbox go may still take an
                # entry there (and b would apply its own item): let it end first.
                await asyncio.sleep(0.3)
                # A sender whose view predates the adoption puts b's item in a's inbox.
                await direct.xadd("gc:{unit}:inbox:a", {"b": foreign_body("a"), "f": "x", "t": "0"})
                done = await adopted.tracker.wait(timeout=10)
                assert done.status == "completed"
                # b can read the entry a passed on before a has the XADD's answer.
                await until(lambda: a_relay.stats.rerouted_items)
                assert a_relay.stats.rerouted_items == 1
                assert a2.stats.notifications == 0  # nothing of it applied on a
                assert b.stats.unmatched == a2.stats.unmatched == 0
    finally:
        await direct.aclose()


async def test_an_adopter_lets_an_inbox_go_when_its_instance_is_back(
    redis_server: RedisServer,
) -> None:
    """The first item of a returned instance's new work that its adopter reads in that
    inbox is passed on, and the adopter stops reading there at once, its heartbeat
    notwithstanding: it does not read back what it passed on."""
    direct = aioredis.Redis.from_url(redis_server.url)
    await left_behind(direct, "a")
    try:
        async with adopter(redis_server.url) as (b, relay, _):
            assert relay._inboxes == ["gc:{unit}:inbox:b", "gc:{unit}:inbox:a"]
            # a is back (its lease, as its heartbeat writes it; the process itself is not
            # needed here), and its next incarnation's completion is in its inbox.
            await direct.zadd("gc:{unit}:live", {"a": int(time.time() * 1000) + 60_000})
            await direct.xadd(
                "gc:{unit}:inbox:a",
                {"b": foreign_body("a").replace(b"a.0.", b"a.1."), "f": "x", "t": "0"},
            )
            await until(lambda: relay.stats.rerouted_items)
            assert relay.stats.rerouted_items == 1
            assert relay._inboxes == ["gc:{unit}:inbox:b"]
            await asyncio.sleep(0.5)  # heartbeats, with the adoption still listed
            assert relay._inboxes == ["gc:{unit}:inbox:b"]
            [(_, fields)] = await direct.xrange("gc:{unit}:inbox:a")
            assert fields[b"r"] == b"1"  # passed on, for a to read
            assert b.stats.notifications == 0
    finally:
        await direct.aclose()


async def test_an_item_named_through_an_adoption_chain_stays_with_its_last_adopter(
    redis_server: RedisServer,
) -> None:
    """x's work went to a, and a (with it) to b. An item about x's work that b no longer
    knows names a, whose inbox b reads: a is not back, so the item is b's, and b goes
    on reading a's inbox."""
    direct = aioredis.Redis.from_url(redis_server.url)
    await left_behind(direct, "a")
    await direct.hset("gc:{unit}:adopted", "x.0", "a")
    try:
        async with adopter(redis_server.url) as (b, relay, _):
            await direct.xadd("gc:{unit}:inbox:a", {"b": foreign_body("x"), "f": "y", "t": "0"})
            await until(lambda: b.stats.notifications)
            assert b.stats.notifications == 1  # applied here (nothing waits for it)
            assert relay.stats.rerouted_items == 0
            assert "gc:{unit}:inbox:a" in relay._inboxes
    finally:
        await direct.aclose()


async def test_an_instance_adopted_while_cut_off_says_so(redis_server: RedisServer) -> None:
    direct = aioredis.Redis.from_url(redis_server.url)
    try:
        async with bare(redis_server.url, "a", lease=0.3) as a:
            relay = a.fleet
            assert isinstance(relay, Relay)
            await direct.hset("gc:{unit}:adopted", "a.7", "b")  # an older incarnation
            await asyncio.sleep(0.3)
            assert relay.stats.adopted_while_away == 0
            # What a survivor writes when it takes this incarnation's work.
            await direct.hset("gc:{unit}:adopted", "a.0", "b")
            await until(lambda: relay.stats.adopted_while_away)
            await asyncio.sleep(0.3)  # later heartbeats do not count it again
            assert relay.stats.adopted_while_away == 1
    finally:
        await direct.aclose()


async def test_recovered_operations_keep_their_deadline_and_unconfirmed_ones_end(
    redis_server: RedisServer,
) -> None:
    """A record holds the tracker's deadline as wall-clock time; one without an
    operation id (its process died before Graph answered the POST) is unconfirmed:
    with no notification it fails after ``unconfirmed_timeout``, not never."""
    now = time.time()

    def record(ctx: str, op_id: str | None, deadline: float | None) -> str:
        fields = {"c": CALL, "x": ctx, "i": op_id, "t": "PlayPromptOperation", "s": "running"}
        return json.dumps({**fields, "g": None, "d": deadline})

    direct = aioredis.Redis.from_url(redis_server.url)
    await direct.hset(
        "gc:{unit}:state:r",
        mapping={
            "o:r.0.unsent": record("r.0.unsent", None, None),
            "o:r.0.due": record("r.0.due", "op-due", now + 0.4),
            "o:r.0.open": record("r.0.open", "op-open", None),
            "o:r.0.late": record("r.0.late", None, now + 600),
        },
    )
    recoveries: list[Recovery] = []
    try:
        async with bare(
            redis_server.url, "r", unconfirmed_timeout=0.3, on_recovered=recoveries.append
        ):
            await until(lambda: recoveries)
            [recovery] = recoveries
            ops = {op.tracker.client_context: op for op in recovery.operations}
            assert {ctx: op.confirmed for ctx, op in ops.items()} == {
                "r.0.unsent": False,
                "r.0.due": True,
                "r.0.open": True,
                "r.0.late": False,
            }
            with pytest.raises(OperationTimeoutError, match="may never have received"):
                await ops["r.0.unsent"].tracker.wait(timeout=5)
            with pytest.raises(OperationTimeoutError, match=r"after 0\.3 s"):
                await ops["r.0.late"].tracker.wait(timeout=5)
            with pytest.raises(OperationTimeoutError) as due:
                await ops["r.0.due"].tracker.wait(timeout=5)
            assert "may never" not in str(due.value)
            assert time.time() - now >= 0.35
            # No deadline stored, none configured: it still waits for Graph.
            assert not ops["r.0.open"].tracker.done()
    finally:
        await direct.aclose()


async def test_a_record_holds_the_trackers_deadline(redis_server: RedisServer) -> None:
    async with on_a_call(redis_server.url) as (a, call):
        started = time.time()
        tracker = await call.play_prompt([PROMPT], timeout=120)
        untimed = await call.play_prompt([PROMPT])
        # A tag set after the action rewrites the record: its deadline and ids stay.
        a.relay.tag(tracker, "later")
        await a.relay._flush()
        direct = aioredis.Redis.from_url(redis_server.url)
        try:
            stored = await direct.hgetall("gc:{test}:state:a")
        finally:
            await direct.aclose()
        timed = json.loads(stored[f"o:{tracker.client_context}".encode()])
        assert timed["i"] == tracker.operation_id
        assert timed["c"] == call.id
        assert timed["g"] == "later"
        assert started + 119 <= timed["d"] <= time.time() + 120
        assert json.loads(stored[f"o:{untimed.client_context}".encode()])["d"] is None


async def test_an_instance_that_cannot_reach_redis_does_not_start(
    redis_server: RedisServer,
) -> None:
    """Refused or stalled, Redis at start is a ``RelayUnavailableError`` that names
    where (never the password), and the client it was to open is closed again."""
    with pytest.raises(RelayUnavailableError) as refused:
        async with bare("redis://bot:s3cret@127.0.0.1:1/0", "a"):
            pass
    assert "127.0.0.1:1" in str(refused.value)
    assert "s3cret" not in str(refused.value)
    assert "'a' cannot start" in str(refused.value)

    redis_server.pause()
    try:
        # (redis-py 5.0 says ConnectionError "Timeout reading", later ones TimeoutError.)
        with pytest.raises(RelayUnavailableError, match=r"'b' cannot start.*did not answer"):
            async with bare(redis_server.url, "b", timeout=0.3, block=0.1):
                pass
    finally:
        redis_server.resume()
    # Nothing of that try holds the identity: it starts at once now.
    async with bare(redis_server.url, "b", lock_wait=0.1):
        pass


async def test_an_action_does_not_wait_for_the_write_behind_delay(
    redis_server: RedisServer,
) -> None:
    """An action's record is stored at once, even when the flusher was already
    waiting ``flush_interval`` to batch write-behind records (a call's state, a
    previous action's operation id): it used to wait out that delay before its POST."""
    async with on_a_call(redis_server.url, flush_interval=30) as (a, call):
        for _ in range(3):
            # Each answer writes the operation id behind: the flusher is in its delay
            # when the next action asks for its record.
            tracker = await asyncio.wait_for(call.play_prompt([PROMPT]), 5)
            assert tracker.operation_id is not None
        assert a.relay.stats.persist_late == 0


async def test_items_applied_by_the_relay_are_counted_as_feed_counts_them(
    redis_server: RedisServer,
) -> None:
    """The relay parses each path once to route it and applies a local item with it;
    counting is the ingestor's own, bad items included (logged, never raised)."""
    async with bare(redis_server.url, "b") as b:
        path = f"/communications/calls/{CALL}/operations/op-1"
        body = {
            "value": [
                "not an item",
                {"changeType": "updated", "resourceUrl": path, "resourceData": {"status": 5}},
                {"changeType": "deleted", "resourceUrl": "/not/a/call"},
                make_notification(
                    make_operation(status="completed", client_context="b.0.abc"), call_id=CALL
                ),
            ]
        }
        assert await b.deliver(body) == 4
        async with CommsClient(
            "token", base_url="http://127.0.0.1:9/v1.0/", keep_alive=None
        ) as alone:
            alone.feed(json.dumps(body).encode())
        counted = ("notifications", "bad_items", "unmatched", "early_buffered")
        assert [getattr(b.stats, n) for n in counted] == [getattr(alone.stats, n) for n in counted]
        assert (b.stats.notifications, b.stats.bad_items) == (4, 2)


class _Stranger:
    """A host that owns nothing: routing goes by what the item names."""

    def owns_operation(self, operation_id: str | None, client_context: str | None) -> bool:
        return False

    def owns_call(self, key: str) -> bool:
        return False


def test_each_adopted_incarnations_items_go_to_its_adopter() -> None:
    """One dict lookup per routed item. An instance lost twice: each incarnation's
    work is with the survivor that adopted it, and what the instance began after it
    came back (its next generation) is its own."""
    relay = Relay("redis://127.0.0.1:1", app="unit", instance="c")
    host: Any = _Stranger()

    def owner(ctx: str) -> str | None:
        [item] = make_notification(make_operation(client_context=ctx), call_id=CALL)["value"]
        found, ref = relay._owner(host, item)
        assert ref is not None
        return found

    for adopted in (
        {"x.0": "a", "x.1": "b", "y.3": "c", "bogus": "z"},
        {"bogus": "z", "y.3": "c", "x.1": "b", "x.0": "a"},
    ):
        relay._set_adopted(adopted)
        assert owner("x.0.abc") == "a"
        assert owner("x.1.abc") == "b"
        assert owner("x.2.abc") == "x"
        assert owner("y.3.abc") is None  # adopted by this instance: its own
        assert owner("y.4.abc") == "y"
        assert owner("w.0.abc") == "w"


async def test_cancelling_one_waiting_action_leaves_the_others_waiting_with_it(
    redis_server: RedisServer,
) -> None:
    """Actions waiting for the same flush are independent: cancelling one of them
    must not cancel the others (they used to share one future, which the cancelled
    task cancelled for all of them)."""
    async with on_a_call(redis_server.url, timeout=5.0) as (a, call):
        redis_server.pause()
        try:
            # The first action's flush hangs on the paused server; the next three wait
            # for the flush after it, together.
            first = asyncio.ensure_future(call.play_prompt([PROMPT]))
            await asyncio.sleep(0.05)
            together = [asyncio.ensure_future(call.play_prompt([PROMPT])) for _ in range(3)]
            await asyncio.sleep(0.05)
            assert not any(task.done() for task in (first, *together))
            together[1].cancel()
        finally:
            redis_server.resume()
        trackers = await asyncio.wait_for(
            asyncio.gather(first, together[0], together[2]), timeout=10
        )
        assert all(tracker.operation_id is not None for tracker in trackers)
        assert together[1].cancelled()
        assert a.relay.stats.persist_late == 0


async def test_waiters_are_released_in_turns_as_release_would_all_at_once() -> None:
    """The paced release ends where the plain one does: every waiter released, in
    the order they came, a cancelled one left cancelled; only no more than
    ``_RELEASE_PER_TURN`` go per loop iteration."""
    from graphcomms.fleet._relay import _RELEASE_PER_TURN, _let_go, _let_go_in_turns

    loop = asyncio.get_running_loop()
    for count in (0, 1, _RELEASE_PER_TURN, _RELEASE_PER_TURN + 1, 23):
        plain = [loop.create_future() for _ in range(count)]
        paced = [loop.create_future() for _ in range(count)]
        for waiters in (plain, paced):
            if count > 2:
                waiters[2].cancel()
        order: list[int] = []
        for i, waiter in enumerate(paced):
            if not waiter.cancelled():
                waiter.add_done_callback(lambda _f, i=i, order=order: order.append(i))
        _let_go(plain)
        _let_go_in_turns(paced)
        assert sum(w.done() and not w.cancelled() for w in paced) <= _RELEASE_PER_TURN
        turns = 0
        while not all(waiter.done() for waiter in paced):
            # At most one turn per iteration: what is done grows by that much at most.
            before = sum(waiter.done() for waiter in paced)
            await asyncio.sleep(0)
            turns += 1
            assert sum(waiter.done() for waiter in paced) - before <= _RELEASE_PER_TURN
        assert turns <= -(-count // _RELEASE_PER_TURN)
        assert [w.cancelled() for w in paced] == [w.cancelled() for w in plain]
        assert [w.done() for w in paced] == [w.done() for w in plain] == [True] * count
        await asyncio.sleep(0)  # the done callbacks
        assert order == [i for i, waiter in enumerate(paced) if not waiter.cancelled()]
