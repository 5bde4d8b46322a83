"""The Graph calling-service emulator (DESIGN §6): an aiohttp server on loopback.

It answers the ``/communications/calls`` endpoints the way reference §2 documents them,
runs media operations on emulated time, and POSTs signed notifications to each call's
callbackUri, with faults by probability or on cue. It speaks raw JSON dicts and imports
nothing from graphcomms' client side, so it is an independent check of the client.

This module is the HTTP shell and the public API; the Graph behaviour is in
``_emulator_service``, delivery in ``_emulator_delivery``, JSON shapes in
``_emulator_wire``, and the HTTP control API (for bots not written in Python) in
``_emulator_control``.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Awaitable, Callable, Mapping
from random import Random
from types import MappingProxyType
from typing import Any

from aiohttp import web

from graphcomms.testing._emulator_auth import SigningKeys
from graphcomms.testing._emulator_control import CONTROL_PREFIX, add_control_routes
from graphcomms.testing._emulator_delivery import Notifier
from graphcomms.testing._emulator_faults import FaultPlan, Faults, NotificationFault
from graphcomms.testing._emulator_service import (
    READABLE_OPERATIONS,
    CallingService,
    Ctx,
    ReadableOperations,
    Reply,
)
from graphcomms.testing._emulator_state import (
    Delivery,
    EmulatedCall,
    EmulatedOperation,
    RecordedRequest,
)
from graphcomms.testing._emulator_wire import (
    JSON,
    GraphError,
    bad_request,
    bearer_token,
    error_body,
    error_for_status,
    new_guid,
    same_secret,
    unauthorized,
)

__all__ = [
    "DEFAULT_APP_ID",
    "DEFAULT_ISSUER",
    "DEFAULT_KEEP_ALIVE_WINDOW",
    "DEFAULT_TENANT_ID",
    "Delivery",
    "EmulatedCall",
    "EmulatedOperation",
    "Faults",
    "GraphEmulator",
    "NotificationFault",
    "ReadableOperations",
    "RecordedRequest",
    "run_emulator",
]

DEFAULT_APP_ID = "00000000-0000-0000-0000-0000000000b0"
DEFAULT_TENANT_ID = "00000000-0000-0000-0000-0000000000a0"
DEFAULT_ISSUER = "https://api.botframework.com"
#: Graph ends a call after 45 minutes without a keepAlive (reference §9.2).
DEFAULT_KEEP_ALIVE_WINDOW = 2700.0

_API_PREFIXES = ("/v1.0/", "/beta/")
_CALLS = r"/{ver:v1\.0|beta}/communications/calls"
_DIAGNOSTIC = (
    '{"ServerInfo":{"DataCenter":"Emulator","Slice":"E","Ring":"0",'
    '"ScaleUnit":"000","RoleInstance":"graphcomms-emulator"}}'
)

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class GraphEmulator:
    """An emulated Graph calling service on loopback, for tests, examples and the demo.

    Use it as an async context manager (or ``start()`` / ``aclose()``). Every random
    choice (ids, faults, delays) draws from one ``random.Random(seed)``, each call from
    a child stream seeded from it, so the same seed and the same sequence of requests
    and caller events give the same ids and the same delivery log. Media takes
    ``prompt_seconds`` of real time per prompt, recording or timed step.

    API requests need ``Authorization: Bearer <token>``: any non-empty token, or
    exactly ``access_token`` when one is given; others get Graph's 401
    (``InvalidAuthenticationToken``) with a ``WWW-Authenticate: Bearer`` challenge.
    ``require_auth=False`` takes requests without a token too.

    ``readable_operations`` says which operations ``GET .../operations/{id}`` finds.
    ``"documented"`` (the default) promises no more than Graph documents: an
    addLargeGalleryView operation until its result has reached the bot; every other
    operation, and a finished one, answers 404 as an unknown id does, so a bot tested
    here does not come to rely on reading back what Graph may not serve. ``"all"``
    reads back every operation of a live call, terminal ones included: for tests of
    recovery paths that assume it.

    ``keep_alive_window`` is how many seconds a call lives without a keepAlive: then it
    ends with ``408/8537`` and its ``deleted`` notification, as Graph ends a call after
    45 minutes (the default); a keepAlive on an ended call answers 404. Give a few
    seconds in tests; ``None`` never ends a call for that.

    ``bot_webhook_url`` is where incoming calls ring when no ``callback_uri`` is given.
    The same operations are offered over HTTP under ``/_emulator/`` (see
    ``control_url``), for bots and tests in any language.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 0,
        app_id: str = DEFAULT_APP_ID,
        tenant_id: str = DEFAULT_TENANT_ID,
        issuer: str = DEFAULT_ISSUER,
        prompt_seconds: float = 0.05,
        faults: Faults | None = None,
        require_auth: bool = True,
        access_token: str | None = None,
        readable_operations: ReadableOperations = "documented",
        bot_webhook_url: str | None = None,
        keep_alive_window: float | None = DEFAULT_KEEP_ALIVE_WINDOW,
    ) -> None:
        if prompt_seconds < 0:
            raise ValueError("prompt_seconds must be >= 0")
        if keep_alive_window is not None and not (
            keep_alive_window > 0 and math.isfinite(keep_alive_window)
        ):
            raise ValueError(f"keep_alive_window must be > 0 seconds, got {keep_alive_window!r}")
        _check_readable_operations(readable_operations)
        if access_token is not None and not access_token.strip():
            raise ValueError("access_token must not be empty")
        if access_token is not None and not require_auth:
            raise ValueError("access_token needs require_auth=True")
        self.host = host
        self.seed = seed
        self.app_id = app_id
        self.tenant_id = tenant_id
        self.issuer = issuer
        self.require_auth = require_auth
        self.bot_webhook_url = bot_webhook_url
        # Never shown: not in a repr, a log, a recorded request or an error body.
        self._access_token = access_token
        self.requests: list[RecordedRequest] = []
        """Every request to the /v1.0/ and /beta/ paths, in arrival order."""
        self.deliveries: list[Delivery] = []
        """Every notification sent, dropped or failed, in the order it happened."""
        self._port = port
        # Seeded on purpose: determinism is the point, nothing here is a secret.
        self._rng = Random(seed)  # noqa: S311
        # Request ids get their own stream: the bot fetching the JWKS at some moment
        # must not shift the ids and faults the seed gives everything else.
        self._request_ids = Random(f"{seed}/request-ids")  # noqa: S311
        self._plan = FaultPlan(faults or Faults())
        self._service = CallingService(
            rng=self._rng,
            plan=self._plan,
            app_id=app_id,
            tenant_id=tenant_id,
            prompt_seconds=prompt_seconds,
            readable_operations=readable_operations,
            keep_alive_window=keep_alive_window,
        )
        self._keys: SigningKeys | None = None
        self._notifier: Notifier | None = None
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._started = False
        self._closed = False

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Generate the signing key, bind the port and start serving.

        Raises RuntimeError if already started or closed; a failed start cleans up.
        """
        if self._closed:
            raise RuntimeError("this GraphEmulator is closed; make a new one")
        if self._started:
            raise RuntimeError("this GraphEmulator is already started")
        self._started = True
        try:
            # RSA key generation takes a noticeable moment; keep the loop free meanwhile.
            self._keys = await asyncio.to_thread(SigningKeys)
            app = web.Application(middlewares=[self._middleware])
            self._add_routes(app)
            self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self._port)
            await site.start()
            self._port = int(self._runner.addresses[0][1])
            host = f"[{self.host}]" if ":" in self.host else self.host
            self._base_url = f"http://{host}:{self._port}/"
            self._notifier = Notifier(plan=self._plan, sign=self._sign, log=self.deliveries)
            await self._notifier.start()
        except BaseException:
            await self.aclose()
            raise
        self._service.base_url = self._base_url
        self._service.notifier = self._notifier

    async def aclose(self) -> None:
        """Stop serving; cancel media, timers and queued deliveries. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        if self._notifier is not None:
            # First, so a handler waiting for an early delivery is released and the
            # runner's cleanup does not wait on it; later posts are logged as unsent.
            await self._notifier.aclose()
        if self._runner is not None:
            await self._runner.cleanup()
        # Last, so it also cancels timers that in-flight requests started meanwhile.
        await self._service.aclose()

    async def __aenter__(self) -> GraphEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- addresses ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://host:port/``; RuntimeError before ``start()``."""
        if self._base_url is None:
            raise RuntimeError("the GraphEmulator is not started")
        return self._base_url

    @property
    def port(self) -> int:
        """The bound port (the requested one before ``start()``)."""
        return self._port

    @property
    def graph_url(self) -> str:
        """The v1.0 base URL, standing in for ``https://graph.microsoft.com/v1.0/``."""
        return f"{self.base_url}v1.0/"

    @property
    def beta_url(self) -> str:
        return f"{self.base_url}beta/"

    @property
    def openid_configuration_url(self) -> str:
        return f"{self.base_url}v1/.well-known/OpenIdConfiguration"

    @property
    def jwks_url(self) -> str:
        return f"{self.base_url}v1/keys"

    @property
    def control_url(self) -> str:
        """The HTTP control API's root, ``http://host:port/_emulator``."""
        return f"{self.base_url}{CONTROL_PREFIX.lstrip('/')}"

    # -- inspection and knobs ------------------------------------------------------------------

    @property
    def calls(self) -> Mapping[str, EmulatedCall]:
        """Every call the emulator has seen, ended ones included, by call id."""
        return MappingProxyType(self._service.calls)

    @property
    def prompt_seconds(self) -> float:
        """Real seconds per emulated media step; a change applies to new operations."""
        return self._service.prompt_seconds

    @prompt_seconds.setter
    def prompt_seconds(self, value: float) -> None:
        if value < 0:
            raise ValueError("prompt_seconds must be >= 0")
        self._service.prompt_seconds = value

    @property
    def readable_operations(self) -> ReadableOperations:
        """Which operations ``GET .../operations/{id}`` finds: ``"documented"`` or
        ``"all"`` (see the class docstring); a change applies to the next GET."""
        return self._service.readable_operations

    @readable_operations.setter
    def readable_operations(self, value: ReadableOperations) -> None:
        _check_readable_operations(value)
        self._service.readable_operations = value

    @property
    def keep_alive_window(self) -> float | None:
        """Seconds a call lives without a keepAlive (None: no limit)."""
        return self._service.keep_alive_window

    @property
    def faults(self) -> Faults:
        """The fault probabilities in force; assign a new ``Faults`` to change them."""
        return self._plan.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self._plan.faults = value

    @property
    def kid(self) -> str:
        """The key id notifications are signed with now."""
        return self._signing_keys().kid

    def rotate_key(self) -> str:
        """Sign with a new key from now on; the JWKS keeps the previous one too.

        Returns the new kid.
        """
        return self._signing_keys().rotate()

    def make_token(
        self,
        *,
        lifetime: float = 3600.0,
        signing_key: Any = None,
        kid: str | None = None,
        **claims: Any,
    ) -> str:
        """A token like the notifications carry, signed with the current key.

        For webhook tests: ``claims`` override the standard ones (iss, aud, tid, iat,
        nbf, exp); a claim given as None is left out; a negative ``lifetime`` makes an
        expired token. ``signing_key`` (an RSA private key) and ``kid`` forge one: the
        right claims, signed by someone else, under this emulator's key id or another.
        """
        return self._signing_keys().sign(
            issuer=self.issuer,
            audience=self.app_id,
            tenant_id=self.tenant_id,
            lifetime=lifetime,
            extra=claims,
            key=signing_key,
            kid=kid,
        )

    def fail_next(
        self,
        status: int = 429,
        *,
        retry_after: int | None = None,
        times: int = 1,
        path_contains: str | None = None,
        method: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching API requests with ``status``, unprocessed.

        429 always carries ``Retry-After`` (``retry_after``, else ``faults.retry_after``);
        other statuses carry it only when ``retry_after`` is given.
        """
        self._plan.add_request_cue(
            status,
            retry_after=retry_after,
            times=times,
            path_contains=path_contains,
            method=method,
        )

    def deliver_early_next(self, *, times: int = 1, path_contains: str | None = None) -> None:
        """Finish the next matching action's operation at once, and deliver its terminal
        notification before the HTTP response is sent."""
        self._plan.add_early_cue(times=times, path_contains=path_contains)

    def fault_next_notification(
        self,
        *faults: NotificationFault,
        times: int = 1,
        call_id: str | None = None,
        change_type: str | None = None,
        resource_contains: str | None = None,
        delay_seconds: float | None = None,
    ) -> None:
        """Apply ``faults`` ("duplicate", "reorder", "delay", "drop", "quirks") to the
        next ``times`` matching notifications.

        Filters: the call id, the changeType, a substring of the canonical resourceUrl
        (``"/operations/"`` picks operation results).
        """
        self._plan.add_notification_cue(
            faults,
            times=times,
            call_id=call_id,
            change_type=change_type,
            resource_contains=resource_contains,
            delay_seconds=delay_seconds,
        )

    def drop_next_notification(
        self,
        *,
        times: int = 1,
        call_id: str | None = None,
        change_type: str | None = None,
        resource_contains: str | None = None,
    ) -> None:
        """Never send the next ``times`` matching notifications."""
        self.fault_next_notification(
            "drop",
            times=times,
            call_id=call_id,
            change_type=change_type,
            resource_contains=resource_contains,
        )

    def fail_next_transfer(
        self, *, code: int = 500, subcode: int = 7000, message: str = "Transfer failed."
    ) -> None:
        """Make the next transfer fail: the call goes back to ``established`` (§4.1)."""
        self._service.transfer_failures.append((code, subcode, message))

    async def drain(self) -> None:
        """Wait until no media step, timer or notification delivery is pending.

        Media that never ends by itself (a prompt that loops forever) does not count.
        """
        while True:
            pending = self._service.pending()
            if self._notifier is not None:
                pending += self._notifier.busy()
            if not pending:
                return
            await asyncio.wait(pending)

    # -- the caller's side ---------------------------------------------------------------------

    async def simulate_incoming_call(
        self, *, caller: str = "+14255550100", callback_uri: str | None = None
    ) -> str:
        """Ring the bot: queue a ``created`` notification with ``state: incoming``.

        ``caller`` is a phone number (``+...``) or a user id. The notification goes to
        ``callback_uri``, else ``bot_webhook_url`` (ValueError if neither). Returns the
        new call's id; ``drain()`` waits for the delivery.
        """
        url = callback_uri or self.bot_webhook_url
        if url is None:
            raise ValueError("no callback_uri given and no bot_webhook_url configured")
        return self._service.simulate_incoming_call(caller=caller, url=url)

    async def press_keys(self, call_id: str, keys: str, *, during_prompt: bool = False) -> None:
        """The caller presses DTMF ``keys`` (``0-9 * # A-D``), one tone each.

        Tones reach the bot only after it called subscribeToTone, with increasing
        ``sequenceId``; a running recording whose stopTones include a key stops at
        once. With ``during_prompt`` the keys are pressed while a playPrompt plays: at
        once if one is playing, else the moment the next one starts (so a test can
        barge in on a prompt it is about to play). KeyError for an unknown call,
        ValueError for an ended one or a bad key.
        """
        self._service.press_keys(call_id, keys, during_prompt=during_prompt)

    async def caller_hangs_up(self, call_id: str) -> None:
        """The other side ends the call: ``deleted`` / ``terminated`` with 200/4097.

        Pending operations get no notification (the bot learns from the call's end).
        A call that has already ended is left alone; KeyError for an unknown call.
        """
        self._service.caller_hangs_up(call_id)

    # -- HTTP ----------------------------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        call = _CALLS + "/{call_id}"
        participant = call + "/participants/{participant_id}"
        r = app.router
        r.add_post(_CALLS, self._create_call)
        r.add_get(call, self._get_call)
        r.add_delete(call, self._delete_call)
        r.add_post(call + "/{action}", self._call_action)
        r.add_get(call + "/participants", self._list_participants)
        r.add_post(call + "/participants/{action}", self._participants_action)
        r.add_get(participant, self._get_participant)
        r.add_delete(participant, self._remove_participant)
        r.add_post(participant + "/{action}", self._participant_action)
        r.add_get(call + "/operations/{operation_id}", self._get_operation)
        r.add_get("/recordings/{recording_id}", self._get_recording)
        r.add_get("/v1/.well-known/OpenIdConfiguration", self._openid_configuration)
        r.add_get("/v1/keys", self._jwks)
        add_control_routes(app, self)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        """Record, authenticate and fault API requests; render every error Graph's way."""
        request_id = new_guid(self._request_ids)
        client_request_id = request.headers.get("client-request-id")
        is_api = request.path.startswith(_API_PREFIXES)
        try:
            if is_api:
                await self._admit(request)
            elif _is_control(request.path):
                self._admit_control(request)
            response = await handler(request)
        except ConnectionResetError:
            # The client went away mid-request (a bot killed while it sent): Graph
            # never got the request, and nobody reads an answer. aiohttp's older
            # releases log this as a server error with a traceback.
            return web.Response(status=400)
        except GraphError as exc:
            response = _error_response(exc, request_id, client_request_id)
        except web.HTTPException as exc:
            # No route for this path or method: Graph's error shape all the same.
            error = error_for_status(exc.status)
            if exc.status == 404 and is_api:
                error = bad_request(f"Resource not found for the segment '{request.path}'.")
            response = _error_response(error, request_id, client_request_id)
        response.headers["request-id"] = request_id
        if client_request_id is not None:
            response.headers["client-request-id"] = client_request_id
        response.headers["x-ms-ags-diagnostic"] = _DIAGNOSTIC
        return response

    async def _admit(self, request: web.Request) -> None:
        """Record an API request, then refuse it for missing auth or an injected fault."""
        body, _ = _decode(await request.read())
        headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
        self.requests.append(RecordedRequest(request.method, request.path, body, headers))
        if self.require_auth:
            self._check_bearer(request)
        failure = self._plan.request_failure(request.method, request.path, self._rng)
        if failure is not None:
            raise error_for_status(failure.status, retry_after=failure.retry_after)

    def _admit_control(self, request: web.Request) -> None:
        """The control API can end the bot's calls and cue faults: when the emulator
        has an access token, control requests need it too."""
        if self._access_token is not None:
            self._check_bearer(request)

    def _check_bearer(self, request: web.Request) -> None:
        """A bearer token, and the access token when there is one; else Graph's 401."""
        token = bearer_token(request.headers.get("Authorization", ""))
        if token is None:
            raise unauthorized("Access token is empty.", token_given=False)
        if self._access_token is not None and not same_secret(token, self._access_token):
            raise unauthorized("Access token validation failure.", token_given=True)

    def _ctx(self, request: web.Request) -> Ctx:
        return Ctx(f"{self.base_url}{request.match_info['ver']}/", request.path)

    async def _create_call(self, request: web.Request) -> web.StreamResponse:
        return _reply(await self._service.create_call(self._ctx(request), await _body(request)))

    async def _get_call(self, request: web.Request) -> web.StreamResponse:
        return _reply(self._service.get_call(self._ctx(request), request.match_info["call_id"]))

    async def _delete_call(self, request: web.Request) -> web.StreamResponse:
        return _reply(self._service.delete_call(request.match_info["call_id"]))

    async def _call_action(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        reply = await self._service.call_action(
            self._ctx(request), m["call_id"], m["action"], await _body(request)
        )
        return _reply(reply)

    async def _list_participants(self, request: web.Request) -> web.StreamResponse:
        call_id = request.match_info["call_id"]
        return _reply(self._service.list_participants(self._ctx(request), call_id))

    async def _participants_action(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        reply = await self._service.participants_action(
            self._ctx(request), m["call_id"], m["action"], await _body(request)
        )
        return _reply(reply)

    async def _get_participant(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        return _reply(self._service.get_participant(m["call_id"], m["participant_id"]))

    async def _remove_participant(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        return _reply(self._service.remove_participant(m["call_id"], m["participant_id"]))

    async def _participant_action(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        reply = await self._service.participant_action(
            self._ctx(request), m["call_id"], m["participant_id"], m["action"], await _body(request)
        )
        return _reply(reply)

    async def _get_operation(self, request: web.Request) -> web.StreamResponse:
        m = request.match_info
        return _reply(self._service.get_operation(m["call_id"], m["operation_id"]))

    async def _get_recording(self, request: web.Request) -> web.StreamResponse:
        audio = self._service.recording(
            request.match_info["recording_id"], request.headers.get("Authorization", "")
        )
        return web.Response(body=audio, content_type="application/octet-stream")

    async def _openid_configuration(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "issuer": self.issuer,
                "jwks_uri": self.jwks_url,
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    async def _jwks(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self._signing_keys().jwks())

    def _signing_keys(self) -> SigningKeys:
        if self._keys is None:
            raise RuntimeError("the GraphEmulator is not started")
        return self._keys

    def _sign(self) -> str:
        return self._signing_keys().sign(
            issuer=self.issuer, audience=self.app_id, tenant_id=self.tenant_id
        )


def _is_control(path: str) -> bool:
    return path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/")


def _check_readable_operations(value: str) -> None:
    if value not in READABLE_OPERATIONS:
        raise ValueError(f"readable_operations must be one of {READABLE_OPERATIONS}, got {value!r}")


def _decode(raw: bytes) -> tuple[Any, bool]:
    """The JSON in a body (None when empty) and whether it parsed."""
    if not raw.strip():
        return None, True
    try:
        return json.loads(raw), True
    except ValueError:
        return None, False


async def _body(request: web.Request) -> JSON:
    """The request's JSON object ({} when empty); 400 when it is not one."""
    body, ok = _decode(await request.read())
    if not ok:
        raise bad_request("Unable to read JSON request payload.")
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


def _reply(reply: Reply) -> web.Response:
    headers = {"Location": reply.location} if reply.location is not None else {}
    if reply.body is None:
        return web.Response(status=reply.status, headers=headers)
    return web.json_response(reply.body, status=reply.status, headers=headers)


def _error_response(
    error: GraphError, request_id: str, client_request_id: str | None
) -> web.Response:
    headers = {"Retry-After": str(error.retry_after)} if error.retry_after is not None else {}
    if error.challenge is not None:
        headers["WWW-Authenticate"] = error.challenge
    return web.json_response(
        error_body(error, request_id=request_id, client_request_id=client_request_id),
        status=error.status,
        headers=headers,
    )


async def run_emulator(
    port: int,
    host: str = "127.0.0.1",
    seed: int = 0,
    *,
    bot_webhook_url: str | None = None,
    access_token: str | None = None,
    readable_operations: ReadableOperations = "documented",
    prompt_seconds: float = 0.05,
    keep_alive_window: float | None = DEFAULT_KEEP_ALIVE_WINDOW,
) -> None:
    """Serve a GraphEmulator until cancelled, printing its URLs first (never the token)."""
    async with GraphEmulator(
        host=host,
        port=port,
        seed=seed,
        bot_webhook_url=bot_webhook_url,
        access_token=access_token,
        readable_operations=readable_operations,
        prompt_seconds=prompt_seconds,
        keep_alive_window=keep_alive_window,
    ) as emulator:
        tokens = "the one given" if access_token is not None else "any non-empty bearer token"
        control = "the API access token" if access_token is not None else "no token"
        window = "never" if keep_alive_window is None else f"after {keep_alive_window:g} s"
        print(
            "graphcomms Graph emulator\n"
            f"  Graph v1.0:           {emulator.graph_url}\n"
            f"  Graph beta:           {emulator.beta_url}\n"
            f"  OpenID configuration: {emulator.openid_configuration_url}\n"
            f"  JWKS:                 {emulator.jwks_url}\n"
            f"  control API:          {emulator.control_url} (needs {control})\n"
            f"  bot webhook (incoming calls): {bot_webhook_url or 'none'}\n"
            f"  notification audience (app id): {emulator.app_id}\n"
            f"  API access token: {tokens}\n"
            f"  operations read back: {readable_operations}\n"
            f"  calls without a keepAlive end: {window}",
            flush=True,
        )
        await asyncio.Event().wait()
