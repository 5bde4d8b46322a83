"""The emulator's HTTP control API (/_emulator/...), used as a bot in another language
would use it: plain HTTP and JSON, no graphcomms client, no GraphEmulator methods.

The first test runs ``python -m graphcomms emulator`` in a subprocess; the others drive
an in-process emulator over HTTP, for the error cases and the less travelled endpoints.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from graphcomms.testing import GraphEmulator

TOKEN = "control-s3cret"
SERVICE_HOSTED = {"@odata.type": "#microsoft.graph.serviceHostedMediaConfig"}
PROMPT = {
    "@odata.type": "#microsoft.graph.mediaPrompt",
    "mediaInfo": {"@odata.type": "#microsoft.graph.mediaInfo", "uri": "https://x/menu.wav"},
}


class Webhook:
    """A bot's notification endpoint: records every item, answers 202."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/callback", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/callback"

    async def close(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        self.items.extend((await request.json())["value"])
        return web.Response(status=202)

    def of(self, call_id: str) -> list[dict[str, Any]]:
        return [i for i in self.items if call_id in i["resourceUrl"]]

    async def until(self, condition: Callable[[], bool], timeout: float = 10.0) -> None:
        async def poll() -> None:
            while not condition():
                await asyncio.sleep(0.01)

        await asyncio.wait_for(poll(), timeout)


@pytest.fixture
async def webhook() -> AsyncIterator[Webhook]:
    hook = Webhook()
    await hook.start()
    yield hook
    await hook.close()


class Http:
    """JSON over HTTP, as any language's HTTP client does it."""

    def __init__(self, session: aiohttp.ClientSession, token: str | None) -> None:
        self.session = session
        self.headers = {} if token is None else {"Authorization": f"Bearer {token}"}

    async def __call__(
        self, method: str, url: str, body: Any = None, *, token: bool = True
    ) -> tuple[int, Any]:
        headers = self.headers if token else {}
        async with self.session.request(method, url, json=body, headers=headers) as response:
            text = await response.text()
            if text:
                assert response.content_type == "application/json", text
            return response.status, (await response.json()) if text else None


async def test_a_bot_in_another_language_drives_the_emulator_command(webhook: Webhook) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "graphcomms",
        "emulator",
        "--port",
        "0",
        "--bot-webhook-url",
        webhook.url,
        "--prompt-seconds",
        "0.5",
        "--keep-alive-window",
        "3",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "GRAPHCOMMS_EMULATOR_ACCESS_TOKEN": TOKEN},
    )
    assert process.stdout is not None
    printed: list[str] = []
    try:
        while not any("control API:" in line for line in printed):
            line = await asyncio.wait_for(process.stdout.readline(), 60)
            assert line, f"the emulator exited early: {printed}"
            printed.append(line.decode())
        control = next(line for line in printed if "control API:" in line).split()[2]
        async with aiohttp.ClientSession() as session:
            await _drive(Http(session, TOKEN), control, webhook)
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0
    assert TOKEN not in "".join(printed) + rest.decode()


