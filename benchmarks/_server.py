"""The loopback servers, each in a process of its own (``python -m benchmarks._server``).

``{"kind": "action"}``: Graph's playPrompt endpoint, answering every POST as §5.5 does
(200, the running operation with a fresh id, ``Location``). Every client variant of
comparison 2 talks to this same handler.

``{"kind": "webhook", ...}``: a bot's callback endpoint two ways on one server --
``/graphcomms`` is graphcomms' ``NotificationReceiver`` (token validation on) feeding a
``CommsClient`` whose pending trackers the notifications resolve, ``/bare`` is the
least an aiohttp handler can do -- plus, on a second port, the OpenID configuration and
JWKS the validator loads its key from. The client is in steady state (finished-work
memory full) before it listens; ``{"cmd": "prepare", "start", "count"}`` makes the
next round's pending trackers (``await call.play_prompt(...)`` against the in-process
fake Graph, with the ids the load process will notify) and a task awaiting each.

Both answer ``{"port": N}`` once listening, ``{"cmd": "stats"}`` with counters, and
stop at EOF on stdin or at their deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from benchmarks._payloads import encode, running_play_prompt, sequenced_ids
from benchmarks._procs import Inbox, reply

__all__ = ["ISSUER", "KEY_ID"]

ISSUER = "https://api.botframework.com"
KEY_ID = "graphcomms-benchmark-key"


async def _listen(app: web.Application) -> tuple[web.AppRunner, int]:
    # No access log: writing a line per request would be most of what is measured.
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, int(runner.addresses[0][1])


async def _commands(inbox: Inbox, deadline: float) -> AsyncIterator[dict[str, Any]]:
    while (message := await inbox.get(deadline)) is not None:
        yield message


def _action_app() -> web.Application:
    ids = itertools.count(1)

    async def play_prompt(request: web.Request) -> web.Response:
        context = json.loads(await request.read()).get("clientContext")
        operation_id = str(uuid.UUID(int=next(ids)))
        version, call_id = request.match_info["version"], request.match_info["call_id"]
        return web.Response(
            body=encode(running_play_prompt(operation_id, context)),
            content_type="application/json",
            headers={
                "Location": f"https://graph.microsoft.com/{version}/communications/calls/"
                f"{call_id}/operations/{operation_id}"
            },
        )

    app = web.Application()
    app.router.add_post("/{version}/communications/calls/{call_id}/playPrompt", play_prompt)
    return app


async def _serve_action(commands: AsyncIterator[dict[str, Any]]) -> None:
    runner, port = await _listen(_action_app())
    try:
        reply({"port": port})
        async for message in commands:
            reply({"ok": message.get("cmd")})
    finally:
        await runner.cleanup()


def _key_app(jwk: dict[str, Any]) -> web.Application:
    async def configuration(request: web.Request) -> web.Response:
        jwks_uri = str(request.url.with_path("/keys"))
        return web.json_response({"issuer": ISSUER, "jwks_uri": jwks_uri})

    async def keys(_: web.Request) -> web.Response:
        return web.json_response({"keys": [jwk]})

    app = web.Application()
    app.router.add_get("/.well-known/OpenIdConfiguration", configuration)
    app.router.add_get("/keys", keys)
    return app


async def _bare(request: web.Request) -> web.Response:
    """The floor: read the body, decode it, answer 202."""
    json.loads(await request.read())
    return web.Response(status=202)


async def _serve_webhook(config: dict[str, Any], commands: AsyncIterator[dict[str, Any]]) -> None:
    from benchmarks._fakegraph import FakeGraphSession
    from benchmarks._tracking import CallPool, await_each, bot_client, fill_finished, play_prompts
    from graphcomms.webhook import (
        NotificationReceiver,
        TokenValidationSettings,
        TokenValidator,
        make_app,
    )

    key_runner, key_port = await _listen(_key_app(config["jwk"]))
    # The operation ids the load process will notify, handed out by the fake Graph's
    # answers: the pending trackers are made through the public API, as a bot makes them.
    operation_ids: dict[str, str] = {}
    session = FakeGraphSession(
        lambda context: operation_ids.pop(context, None) or str(uuid.uuid4())
    )
    client, limit = bot_client(session, finished_limit=config.get("finished_limit"))
    # Steady state: finished-work memory full before the first request (see _tracking).
    await fill_finished(client, CallPool(), limit)
    call_id = str(uuid.UUID(hex=config["call_id"]))
    waiting: list[asyncio.Task[Any]] = []
    validator = TokenValidator(
        TokenValidationSettings(
            app_id=config["app_id"],
            openid_configuration_url=f"http://127.0.0.1:{key_port}/.well-known/OpenIdConfiguration",
        )
    )
    app = make_app(NotificationReceiver(client, validator), path="/graphcomms")
    app.router.add_post("/bare", _bare)
    runner, port = await _listen(app)
    try:
        if not await validator.refresh_keys():
            raise RuntimeError("the validator could not load the benchmark's key")
        reply({"port": port, "finished_limit": limit})
        async for message in commands:
            if message.get("cmd") == "prepare":
                # The next round's pending trackers, each awaited by a task, untimed.
                contexts = []
                for index in range(message["start"], message["start"] + message["count"]):
                    operation_id, context = sequenced_ids(index)
                    operation_ids[context] = str(operation_id)
                    contexts.append(context)
                calls = [call_id] * len(contexts)
                trackers = await play_prompts(client, calls, contexts)
                waiting.extend(await await_each(trackers))
                reply({"prepared": len(trackers), "pending": client.stats.pending})
                continue
            stats = client.stats
            woken = [t for t in waiting if t.done()]
            reply(
                {
                    "resolved": stats.resolved,
                    "pending": stats.pending,
                    "unmatched": stats.unmatched,
                    "early_buffered": stats.early_buffered,
                    "bad_items": stats.bad_items,
                    "awaiting": len(waiting) - len(woken),
                    "woken": len(woken),
                    "failed_waits": sum(1 for t in woken if t.exception() is not None),
                    "token_verifications": validator.stats.verifications,
                    "token_cache_hits": validator.stats.cache_hits,
                    "cmd": message.get("cmd"),
                }
            )
    finally:
        await runner.cleanup()  # closes the receiver and its validator
        await key_runner.cleanup()
        await client.aclose()
        await asyncio.gather(*waiting, return_exceptions=True)


async def main() -> None:
    inbox = await Inbox.open()
    try:
        config = await inbox.get(time.monotonic() + 60)
        if config is None:
            return
        commands = _commands(inbox, time.monotonic() + float(config.get("deadline_s", 900)))
        if config["kind"] == "action":
            await _serve_action(commands)
        elif config["kind"] == "webhook":
            await _serve_webhook(config, commands)
        else:
            raise ValueError(f"unknown server kind {config['kind']!r}")
    except Exception as exc:
        reply({"error": f"{type(exc).__name__}: {exc}"})
        raise
    finally:
        inbox.close()


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    asyncio.run(main())
