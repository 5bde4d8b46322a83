"""The emulator's HTTP control API: the caller's side, faults and the ledger, for a bot
(or a test) in any language.

Everything lives under ``/_emulator``; Graph's own paths start with ``/v1.0/``,
``/beta/`` or ``/v1/``, so the two never meet. JSON in, JSON out, keys in camelCase as
Graph writes them. Errors use Graph's error shape, ``{"error": {"code": ..., "message":
...}}``, with a status that says what went wrong: 400 ``badRequest`` (a body or a
parameter that does not fit), 401 ``InvalidAuthenticationToken``, 404 ``itemNotFound``
(no such call, or no such control path), 409 ``callEnded`` (keys pressed on a call that
has ended), 504 ``timeout`` (``drain`` did not finish in time).

When the emulator has an access token (``--access-token``), every control request needs
``Authorization: Bearer <that token>`` too: the control API can end the bot's calls and
cue faults. Without one, control requests need no token.

====== ====================================== ===================================================
method path                                   what it does
====== ====================================== ===================================================
GET    /_emulator                             the emulator's URLs and settings
POST   /_emulator/calls                       ring the bot: ``{"caller", "callbackUri"}``, both
                                              optional; 201 with the new call
GET    /_emulator/calls                       every call, ended ones too, with its operations
GET    /_emulator/calls/{id}                  one call
POST   /_emulator/calls/{id}/pressKeys        the caller presses ``{"keys": "12#"}``; with
                                              ``"duringPrompt": true`` while a prompt
                                              plays (now, or when the next one starts)
POST   /_emulator/calls/{id}/hangUp           the caller hangs up (200/4097)
POST   /_emulator/faults/failNext             ``{"status", "retryAfter", "times", "pathContains",
                                              "method"}``: answer API requests with an error
POST   /_emulator/faults/notifications        ``{"faults": ["drop" | "duplicate" | "reorder" |
                                              "delay" | "quirks"], "times", "callId",
                                              "changeType", "resourceContains", "delaySeconds"}``
POST   /_emulator/faults/deliverEarly         ``{"times", "pathContains"}``
POST   /_emulator/faults/failTransfer         ``{"code", "subcode", "message"}``
GET    /_emulator/faults                      the fault probabilities in force
PUT    /_emulator/faults                      replace them: ``{"duplicate": 0.1, ...}``
GET    /_emulator/requests?since=N            the API requests received, from the N-th
GET    /_emulator/deliveries?since=N          the notifications sent, dropped or failed
POST   /_emulator/drain                       wait until nothing is pending: ``{"timeout"}``
====== ====================================== ===================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, cast, get_args

from aiohttp import web

from graphcomms.testing._emulator_faults import Faults, NotificationFault
from graphcomms.testing._emulator_state import Delivery, EmulatedCall, RecordedRequest
from graphcomms.testing._emulator_wire import JSON, GraphError, bad_request, not_found

if TYPE_CHECKING:
    from graphcomms.testing._emulator import GraphEmulator

__all__ = ["CONTROL_PREFIX", "add_control_routes"]

CONTROL_PREFIX = "/_emulator"

_DRAIN_TIMEOUT = 30.0
_FAULT_NAMES: frozenset[str] = frozenset(get_args(NotificationFault))
_FAULT_FIELDS = {
    "duplicate": "duplicate",
    "reorder": "reorder",
    "delay": "delay",
    "delaySeconds": "delay_seconds",
    "early": "early",
    "drop": "drop",
    "throttle": "throttle",
    "serverError": "server_error",
    "quirks": "quirks",
    "retryAfter": "retry_after",
}


def add_control_routes(app: web.Application, emulator: GraphEmulator) -> None:
    """Serve ``emulator``'s control API on ``app`` under :data:`CONTROL_PREFIX`."""
    api = _ControlApi(emulator)
    p = CONTROL_PREFIX
    r = app.router
    r.add_get(p, api.describe)
    r.add_post(f"{p}/calls", api.ring)
    r.add_get(f"{p}/calls", api.list_calls)
    r.add_get(p + "/calls/{call_id}", api.get_call)
    r.add_post(p + "/calls/{call_id}/pressKeys", api.press_keys)
    r.add_post(p + "/calls/{call_id}/hangUp", api.hang_up)
    r.add_post(f"{p}/faults/failNext", api.fail_next)
    r.add_post(f"{p}/faults/notifications", api.fault_notifications)
    r.add_post(f"{p}/faults/deliverEarly", api.deliver_early)
    r.add_post(f"{p}/faults/failTransfer", api.fail_transfer)
    r.add_get(f"{p}/faults", api.get_faults)
    r.add_put(f"{p}/faults", api.put_faults)
    r.add_get(f"{p}/requests", api.requests)
    r.add_get(f"{p}/deliveries", api.deliveries)
    r.add_post(f"{p}/drain", api.drain)