async def _drive(http: Http, control: str, webhook: Webhook) -> None:
    # The control API is protected by the emulator's access token.
    status, body = await http("GET", control, token=False)
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationToken")
    status, about = await http("GET", control)
    assert status == 200
    graph = about["graphUrl"]
    assert about["botWebhookUrl"] == webhook.url
    assert about["keepAliveWindowSeconds"] == 3.0

    # An incoming call rings the bot's webhook; the bot answers with plain Graph calls.
    status, call = await http("POST", f"{control}/calls", {"caller": "+14255550111"})
    assert (status, call["state"], call["direction"]) == (201, "incoming", "incoming")
    call_id = call["id"]
    await webhook.until(lambda: bool(webhook.of(call_id)))
    [created] = webhook.of(call_id)
    assert created["changeType"] == "created"
    source = created["resourceData"]["source"]["identity"]["phone"]["id"]
    assert source == "+14255550111"
    calls = f"{graph}communications/calls/{call_id}"
    assert (await http("POST", f"{calls}/answer", {"mediaConfig": SERVICE_HOSTED}))[0] == 202
    assert await http("POST", f"{calls}/keepAlive") == (200, None)  # as a bot should
    assert (await http("POST", f"{calls}/subscribeToTone", {}))[0] == 200
    status, prompt = await http("POST", f"{calls}/playPrompt", {"prompts": [PROMPT]})
    assert (status, prompt["status"]) == (200, "running")

    # Keys pressed while the prompt plays reach the bot before the prompt ends.
    status, during = await http("POST", f"{control}/calls/{call_id}/pressKeys", {"keys": "12#"})
    assert (status, during["operations"][-1]["status"]) == (200, "running")
    await webhook.until(
        lambda: any("/operations/" in i["resourceUrl"] for i in webhook.of(call_id))
    )
    seen = [
        i["resourceData"]["toneInfo"]["tone"]
        if "toneInfo" in i.get("resourceData", {})
        else "prompt done"
        for i in webhook.of(call_id)
        if "toneInfo" in i.get("resourceData", {}) or "/operations/" in i["resourceUrl"]
    ]
    assert seen == ["tone1", "tone2", "pound", "prompt done"]

    # Faults on cue: the next keepAlive fails, the next `deleted` is lost.
    fail = {"status": 503, "pathContains": "/keepAlive", "times": 1}
    assert await http("POST", f"{control}/faults/failNext", fail) == (200, fail)
    assert (await http("POST", f"{calls}/keepAlive"))[0] == 503
    assert await http("POST", f"{calls}/keepAlive") == (200, None)
    drop = {"faults": ["drop"], "callId": call_id, "changeType": "deleted"}
    assert (await http("POST", f"{control}/faults/notifications", drop))[0] == 200

    # The caller hangs up; its `deleted` never reaches the bot, and the ledger says so.
    status, ended = await http("POST", f"{control}/calls/{call_id}/hangUp")
    assert (status, ended["state"], ended["resultInfo"]["subcode"]) == (200, "terminated", 4097)
    assert (await http("POST", f"{control}/drain", {"timeout": 10}))[0] == 200
    assert not [
        i
        for i in webhook.of(call_id)
        if i["changeType"] == "deleted" and i["resourceUrl"].endswith(call_id)
    ]
    status, deliveries = await http("GET", f"{control}/deliveries")
    [lost] = [d for d in deliveries["value"] if d["callId"] == call_id and "drop" in d["faults"]]
    assert (lost["changeType"], lost["status"]) == ("deleted", None)
    assert (await http("POST", f"{calls}/keepAlive"))[0] == 404
    status, again = await http("POST", f"{control}/calls/{call_id}/pressKeys", {"keys": "1"})
    assert (status, again["error"]["code"]) == (409, "callEnded")

    # The ledger of Graph requests, read incrementally.
    status, ledger = await http("GET", f"{control}/requests")
    asked = [(r["method"], r["path"].rsplit("/", 1)[-1]) for r in ledger["value"]]
    assert asked == [
        ("POST", "answer"),
        ("POST", "keepAlive"),
        ("POST", "subscribeToTone"),
        ("POST", "playPrompt"),
        ("POST", "keepAlive"),
        ("POST", "keepAlive"),
        ("POST", "keepAlive"),
    ]
    assert ledger["value"][3]["json"] == {"prompts": [PROMPT]}
    assert "authorization" not in {k.lower() for k in ledger["value"][0]["headers"]}
    status, tail = await http("GET", f"{control}/requests?since={ledger['next'] - 1}")
    assert [r["index"] for r in tail["value"]] == [ledger["next"] - 1]

    # A call nobody keeps alive ends after the window given on the command line.
    status, quiet = await http("POST", f"{control}/calls", {})
    await webhook.until(
        lambda: any(i["changeType"] == "deleted" for i in webhook.of(quiet["id"])), timeout=15
    )
    status, gone = await http("GET", f"{control}/calls/{quiet['id']}")
    assert (gone["resultInfo"]["code"], gone["resultInfo"]["subcode"]) == (408, 8537)


# -- in process, over HTTP ----------------------------------------------------------------


@pytest.fixture
async def emulator(webhook: Webhook) -> AsyncIterator[GraphEmulator]:
    async with GraphEmulator(bot_webhook_url=webhook.url, prompt_seconds=0.01) as emulator:
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[Http]:
    async with aiohttp.ClientSession() as session:
        yield Http(session, None)


async def test_without_an_access_token_control_needs_none(
    emulator: GraphEmulator, http: Http
) -> None:
    status, about = await http("GET", emulator.control_url)
    assert status == 200
    assert about["controlUrl"] == emulator.control_url
    assert emulator.control_url.endswith("/_emulator")
    assert about["keepAliveWindowSeconds"] == 2700.0


