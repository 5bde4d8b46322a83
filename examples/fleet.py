"""Several instances behind one callback URL: kill one, watch its work come back.

Starts a throwaway redis-server, the Graph emulator, a round-robin proxy (the load
balancer) and three bot instances, each its own process running this file with
``--instance``. Each instance places two calls and plays three prompts on each; the
proxy hands every notification to whichever instance is next, and the fleet relay
gets it to the one that waits. Instance ``b`` is killed (SIGKILL) mid-run and started
again under the same name: it gets its pending operations and calls back, marked
recovered, with the tags it stored, and finishes them.

Needs the ``redis`` extra and a ``redis-server`` on PATH (``apt-get install
redis-server``); without one it says so and stops.  python examples/fleet.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import sys
from typing import Any

from aiohttp import web

from graphcomms import (
    CommsClient,
    IdentitySet,
    InvitationParticipantInfo,
    MediaPrompt,
    OperationTracker,
    TrackingSettings,
)
from graphcomms.errors import GraphCommsError
from graphcomms.fleet import Recovery, Relay
from graphcomms.testing import GraphEmulator, RedisServer, RoundRobinProxy
from graphcomms.webhook import (
    NotificationReceiver,
    TokenValidationSettings,
    TokenValidator,
    make_app,
)

PROMPT = MediaPrompt.from_uri("https://media.example.com/menu.wav")
CALLER = InvitationParticipantInfo(identity=IdentitySet.for_phone("+14255550100"))


# -- one instance (a process of its own) ------------------------------------------------


def say(**line: Any) -> None:
    print(json.dumps(line), flush=True)


async def outcome(tracker: OperationTracker[Any], tag: str | None) -> None:
    try:
        final = await tracker.wait()
    except GraphCommsError as exc:  # the call ended; or a recovered operation whose
        # previous process died before Graph answered its POST (confirmed is False),
        # and no notification came: Graph may never have had it
        say(event="no outcome", tag=tag, error=type(exc).__name__)
        return
    say(event="resolved", tag=tag, status=str(final.status), recovered=tracker.recovered)


async def instance(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    resumed: list[asyncio.Task[None]] = []

    async def finish(recovery: Recovery) -> None:
        say(event="recovered", operations=len(recovery.operations), calls=len(recovery.calls))
        await asyncio.gather(*(outcome(op.tracker, op.tag) for op in recovery.operations))
        for item in recovery.calls:  # the bot's choice: hang up what it cannot resume
            if not item.call.ended:  # it may have ended while this process was down
                await item.call.hang_up()

    def on_recovered(recovery: Recovery) -> None:
        resumed.append(loop.create_task(finish(recovery)))

    relay = Relay(
        args.redis, app="example", instance=args.instance, lease=1.0, on_recovered=on_recovered
    )
    async with CommsClient(
        "emulator-token",
        base_url=args.graph,
        callback_uri=args.callback,
        fleet=relay,
        tracking=TrackingSettings(reconcile_after=1.0, reconcile_interval=0.5),
    ) as client:
        validator = TokenValidator(
            TokenValidationSettings(
                app_id=args.app_id,
                openid_configuration_url=args.openid,
                issuers=frozenset({args.issuer}),
            )
        )
        runner = web.AppRunner(make_app(NotificationReceiver(client, validator)))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        say(event="ready", url=f"http://127.0.0.1:{runner.addresses[0][1]}")

        async def one_call(number: int) -> None:
            call = await client.create_call(targets=[CALLER])
            relay.tag(call, f"call {number}")
            await call.wait_for_state("established", timeout=30)
            for step in range(3):
                tag = f"{args.instance}: call {number}, prompt {step}"
                with relay.tagged(tag):  # stored with the operation, before its POST
                    tracker = await call.play_prompt([PROMPT])
                await outcome(tracker, tag)
            await call.hang_up()

        if not args.recovering:
            await loop.run_in_executor(None, sys.stdin.readline)  # "go": all start together
            await asyncio.gather(one_call(1), one_call(2))
            say(event="finished")
        await stop.wait()
        for task in resumed:
            task.cancel()
        await asyncio.gather(*resumed, return_exceptions=True)
        say(event="stats", forwarded=relay.stats.forwarded_items)
        await runner.cleanup()


# -- the fleet: Redis, the emulator, a load balancer, three instances -------------------


class Fleet:
    def __init__(self, redis: RedisServer, emulator: GraphEmulator, proxy: RoundRobinProxy):
        self.redis, self.emulator, self.proxy = redis, emulator, proxy
        self.processes: dict[str, asyncio.subprocess.Process] = {}
        self.lines: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.readers: list[asyncio.Task[None]] = []
        self.counts: dict[str, int] = {}

    async def start(self, name: str, *, recovering: bool = False) -> None:
        emulator = self.emulator
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--instance", name,
            "--redis", self.redis.url, "--graph", emulator.graph_url,
            "--callback", self.proxy.url + "/callback", "--app-id", emulator.app_id,
            "--openid", emulator.openid_configuration_url, "--issuer", emulator.issuer,
            *(["--recovering"] if recovering else []),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        self.processes[name] = process
        assert process.stdout is not None
        while (line := json.loads(await process.stdout.readline()))["event"] != "ready":
            await self.lines.put({"instance": name, **line})  # a recovery comes first
        self.proxy.backends.append(line["url"])
        self.proxy.answered.setdefault(line["url"], 0)
        self.readers.append(asyncio.create_task(self.read(name, process.stdout)))

    async def read(self, name: str, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            await self.lines.put({"instance": name, **json.loads(line)})

    async def next(self) -> dict[str, Any]:
        line = await asyncio.wait_for(self.lines.get(), 60)
        self.counts[line["event"]] = self.counts.get(line["event"], 0) + 1
        show(line)
        return line

    async def until(self, event: str, count: int = 1) -> None:
        while self.counts.get(event, 0) < count:
            await self.next()

    async def stop(self) -> None:
        for process in self.processes.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            await process.wait()
        await asyncio.gather(*self.readers)
        while not self.lines.empty():
            show(self.lines.get_nowait())


def show(line: dict[str, Any]) -> None:
    if line["event"] == "resolved":
        again = " (recovered)" if line["recovered"] else ""
        print(f"  [{line['instance']}] {line['tag']}: {line['status']}{again}")
    elif line["event"] == "no outcome":
        print(f"  [{line['instance']}] {line['tag']}: no outcome ({line['error']})")
    elif line["event"] == "recovered":
        print(
            f"  [{line['instance']}] recovered {line['operations']} pending operations "
            f"and {line['calls']} calls"
        )


async def main() -> None:
    if shutil.which("redis-server") is None:
        print("redis-server is not installed (apt-get install redis-server): skipped")
        print("OK")
        return
    async with (
        RedisServer() as redis,
        GraphEmulator(prompt_seconds=0.3, readable_operations="all") as emulator,
        RoundRobinProxy([]) as proxy,
    ):
        fleet = Fleet(redis, emulator, proxy)
        try:
            await demonstrate(fleet, emulator)
        finally:
            for process in fleet.processes.values():
                if process.returncode is None:
                    process.kill()
                    await process.wait()
    print("OK")


async def demonstrate(fleet: Fleet, emulator: GraphEmulator) -> None:
    for name in ("a", "b", "c"):
        await fleet.start(name)
    for process in fleet.processes.values():
        assert process.stdin is not None
        process.stdin.write(b"go\n")
    print(f"three instances behind {fleet.proxy.url}/callback, one Redis")
    # Wait until b has work done and work pending, then kill it.
    while True:
        line = await fleet.next()
        if line["event"] == "resolved" and line["instance"] == "b":
            break
    fleet.processes["b"].send_signal(signal.SIGKILL)
    await fleet.processes["b"].wait()
    print("  -- b killed (SIGKILL); its notifications now land on a and c")
    await asyncio.sleep(1.0)
    await fleet.start("b", recovering=True)
    print("  -- b started again under the same name")
    await fleet.until("recovered")
    await fleet.until("finished", 2)
    await emulator.drain()
    await asyncio.sleep(1.0)  # the recovered operations' last notifications
    await fleet.stop()
    pending = sum(
        1
        for call in emulator.calls.values()
        for op in call.operations.values()
        if op.status not in ("completed", "failed")
    )
    print(f"operations still running at Graph: {pending}")
    assert pending == 0


if __name__ == "__main__":
    if "--instance" in sys.argv:
        parser = argparse.ArgumentParser()
        for option in ("instance", "redis", "graph", "callback", "app-id", "openid", "issuer"):
            parser.add_argument(f"--{option}", required=True)
        parser.add_argument("--recovering", action="store_true")
        asyncio.run(instance(parser.parse_args()))
    else:
        asyncio.run(main())
