"""The webhook flood (issue #6): a load generator in another process throws valid,
forged and malformed notification POSTs at the real receiver, as fast as it can.

``python -m qa flood`` runs :func:`run_flood`. The receiver (token validation
on, against the emulator's signing keys) and a real ``CommsClient`` as its sink run in
this process; the generator is ``sys.executable`` running :func:`_generator_main`, on
loopback only, for a bounded time and count. What it proves:

* the webhook keeps answering: every request gets its right status (202 valid,
  401/403 forged, 400/413 malformed), none fails or times out, and a genuine
  notification sent from this process during the flood is still answered quickly;
* only the valid requests are dispatched: every body the client is fed carries the
  marker of a valid one, and their number is the number of 202s;
* memory stays bounded: the early-notification buffer and the accepted-token cache
  stay within their caps, and traced memory stops growing once they are full
  (tracemalloc and RSS measured across the flood, in the receiver's process).

Caps are set small here (``early_limit``, ``token_cache_size``) so a short flood fills
them; the defaults (10,000 each) are bounded the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import os
import random
import sys
import time
import tracemalloc
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import urlsplit

import aiohttp

__all__ = ["FloodReport", "run_flood"]

_ROOT: Final = Path(__file__).resolve().parent.parent
_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})
_VALID_MARKER: Final = "valid"
_PROBE_MARKER: Final = "probe"

# What each kind of request must be answered with.
_EXPECTED: Final[Mapping[str, frozenset[int]]] = {
    "valid": frozenset({202}),
    "forged": frozenset({401, 403}),
    "malformed": frozenset({400, 413}),
}


@dataclass(eq=False)
class MemorySample:
    """One reading of the receiver process while the flood runs."""

    at: float  # seconds since the flood started
    handled: int  # requests the receiver had answered
    rss_mib: float | None
    traced_mib: float | None
    early_pending: int
    cached_tokens: int
    call_handles: int


@dataclass
class FloodReport:
    """What a flood run saw. ``ok`` is True when ``violations`` is empty."""

    seconds: float = 0.0
    concurrency: int = 0
    elapsed: float = 0.0
    sent: int = 0
    statuses: dict[str, Counter[str]] = field(default_factory=dict)
    variants: dict[str, Counter[str]] = field(default_factory=dict)
    transport_errors: Counter[str] = field(default_factory=Counter)
    generator_latency_ms: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    receiver_stats: dict[str, int] = field(default_factory=dict)
    validator_stats: dict[str, int] = field(default_factory=dict)
    dispatched: int = 0
    dispatched_items: int = 0
    foreign_dispatches: int = 0
    probes: int = 0
    probe_failures: int = 0
    probe_latency_ms: tuple[float, float, float] = (0.0, 0.0, 0.0)
    early_limit: int = 0
    token_cache_size: int = 0
    call_pool: int = 0
    samples: list[MemorySample] = field(default_factory=list)
    warm_index: int | None = None
    traced_growth_after_warm_mib: float | None = None
    rss_growth_after_warm_mib: float | None = None
    server_cpu_s: float = 0.0
    generator_cpu_s: float = 0.0
    rss_before_mib: float | None = None
    rss_after_mib: float | None = None
    log_records: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed > 0 else 0.0

    def violation(self, text: str) -> None:
        self.violations.append(text)

    def render(self) -> str:
        """The final report, as printed."""
        return "\n".join(
            [*self._render_traffic(), "", *self._render_memory(), "", *self._render_verdict()]
        )

    def _render_traffic(self) -> list[str]:
        lines = [
            "",
            f"graphcomms flood: {self.sent} requests in {self.elapsed:.1f} s "
            f"= {self.rate:.0f} requests/s ({self.concurrency} connections, one process)",
            f"  receiver process CPU {self.server_cpu_s:.1f} s"
            f" = {self.server_cpu_s / max(self.sent, 1) * 1e6:.0f} us per request"
            f" (about {self.sent / max(self.server_cpu_s, 1e-9):.0f} requests/s per core);"
            f" generator process CPU {self.generator_cpu_s:.1f} s",
            "",
            "  kind        sent    req/s   answered                       p50 ms  p99 ms",
        ]
        for kind in ("valid", "forged", "malformed"):
            counts = self.statuses.get(kind, Counter())
            n = sum(counts.values())
            answered = ", ".join(f"{s}: {c}" for s, c in sorted(counts.items()))
            p50, p99, _ = self.generator_latency_ms.get(kind, (0.0, 0.0, 0.0))
            rate = n / self.elapsed if self.elapsed > 0 else 0.0
            lines.append(
                f"  {kind:<10}{n:>6} {rate:>8.0f}   {answered:<30} {p50:>6.1f} {p99:>7.1f}"
            )
        for kind in ("valid", "forged", "malformed"):
            detail = ", ".join(f"{v} {c}" for v, c in sorted(self.variants.get(kind, {}).items()))
            lines.append(f"    {kind} variants: {detail}")
        if self.transport_errors:
            lines.append(f"  transport errors: {dict(self.transport_errors)}")
        p50, p99, top = self.probe_latency_ms
        lines += [
            "",
            f"  dispatched to the client: {self.dispatched} bodies ({self.dispatched_items} "
            f"items), of them not from a valid request: {self.foreign_dispatches}",
            f"  genuine notifications sent during the flood: {self.probes}, failed "
            f"{self.probe_failures}, latency p50 {p50:.1f} / p99 {p99:.1f} / max {top:.1f} ms",
            "  receiver  " + "  ".join(f"{k} {v}" for k, v in self.receiver_stats.items()),
            "  validator " + "  ".join(f"{k} {v}" for k, v in self.validator_stats.items()),
        ]
        if self.log_records:
            lines.append(
                "  log records (suppressed during the flood): "
                + ", ".join(f"{k} {v}" for k, v in self.log_records.most_common())
            )
        return lines

    def _render_memory(self) -> list[str]:
        lines = [
            f"  memory of the receiver's process (caps: early buffer {self.early_limit}, "
            f"token cache {self.token_cache_size}, call pool {self.call_pool})",
            "      at s   handled   RSS MiB  traced MiB   early  tokens  calls",
        ]
        warm = self.samples[self.warm_index] if self.warm_index is not None else None
        shown = _checkpoints(self.samples)
        if warm is not None and warm not in shown:
            shown = sorted([*shown, warm], key=lambda s: s.at)
        for sample in shown:
            mark = "  <- caps full" if sample is warm else ""
            rss = "n/a" if sample.rss_mib is None else f"{sample.rss_mib:.1f}"
            traced = "n/a" if sample.traced_mib is None else f"{sample.traced_mib:.2f}"
            lines.append(
                f"    {sample.at:6.1f} {sample.handled:>9} {rss:>9} {traced:>11} "
                f"{sample.early_pending:>7} {sample.cached_tokens:>7} {sample.call_handles:>6}"
                f"{mark}"
            )
        before = "n/a" if self.rss_before_mib is None else f"{self.rss_before_mib:.1f} MiB"
        after = "n/a" if self.rss_after_mib is None else f"{self.rss_after_mib:.1f} MiB"
        lines.append(f"  RSS before the flood {before}, after {after}")
        if self.traced_growth_after_warm_mib is not None:
            rss_growth = self.rss_growth_after_warm_mib
            lines.append(
                f"  largest growth after the caps filled: traced "
                f"{self.traced_growth_after_warm_mib:+.2f} MiB, RSS "
                + ("n/a" if rss_growth is None else f"{rss_growth:+.1f} MiB")
            )
        return lines

    def _render_verdict(self) -> list[str]:
        if self.ok:
            return ["OK: every check passed"]
        return [
            f"FAILED: {len(self.violations)} violation(s)",
            *(f"  - {text}" for text in self.violations[:40]),
        ]


def _checkpoints(samples: Sequence[MemorySample]) -> list[MemorySample]:
    """About ten samples spread over the run, first and last included."""
    if len(samples) <= 10:
        return list(samples)
    step = (len(samples) - 1) / 9
    picked = [samples[round(i * step)] for i in range(10)]
    return list(dict.fromkeys(picked))


def _percentiles(values: Sequence[float]) -> tuple[float, float, float]:
    if not values:
        return (0.0, 0.0, 0.0)
    ordered = sorted(values)
    return (
        ordered[len(ordered) // 2],
        ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
        ordered[-1],
    )


def _rss_mib() -> float | None:
    """This process's resident set now (Linux /proc), None elsewhere."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            pages = int(statm.read().split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