@pytest.mark.parametrize("given", [None, "wrong", TOKEN.upper()])
async def test_with_an_access_token_control_needs_exactly_it(
    webhook: Webhook, given: str | None
) -> None:
    async with (
        GraphEmulator(bot_webhook_url=webhook.url, access_token=TOKEN) as emulator,
        aiohttp.ClientSession() as session,
    ):
        status, body = await Http(session, given)("POST", f"{emulator.control_url}/calls", {})
        assert status == 401
        assert body["error"]["code"] == "InvalidAuthenticationToken"
        assert emulator.calls == {}  # nothing rang
        assert TOKEN not in str(body)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("POST", "/calls/nope/pressKeys", {"keys": "1"}, 404, "itemNotFound"),
        ("POST", "/calls/nope/hangUp", None, 404, "itemNotFound"),
        ("GET", "/calls/nope", None, 404, "itemNotFound"),
        ("GET", "/nothing-here", None, 404, "itemNotFound"),
        ("POST", "/calls", ["not", "an", "object"], 400, "badRequest"),
        ("POST", "/calls", {"caller": 42}, 400, "badRequest"),
        ("POST", "/faults/failNext", {"status": 200}, 400, "badRequest"),
        ("POST", "/faults/failNext", {"times": 0}, 400, "badRequest"),
        ("POST", "/faults/failNext", {"status": True}, 400, "badRequest"),
        ("POST", "/faults/notifications", {"faults": ["explode"]}, 400, "badRequest"),
        ("POST", "/faults/notifications", {"faults": []}, 400, "badRequest"),
        ("POST", "/faults/deliverEarly", {"times": -1}, 400, "badRequest"),
        ("PUT", "/faults", {"drop": 2.0}, 400, "badRequest"),
        ("PUT", "/faults", {"drop": "often"}, 400, "badRequest"),
        ("PUT", "/faults", {"explode": 0.5}, 400, "badRequest"),
        ("PUT", "/faults", {"delaySeconds": [1]}, 400, "badRequest"),
        ("PUT", "/faults", {"quirks": 1}, 400, "badRequest"),
        ("GET", "/requests?since=-1", None, 400, "badRequest"),
        ("POST", "/drain", {"timeout": 0}, 400, "badRequest"),
    ],
)
async def test_errors_come_in_graphs_error_shape(
    emulator: GraphEmulator,
    http: Http,
    method: str,
    path: str,
    body: Any,
    status: int,
    code: str,
) -> None:
    got, answer = await http(method, emulator.control_url + path, body)
    assert (got, answer["error"]["code"]) == (status, code)
    assert answer["error"]["message"]
    assert emulator.faults.drop == 0.0  # a refused PUT changed nothing


async def test_a_body_that_is_not_json_is_400(emulator: GraphEmulator, http: Http) -> None:
    async with http.session.post(f"{emulator.control_url}/calls", data=b"{nope") as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "badRequest"


async def test_keys_are_checked(emulator: GraphEmulator, http: Http) -> None:
    _, call = await http("POST", f"{emulator.control_url}/calls", {})
    status, body = await http("POST", f"{emulator.control_url}/calls/{call['id']}/pressKeys", {})
    assert (status, body["error"]["message"]) == (400, "keys is required.")
    status, body = await http(
        "POST", f"{emulator.control_url}/calls/{call['id']}/pressKeys", {"keys": "1x"}
    )
    assert status == 400
    assert "'x'" in body["error"]["message"]


async def test_keys_can_wait_for_a_prompt(emulator: GraphEmulator, http: Http) -> None:
    _, call = await http("POST", f"{emulator.control_url}/calls", {})
    press = f"{emulator.control_url}/calls/{call['id']}/pressKeys"
    status, body = await http("POST", press, {"keys": "12", "duringPrompt": True})
    assert (status, body["keysWaitingForPrompt"], body["playing"]) == (200, "12", None)
    status, body = await http("POST", press, {"keys": "3", "duringPrompt": "yes"})
    assert (status, body["error"]["message"]) == (400, "duringPrompt must be a boolean.")


async def test_ringing_needs_a_webhook(http: Http) -> None:
    async with GraphEmulator() as emulator:
        status, body = await http("POST", f"{emulator.control_url}/calls", {})
        assert status == 400
        assert "--bot-webhook-url" in body["error"]["message"]
        elsewhere = "http://127.0.0.1:9/callback"
        status, call = await http(
            "POST", f"{emulator.control_url}/calls", {"callbackUri": elsewhere}
        )
        assert (status, call["callbackUri"]) == (201, elsewhere)