class _ControlApi:
    """The handlers; each reads its body, calls ``GraphEmulator``'s own method, and
    answers JSON. A handler raises :class:`GraphError` for anything it refuses, and the
    emulator's middleware renders it."""

    def __init__(self, emulator: GraphEmulator) -> None:
        self._emulator = emulator

    async def describe(self, request: web.Request) -> web.StreamResponse:
        e = self._emulator
        return web.json_response(
            {
                "graphUrl": e.graph_url,
                "betaUrl": e.beta_url,
                "openIdConfigurationUrl": e.openid_configuration_url,
                "jwksUrl": e.jwks_url,
                "controlUrl": e.control_url,
                "appId": e.app_id,
                "tenantId": e.tenant_id,
                "issuer": e.issuer,
                "botWebhookUrl": e.bot_webhook_url,
                "promptSeconds": e.prompt_seconds,
                "keepAliveWindowSeconds": e.keep_alive_window,
                "readableOperations": e.readable_operations,
            }
        )

    # -- the caller's side --------------------------------------------------------------

    async def ring(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        caller = _optional(body, "caller", str) or "+14255550100"
        callback_uri = _optional(body, "callbackUri", str)
        if callback_uri is None and self._emulator.bot_webhook_url is None:
            raise bad_request(
                "callbackUri is required: the emulator has no bot webhook URL "
                "(--bot-webhook-url) to ring."
            )
        call_id = await self._emulator.simulate_incoming_call(
            caller=caller, callback_uri=callback_uri
        )
        return web.json_response(self._call_view(call_id), status=201)

    async def list_calls(self, request: web.Request) -> web.StreamResponse:
        calls = self._emulator.calls.values()
        return web.json_response({"value": [_call_json(call) for call in calls]})

    async def get_call(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._call_view(request.match_info["call_id"]))

    async def press_keys(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        keys = _required(body, "keys", str)
        during_prompt = bool(_optional(body, "duringPrompt", bool))
        call = self._call(request.match_info["call_id"])
        if call.ended:
            raise GraphError(409, "callEnded", f"Call {call.id} has ended.")
        try:
            await self._emulator.press_keys(call.id, keys, during_prompt=during_prompt)
        except ValueError as exc:
            raise bad_request(str(exc)) from None
        return web.json_response(_call_json(call))

    async def hang_up(self, request: web.Request) -> web.StreamResponse:
        await _body(request)
        call = self._call(request.match_info["call_id"])
        await self._emulator.caller_hangs_up(call.id)
        return web.json_response(_call_json(call))

    # -- faults on cue ------------------------------------------------------------------

    async def fail_next(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        status = _optional(body, "status", int)
        with _refused():
            self._emulator.fail_next(
                429 if status is None else status,
                retry_after=_optional(body, "retryAfter", int),
                times=_times(body),
                path_contains=_optional(body, "pathContains", str),
                method=_optional(body, "method", str),
            )
        return web.json_response(body)

    async def fault_notifications(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        faults = body.get("faults")
        if (
            not isinstance(faults, list)
            or not faults
            or not all(isinstance(f, str) and f in _FAULT_NAMES for f in faults)
        ):
            raise bad_request(f"faults must be a non-empty list of {sorted(_FAULT_NAMES)}.")
        delay = _optional(body, "delaySeconds", float)
        with _refused():
            self._emulator.fault_next_notification(
                *cast("list[NotificationFault]", faults),
                times=_times(body),
                call_id=_optional(body, "callId", str),
                change_type=_optional(body, "changeType", str),
                resource_contains=_optional(body, "resourceContains", str),
                delay_seconds=delay,
            )
        return web.json_response(body)

    async def deliver_early(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        with _refused():
            self._emulator.deliver_early_next(
                times=_times(body), path_contains=_optional(body, "pathContains", str)
            )
        return web.json_response(body)

    async def fail_transfer(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        code = _optional(body, "code", int)
        subcode = _optional(body, "subcode", int)
        message = _optional(body, "message", str)
        self._emulator.fail_next_transfer(
            code=500 if code is None else code,
            subcode=7000 if subcode is None else subcode,
            message=message or "Transfer failed.",
        )
        return web.json_response(body)

    async def get_faults(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(_faults_json(self._emulator.faults))

    async def put_faults(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        unknown = sorted(set(body) - set(_FAULT_FIELDS))
        if unknown:
            raise bad_request(f"unknown fault settings {unknown}; known: {sorted(_FAULT_FIELDS)}.")
        values: dict[str, Any] = {}
        for key, name in _FAULT_FIELDS.items():
            if key not in body:
                continue
            value = body[key]
            if name == "delay_seconds":
                if not (isinstance(value, list) and len(value) == 2 and all(map(_number, value))):
                    raise bad_request("delaySeconds must be [low, high] in seconds.")
                value = (float(value[0]), float(value[1]))
            elif name == "quirks":
                if not isinstance(value, bool):
                    raise bad_request("quirks must be true or false.")
            elif name == "retry_after":
                value = _required(body, key, int)
            elif not _number(value):
                raise bad_request(f"{key} must be a probability from 0 to 1.")
            values[name] = value
        with _refused():
            faults = Faults(**values)
        self._emulator.faults = faults
        return web.json_response(_faults_json(faults))

    # -- the ledger -----------------------------------------------------------------------

    async def requests(self, request: web.Request) -> web.StreamResponse:
        return _page(request, self._emulator.requests, _request_json)

    async def deliveries(self, request: web.Request) -> web.StreamResponse:
        return _page(request, self._emulator.deliveries, _delivery_json)

    async def drain(self, request: web.Request) -> web.StreamResponse:
        body = await _body(request)
        timeout = _optional(body, "timeout", float)
        timeout = _DRAIN_TIMEOUT if timeout is None else timeout
        if not 0 < timeout <= 600:
            raise bad_request("timeout must be from 0 to 600 seconds.")
        try:
            await asyncio.wait_for(self._emulator.drain(), timeout)
        except asyncio.TimeoutError:
            raise GraphError(504, "timeout", f"Work was still pending after {timeout} s.") from None
        return web.json_response({"requests": len(self._emulator.requests)})

    # -- internals ------------------------------------------------------------------------

    def _call(self, call_id: str) -> EmulatedCall:
        wanted = call_id.replace("-", "").lower()
        for call in self._emulator.calls.values():
            if call.id.replace("-", "").lower() == wanted:
                return call
        raise not_found(f"Call {call_id} was not found.")

    def _call_view(self, call_id: str) -> JSON:
        return _call_json(self._call(call_id))


@contextlib.contextmanager
def _refused() -> Iterator[None]:
    """The ``ValueError`` a ``GraphEmulator`` method raises for a bad argument, as a 400."""
    try:
        yield
    except ValueError as exc:
        raise bad_request(str(exc)) from None


async def _body(request: web.Request) -> JSON:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise bad_request("The body is not JSON.") from None
    if not isinstance(body, dict):
        raise bad_request("The body must be a JSON object.")
    return body


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _optional(body: JSON, name: str, kind: type[Any]) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if kind is float and _number(value):
        return float(value)
    if kind is int and isinstance(value, bool):
        raise bad_request(f"{name} must be an integer.")
    if not isinstance(value, kind):
        noun = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}[kind]
        raise bad_request(f"{name} must be {noun}.")
    return value


def _required(body: JSON, name: str, kind: type[Any]) -> Any:
    value = _optional(body, name, kind)
    if value is None:
        raise bad_request(f"{name} is required.")
    return value


def _times(body: JSON) -> int:
    times = _optional(body, "times", int)
    return 1 if times is None else int(times)


def _since(request: web.Request) -> int:
    raw = request.query.get("since", "0")
    if not raw.isdigit():
        raise bad_request("since must be a non-negative integer.")
    return int(raw)


def _page(
    request: web.Request, items: Sequence[Any], render: Callable[[int, Any], JSON]
) -> web.Response:
    since = _since(request)
    end = len(items)
    return web.json_response(
        {"value": [render(i, items[i]) for i in range(min(since, end), end)], "next": end}
    )


def _call_json(call: EmulatedCall) -> JSON:
    return {
        "id": call.id,
        "state": call.state,
        "direction": call.direction,
        "callbackUri": call.callback_uri,
        "resultInfo": call.result_info,
        "toneSubscribed": call.tone_subscribed,
        "playing": None if call.playing is None else call.playing.id,
        "keysWaitingForPrompt": call._keys_for_prompt,
        "keepAlives": call.keep_alives,
        "notificationsDelivered": call.notifications_delivered,
        "notificationsDropped": call.notifications_dropped,
        "notificationsFailed": call.notifications_failed,
        "operations": [
            {
                "id": op.id,
                "type": op.odata_type,
                "status": op.status,
                "clientContext": op.client_context,
                "resultInfo": op.result_info,
                "resultDelivered": op.result_delivered,
            }
            for op in call.operations.values()
        ],
    }


def _request_json(index: int, recorded: RecordedRequest) -> JSON:
    return {
        "index": index,
        "method": recorded.method,
        "path": recorded.path,
        "json": recorded.json,
        "headers": dict(recorded.headers),
    }


def _delivery_json(index: int, delivery: Delivery) -> JSON:
    return {
        "index": index,
        "seq": delivery.seq,
        "callId": delivery.call_id,
        "operationId": delivery.operation_id,
        "changeType": delivery.change_type,
        "resourceUrl": delivery.resource_url,
        "url": delivery.url,
        "messageId": delivery.message_id,
        "faults": list(delivery.faults),
        "status": delivery.status,
        "error": delivery.error,
        "body": delivery.body,
    }


def _faults_json(faults: Faults) -> JSON:
    values = dataclasses.asdict(faults)
    return {key: values[name] for key, name in _FAULT_FIELDS.items()}