# -- the sink: what reaches the client ------------------------------------------------------


class _CheckingSink:
    """Feeds the client, counting bodies and noting any that no valid request sent."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.bodies = 0
        self.items = 0
        self.foreign = 0

    def feed(self, payload: Any, /) -> object:
        marker = payload.get("floodMarker") if isinstance(payload, Mapping) else None
        result = self._client.feed(payload)
        # Counted after the feed: a body the client refuses was not dispatched.
        self.bodies += 1
        self.items += int(result)
        if marker not in (_VALID_MARKER, _PROBE_MARKER):
            self.foreign += 1
        return result


# -- tokens ---------------------------------------------------------------------------------


@dataclass
class _Tokens:
    valid: list[str]
    forged: list[tuple[str, str | None]]  # (variant, Authorization header or None)


def _mint_tokens(emulator: Any, count: int) -> _Tokens:
    """Distinct valid tokens (each fills one token-cache slot) and forged headers.

    Runs in a thread: RSA signing takes a millisecond or two per token.
    """
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    valid = [emulator.make_token(jti=f"flood-{i}") for i in range(count)]
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    # The right claims, unsigned: the emulator's own, read back from one of its tokens.
    claims = jwt.decode(valid[0], options={"verify_signature": False})
    claims.pop("jti", None)
    forged: list[tuple[str, str | None]] = [
        ("no token", None),
        ("not bearer", "Basic Zm9vOmJhcg=="),
        ("garbage", "Bearer not.a.jwt!"),
        ("alg none", "Bearer " + jwt.encode(claims, "", algorithm="none")),
    ]
    for i in range(32):
        # Our kid, an attacker's key: each costs the receiver one RSA verification.
        token = emulator.make_token(signing_key=attacker, jti=f"forged-{i}")
        forged.append(("bad signature", f"Bearer {token}"))
    unknown = emulator.make_token(signing_key=attacker, kid="attacker-key")
    forged.append(("unknown key", f"Bearer {unknown}"))
    forged.append(("expired", f"Bearer {emulator.make_token(lifetime=-3600)}"))
    forged.append(("wrong issuer", f"Bearer {emulator.make_token(iss='https://evil.example')}"))
    forged.append(("wrong audience", f"Bearer {emulator.make_token(aud='another-app')}"))
    forged.append(("no tenant", f"Bearer {emulator.make_token(tid=None)}"))
    return _Tokens(valid=valid, forged=forged)


# -- the server side ---------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_graphcomms_logs() -> Iterator[Counter[str]]:
    """Count graphcomms' log records instead of passing them on, for the flood only.

    The receiver logs every refusal; thousands per second written to stderr, or kept by
    a test's log capture, would dominate both the CPU and the memory being measured.
    """
    counts: Counter[str] = Counter()

    class _Count(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            counts[record.levelname.lower()] += 1

    logger = logging.getLogger("graphcomms")
    handler = _Count(logging.DEBUG)
    saved = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield counts
    finally:
        logger.propagate = saved
        logger.removeHandler(handler)


def _call_body(call_id: str, marker: str) -> bytes:
    return json.dumps(
        {
            "floodMarker": marker,
            "value": [
                {
                    "@odata.type": "#microsoft.graph.commsNotification",
                    "changeType": "updated",
                    "resourceUrl": f"/communications/calls/{call_id}",
                    "resourceData": {
                        "@odata.type": "#microsoft.graph.call",
                        "state": "established",
                    },
                }
            ],
        }
    ).encode()


def _valid_body(call_id: str, marker: str) -> bytes:
    """A terminal operation notification for an operation nobody tracks: it goes to the
    early buffer, which is what a flood of them must not grow without bound."""
    op_id = str(uuid.uuid4())
    return json.dumps(
        {
            "floodMarker": marker,
            "value": [
                {
                    "@odata.type": "#microsoft.graph.commsNotification",
                    "changeType": "deleted",
                    "resourceUrl": f"/communications/calls/{call_id}/operations/{op_id}",
                    "resourceData": {
                        "@odata.type": "#microsoft.graph.playPromptOperation",
                        "id": op_id,
                        "status": "completed",
                        "resultInfo": {"code": 200, "subcode": 0},
                    },
                }
            ],
        }
    ).encode()


async def _probe_during(
    url: str, token: str, stop: asyncio.Event, report: FloodReport, call_id: str
) -> None:
    """A genuine notification every 100 ms from this process: the receiver must keep
    answering real traffic while it is flooded."""
    latencies: list[float] = []
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                async with session.post(
                    url, data=_valid_body(call_id, _PROBE_MARKER), headers=headers
                ) as response:
                    await response.read()
                    ok = response.status == 202
            except (aiohttp.ClientError, asyncio.TimeoutError):
                ok = False
            report.probes += 1
            if ok:
                latencies.append((time.perf_counter() - started) * 1000)
            else:
                report.probe_failures += 1
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.1)
    report.probe_latency_ms = _percentiles(latencies)


async def run_flood(
    *,
    seconds: float = 10.0,
    requests: int | None = None,
    concurrency: int = 48,
    seed: int = 0,
    out: IO[str] | None = None,
    mix: tuple[float, float, float] = (0.4, 0.3, 0.3),
    valid_tokens: int = 600,
    token_cache_size: int = 256,
    early_limit: int = 1_000,
    call_pool: int = 50,
    max_body_size: int = 64 * 1024,
    trace_memory: bool = False,
    max_traced_growth_mib: float = 2.0,
    max_rss_growth_mib: float = 8.0,
    min_rate: float | None = None,
) -> FloodReport:
    """Flood the webhook for ``seconds`` (or ``requests`` requests, whichever ends first).

    ``mix`` is the share of valid, forged and malformed requests; ``concurrency`` the
    generator's connections. The receiver's caps are ``early_limit`` notifications and
    ``token_cache_size`` tokens; ``valid_tokens`` distinct valid tokens are used, so the
    cache has to evict. Once both caps are full, the receiver's RSS may grow at most
    ``max_rss_growth_mib`` more; with ``trace_memory`` (exact, but it slows the receiver
    two to three times) traced allocations may grow at most ``max_traced_growth_mib``.
    ``min_rate`` (requests/s), when given, is also checked.
    """
    from aiohttp import web

    from graphcomms import CommsClient, Limits, TrackingSettings
    from graphcomms.testing._emulator import GraphEmulator
    from graphcomms.webhook import (
        NotificationReceiver,
        TokenValidationSettings,
        TokenValidator,
        make_app,
    )

    if min(mix) < 0 or abs(sum(mix) - 1.0) > 1e-6:
        raise ValueError(f"mix is three shares summing to 1, got {mix!r}")
    stream = out if out is not None else sys.stdout
    report = FloodReport(
        seconds=seconds,
        concurrency=concurrency,
        early_limit=early_limit,
        token_cache_size=token_cache_size,
        call_pool=call_pool,
    )
    print(
        f"graphcomms flood: up to {seconds:.0f} s of valid/forged/malformed requests "
        f"({mix[0]:.0%}/{mix[1]:.0%}/{mix[2]:.0%}) from another process",
        file=stream,
        flush=True,
    )
    async with GraphEmulator(seed=seed) as emulator:
        tokens = await asyncio.to_thread(_mint_tokens, emulator, valid_tokens)
        validator = TokenValidator(
            TokenValidationSettings(
                app_id=emulator.app_id,
                openid_configuration_url=emulator.openid_configuration_url,
                issuers=frozenset({emulator.issuer}),
                token_cache_size=token_cache_size,
            )
        )
        # The client is only a sink here: it never sends a request.
        async with CommsClient(
            "flood",
            base_url=emulator.graph_url,
            tracking=TrackingSettings(reconcile_after=None),
            limits=Limits(early_notifications=early_limit),
        ) as client:
            sink = _CheckingSink(client)
            receiver = NotificationReceiver(sink, validator, max_body_size=max_body_size)
            runner = web.AppRunner(make_app(receiver), access_log=None)
            await runner.setup()
            try:
                site = web.TCPSite(runner, "127.0.0.1", 0)
                await site.start()
                url = f"http://127.0.0.1:{runner.addresses[0][1]}/callback"
                print(f"  webhook {url} (token validation on)", file=stream, flush=True)
                ids = random.Random(f"{seed}/calls")  # noqa: S311 - determinism, not secrecy
                calls = [str(uuid.UUID(int=ids.getrandbits(128))) for _ in range(call_pool)]
                config = {
                    "url": url,
                    "seconds": seconds,
                    "requests": requests,
                    "concurrency": concurrency,
                    "seed": seed,
                    "mix": list(mix),
                    "valid_tokens": tokens.valid,
                    "forged": tokens.forged,
                    "calls": calls,
                    "max_body_size": max_body_size,
                }
                await _flood(
                    config=config,
                    report=report,
                    receiver=receiver,
                    validator=validator,
                    client=client,
                    trace_memory=trace_memory,
                    stream=stream,
                )
            finally:
                await runner.cleanup()
            report.dispatched = sink.bodies
            report.dispatched_items = sink.items
            report.foreign_dispatches = sink.foreign
            rs = receiver.stats
            report.receiver_stats = {
                "accepted": rs.accepted,
                "401": rs.rejected_auth,
                "403": rs.rejected_forbidden,
                "400": rs.malformed,
                "413": rs.too_large,
                "failed": rs.failed,
            }
            vs = validator.stats
            report.validator_stats = {
                "verifications": vs.verifications,
                "cache_hits": vs.cache_hits,
                "key_fetches": vs.key_fetches,
            }
            notifications = client.stats.notifications
    _check(report, notifications, max_traced_growth_mib, max_rss_growth_mib, min_rate)
    print(report.render(), file=stream, flush=True)
    return report


async def _flood(
    *,
    config: dict[str, Any],
    report: FloodReport,
    receiver: Any,
    validator: Any,
    client: Any,
    trace_memory: bool,
    stream: IO[str],
) -> None:
    seconds = float(config["seconds"])
    # Keys are fetched, and the first valid token checked, before measuring: that is
    # start-up, not the flood.
    await validator.refresh_keys()
    await validator.validate(config["valid_tokens"][0])
    gc.collect()
    report.rss_before_mib = _rss_mib()
    cpu_before = time.process_time()
    stop = asyncio.Event()
    started = time.perf_counter()
    samples = report.samples

    def sample() -> None:
        rs = receiver.stats
        traced = tracemalloc.get_traced_memory()[0] / (1024 * 1024) if trace_memory else None
        samples.append(
            MemorySample(
                at=time.perf_counter() - started,
                handled=rs.accepted
                + rs.rejected_auth
                + rs.rejected_forbidden
                + rs.malformed
                + rs.too_large
                + rs.failed
                + rs.legacy,
                rss_mib=_rss_mib(),
                traced_mib=traced,
                early_pending=client.stats.early_pending,
                # No public size for the token cache; see the report to the lead.
                cached_tokens=validator.cached_tokens,
                call_handles=client.stats.live_calls + client.stats.untracked_calls,
            )
        )

    async def sampler() -> None:
        while not stop.is_set():
            sample()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.25)

    with _quiet_graphcomms_logs() as log_counts:
        if trace_memory:
            tracemalloc.start()
        try:
            sampling = asyncio.create_task(sampler(), name="flood-sampler")
            probing = asyncio.create_task(
                _probe_during(
                    config["url"], config["valid_tokens"][0], stop, report, config["calls"][0]
                ),
                name="flood-probe",
            )
            try:
                result, errors = await _run_generator(config, timeout=seconds + 60)
            finally:
                stop.set()
                await asyncio.gather(sampling, probing, return_exceptions=True)
            report.server_cpu_s = time.process_time() - cpu_before
            gc.collect()
            sample()
        finally:
            if trace_memory:
                tracemalloc.stop()
    report.rss_after_mib = _rss_mib()
    report.log_records = log_counts
    if result is None:
        report.violation(f"the load generator failed: {errors.strip()[-500:]}")
        return
    report.elapsed = float(result["elapsed"])
    report.sent = int(result["sent"])
    report.generator_cpu_s = float(result.get("cpu", 0.0))
    report.statuses = {k: Counter(v) for k, v in result["statuses"].items()}
    report.variants = {k: Counter(v) for k, v in result["variants"].items()}
    report.transport_errors = Counter(result["errors"])
    report.generator_latency_ms = {
        k: (float(v[0]), float(v[1]), float(v[2])) for k, v in result["latency_ms"].items()
    }
    print(
        f"  generator done: {report.sent} requests in {report.elapsed:.1f} s",
        file=stream,
        flush=True,
    )


async def _run_generator(
    config: dict[str, Any], *, timeout: float
) -> tuple[dict[str, Any] | None, str]:
    """Run the generator in a child process; its JSON result, or None and its stderr."""
    code = "from qa.flood import _generator_main; _generator_main()"
    # qa is a folder of the repository, not an installed package: the child finds it
    # through PYTHONPATH, wherever the parent was started from.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_ROOT), env.get("PYTHONPATH")]))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        stdout, stderr = await asyncio.wait_for(
            proc.communicate(json.dumps(config).encode()), timeout=timeout
        )
    except BaseException:
        # Bounded: never leave the generator running behind us.
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        raise
    errors = stderr.decode(errors="replace")
    if proc.returncode != 0:
        return None, errors or f"exit status {proc.returncode}"
    try:
        result: dict[str, Any] = json.loads(stdout)
    except ValueError:
        return None, f"unreadable result: {stdout[:200]!r} {errors}"
    return result, errors


def _check(
    report: FloodReport,
    notifications: int,
    max_traced_growth_mib: float,
    max_rss_growth_mib: float,
    min_rate: float | None,
) -> None:
    if not report.sent:
        return  # the generator failed: already a violation
    for kind, counts in report.statuses.items():
        wrong = {s: n for s, n in counts.items() if int(s) not in _EXPECTED[kind]}
        if wrong:
            report.violation(f"{kind} requests answered {wrong}")
    if report.transport_errors:
        report.violation(f"requests without an answer: {dict(report.transport_errors)}")
    if report.foreign_dispatches:
        report.violation(f"{report.foreign_dispatches} bodies dispatched from invalid requests")
    accepted_valid = report.statuses.get("valid", Counter()).get("202", 0)
    probes_ok = report.probes - report.probe_failures
    if report.dispatched != accepted_valid + probes_ok:
        report.violation(
            f"{report.dispatched} bodies dispatched for {accepted_valid} valid requests "
            f"and {probes_ok} probes"
        )
    if notifications != report.dispatched_items:
        report.violation(f"the client saw {notifications} items, {report.dispatched_items} fed")
    if report.probe_failures:
        report.violation(f"{report.probe_failures} genuine notifications failed during the flood")
    samples = report.samples
    if samples:
        worst_early = max(s.early_pending for s in samples)
        worst_tokens = max(s.cached_tokens for s in samples)
        worst_calls = max(s.call_handles for s in samples)
        if worst_early > report.early_limit:
            report.violation(f"early buffer reached {worst_early} > cap {report.early_limit}")
        if worst_tokens > report.token_cache_size:
            report.violation(f"token cache reached {worst_tokens} > cap {report.token_cache_size}")
        if worst_calls > report.call_pool:
            report.violation(f"{worst_calls} call handles for {report.call_pool} calls")
        _check_growth(report, max_traced_growth_mib, max_rss_growth_mib)
    if min_rate is not None and report.rate < min_rate:
        report.violation(f"{report.rate:.0f} requests/s, below {min_rate:.0f}")


def _check_growth(
    report: FloodReport, max_traced_growth_mib: float, max_rss_growth_mib: float
) -> None:
    """Once both caps are full, memory must stop growing with the number of requests."""
    samples = report.samples
    warm = next(
        (
            i
            for i, s in enumerate(samples)
            if s.early_pending >= report.early_limit and s.cached_tokens >= report.token_cache_size
        ),
        None,
    )
    if warm is None:
        report.violation("the flood was too short to fill the caps; nothing proved about memory")
        return
    report.warm_index = warm
    first, later = samples[warm], samples[warm:]
    if later[-1].handled - first.handled < first.handled:
        # As many requests after the caps filled as before, or the plateau proves little.
        report.violation(
            f"only {later[-1].handled - first.handled} requests after the caps filled "
            f"(vs {first.handled} before); flood longer"
        )
    # The highest reading after the caps filled, not the last (taken after a collection).
    rss = [s.rss_mib for s in later if s.rss_mib is not None]
    if first.rss_mib is not None and rss:
        # RSS is coarse (allocator arenas, fragmentation), hence its looser limit.
        report.rss_growth_after_warm_mib = rss_growth = max(rss) - first.rss_mib
        if rss_growth > max_rss_growth_mib:
            report.violation(
                f"RSS grew {rss_growth:.1f} MiB after the caps filled "
                f"(limit {max_rss_growth_mib} MiB)"
            )
    traced = [s.traced_mib for s in later if s.traced_mib is not None]
    if first.traced_mib is not None and traced:
        report.traced_growth_after_warm_mib = growth = max(traced) - first.traced_mib
        if growth > max_traced_growth_mib:
            report.violation(
                f"traced memory grew {growth:.2f} MiB after the caps filled "
                f"(limit {max_traced_growth_mib} MiB)"
            )


# -- the load generator (runs in the child process) ------------------------------------------------


def _generator_main() -> None:
    """Entry point of the child: config as JSON on stdin, result as JSON on stdout."""
    config = json.loads(sys.stdin.buffer.read())
    result = asyncio.run(_Generator(config).run())
    sys.stdout.write(json.dumps(result))
    sys.stdout.flush()


_MALFORMED: Final[tuple[tuple[str, bytes], ...]] = (
    ("not json", b'{"floodMarker": "malformed", "value": ['),
    ("json array", b'[{"floodMarker": "malformed"}]'),
    ("no value list", b'{"floodMarker": "malformed", "notifications": []}'),
    ("value not a list", b'{"floodMarker": "malformed", "value": 7}'),
    ("deeply nested", b"[" * 20_000),
    ("bad utf-8", b'\xff\xfe{"floodMarker": "malformed", "value": []}'),
)


class _Generator:
    """The child's side: builds each request from the seed and sends it."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.url = str(config["url"])
        host = urlsplit(self.url).hostname
        if host not in _LOOPBACK:
            raise SystemExit(f"the flood generator only targets loopback, not {host!r}")
        self.rng = random.Random(f"{config['seed']}/flood")  # noqa: S311 - not a secret
        self.seconds = float(config["seconds"])
        self.limit: int | None = config["requests"]
        self.concurrency = int(config["concurrency"])
        self.share_valid, self.share_forged, _ = (float(x) for x in config["mix"])
        self.valid_tokens: list[str] = config["valid_tokens"]
        self.forged: list[tuple[str, str | None]] = [(v, a) for v, a in config["forged"]]
        self.calls: list[str] = config["calls"]
        self.oversize = b"x" * (int(config["max_body_size"]) + 1)
        self.statuses: dict[str, Counter[str]] = defaultdict(Counter)
        self.variants: dict[str, Counter[str]] = defaultdict(Counter)
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter[str] = Counter()
        self.sent = 0
        self.valid_at = 0
        self.deadline = 0.0

    def next_request(self) -> tuple[str, str, dict[str, str], bytes]:
        rng = self.rng
        draw = rng.random()
        headers = {"Content-Type": "application/json"}
        if draw < self.share_valid:
            # Cycling through the tokens in order makes every cached one stale before
            # its turn comes again: the cache has to evict.
            token = self.valid_tokens[self.valid_at % len(self.valid_tokens)]
            self.valid_at += 1
            headers["Authorization"] = f"Bearer {token}"
            call = rng.choice(self.calls)
            if rng.random() < 0.1:
                # Call state on the bot's own calls: a bounded set of call handles.
                return "valid", "call", headers, _call_body(call, _VALID_MARKER)
            return "valid", "operation", headers, _valid_body(call, _VALID_MARKER)
        if draw < self.share_valid + self.share_forged:
            variant, authorization = rng.choice(self.forged)
            if authorization is not None:
                headers["Authorization"] = authorization
            # A body that would be dispatched if the token were not checked.
            return "forged", variant, headers, _valid_body(rng.choice(self.calls), "forged")
        headers["Authorization"] = f"Bearer {rng.choice(self.valid_tokens)}"
        if rng.random() < 0.02:
            return "malformed", "too large", headers, self.oversize
        variant, body = rng.choice(_MALFORMED)
        return "malformed", variant, headers, body

    async def worker(self, session: aiohttp.ClientSession) -> None:
        # Bounded by the deadline and by the request limit.
        while time.perf_counter() < self.deadline and (
            self.limit is None or self.sent < self.limit
        ):
            self.sent += 1
            kind, variant, headers, body = self.next_request()
            self.variants[kind][variant] += 1
            started = time.perf_counter()
            try:
                async with session.post(self.url, data=body, headers=headers) as response:
                    await response.read()
                    self.statuses[kind][str(response.status)] += 1
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self.errors[f"{kind}: {type(exc).__name__}"] += 1
                continue
            self.latencies[kind].append((time.perf_counter() - started) * 1000)

    async def run(self) -> dict[str, Any]:
        begun = time.perf_counter()
        cpu = time.process_time()
        self.deadline = begun + self.seconds
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await asyncio.gather(*(self.worker(session) for _ in range(self.concurrency)))
        return {
            "elapsed": time.perf_counter() - begun,
            "cpu": time.process_time() - cpu,
            "sent": self.sent,
            "statuses": {k: dict(v) for k, v in self.statuses.items()},
            "variants": {k: dict(v) for k, v in self.variants.items()},
            "errors": dict(self.errors),
            "latency_ms": {k: list(_percentiles(v)) for k, v in self.latencies.items()},
        }