async def test_calls_are_listed_with_their_operations(
    emulator: GraphEmulator, http: Http, webhook: Webhook
) -> None:
    _, call = await http("POST", f"{emulator.control_url}/calls", {})
    graph = f"{emulator.graph_url}communications/calls/{call['id']}"
    async with http.session.post(
        f"{graph}/answer",
        json={"mediaConfig": SERVICE_HOSTED},
        headers={"Authorization": "Bearer app"},
    ) as response:
        assert response.status == 202
    async with http.session.post(
        f"{graph}/subscribeToTone",
        json={"clientContext": "ctx-1"},
        headers={"Authorization": "Bearer app"},
    ) as response:
        assert response.status == 200
    status, listed = await http("GET", f"{emulator.control_url}/calls")
    [entry] = listed["value"]
    assert (status, entry["id"], entry["state"]) == (200, call["id"], "established")
    [op] = entry["operations"]
    assert (op["type"], op["status"], op["clientContext"]) == (
        "subscribeToToneOperation",
        "completed",
        "ctx-1",
    )
    assert entry["toneSubscribed"] is True
    # Either spelling of the id finds the call, as Graph's paths do.
    squashed = call["id"].replace("-", "").upper()
    assert (await http("GET", f"{emulator.control_url}/calls/{squashed}"))[1]["id"] == call["id"]


async def test_fault_probabilities_are_read_and_replaced(
    emulator: GraphEmulator, http: Http
) -> None:
    status, faults = await http("GET", f"{emulator.control_url}/faults")
    assert (status, faults["drop"], faults["delaySeconds"]) == (200, 0.0, [0.0, 0.05])
    status, faults = await http(
        "PUT",
        f"{emulator.control_url}/faults",
        {"duplicate": 0.5, "serverError": 1, "delaySeconds": [0.1, 0.2], "retryAfter": 3},
    )
    assert status == 200
    assert (faults["duplicate"], faults["serverError"], faults["retryAfter"]) == (0.5, 1, 3)
    assert emulator.faults.server_error == 1.0
    assert emulator.faults.delay_seconds == (0.1, 0.2)
    async with http.session.get(
        f"{emulator.graph_url}communications/calls/x", headers={"Authorization": "Bearer a"}
    ) as response:
        assert response.status in (500, 503)  # every request fails now
    assert (await http("PUT", f"{emulator.control_url}/faults", {}))[1]["serverError"] == 0.0


async def test_deliver_early_and_fail_transfer_are_cued(
    emulator: GraphEmulator, http: Http, webhook: Webhook
) -> None:
    control = emulator.control_url
    assert await http("POST", f"{control}/faults/deliverEarly", {"pathContains": "playPrompt"}) == (
        200,
        {"pathContains": "playPrompt"},
    )
    assert (await http("POST", f"{control}/faults/failTransfer", {"subcode": 7001}))[0] == 200
    _, call = await http("POST", f"{control}/calls", {})
    graph = f"{emulator.graph_url}communications/calls/{call['id']}"
    auth = {"Authorization": "Bearer app"}
    async with http.session.post(
        f"{graph}/answer", json={"mediaConfig": SERVICE_HOSTED}, headers=auth
    ):
        pass
    async with http.session.post(f"{graph}/playPrompt", json={"prompts": [PROMPT]}, headers=auth):
        pass
    # Delivered before the answer: already in the webhook when the POST returned.
    assert any("/operations/" in i["resourceUrl"] for i in webhook.of(call["id"]))
    target = {"endpointType": "default", "identity": {"user": {"id": "u2"}}}
    async with http.session.post(
        f"{graph}/transfer", json={"transferTarget": target}, headers=auth
    ) as response:
        assert response.status == 202
    assert (await http("POST", f"{control}/drain"))[0] == 200
    last = webhook.of(call["id"])[-1]["resourceData"]
    assert (last["state"], last["resultInfo"]["subCode"]) == ("established", 7001)


async def test_drain_that_does_not_finish_in_time_is_504(
    emulator: GraphEmulator, http: Http, webhook: Webhook
) -> None:
    emulator.prompt_seconds = 5.0
    _, call = await http("POST", f"{emulator.control_url}/calls", {})
    graph = f"{emulator.graph_url}communications/calls/{call['id']}"
    auth = {"Authorization": "Bearer app"}
    async with http.session.post(
        f"{graph}/answer", json={"mediaConfig": SERVICE_HOSTED}, headers=auth
    ):
        pass
    async with http.session.post(f"{graph}/playPrompt", json={"prompts": [PROMPT]}, headers=auth):
        pass
    status, body = await http("POST", f"{emulator.control_url}/drain", {"timeout": 0.2})
    assert (status, body["error"]["code"]) == (504, "timeout")
