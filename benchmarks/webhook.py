"""Comparison 3: webhook ingest with token validation, under load from another process.

Three processes: this one only steers; the server process (``benchmarks._server``)
serves both endpoints; the load process (``benchmarks._load``) sends the notifications
at a fixed concurrency and times them. Rounds alternate between ``/graphcomms`` and
``/bare`` on the same server, so both share its process, heap and warm-up.

The platform reuses a callback token for its lifetime, so every request carries the
same signed token: one RSA verification, then the validator's cache (the server's
counters are in the row's ``extra``). Each ``/graphcomms`` notification resolves a
pending tracker with a task awaiting it, on a client in steady state (see
``benchmarks._server``). Through sockets and three processes, this row's spread is
wide: it runs ``network_repeats`` rounds.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from benchmarks._harness import Row, Series, Sizes, Target, compare
from benchmarks._procs import Child
from benchmarks._server import ISSUER, KEY_ID

__all__ = ["run_webhook"]

WEBHOOK_TARGET = Target(">=", 0.9)

APP_ID = "6f1c3a52-9b1e-4d2b-8c55-0e4f2a7d9b10"
TENANT_ID = "7a2d4f80-3c1b-4e5f-9a6d-2b8c0e1f4a37"


def _key_and_token() -> tuple[dict[str, Any], str]:
    """An RSA key's public JWK and a platform-style token it signed."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa
    from jwt.algorithms import RSAAlgorithm

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**json.loads(RSAAlgorithm.to_jwk(key.public_key())), "kid": KEY_ID, "use": "sig"}
    now = int(time.time())
    claims = {
        "aud": APP_ID,
        "iss": ISSUER,
        "tid": TENANT_ID,
        "iat": now - 10,
        "nbf": now - 10,
        "exp": now + 3600,
    }
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": KEY_ID})
    return jwk, token


def run_webhook(sizes: Sizes) -> list[Row]:
    row = Row(
        key="webhook",
        title=f"3. webhook, tokens checked, concurrency {sizes.concurrency}, vs bare aiohttp",
        target=WEBHOOK_TARGET,
        ratio_meaning="graphcomms throughput / bare handler throughput",
    )
    n = sizes.webhook_n
    jwk, token = _key_and_token()
    call_id = uuid.uuid4().hex
    server_config = {
        "kind": "webhook",
        "jwk": jwk,
        "app_id": APP_ID,
        "call_id": call_id,
        "finished_limit": sizes.finished_limit,
        "deadline_s": 3600,
    }
    rounds = 0
    with Child("benchmarks._server", server_config) as server:
        started = server.receive(timeout=600)  # filling finished-work memory first
        port = started["port"]
        load_config = {
            "port": port,
            "token": token,
            "call_id": call_id,
            "concurrency": sizes.concurrency,
            "deadline_s": 3600,
        }
        with Child("benchmarks._load", load_config) as load:
            load.receive(timeout=60)
            next_start = 0

            def send(path: str) -> float:
                nonlocal next_start, rounds
                start = next_start
                if path == "/graphcomms":
                    # Each notification resolves a tracker, awaited by a task, made for
                    # it before the round: never the same one twice.
                    server.request({"cmd": "prepare", "start": start, "count": n}, 600)
                    next_start += n
                    rounds += 1
                result = load.request({"path": path, "start": start, "count": n}, 600)
                if result["statuses"] != {"202": n}:
                    raise RuntimeError(f"{path} answered {result['statuses']}, not {n} x 202")
                return n / float(result["seconds"])

            async def ours_round() -> float:
                return send("/graphcomms")

            async def bare_round() -> float:
                return send("/bare")

            asyncio.run(
                compare(
                    row,
                    (Series("graphcomms receiver", "req/s"), ours_round),
                    (Series("bare handler", "req/s"), bare_round),
                    repeats=sizes.network_repeats,
                )
            )
            stats = server.request({"cmd": "stats"}, 60)
    expected = n * rounds
    if stats["pending"] != 0 or stats["woken"] != expected or stats["failed_waits"]:
        raise RuntimeError(f"not every notification resolved and woke its tracker: {stats}")
    row.extra.update(
        n_per_round=n,
        finished_limit=started["finished_limit"],
        token_verifications=stats["token_verifications"],
        token_cache_hits=stats["token_cache_hits"],
    )
    return [row]
