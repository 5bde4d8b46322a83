"""One bot instance of the end-to-end fleet tests, run as its own process.

It serves its webhook on a loopback port, joins the fleet as ``--instance``, places
``--calls`` calls through the emulator and plays ``--ops`` prompts on each, one after
another, and writes one JSON line per event to ``--out``: ``ready`` (its URL), ``op``
(an operation resolved on this instance: its clientContext, status, ``recovered``),
``unconfirmed`` (a recovered operation Graph had not answered, and no notification
came: its clientContext), ``recovery``, ``hung_up``, ``done`` and, on SIGTERM,
``stats`` before it exits.
Recovered work (after a restart, or adopted) is awaited and recorded the same way;
recovered calls are hung up once their recovered operations ended.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import Any

import attrs
from aiohttp import web

from graphcomms import (
    CommsClient,
    IdentitySet,
    InvitationParticipantInfo,
    MediaPrompt,
    TrackingSettings,
)
from graphcomms.errors import OperationTimeoutError
from graphcomms.fleet import Recovery, Relay
from graphcomms.webhook import (
    NotificationReceiver,
    TokenValidationSettings,
    TokenValidator,
    make_app,
)

TARGET = InvitationParticipantInfo(identity=IdentitySet.for_phone("+14255550100"))
PROMPT = MediaPrompt.from_uri("https://example.test/prompt.wav")


class Log:
    def __init__(self, path: str, instance: str) -> None:
        self._file = open(path, "a", buffering=1)  # noqa: SIM115 - for the process's life
        self._instance = instance

    def write(self, event: str, **fields: Any) -> None:
        line = {"event": event, "instance": self._instance, "pid": os.getpid(), **fields}
        self._file.write(json.dumps(line) + "\n")


async def record(log: Log, tracker: Any, *, confirmed: bool = True) -> None:
    try:
        op = await tracker.wait()
        status = str(op.status)
    except OperationTimeoutError:
        if confirmed:
            raise
        # Its previous life died before Graph answered the POST, and no notification
        # came: Graph never got it (or the outcome died with that life).
        log.write("unconfirmed", ctx=tracker.client_context)
        return
    except Exception as exc:
        status = f"error:{type(exc).__name__}"
    log.write(
        "op",
        ctx=tracker.client_context,
        op_id=tracker.operation_id,
        status=status,
        recovered=tracker.recovered,
    )


async def run_call(client: CommsClient, relay: Relay, log: Log, index: int, ops: int) -> None:
    call = await client.create_call(targets=[TARGET])
    relay.tag(call, f"call-{index}")
    await call.wait_for_state("established", timeout=30)
    for step in range(ops):
        with relay.tagged(f"call-{index}/step-{step}"):
            tracker = await call.play_prompt([PROMPT])
        await record(log, tracker)
    await call.hang_up()
    await call.wait_for_state("terminated", timeout=30)
    log.write("hung_up", call=call.id)


async def resume(log: Log, recovery: Recovery) -> None:
    log.write(
        "recovery",
        adopted_from=recovery.adopted_from,
        operations=len(recovery.operations),
        calls=len(recovery.calls),
    )
    await asyncio.gather(
        *(record(log, item.tracker, confirmed=item.confirmed) for item in recovery.operations)
    )
    for item in recovery.calls:
        if not item.call.ended:
            try:
                await item.call.hang_up()
                await item.call.wait_for_state("terminated", timeout=30)
            except Exception as exc:
                log.write("hang_up_failed", call=item.call.id, error=type(exc).__name__)
                continue
        log.write("hung_up", call=item.call.id, recovered=True)


async def main(args: argparse.Namespace) -> None:
    log = Log(args.out, args.instance)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    tasks: set[asyncio.Task[None]] = set()

    def on_recovered(recovery: Recovery) -> None:
        task = loop.create_task(resume(log, recovery))
        tasks.add(task)

    relay = Relay(
        args.redis,
        app="e2e",
        instance=args.instance,
        lease=args.lease,
        adopt_after=args.adopt_after,
        unconfirmed_timeout=3.0,
        timeout=1.0,
        block=0.5,
        on_recovered=on_recovered,
    )
    async with CommsClient(
        "emulator-app-token",
        base_url=args.graph,
        callback_uri=args.callback,
        fleet=relay,
        # Notifications refused (503) while Redis is away are read back soon.
        tracking=TrackingSettings(reconcile_after=1.0, reconcile_interval=0.5),
    ) as client:
        validator = TokenValidator(
            TokenValidationSettings(
                app_id=args.app_id,
                openid_configuration_url=args.openid,
                issuers=frozenset({args.issuer}),
            )
        )
        receiver = NotificationReceiver(client, validator)
        runner = web.AppRunner(make_app(receiver, path="/callback"), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        log.write("ready", url=f"http://127.0.0.1:{runner.addresses[0][1]}")
        while args.go and not os.path.exists(args.go):  # noqa: ASYNC240 - all start together
            await asyncio.sleep(0.02)
        if args.calls:
            results = await asyncio.gather(
                *(run_call(client, relay, log, i, args.ops) for i in range(args.calls)),
                return_exceptions=True,
            )
            errors = [repr(r) for r in results if isinstance(r, BaseException)]
            log.write("done", errors=errors)
        await stop.wait()
        await asyncio.gather(*tasks, return_exceptions=True)
        log.write(
            "stats",
            client=attrs.asdict(client.stats),
            relay=attrs.asdict(relay.stats),
            receiver=attrs.asdict(receiver.stats),
        )
        await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("redis", "graph", "openid", "issuer", "app-id", "callback", "instance", "out"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--calls", type=int, default=0)
    parser.add_argument("--go", default="")
    parser.add_argument("--ops", type=int, default=4)
    parser.add_argument("--lease", type=float, default=1.0)
    parser.add_argument("--adopt-after", type=float, default=2.0)
    asyncio.run(main(parser.parse_args(sys.argv[1:])))
