"""The Graph emulator, driven with raw HTTP like Graph's own clients would be.

No graphcomms client here on purpose: the emulator is an independent check of the
client, so its tests speak JSON to it directly, and a tiny aiohttp "bot" receives its
notifications and verifies their JWTs against the emulator's JWKS with pyjwt.
"""

from __future__ import annotations

import ast
import asyncio
import base64
import hashlib
import io
import json
import logging
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
import yarl
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from graphcomms.testing import _emulator as emulator_module
from graphcomms.testing._emulator import (
    DEFAULT_APP_ID,
    DEFAULT_TENANT_ID,
    Faults,
    GraphEmulator,
    run_emulator,
)
from graphcomms.webhook import TokenRejectedError, TokenValidationSettings, TokenValidator

PROMPT = {
    "@odata.type": "#microsoft.graph.mediaPrompt",
    "mediaInfo": {"@odata.type": "#microsoft.graph.mediaInfo", "uri": "https://x/hello.wav"},
}
SERVICE_HOSTED = {"@odata.type": "#microsoft.graph.serviceHostedMediaConfig"}


class Bot:
    """A webhook that records every notification and checks its bearer token."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.rejected: list[str] = []
        self.status = 202
        self.jwks_url: str | None = None
        self.url = ""
        self._jwks: jwt.PyJWKSet | None = None
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/callback", self._handle)
        app.router.add_post("/other", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/callback"
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        assert self._session is not None
        assert self._runner is not None
        await self._session.close()
        await self._runner.cleanup()

    async def _key(self, kid: str) -> Any:
        assert self._session is not None
        assert self.jwks_url is not None
        if self._jwks is None or kid not in {k.key_id for k in self._jwks.keys}:
            async with self._session.get(self.jwks_url) as response:
                self._jwks = jwt.PyJWKSet.from_dict(await response.json())
        return self._jwks[kid].key

    async def _handle(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        try:
            kid = jwt.get_unverified_header(token)["kid"]
            jwt.decode(
                token,
                await self._key(kid),
                algorithms=["RS256"],
                audience=DEFAULT_APP_ID,
                issuer="https://api.botframework.com",
                options={"require": ["exp", "nbf", "iat", "iss", "aud", "tid"]},
            )
        except (jwt.PyJWTError, KeyError) as exc:
            self.rejected.append(repr(exc))
            return web.Response(status=403)
        self.received.append((dict(request.headers), await request.json()))
        return web.Response(status=self.status)

    def items(self, resource: str = "") -> list[dict[str, Any]]:
        """Notification items in arrival order whose resourceUrl contains ``resource``."""
        return [
            item
            for _, body in self.received
            for item in body["value"]
            if resource in str(item.get("resourceUrl"))
        ]


@pytest.fixture
async def bot() -> AsyncIterator[Bot]:
    bot = Bot()
    await bot.start()
    yield bot
    await bot.close()
    assert bot.rejected == []


@pytest.fixture
async def emu(bot: Bot) -> AsyncIterator[GraphEmulator]:
    async with GraphEmulator(bot_webhook_url=bot.url, prompt_seconds=0.02) as emulator:
        bot.jwks_url = emulator.jwks_url
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer app-token"}) as session:
        yield session


class Graph:
    """Shorthands for raw requests against one emulator."""

    def __init__(self, http: aiohttp.ClientSession, emu: GraphEmulator, bot: Bot) -> None:
        self.http, self.emu, self.bot = http, emu, bot

    async def request(
        self, method: str, path: str, body: Any = None, *, base: str | None = None, **kw: Any
    ) -> tuple[int, Any, Any]:
        url = (base or self.emu.graph_url) + path
        async with self.http.request(method, url, json=body, **kw) as response:
            text = await response.text()
            data = await response.json() if text else None
            return response.status, data, response.headers

    async def create_call(self, **extra: Any) -> str:
        status, body, _ = await self.request(
            "POST",
            "communications/calls",
            {
                "@odata.type": "#microsoft.graph.call",
                "callbackUri": self.bot.url,
                "targets": [{"identity": {"user": {"id": "user-1", "displayName": "Ann"}}}],
                "requestedModalities": ["audio"],
                "mediaConfig": SERVICE_HOSTED,
                **extra,
            },
        )
        assert status == 201, body
        return str(body["id"])

    async def action(self, call_id: str, action: str, body: Any = None, **kw: Any) -> Any:
        return await self.request("POST", f"communications/calls/{call_id}/{action}", body, **kw)


@pytest.fixture
def graph(http: aiohttp.ClientSession, emu: GraphEmulator, bot: Bot) -> Graph:
    return Graph(http, emu, bot)


def states(bot: Bot, call_id: str) -> list[tuple[str, str | None]]:
    return [
        (item["changeType"], item.get("resourceData", {}).get("state"))
        for item in bot.items(f"/communications/calls/{call_id}")
        if item["resourceUrl"].endswith(call_id)
    ]


# -- calls -------------------------------------------------------------------------------


async def test_create_call_answers_201_then_notifies_establishing_and_established(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    status, body, headers = await graph.request(
        "POST",
        "communications/calls",
        {"callbackUri": bot.url, "targets": [{"identity": {"user": {"id": "u"}}}]},
        headers={"client-request-id": "crid-1"},
    )
    assert status == 201
    assert body["state"] == "establishing"
    assert {"id", "myParticipantId", "callChainId"} <= body.keys()
    assert headers["Location"] == f"{emu.graph_url}communications/calls/{body['id']}"
    assert headers["client-request-id"] == "crid-1"
    assert headers["request-id"]
    await emu.drain()
    assert states(bot, body["id"]) == [("updated", "establishing"), ("updated", "established")]
    sent_headers = bot.received[0][0]
    assert sent_headers["User-Agent"] == "Microsoft-Skype/3.0,(Calling/1.0)"
    assert sent_headers["X-Microsoft-Skype-Chain-ID"] == body["callChainId"]
    assert sent_headers["Scenario-Id"] == body["callChainId"]
    assert sent_headers["X-Microsoft-Skype-Message-ID"]
    assert bot.received[0][1]["@odata.type"] == "#microsoft.graph.commsNotifications"
    call = emu.calls[body["id"]]
    assert (call.state, call.notifications_delivered) == ("established", 2)
    status, got, _ = await graph.request("GET", f"communications/calls/{body['id']}")
    assert (status, got["state"]) == (200, "established")
    status, roster, _ = await graph.request(
        "GET", f"communications/calls/{body['id']}/participants"
    )
    assert status == 200
    assert len(roster["value"]) == 2


async def test_hang_up_sends_terminating_then_terminated(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    call_id = await graph.create_call()
    status, body, _ = await graph.request("DELETE", f"communications/calls/{call_id}")
    assert (status, body) == (204, None)
    await emu.drain()
    assert states(bot, call_id)[-2:] == [("updated", "terminating"), ("deleted", "terminated")]
    final = bot.items(call_id)[-1]["resourceData"]
    assert (final["resultInfo"]["code"], final["resultInfo"]["subcode"]) == (200, 7000)


async def test_incoming_call_answer_goes_to_the_new_callback(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    call_id = await emu.simulate_incoming_call(caller="+14255550123")
    await emu.drain()
    [created] = bot.items(call_id)
    assert created["changeType"] == "created"
    assert created["resourceData"]["state"] == "incoming"
    assert created["resourceData"]["source"]["identity"]["phone"]["id"] == "+14255550123"
    other = bot.url.replace("/callback", "/other")
    status, _, _ = await graph.action(
        call_id, "answer", {"callbackUri": other, "mediaConfig": SERVICE_HOSTED}
    )
    assert status == 202
    await emu.drain()
    assert emu.deliveries[-1].url == other
    assert states(bot, call_id)[1:] == [("updated", "establishing"), ("updated", "established")]


async def test_reject_ends_the_call_with_a_bare_deleted(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    call_id = await emu.simulate_incoming_call(caller="user-guid-1")
    status, _, _ = await graph.action(call_id, "reject", {"reason": "busy"})
    assert status == 202
    await emu.drain()
    last = bot.items(call_id)[-1]
    assert last["changeType"] == "deleted"
    assert set(last["resourceData"]) == {"@odata.type", "@odata.id"}
    assert (await graph.action(call_id, "answer", {"mediaConfig": SERVICE_HOSTED}))[0] == 404


async def test_transfer_succeeds_then_fails_on_cue(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    target = {"endpointType": "default", "identity": {"user": {"id": "u2"}}}
    emu.fail_next_transfer()
    failing = await graph.create_call()
    assert (await graph.action(failing, "transfer", {"transferTarget": target}))[0] == 202
    succeeding = await graph.create_call()
    assert (await graph.action(succeeding, "transfer", {"transferTarget": target}))[0] == 202
    await emu.drain()
    assert states(bot, failing)[2:] == [("updated", "transferring"), ("updated", "established")]
    assert bot.items(failing)[-1]["resourceData"]["resultInfo"]["subCode"] == 7000
    assert states(bot, succeeding)[2:] == [
        ("updated", "transferring"),
        ("updated", "transferAccepted"),
        ("deleted", "terminated"),
    ]
    info = bot.items(succeeding)[-1]["resourceData"]["resultInfo"]
    assert (info["code"], info["subcode"]) == (0, 7015)


# -- operations ------------------------------------------------------------------------


async def test_play_prompt_runs_then_completes_with_its_client_context(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    call_id = await graph.create_call()
    status, op, headers = await graph.action(
        call_id, "playPrompt", {"clientContext": "ctx-1", "prompts": [PROMPT, PROMPT]}
    )
    assert status == 200
    assert (op["status"], op["clientContext"]) == ("running", "ctx-1")
    assert op["@odata.type"] == "#microsoft.graph.playPromptOperation"
    assert headers["Location"] == (
        f"{emu.graph_url}communications/calls/{call_id}/operations/{op['id']}"
    )
    await emu.drain()
    [done] = bot.items(f"/operations/{op['id']}")
    assert done["changeType"] == "deleted"
    data = done["resourceData"]
    assert (data["status"], data["clientContext"]) == ("completed", "ctx-1")
    assert data["resultInfo"]["code"] == 200
    # Graph documents reading back addLargeGalleryView only (reference §7).
    status, _, _ = await graph.request(
        "GET", f"communications/calls/{call_id}/operations/{op['id']}"
    )
    assert status == 404
    assert (await graph.request("GET", f"communications/calls/{call_id}/operations/nope"))[0] == 404


# -- reading operations back (reference §7) ------------------------------------------------


def operation_url(call_id: str, op_id: str) -> str:
    return f"communications/calls/{call_id}/operations/{op_id}"


async def test_by_default_only_a_running_gallery_view_is_read_back(
    graph: Graph, emu: GraphEmulator
) -> None:
    assert emu.readable_operations == "documented"
    call_id = await graph.create_call()
    emu.prompt_seconds = 30
    _, gallery, _ = await graph.action(call_id, "addLargeGalleryView", {"clientContext": "g"})
    _, prompt, _ = await graph.action(call_id, "playPrompt", {"prompts": [PROMPT]})
    _, dtmf, _ = await graph.action(call_id, "sendDtmfTones", {"tones": ["tone1"]})
    _, tone, _ = await graph.action(call_id, "subscribeToTone", {})  # completed at once
    status, read, _ = await graph.request("GET", operation_url(call_id, gallery["id"]))
    assert (status, read["status"], read["clientContext"]) == (200, "running", "g")
    assert read["@odata.type"] == "#microsoft.graph.addLargeGalleryViewOperation"
    # Graph's other spelling of the same id (§5.8) reads the same operation.
    status, _, _ = await graph.request(
        "GET", operation_url(call_id, gallery["id"].replace("-", "").upper())
    )
    assert status == 200
    for other in (prompt, dtmf, tone):
        status, body, headers = await graph.request("GET", operation_url(call_id, other["id"]))
        assert status == 404, other["@odata.type"]
        assert body["error"]["code"] == "itemNotFound"
        inner = body["error"]["innerError"]
        assert inner["request-id"] == headers["request-id"]
        assert inner["client-request-id"] == inner["request-id"]


async def test_a_gallery_view_is_not_read_back_once_its_result_reached_the_bot(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    call_id = await graph.create_call()
    _, gallery, _ = await graph.action(call_id, "addLargeGalleryView", {})
    await emu.drain()
    [done] = bot.items(f"/operations/{gallery['id']}")
    assert (done["changeType"], done["resourceData"]["status"]) == ("deleted", "completed")
    status, body, _ = await graph.request("GET", operation_url(call_id, gallery["id"]))
    assert (status, body["error"]["code"]) == (404, "itemNotFound")


@pytest.mark.parametrize("lost", ["drop", "refused"])
async def test_a_gallery_view_whose_result_never_reached_the_bot_reads_back_completed(
    graph: Graph, emu: GraphEmulator, bot: Bot, lost: str
) -> None:
    call_id = await graph.create_call()
    await emu.drain()
    if lost == "drop":
        emu.drop_next_notification(resource_contains="/operations/")
    else:
        bot.status = 500
    _, gallery, _ = await graph.action(call_id, "addLargeGalleryView", {})
    await emu.drain()
    [delivery] = [d for d in emu.deliveries if d.operation_id == gallery["id"]]
    assert not delivery.ok
    status, read, _ = await graph.request("GET", operation_url(call_id, gallery["id"]))
    assert (status, read["status"]) == (200, "completed")
    assert read["resultInfo"]["code"] == 200


async def test_every_operation_reads_back_when_asked_for(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    call_id = await graph.create_call()
    emu.readable_operations = "all"
    _, prompt, _ = await graph.action(call_id, "playPrompt", {"prompts": [PROMPT]})
    _, gallery, _ = await graph.action(call_id, "addLargeGalleryView", {})
    _, tone, _ = await graph.action(call_id, "subscribeToTone", {})
    await emu.drain()
    assert len(bot.items("/operations/")) == 2
    for op in (prompt, gallery, tone):
        status, snapshot, _ = await graph.request("GET", operation_url(call_id, op["id"]))
        assert (status, snapshot["status"]) == (200, "completed")
    assert (await graph.request("GET", operation_url(call_id, "nope")))[0] == 404
    # An ended call's operations are gone whatever the setting: the call is.
    await graph.request("DELETE", f"communications/calls/{call_id}")
    assert (await graph.request("GET", operation_url(call_id, prompt["id"])))[0] == 404


async def test_readable_operations_is_a_constructor_argument_too(bot: Bot) -> None:
    async with (
        GraphEmulator(bot_webhook_url=bot.url, readable_operations="all") as emu,
        aiohttp.ClientSession(headers={"Authorization": "Bearer t"}) as http,
    ):
        bot.jwks_url = emu.jwks_url
        graph = Graph(http, emu, bot)
        call_id = await graph.create_call()
        _, tone, _ = await graph.action(call_id, "subscribeToTone", {})
        assert (await graph.request("GET", operation_url(call_id, tone["id"])))[0] == 200


def test_readable_operations_takes_only_its_two_values() -> None:
    with pytest.raises(ValueError, match="readable_operations"):
        GraphEmulator(readable_operations="some")  # type: ignore[arg-type]
    emulator = GraphEmulator()
    with pytest.raises(ValueError, match="readable_operations"):
        emulator.readable_operations = "every"  # type: ignore[assignment]
    assert emulator.readable_operations == "documented"


async def test_media_operations_play_in_order(graph: Graph, emu: GraphEmulator, bot: Bot) -> None:
    call_id = await graph.create_call()
    ids = []
    for n in range(3):
        _, op, _ = await graph.action(
            call_id, "playPrompt", {"clientContext": f"c{n}", "prompts": [PROMPT]}
        )
        ids.append(op["id"])
    await emu.drain()
    done = [item["resourceData"]["id"] for item in bot.items("/operations/")]
    assert done == ids


async def test_record_response_recording_downloads_with_its_token(
    graph: Graph, emu: GraphEmulator, bot: Bot, http: aiohttp.ClientSession
) -> None:
    call_id = await graph.create_call()
    status, op, _ = await graph.action(
        call_id, "recordResponse", {"clientContext": "rec", "maxRecordDurationInSeconds": 10}
    )
    assert (status, op["status"], op["recordingLocation"]) == (200, "running", None)
    await emu.drain()
    [done] = bot.items(f"/operations/{op['id']}")
    data = done["resourceData"]
    assert (data["status"], data["completionReason"]) == ("completed", "maxRecordDurationReached")
    assert data["resultInfo"]["subcode"] == 8515
    location, token = data["recordingLocation"], data["recordingAccessToken"]
    async with aiohttp.ClientSession() as anonymous, anonymous.get(location) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
    async with http.get(location, headers={"Authorization": f"Bearer {token}x"}) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
        assert token not in await response.text()
    async with http.get(location, headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200
        assert response.content_type == "application/octet-stream"
        audio = await response.read()
    with wave.open(io.BytesIO(audio)) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
        assert wav.getnframes() > 0


async def test_stop_tone_ends_a_recording(graph: Graph, emu: GraphEmulator, bot: Bot) -> None:
    emu.prompt_seconds = 5.0  # long enough that only the stop tone can end it
    call_id = await graph.create_call()
    _, op, _ = await graph.action(call_id, "recordResponse", {"stopTones": ["#"]})
    await asyncio.sleep(0.01)
    await emu.press_keys(call_id, "1#")
    await emu.drain()
    [done] = bot.items(f"/operations/{op['id']}")
    assert done["resourceData"]["completionReason"] == "stopToneDetected"


async def test_tones_reach_the_bot_only_after_subscribe_in_sequence(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    call_id = await graph.create_call()
    await emu.press_keys(call_id, "9")
    status, op, _ = await graph.action(call_id, "subscribeToTone", {"clientContext": "tones"})
    assert (status, op["status"]) == (200, "completed")
    await emu.press_keys(call_id, "12#")
    await emu.drain()
    tones = [
        item["resourceData"]["toneInfo"] for item in bot.items(call_id) if "toneInfo" in str(item)
    ]
    assert [t["tone"] for t in tones] == ["tone1", "tone2", "pound"]
    assert [t["sequenceId"] for t in tones] == [1, 2, 3]
    with pytest.raises(ValueError, match="DTMF"):
        await emu.press_keys(call_id, "x")


async def test_cancel_media_processing_fails_running_and_queued_operations(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    emu.prompt_seconds = 5.0
    call_id = await graph.create_call()
    _, prompt, _ = await graph.action(call_id, "playPrompt", {"prompts": [PROMPT]})
    _, record, _ = await graph.action(call_id, "recordResponse", {"clientContext": "r"})
    status, cancel, _ = await graph.action(call_id, "cancelMediaProcessing", {})
    assert (status, cancel["status"]) == (200, "completed")
    await emu.drain()
    results = {
        item["resourceData"]["id"]: item["resourceData"] for item in bot.items("/operations/")
    }
    assert set(results) == {prompt["id"], record["id"]}
    for op_id, reason in (
        (prompt["id"], "mediaOperationCanceled"),
        (record["id"], "operationCanceled"),
    ):
        data = results[op_id]
        assert (data["status"], data["completionReason"]) == ("failed", reason)
        assert (data["resultInfo"]["code"], data["resultInfo"]["subcode"]) == (400, 8508)


async def test_barge_in_record_interrupts_the_prompt(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    emu.prompt_seconds = 0.3
    call_id = await graph.create_call()
    _, prompt, _ = await graph.action(call_id, "playPrompt", {"prompts": [PROMPT]})
    await asyncio.sleep(0.02)
    _, record, _ = await graph.action(call_id, "recordResponse", {"bargeInAllowed": True})
    await emu.drain()
    done = [
        (i["resourceData"]["id"], i["resourceData"]["status"]) for i in bot.items("/operations/")
    ]
    assert done == [(prompt["id"], "failed"), (record["id"], "completed")]


async def test_caller_hanging_up_mid_prompt_ends_the_call_without_op_completion(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    emu.prompt_seconds = 5.0
    call_id = await graph.create_call()
    await graph.action(call_id, "playPrompt", {"prompts": [PROMPT]})
    await emu.caller_hangs_up(call_id)
    await emu.caller_hangs_up(call_id)  # already ended: nothing more happens
    await emu.drain()
    assert bot.items("/operations/") == []
    assert states(bot, call_id)[-1] == ("deleted", "terminated")
    info = bot.items(call_id)[-1]["resourceData"]["resultInfo"]
    assert (info["code"], info["subcode"]) == (200, 4097)


async def test_already_completed_operations_and_roster_updates(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    call_id = await graph.create_call()
    status, mute, headers = await graph.action(call_id, "mute", {"clientContext": "m"})
    assert (status, mute["status"]) == (200, "completed")
    assert mute["@odata.context"].endswith("$metadata#muteParticipantOperation")
    assert "Location" in headers
    status, rec, _ = await graph.action(call_id, "updateRecordingStatus", {"status": "recording"})
    assert (status, rec["status"]) == (200, "completed")
    await emu.drain()
    [roster] = bot.items(f"{call_id}/participants")
    me = emu.calls[call_id].my_participant_id
    assert [p["isMuted"] for p in roster["resourceData"] if p["id"] == me] == [True]
    assert bot.items("/operations/") == []


async def test_invite_sends_roster_then_completes(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    call_id = await graph.create_call()
    invitee = {"identity": {"user": {"id": "u-9", "displayName": "Zed"}}, "participantId": "p-9"}
    status, op, headers = await graph.request(
        "POST",
        f"communications/calls/{call_id}/participants/invite",
        {"participants": [invitee], "clientContext": "inv"},
    )
    assert (status, op["status"]) == (200, "Running")
    assert headers["Location"].endswith(op["id"])
    await emu.drain()
    kinds = [
        ("participants" if i["resourceUrl"].endswith("participants") else "op")
        for i in bot.items(call_id)[2:]
    ]
    assert kinds == ["participants", "op"]
    assert "p-9" in emu.calls[call_id].participants


async def test_hold_music_send_dtmf_and_gallery_complete_later(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    call_id = await graph.create_call()
    other = next(
        p for p in emu.calls[call_id].participants if p != emu.calls[call_id].my_participant_id
    )
    status, hold, _ = await graph.request(
        "POST", f"communications/calls/{call_id}/participants/{other}/startHoldMusic", {}
    )
    assert (status, hold["status"]) == (202, "running")
    status, dtmf, _ = await graph.action(call_id, "sendDtmfTones", {"tones": ["tone1", "pound"]})
    assert (status, dtmf["status"]) == (200, "running")
    status, gallery, _ = await graph.action(call_id, "addLargeGalleryView", {})
    assert (status, gallery["status"]) == (202, "running")
    await emu.drain()
    done = {i["resourceData"]["id"]: i["resourceData"] for i in bot.items("/operations/")}
    assert {done[x["id"]]["status"] for x in (hold, dtmf, gallery)} == {"completed"}
    assert done[dtmf["id"]]["completionReason"] == "completedSuccessfully"


async def test_beta_only_actions(graph: Graph, emu: GraphEmulator, bot: Bot) -> None:
    call_id = await graph.create_call()
    status, body, _ = await graph.action(call_id, "startTranscription", {"language": "en-us"})
    assert (status, body["error"]["code"]) == (400, "badRequest")
    status, body, headers = await graph.action(
        call_id, "startTranscription", {"language": "en-us"}, base=emu.beta_url
    )
    assert (status, body["status"]) == (202, "running")
    assert "id" not in body
    assert headers["Location"].startswith(
        f"{emu.beta_url}communications/calls/{call_id}/operations/"
    )


async def test_participant_endpoints_and_either_id_spelling(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    call_id = await graph.create_call()
    quirky = call_id.replace("-", "").upper()
    status, roster, _ = await graph.request("GET", f"communications/calls/{quirky}/participants")
    assert status == 200
    other = next(
        p["id"] for p in roster["value"] if p["id"] != emu.calls[call_id].my_participant_id
    )
    path = f"communications/calls/{call_id}/participants/{other}"
    status, muted, _ = await graph.request("POST", f"{path}/mute", {"clientContext": "pm"})
    assert (status, muted["status"]) == (200, "completed")
    assert (await graph.request("GET", path))[1]["isMuted"] is True
    assert (await graph.request("DELETE", path))[0] == 204
    assert (await graph.request("GET", path))[0] == 404
    await emu.drain()
    rosters = bot.items(f"{call_id}/participants")
    assert [len(r["resourceData"]) for r in rosters] == [2, 1]


async def test_a_looping_prompt_holds_the_queue_until_cancelled(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    call_id = await graph.create_call()
    _, looping, _ = await graph.action(
        call_id, "playPrompt", {"prompts": [PROMPT], "loop": True}, base=emu.beta_url
    )
    _, queued, _ = await graph.action(call_id, "playPrompt", {"prompts": [PROMPT]})
    await emu.drain()  # returns although the loop never ends by itself
    assert bot.items("/operations/") == []
    await graph.action(call_id, "cancelMediaProcessing")
    await emu.drain()
    done = [
        (i["resourceData"]["id"], i["resourceData"]["status"]) for i in bot.items("/operations/")
    ]
    assert done == [(looping["id"], "failed"), (queued["id"], "failed")]


# -- errors ----------------------------------------------------------------------------


async def test_unknown_call_is_404_in_graphs_error_shape(graph: Graph) -> None:
    status, body, headers = await graph.request(
        "GET", "communications/calls/nope", headers={"client-request-id": "crid-9"}
    )
    assert status == 404
    inner = body["error"]["innerError"]
    assert body["error"]["code"] == "itemNotFound"
    assert inner["client-request-id"] == "crid-9"
    assert inner["request-id"] == headers["request-id"]
    assert "date" in inner


@pytest.mark.parametrize(
    ("method", "path", "cue", "authorized", "status"),
    [
        ("GET", "communications/calls/nope", None, True, 404),  # a handler's error
        ("PATCH", "communications/calls", None, True, 405),  # no such route
        ("POST", "communications/calls", 429, True, 429),  # an injected fault
        ("GET", "communications/calls/nope", None, False, 401),  # refused before routing
    ],
)
async def test_an_error_without_a_client_request_id_names_the_request_id_in_its_place(
    emu: GraphEmulator, method: str, path: str, cue: int | None, authorized: bool, status: int
) -> None:
    # Graph fills innerError's client-request-id with its own request-id when the
    # request sent none; a client logging that field must never find it missing.
    if cue is not None:
        emu.fail_next(cue)
    headers = {"Authorization": "Bearer app-token"} if authorized else {}
    async with (
        aiohttp.ClientSession() as http,
        http.request(method, emu.graph_url + path, json={}, headers=headers) as response,
    ):
        body = await response.json()
        assert "client-request-id" not in response.request_info.headers
        assert response.status == status
        inner = body["error"]["innerError"]
        assert inner["request-id"] == response.headers["request-id"]
        assert inner["client-request-id"] == inner["request-id"]


async def test_keep_alive_works_then_404_after_the_call_ended(
    graph: Graph, emu: GraphEmulator
) -> None:
    call_id = await graph.create_call()
    status, body, _ = await graph.action(call_id, "keepAlive")
    assert (status, body) == (200, None)
    await graph.request("DELETE", f"communications/calls/{call_id}")
    assert (await graph.action(call_id, "keepAlive"))[0] == 404
    assert (await graph.request("GET", f"communications/calls/{call_id}"))[0] == 404


async def test_a_call_without_keep_alive_ends_with_408_8537_as_graph_ends_it(
    bot: Bot, http: aiohttp.ClientSession
) -> None:
    async with GraphEmulator(bot_webhook_url=bot.url, keep_alive_window=1.0) as emu:
        bot.jwks_url = emu.jwks_url
        graph = Graph(http, emu, bot)
        call_id = await graph.create_call()
        await asyncio.sleep(0.6)
        assert (await graph.action(call_id, "keepAlive"))[:2] == (200, None)
        await asyncio.sleep(0.6)  # 1.2 s since the call began: the keepAlive kept it
        assert emu.calls[call_id].state == "established"
        await asyncio.sleep(0.6)  # 1.2 s since the keepAlive: gone
        assert emu.calls[call_id].state == "terminated"
        await emu.drain()
        last = bot.items(call_id)[-1]
        assert (last["changeType"], last["resourceData"]["state"]) == ("deleted", "terminated")
        info = last["resourceData"]["resultInfo"]
        assert (info["code"], info["subcode"]) == (408, 8537)
        assert emu.calls[call_id].result_info == info
        assert emu.calls[call_id].keep_alives == 1
        status, body, _ = await graph.action(call_id, "keepAlive")
        assert (status, body["error"]["code"]) == (404, "itemNotFound")


async def test_an_incoming_call_nobody_keeps_alive_ends_too(bot: Bot) -> None:
    async with GraphEmulator(bot_webhook_url=bot.url, keep_alive_window=0.2) as emu:
        bot.jwks_url = emu.jwks_url
        call_id = await emu.simulate_incoming_call()
        await asyncio.sleep(0.5)
        await emu.drain()
        assert [i["changeType"] for i in bot.items(call_id)] == ["created", "deleted"]
        assert emu.calls[call_id].result_info["subcode"] == 8537


async def test_without_a_keep_alive_window_calls_do_not_end(
    bot: Bot, http: aiohttp.ClientSession
) -> None:
    async with GraphEmulator(bot_webhook_url=bot.url, keep_alive_window=None) as emu:
        bot.jwks_url = emu.jwks_url
        call_id = await Graph(http, emu, bot).create_call()
        await asyncio.sleep(0.3)
        assert emu.calls[call_id].state == "established"
        assert emu.keep_alive_window is None


def test_the_keep_alive_window_is_graphs_45_minutes_unless_told() -> None:
    assert GraphEmulator().keep_alive_window == 2700.0
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            GraphEmulator(keep_alive_window=bad)


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("playPrompt", {}),
        ("playPrompt", {"prompts": []}),
        ("playPrompt", {"prompts": [{"mediaInfo": {}}]}),
        ("playPrompt", {"prompts": [PROMPT], "clientContext": "x" * 257}),
        ("sendDtmfTones", {}),
        ("sendDtmfTones", {"tones": ["tone99"]}),
        ("recordResponse", {"maxRecordDurationInSeconds": 500}),
        ("updateRecordingStatus", {"status": "sideways"}),
        ("noSuchAction", {}),
    ],
)
async def test_bad_bodies_are_400(graph: Graph, emu: GraphEmulator, action: str, body: Any) -> None:
    call_id = await graph.create_call()
    status, error, _ = await graph.action(call_id, action, body)
    assert status == 400, error
    assert error["error"]["code"] == "badRequest"
    assert emu.calls[call_id].operations == {}


async def test_invalid_json_is_400(graph: Graph, emu: GraphEmulator) -> None:
    call_id = await graph.create_call()
    status, error, _ = await graph.action(
        call_id, "playPrompt", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert (status, error["error"]["code"]) == (400, "badRequest")


async def test_client_context_of_256_characters_is_accepted(graph: Graph) -> None:
    call_id = await graph.create_call()
    status, op, _ = await graph.action(
        call_id, "playPrompt", {"prompts": [PROMPT], "clientContext": "x" * 256}
    )
    assert (status, len(op["clientContext"])) == (200, 256)


async def test_missing_authorization_is_401(emu: GraphEmulator) -> None:
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.get(f"{emu.graph_url}communications/calls/x") as response,
    ):
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "InvalidAuthenticationToken"
        assert response.headers["request-id"]
        # RFC 6750 §3: a challenge, without an error code when no token came at all.
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert "Authorization" not in emu.requests[-1].headers


ACCESS_TOKEN = "emulator-s3cret-token"


@pytest.mark.parametrize(
    ("authorization", "challenge"),
    [
        (None, "Bearer"),
        ("Bearer ", "Bearer"),
        ("Bearer another-token", 'Bearer error="invalid_token"'),
        (f"Bearer {ACCESS_TOKEN}x", 'Bearer error="invalid_token"'),
        (f"Basic {ACCESS_TOKEN}", "Bearer"),  # RFC 6750 §3.1: an unsupported scheme
        ("Bearer tok\u00e9n", 'Bearer error="invalid_token"'),
    ],
)
async def test_a_required_access_token_refuses_every_other(
    bot: Bot, authorization: str | None, challenge: str
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    async with (
        GraphEmulator(bot_webhook_url=bot.url, access_token=ACCESS_TOKEN) as emu,
        aiohttp.ClientSession() as http,
        http.post(
            f"{emu.graph_url}communications/calls",
            json={"callbackUri": bot.url, "targets": [{"identity": {"user": {"id": "u"}}}]},
            headers=headers,
        ) as response,
    ):
        assert response.status == 401
        assert response.headers["WWW-Authenticate"] == challenge
        body = await response.json()
        assert body["error"]["code"] == "InvalidAuthenticationToken"
        assert body["error"]["innerError"]["request-id"] == response.headers["request-id"]
        assert ACCESS_TOKEN not in json.dumps(body)
        assert emu.calls == {}  # refused before anything ran
        assert [r.path for r in emu.requests] == ["/v1.0/communications/calls"]
        assert "Authorization" not in emu.requests[0].headers


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
async def test_the_required_access_token_is_accepted(bot: Bot, scheme: str) -> None:
    async with (
        GraphEmulator(bot_webhook_url=bot.url, access_token=ACCESS_TOKEN) as emu,
        aiohttp.ClientSession(headers={"Authorization": f"{scheme} {ACCESS_TOKEN}"}) as http,
    ):
        bot.jwks_url = emu.jwks_url
        call_id = await Graph(http, emu, bot).create_call()
        assert call_id in emu.calls
        await emu.drain()
        # Notifications are signed by the emulator, never carrying the API token.
        assert all(ACCESS_TOKEN not in str(headers) for headers, _ in bot.received)


def test_an_access_token_needs_auth_on() -> None:
    with pytest.raises(ValueError, match="require_auth"):
        GraphEmulator(require_auth=False, access_token=ACCESS_TOKEN)
    with pytest.raises(ValueError, match="empty"):
        GraphEmulator(access_token="")


async def test_requests_are_recorded_without_authorization(
    graph: Graph, emu: GraphEmulator
) -> None:
    call_id = await graph.create_call()
    method, path, body, headers = emu.requests[-1]
    assert (method, path) == ("POST", "/v1.0/communications/calls")
    assert body["callbackUri"] == graph.bot.url
    assert "Authorization" not in headers
    assert call_id in emu.calls


# -- faults on cue -------------------------------------------------------------------------


async def test_duplicate_on_cue_sends_the_same_body_twice(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    emu.fault_next_notification("duplicate", resource_contains="/operations/")
    call_id = await graph.create_call()
    _, op, _ = await graph.action(call_id, "playPrompt", {"prompts": [PROMPT]})
    await emu.drain()
    first, second = bot.items(f"/operations/{op['id']}")
    assert first == second
    headers = [h for h, body in bot.received if op["id"] in str(body)]
    assert (
        headers[1]["X-Microsoft-Skype-Original-Message-ID"]
        == (headers[0]["X-Microsoft-Skype-Message-ID"])
    )
    assert [d.faults for d in emu.deliveries if d.operation_id == op["id"]] == [(), ("duplicate",)]


async def test_reorder_on_cue_swaps_establishing_and_established(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    emu.fault_next_notification("reorder", change_type="updated")
    call_id = await graph.create_call()
    await emu.drain()
    assert states(bot, call_id) == [("updated", "established"), ("updated", "establishing")]
    assert [d.faults for d in emu.deliveries] == [(), ("reorder",)]


async def test_delay_on_cue_holds_later_notifications_of_the_call(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    emu.fault_next_notification("delay", change_type="updated", delay_seconds=0.05)
    call_id = await graph.create_call()
    await emu.drain()
    assert states(bot, call_id) == [("updated", "establishing"), ("updated", "established")]
    assert emu.deliveries[0].faults == ("delay",)


async def test_early_on_cue_delivers_the_result_before_the_response(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    emu.prompt_seconds = 5.0  # without the fault it would take this long
    call_id = await graph.create_call()
    emu.deliver_early_next(path_contains="playPrompt")
    status, op, _ = await graph.action(
        call_id, "playPrompt", {"prompts": [PROMPT], "clientContext": "early"}
    )
    # The bot already holds the terminal notification when the response arrives.
    assert (status, op["status"]) == (200, "running")
    [done] = bot.items(f"/operations/{op['id']}")
    assert done["resourceData"]["status"] == "completed"
    assert emu.calls[call_id].operations[op["id"]].status == "completed"


async def test_drop_on_cue_loses_the_completion(graph: Graph, emu: GraphEmulator, bot: Bot) -> None:
    call_id = await graph.create_call()
    emu.drop_next_notification(call_id=call_id, change_type="deleted")
    _, op, _ = await graph.action(call_id, "playPrompt", {"prompts": [PROMPT]})
    await emu.drain()
    assert bot.items("/operations/") == []
    [dropped] = [d for d in emu.deliveries if d.operation_id == op["id"]]
    assert (dropped.faults, dropped.status) == (("drop",), None)
    assert emu.calls[call_id].notifications_dropped == 1


async def test_an_injected_401_challenges_like_graph(graph: Graph, emu: GraphEmulator) -> None:
    emu.fail_next(401, path_contains="/communications/calls")
    status, body, headers = await graph.request("GET", "communications/calls/nope")
    assert (status, body["error"]["code"]) == (401, "InvalidAuthenticationToken")
    assert headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


async def test_fail_next_429_carries_retry_after_and_is_not_processed(
    graph: Graph, emu: GraphEmulator
) -> None:
    call_id = await graph.create_call()
    emu.fail_next(429, retry_after=2, path_contains="playPrompt")
    status, body, headers = await graph.action(call_id, "playPrompt", {"prompts": [PROMPT]})
    assert (status, headers["Retry-After"]) == (429, "2")
    assert body["error"]["code"] == "TooManyRequests"
    assert body["error"]["innerError"]["status"] == "429"
    assert emu.calls[call_id].operations == {}
    assert (await graph.action(call_id, "playPrompt", {"prompts": [PROMPT]}))[0] == 200


@pytest.mark.parametrize("status", [500, 503])
async def test_fail_next_5xx_is_not_processed(
    graph: Graph, emu: GraphEmulator, status: int
) -> None:
    emu.fail_next(status, method="POST")
    got, body, _ = await graph.request(
        "POST", "communications/calls", {"callbackUri": "http://x", "targets": []}
    )
    assert got == status
    assert body["error"]["innerError"]["request-id"]
    assert emu.calls == {}


async def test_random_throttle_uses_the_faults_retry_after(
    graph: Graph, emu: GraphEmulator
) -> None:
    emu.faults = Faults(throttle=1.0, retry_after=3)
    status, _, headers = await graph.request("GET", "communications/calls/x")
    assert (status, headers["Retry-After"]) == (429, "3")


async def test_quirks_on_cue_apply_the_wire_quirks(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    emu.fault_next_notification("quirks", resource_contains="/operations/")
    call_id = await graph.create_call()
    _, op, _ = await graph.action(
        call_id, "playPrompt", {"prompts": [PROMPT], "clientContext": "q"}
    )
    await emu.drain()
    [item] = bot.items("/operations/")
    upper = op["id"].replace("-", "").upper()
    assert item["resourceUrl"] == (
        f"communications/calls/{call_id.replace('-', '').upper()}/operations/{upper}"
    )
    assert item["resource"].startswith("/app/calls/")
    [data] = item["resourceData"]
    assert "id" not in data
    assert data["status"] == "Completed"
    assert data["resultInfo"]["code"] == "200"
    assert "subCode" in data["resultInfo"]
    assert "subcode" not in data["resultInfo"]


async def test_quirks_mode_applies_to_every_notification(emu: GraphEmulator, bot: Bot) -> None:
    emu.faults = Faults(quirks=True)
    call_id = await emu.simulate_incoming_call()
    await emu.drain()
    [item] = bot.items()
    assert not item["resourceUrl"].startswith("/")
    assert isinstance(item["resourceData"], list)
    assert call_id.replace("-", "").upper() in item["resourceUrl"]


# -- delivery, keys, determinism, lifecycle ------------------------------------------------


async def test_failed_delivery_is_logged_not_retried(
    graph: Graph, emu: GraphEmulator, bot: Bot
) -> None:
    bot.status = 500
    call_id = await graph.create_call()
    await emu.drain()
    assert [d.status for d in emu.deliveries] == [500, 500]
    assert emu.calls[call_id].notifications_failed == 2


async def test_rotated_key_is_published_and_used(
    graph: Graph, emu: GraphEmulator, bot: Bot, http: aiohttp.ClientSession
) -> None:
    old = emu.kid
    new = emu.rotate_key()
    assert new != old
    async with http.get(emu.openid_configuration_url) as response:
        config = await response.json()
    assert (config["issuer"], config["jwks_uri"]) == ("https://api.botframework.com", emu.jwks_url)
    async with http.get(emu.jwks_url) as response:
        kids = [key["kid"] for key in (await response.json())["keys"]]
    assert kids == [old, new]
    await graph.create_call()
    await emu.drain()
    token = bot.received[-1][0]["Authorization"].removeprefix("Bearer ")
    assert jwt.get_unverified_header(token)["kid"] == new
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["tid"] == DEFAULT_TENANT_ID
    assert claims["exp"] - claims["iat"] == 3600
    # make_token mints the bad tokens a webhook test needs.
    no_tenant = jwt.decode(emu.make_token(tid=None), options={"verify_signature": False})
    assert "tid" not in no_tenant
    with pytest.raises(jwt.ExpiredSignatureError):
        jwt.decode(
            emu.make_token(lifetime=-60), options={"verify_signature": False, "verify_exp": True}
        )


async def test_jwks_keys_are_x509_certificates_for_signing_only(
    emu: GraphEmulator, http: aiohttp.ClientSession
) -> None:
    # The platform's keys are X.509 certificates (reference §6); RFC 7517 §4.3 says
    # `use` and `key_ops` should not both be present.
    emu.rotate_key()
    async with http.get(emu.jwks_url) as response:
        keys = (await response.json())["keys"]
    assert [key["kid"] for key in keys][-1] == emu.kid
    assert len(keys) == 2
    for jwk in keys:
        assert (jwk["kty"], jwk["use"], jwk["alg"]) == ("RSA", "sig", "RS256")
        assert "key_ops" not in jwk
        [encoded] = jwk["x5c"]
        der = base64.b64decode(encoded, validate=True)  # standard base64, not url-safe
        assert base64.b64encode(der).decode("ascii") == encoded
        certificate = x509.load_der_x509_certificate(der)
        thumbprint = base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=")
        assert jwk["x5t"] == thumbprint.decode("ascii")
        # The certificate holds the very key the JWK's n/e give, and signs itself.
        public_key = certificate.public_key()
        assert isinstance(public_key, rsa.RSAPublicKey)
        assert public_key.public_numbers() == jwt.PyJWK(jwk).key.public_numbers()
        assert certificate.issuer == certificate.subject
        certificate.verify_directly_issued_by(certificate)
    # A token the emulator signs verifies against the certificate alone.
    certificate = x509.load_der_x509_certificate(base64.b64decode(keys[-1]["x5c"][0]))
    claims = jwt.decode(
        emu.make_token(), certificate.public_key(), algorithms=["RS256"], audience=emu.app_id
    )
    assert claims["tid"] == DEFAULT_TENANT_ID


async def test_the_webhook_validator_accepts_the_emulators_tokens(emu: GraphEmulator) -> None:
    # The same path real Graph's tokens take: OpenID configuration, JWKS (x5c), RS256.
    settings = TokenValidationSettings(
        app_id=emu.app_id,
        openid_configuration_url=emu.openid_configuration_url,
        issuers=frozenset({emu.issuer}),
    )
    async with TokenValidator(settings) as validator:
        validated = await validator.validate(emu.make_token())
        assert validated.tenant_id == DEFAULT_TENANT_ID
        emu.rotate_key()  # an unknown kid: the validator refetches and still accepts
        assert (await validator.validate(emu.make_token())).issuer == emu.issuer
        with pytest.raises(TokenRejectedError):
            await validator.validate(emu.make_token(aud="someone-else"))


@pytest.mark.parametrize(
    "make",
    [
        lambda: Faults(drop=1.5),
        lambda: Faults(delay_seconds=(0.2, 0.1)),
        lambda: GraphEmulator().fail_next(200),
        lambda: GraphEmulator().fail_next(429, times=0),
        lambda: GraphEmulator().fault_next_notification("explode"),  # type: ignore[arg-type]
    ],
)
def test_bad_fault_settings_are_refused(make: Any) -> None:
    with pytest.raises(ValueError):
        make()


async def _scenario(bot: Bot, seed: int) -> list[tuple[Any, ...]]:
    faults = Faults(duplicate=0.4, reorder=0.4, drop=0.3, delay=0.3, delay_seconds=(0.0, 0.01))
    async with (
        GraphEmulator(seed=seed, faults=faults, prompt_seconds=0.01) as emu,
        aiohttp.ClientSession(headers={"Authorization": "Bearer t"}) as http,
    ):
        bot.jwks_url = emu.jwks_url
        graph = Graph(http, emu, bot)
        call_id = await graph.create_call()
        await emu.drain()
        for n in range(3):
            await graph.action(
                call_id, "playPrompt", {"prompts": [PROMPT], "clientContext": f"{n}"}
            )
            await emu.drain()
        await graph.action(call_id, "subscribeToTone", {})
        await emu.press_keys(call_id, "123")
        await emu.drain()
        await graph.request("DELETE", f"communications/calls/{call_id}")
        await emu.drain()
        return [
            (d.call_id, d.operation_id, d.change_type, d.faults, d.message_id, d.status)
            for d in emu.deliveries
        ]


async def test_same_seed_same_delivery_log(bot: Bot) -> None:
    first = await _scenario(bot, seed=7)
    second = await _scenario(bot, seed=7)
    assert first == second
    assert any(faults for _, _, _, faults, _, _ in first)
    assert await _scenario(bot, seed=8) != first


async def test_close_is_idempotent_and_cancels_pending_work(bot: Bot) -> None:
    emu = GraphEmulator(bot_webhook_url=bot.url, prompt_seconds=5.0)
    await emu.start()
    bot.jwks_url = emu.jwks_url
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer t"}) as http:
        graph = Graph(http, emu, bot)
        call_id = await graph.create_call()
        await graph.action(call_id, "playPrompt", {"prompts": [PROMPT]})
    await emu.aclose()
    await emu.aclose()
    with pytest.raises(RuntimeError):
        await emu.start()


async def test_run_emulator_serves_until_cancelled(capsys: pytest.CaptureFixture[str]) -> None:
    task = asyncio.create_task(run_emulator(0))

    async def printed() -> None:
        # capsys offers nothing to wait on, so poll it.
        while "Graph v1.0" not in capsys.readouterr().out:
            await asyncio.sleep(0.01)

    await asyncio.wait_for(printed(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_the_emulator_imports_nothing_from_the_client() -> None:
    """It must stay an independent check of the client: raw JSON, no shared code."""
    package = Path(emulator_module.__file__ or "").parent
    for module in package.glob("_emulator*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.startswith("graphcomms"):
                    assert name == "graphcomms.errors" or name.startswith(
                        "graphcomms.testing._emulator"
                    ), f"{module.name} imports {name}"


async def test_a_client_gone_mid_request_is_dropped_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A bot killed while it sent a request: the emulator records nothing for it, logs
    no server error, and goes on serving."""
    async with GraphEmulator() as graph:
        url = yarl.URL(graph.graph_url)
        with caplog.at_level(logging.ERROR):
            _, writer = await asyncio.open_connection(url.host, url.port)
            writer.write(
                f"POST {url.path}communications/calls HTTP/1.1\r\n"
                f"Host: {url.host}:{url.port}\r\nAuthorization: Bearer t\r\n"
                "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{".encode()
            )
            await writer.drain()
            await asyncio.sleep(0.1)  # the emulator is reading the body
            writer.transport.abort()  # reset, as a killed process's socket
            await asyncio.sleep(0.2)
            async with aiohttp.ClientSession() as http:
                headers = {"Authorization": "Bearer t"}
                async with http.get(
                    f"{graph.graph_url}communications/calls/nope", headers=headers
                ) as response:
                    assert response.status == 404
        assert [r.path for r in graph.requests] == ["/v1.0/communications/calls/nope"]
        assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
