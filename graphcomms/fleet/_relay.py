"""``Relay``: one bot instance of a fleet, on Redis (DESIGN §7).

What it does, each in one place below:

- **Ownership.** An instance owns the operations it issues (the ``clientContext`` it
  generates starts with its incarnation, ``iid.gen.``, which Graph echoes) and the
  calls it creates or answers (``call:{key} -> iid``, and the callback URLs it gives
  Graph name it: ``?gcInstance=iid``).
- **Routing** (:meth:`Relay.deliver`, called by the webhook after the token passed):
  this instance's items are applied at once through the client's synchronous feed;
  the others are XADDed to their owner's inbox stream before the webhook answers 202.
  When that fails the webhook answers 503 so that the platform may redeliver.
- **Inbox** (:meth:`Relay._read_inbox`): a consumer group per inbox; an entry is
  acknowledged (XACK) and deleted (XDEL) only after it was applied here. After a lost
  connection the reader starts from its pending entries again.
- **Persistence** (write-behind): pending operations and owned calls are records in
  ``state:{iid}``, written in batches by one task, never on the notification path.
- **Identity**: ``lock:{iid}`` (SET NX PX, renewed by the heartbeat) keeps one process
  per identity; ``live`` holds every instance's lease.
- **Recovery**: a process starting under an identity takes its records back as
  trackers and call handles marked ``recovered``, reads its inbox from the start, reads
  back what Graph serves, and hands it all to ``on_recovered``. An instance whose lease
  has been expired for ``adopt_after`` seconds is adopted by a survivor the same way.
- **Faults**: every Redis call goes through one circuit breaker; nothing here raises
  into the bot but ``RelayUnavailableError`` from :meth:`deliver`.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeAlias, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError
from yarl import URL

from graphcomms._fleet_port import FleetHost
from graphcomms._ingest import read_envelope
from graphcomms._json import dumps
from graphcomms._routing import ResourceKind, ResourceRef, normalize_id, parse_resource_path
from graphcomms.errors import ClientClosedError, DeserializationError, RelayUnavailableError
from graphcomms.fleet._records import (
    CALL,
    OPERATION,
    CallRecord,
    IdentityTakenError,
    OperationRecord,
    RecoveredCall,
    RecoveredOperation,
    Recovery,
    call_keys,
    decode,
    encode_operation,
)
from graphcomms.fleet._store import GROUP, Breaker, Keys, RelayStats, text
from graphcomms.webhook._receiver import HINT_PARAM

if TYPE_CHECKING:
    from graphcomms._call import CallHandle
    from graphcomms._tracker import OperationTracker

__all__ = ["IdentityTakenError", "Recovery", "RecoveredCall", "RecoveredOperation", "Relay"]

_log = logging.getLogger("graphcomms.fleet")

T = TypeVar("T")

_IID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CONTEXT = re.compile(r"([A-Za-z0-9_-]{1,64})\.(\d{1,9})\.")
# A callback URL's hint: the incarnation that gave Graph the URL ("iid.gen"), or an
# instance name alone.
_HINT = re.compile(r"([A-Za-z0-9_-]{1,64})(?:\.\d{1,9})?")
_REDIS_ERRORS = (RedisError, OSError, asyncio.TimeoutError)

# Items with their parsed paths (None: the item has none; ingestion counts it bad).
_Local: TypeAlias = "list[tuple[Any, ResourceRef | None]]"
_Unknown: TypeAlias = "list[tuple[Any, ResourceRef]]"

# Renew the lock only while it is still ours.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# Write-behind records, in one argument: {field: record, or null to delete it}. Redis
# reads it with its own JSON decoder, in C; sent as HSET arguments instead, redis-py
# packs every field and record in Python, which was most of what the relay cost an
# action. The TTL is refreshed only on a hash that still exists.
_STORE = """
for field, record in pairs(cjson.decode(ARGV[2])) do
  if record == cjson.null then
    redis.call('HDEL', KEYS[1], field)
  else
    redis.call('HSET', KEYS[1], field, record)
  end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
return 0
"""
# Records per script call: one call holds Redis for well under a millisecond.
_STORE_CHUNK = 500
# Actions whose records a flush stored are let go this many per loop iteration.
# Let go all at once, a batch of some 20 actions built its POSTs together: dozens of
# GC-tracked objects each, freed later one answer at a time. CPython counts
# allocations minus frees towards its next young collection (700) but never below
# zero, so each such wave started a collection of its own. At concurrency 64 against
# a loopback Graph that was 3.7x the young collections of the same client without a
# relay, and 2-4x the full ones; released four at a time, 1.2-1.3x, and the time
# spent collecting per action is that of the client without a relay.
_RELEASE_PER_TURN = 4

_tag: contextvars.ContextVar[str | None] = contextvars.ContextVar("graphcomms_fleet_tag")


def _let_go(waiters: list[asyncio.Future[None]]) -> None:
    """Let every one of ``waiters`` go now (a cancelled one is already gone)."""
    for waiter in waiters:
        if not waiter.done():
            waiter.set_result(None)


def _let_go_in_turns(waiters: list[asyncio.Future[None]], start: int = 0) -> None:
    """:func:`_let_go` ``waiters``, :data:`_RELEASE_PER_TURN` per loop iteration, in
    the order they came (the test suite holds the two equal but for the pacing)."""
    end = start + _RELEASE_PER_TURN
    _let_go(waiters[start:end])
    if end < len(waiters):
        asyncio.get_running_loop().call_soon(_let_go_in_turns, waiters, end)


RecoveryHook = Callable[[Recovery], Any]


class Relay:
    """Makes a ``CommsClient`` one instance of a fleet sharing a Redis.

    - ``url``: ``redis://``, ``rediss://`` (TLS) or ``unix://``, with AUTH as
      ``redis://user:password@host``. The inbox streams carry validated notification
      bodies, which may hold recording access tokens: use TLS and AUTH outside one host.
    - ``app``: the fleet's name (every key starts ``gc:{app}:``); ``instance``: this
      instance's identity (a pod name: letters, digits, ``_``, ``-``), stable across
      restarts.
    - ``lease``: seconds an instance's lock and lease last without a heartbeat (one
      every third of it); a process starting under an identity waits up to
      ``lock_wait`` (default twice ``lease``) for the last one's lock to expire.
    - ``adopt_after``: seconds after an instance's lease expired before a survivor
      adopts its calls, pending operations and inbox.
    - ``stream_max_length``: each inbox is capped (approximately) at this many
      entries; ``record_ttl``: seconds Redis keeps records nobody refreshes.
    - ``on_recovered``: ``fn(Recovery)``, sync or async, called after a restart or an
      adoption gave work back. A recovered tracker keeps the deadline it had.
    - ``unconfirmed_timeout``: seconds a recovered operation that Graph had not yet
      answered (``RecoveredOperation.confirmed`` is False) waits for a notification
      before it fails with ``OperationTimeoutError``; None waits for its own deadline.
    - ``timeout``: seconds a Redis command may take; ``breaker_threshold`` errors in a
      row open the circuit breaker for ``breaker_cooldown`` seconds; ``block``: seconds
      the inbox reader's blocking read waits (shorter than ``timeout``).
    - ``flush_interval``: seconds write-behind records (an operation's id, a call's
      state, an end) wait to be written together; an action's own record, stored
      before its POST, never waits for it.
    - ``max_pending_writes``: records waiting to be written at most (more are dropped
      and counted in ``stats.persist_dropped``); ``owner_cache_size``: call owners
      remembered from look-ups.
    """

    def __init__(
        self,
        url: str,
        *,
        app: str,
        instance: str,
        lease: float = 10.0,
        lock_wait: float | None = None,
        adopt_after: float = 30.0,
        stream_max_length: int = 100_000,
        record_ttl: float = 86_400.0,
        on_recovered: RecoveryHook | None = None,
        unconfirmed_timeout: float | None = 30.0,
        timeout: float = 2.0,
        block: float = 1.0,
        breaker_threshold: int = 3,
        breaker_cooldown: float = 2.0,
        flush_interval: float = 0.05,
        max_pending_writes: int = 100_000,
        owner_cache_size: int = 10_000,
    ) -> None:
        if not _IID.fullmatch(instance):
            raise ValueError("instance must be 1-64 letters, digits, '_' or '-'")
        if not _IID.fullmatch(app):
            raise ValueError("app must be 1-64 letters, digits, '_' or '-'")
        if not 0 < block < timeout:
            raise ValueError("block must be positive and shorter than timeout")
        for name, value in (
            ("lease", lease),
            ("adopt_after", adopt_after),
            ("unconfirmed_timeout", 1.0 if unconfirmed_timeout is None else unconfirmed_timeout),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0")
        self.url = url
        self.app = app
        self.instance = instance
        self.lease = lease
        self.lock_wait = lock_wait if lock_wait is not None else 2 * lease
        self.adopt_after = adopt_after
        self.stream_max_length = stream_max_length
        self.record_ttl = record_ttl
        self.on_recovered = on_recovered
        self.unconfirmed_timeout = unconfirmed_timeout
        self.timeout = timeout
        self.block = block
        self.flush_interval = flush_interval
        self.max_pending_writes = max_pending_writes
        self.stats = RelayStats()
        self.keys = Keys(app)
        self._breaker = Breaker(self.stats, threshold=breaker_threshold, cooldown=breaker_cooldown)
        self._boot = os.urandom(8).hex()
        self._incarnation = ""
        self._host: FleetHost | None = None
        self._redis: Any = None
        self._reader_redis: Any = None
        self._tasks: list[asyncio.Task[None]] = []
        self._hooks: set[asyncio.Task[Any]] = set()
        # Write-behind: state-hash field -> record (None: delete it); call key -> owner.
        self._dirty: dict[str, bytes | None] = {}
        self._owners_dirty: dict[str, str | None] = {}
        self._wake = asyncio.Event()
        # The actions waiting for the next flush to store their records, each with a
        # future of its own: one cancelled waiter must not cancel the others.
        self._waiters: list[asyncio.Future[None]] = []
        # The write-behind flush, due ``flush_interval`` after the first dirty record.
        self._timer: asyncio.TimerHandle | None = None
        self._tags: dict[str, str] = {}
        # Incarnation ("iid.gen") -> who adopted its work. Only operations name their
        # incarnation (in their clientContext); a call's owner is its key in Redis,
        # which the adoption rewrites.
        self._adopted: dict[str, str] = {}
        self._owner_cache: OrderedDict[str, str] = OrderedDict()
        self._owner_cache_size = owner_cache_size
        # This instance's inbox first, then those of the instances it adopted.
        self._inboxes: list[str] = [self.keys.inbox(instance)]
        # Adopted inboxes no longer read: their instances came back.
        self._returned: set[str] = set()
        self._inboxes_changed = asyncio.Event()
        # Inbox entries applied here but not yet acknowledged: never applied twice.
        self._applied: set[str] = set()
        self._started = False
        self._closed = False
        # Since when this instance's own heartbeats succeed: one that was itself cut
        # off from Redis must not take the others' expired leases for their death.
        self._healthy_since = time.monotonic()

    def __repr__(self) -> str:
        return f"<Relay app={self.app!r} instance={self.instance!r}>"

    # -- tagging ------------------------------------------------------------------

    def tag(self, target: OperationTracker[Any] | CallHandle, tag: str) -> None:
        """Store ``tag`` with an operation's or a call's record: a restarted or
        adopting instance gets it back in its ``Recovery`` (what step the bot was at)."""
        from graphcomms._call import CallHandle

        if isinstance(target, CallHandle):
            self._tags[target.key] = tag
            if self._host is not None and self._host.owns_call(target.key):
                self._mark_call(target)
            return
        self._tags[target.client_context] = tag
        host = self._host
        if not target.done() and host is not None:
            # Rare, unlike the sender's two writes per action: look both up.
            left = host.time_left(target)
            self._mark_operation(
                target,
                host.raw_call_id(target.call_id),
                None if left is None else time.time() + left,
            )

    @contextlib.contextmanager
    def tagged(self, tag: str) -> Iterator[None]:
        """Every operation issued inside the block is stored with ``tag`` from the
        start (before its POST)."""
        token = _tag.set(tag)
        try:
            yield
        finally:
            _tag.reset(token)

    # -- FleetPort: told by the client ----------------------------------------------

    def new_client_context(self) -> str:
        return f"{self._incarnation}{os.urandom(12).hex()}"

    def hinted_callback(self, url: str) -> str:
        # The incarnation, not the name alone: a call this instance begins before a
        # survivor adopts it is the survivor's, one it begins after coming back is its
        # own, and an item about either can come before the call's owner is recorded.
        return str(URL(url).update_query({HINT_PARAM: self._incarnation[:-1] or self.instance}))

    def operation_registered(
        self, tracker: OperationTracker[Any], *, call_id: str, deadline: float | None
    ) -> Awaitable[None] | None:
        tag = _tag.get(None)
        if tag is not None:
            self._tags[tracker.client_context] = tag
        self._mark_operation(tracker, call_id, deadline)
        if self._closed or self._host is None:
            return None
        if self._breaker.open:
            self.stats.persist_late += 1  # Redis is away: the action goes out unrecorded
            return None
        # The record is in Redis before the POST goes out: the next flush stores it
        # with every record written meanwhile, and resolves this future after at most
        # `timeout` (plus a backoff) even if it failed; the action then goes anyway.
        stored: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not self._waiters:
            self._wake.set()  # at once: the action waits for its record
        self._waiters.append(stored)
        return stored

    def operation_bound(
        self, tracker: OperationTracker[Any], *, call_id: str, deadline: float | None
    ) -> None:
        self._mark_operation(tracker, call_id, deadline)

    def operation_finished(self, tracker: OperationTracker[Any]) -> None:
        ctx = tracker.client_context
        self._tags.pop(ctx, None)
        self._write(OPERATION + ctx, None)

    def call_owned(self, handle: CallHandle) -> None:
        self._mark_call(handle)
        self._owners_dirty[handle.key] = self.instance
        self._soon()

    def call_ended(self, key: str) -> None:
        self._tags.pop(key, None)
        self._owner_cache.pop(key, None)
        self._write(CALL + key, None)
        self._owners_dirty[key] = None

    def _mark_operation(
        self, tracker: OperationTracker[Any], call_id: str, deadline: float | None
    ) -> None:
        """Write ``tracker``'s record: ``call_id`` as Graph spells it, ``deadline`` as
        wall-clock seconds."""
        snapshot = tracker.operation
        ctx = tracker.client_context
        record = encode_operation(
            call_id=call_id,
            client_context=ctx,
            operation_id=tracker.operation_id,
            type_name=type(snapshot).__name__,
            status=snapshot.status,
            tag=self._tags.get(ctx),
            deadline=None if deadline is None else round(deadline, 3),
        )
        self._write(OPERATION + ctx, record)

    def _mark_call(self, handle: CallHandle) -> None:
        state = handle.state
        record = CallRecord(
            call_id=handle.id,
            state=None if state is None else str(state),
            tag=self._tags.get(handle.key),
        )
        self._write(CALL + handle.key, record.encode())

    def _write(self, field: str, record: bytes | None) -> None:
        dirty = self._dirty
        if record is not None and field not in dirty and len(dirty) >= self.max_pending_writes:
            self.stats.persist_dropped += 1
            return
        dirty[field] = record
        self.stats.persist_pending = len(dirty)
        if len(dirty) == 1:
            self._soon()

    def _soon(self) -> None:
        """Write what is dirty within ``flush_interval`` (batched), unless a flush is
        due sooner: an action waiting for its record sets ``_wake`` at once."""
        if self._timer is None and not self._wake.is_set():
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not started yet: the flusher's first round takes it
                self._wake.set()
                return
            self._timer = loop.call_later(self.flush_interval, self._wake.set)

    # -- lifecycle ------------------------------------------------------------------

    async def start(self, host: FleetHost) -> None:
        if self._started:
            raise RuntimeError("this Relay is already started; make one per client")
        self._started = True
        self._host = host
        self._redis = aioredis.Redis.from_url(
            self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout
        )
        # The blocking reader on its own connection, with BLOCK well under its timeout
        # (redis-py asyncio: a blocked XREAD must not share a pooled connection).
        self._reader_redis = aioredis.Redis.from_url(
            self.url,
            socket_timeout=self.timeout + self.block,
            socket_connect_timeout=self.timeout,
            single_connection_client=True,
        )
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)
        self._store_records = self._redis.register_script(_STORE)
        try:
            records = await self._join()
        except _REDIS_ERRORS as exc:
            # Without Redis an instance cannot know whether another process holds its
            # identity, nor get its work back: it does not start (an orchestrator
            # restarts it), and says so in the library's terms.
            raise RelayUnavailableError(
                f"fleet instance {self.instance!r} cannot start: Redis at "
                f"{_where(self.url)} did not answer ({type(exc).__name__}: {exc})"
            ) from exc
        recovery = self._restore(records, adopted_from=None)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._read_inbox(), name="graphcomms-fleet-inbox"),
            loop.create_task(self._flush_forever(), name="graphcomms-fleet-flush"),
            loop.create_task(self._heartbeat_forever(), name="graphcomms-fleet-heartbeat"),
        ]
        if recovery is not None:
            self._announce(recovery)

    async def _join(self) -> Mapping[Any, Any]:
        """Take the identity, join the fleet; this instance's records from Redis."""
        await self._take_identity()
        keys = self.keys
        generation = await self._redis.get(keys.generation(self.instance))
        self._incarnation = f"{self.instance}.{int(generation or 0)}."
        await self._heartbeat_once()
        await self._ensure_group(keys.inbox(self.instance))
        # Back after an adoption (which needed this identity's lock, now ours): the
        # adopters stop reading this inbox at their next heartbeat. What is in it for
        # them meanwhile, this instance passes on (`_take_entry`).
        adopters = {
            adopter
            for incarnation, adopter in self._adopted.items()
            if incarnation.rpartition(".")[0] == self.instance
        }
        if adopters:
            async with self._redis.pipeline(transaction=False) as pipe:
                for adopter in sorted(adopters):
                    pipe.srem(keys.adoptions(adopter), keys.inbox(self.instance))
                await pipe.execute()
        records: Mapping[Any, Any] = await self._redis.hgetall(keys.state(self.instance))
        return records

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        waiters, self._waiters = self._waiters, []
        _let_go(waiters)  # actions waiting for a flush go on
        if self._timer is not None:
            self._timer.cancel()
        for task in self._tasks:
            task.cancel()
        # Each loop also stops on `_closed`: some redis-py releases turn a cancellation
        # during a blocked read into a connection error, which the loops retry.
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.timeout + self.block)
        for task in list(self._hooks):
            task.cancel()
        await asyncio.gather(*self._hooks, return_exceptions=True)
        if self._redis is not None:
            with contextlib.suppress(*_REDIS_ERRORS):
                await asyncio.wait_for(self._flush(), self.timeout)
            with contextlib.suppress(*_REDIS_ERRORS):
                await asyncio.wait_for(self._give_up_identity(), self.timeout)
            await self._redis.aclose()
            await self._reader_redis.aclose()

    async def _take_identity(self) -> None:
        lock = self.keys.lock(self.instance)
        deadline = time.monotonic() + self.lock_wait
        ms = int(self.lease * 1000)
        while not await self._redis.set(lock, self._boot, nx=True, px=ms):
            if time.monotonic() >= deadline:
                raise IdentityTakenError(
                    f"instance {self.instance!r} is held by another process "
                    f"(waited {self.lock_wait} s for its lease to expire)"
                )
            await asyncio.sleep(min(0.2, self.lease / 4))

    async def _give_up_identity(self) -> None:
        """Release the lock, and end the lease now: a deploy's replacement takes the
        work back at once, and if none comes (a scale-in), a survivor adopts it."""
        await self._release(keys=[self.keys.lock(self.instance)], args=[self._boot])
        await self._redis.zadd(self.keys.live, {self.instance: int(time.time() * 1000)})

    async def _ensure_group(self, stream: str) -> None:
        try:
            await self._redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    # -- routing --------------------------------------------------------------------

    async def deliver(self, payload: Mapping[str, Any], hint: str | None) -> int:
        """A validated body: this instance's items applied at once (``feed``), the
        others added to their owners' inboxes before this returns. Returns the number
        of items; raises ``RelayUnavailableError`` when foreign items could not be
        handed over (the webhook answers 503, so that the platform redelivers)."""
        host = self._host
        if host is None or self._closed:
            raise ClientClosedError("the fleet relay is not running")
        items = read_envelope(payload)
        local, foreign, unknown = self._sort(host, items)
        for item, ref in local:
            host.apply_item(item, ref)
        self.stats.local_items += len(local)
        if unknown:
            mine = await self._place(unknown, foreign, hint, len(items) - len(local))
            for item, ref in mine:
                host.apply_item(item, ref)
            self.stats.local_items += len(mine)
        if foreign:
            await self._forward(host, foreign, hint=hint)
        return len(items)

    def _sort(
        self, host: FleetHost, items: list[Any]
    ) -> tuple[_Local, dict[str, list[Any]], _Unknown]:
        """``items`` by owner: this instance's (with their parsed paths), each other
        owner's, and those whose call's owner must be looked up. Each path is parsed
        once, here: a local item is applied with it."""
        local: _Local = []
        foreign: dict[str, list[Any]] = {}
        unknown: _Unknown = []
        for item in items:
            owner, ref = self._owner(host, item)
            if owner is None:
                local.append((item, ref))
            elif owner == "?" and ref is not None:
                unknown.append((item, ref))
            else:
                foreign.setdefault(owner, []).append(item)
        return local, foreign, unknown

    async def _place(
        self, unknown: _Unknown, foreign: dict[str, list[Any]], hint: str | None, items: int
    ) -> _Unknown:
        """Look up the owners of ``unknown``'s calls: each other owner's items go into
        ``foreign``; this instance's, and those of a call nobody recorded (nor a hint
        names), are returned."""
        owners = await self._look_up_owners([ref.call_id for _, ref in unknown], items)
        mine: _Unknown = []
        for item, ref in unknown:
            owner = owners.get(ref.call_id)
            if owner is None and hint:
                owner = self._hinted(hint)  # nobody recorded the call yet
            if owner is None or owner == self.instance:
                mine.append((item, ref))
            else:
                foreign.setdefault(owner, []).append(item)
        return mine

    def _owner(self, host: FleetHost, item: Any) -> tuple[str | None, ResourceRef | None]:
        """Whose ``item`` is, and its parsed path (None when it has none). The owner
        is ``None`` for this instance's; ``"?"``: look the call's owner up; else the
        owner's instance id."""
        if not isinstance(item, dict):
            return None, None  # ingestion counts it as a bad item
        ref = parse_resource_path(item.get("resourceUrl") or item.get("resource"))
        if ref is None:
            return None, None
        return self._owner_of(host, item, ref), ref

    def _owner_of(self, host: FleetHost, item: dict[str, Any], ref: ResourceRef) -> str | None:
        if ref.kind is ResourceKind.OPERATION:
            data = item.get("resourceData")
            data = data if isinstance(data, dict) else {}
            ctx = data.get("clientContext")
            ctx = ctx if isinstance(ctx, str) else None
            body_id = data.get("id")
            op_id = ref.item_id or (
                normalize_id(body_id) if isinstance(body_id, str) and body_id else None
            )
            if host.owns_operation(op_id, ctx):
                return None
            if ctx is not None:
                match = _CONTEXT.match(ctx)
                if match is not None:
                    incarnation = match.group(0)
                    if incarnation == self._incarnation:
                        return None
                    owner = self._owner_of_incarnation(incarnation[:-1], match.group(1))
                    return None if owner == self.instance else owner
        if host.owns_call(ref.call_id):
            return None
        cached = self._owner_cache.get(ref.call_id)
        if cached is not None:
            return None if cached == self.instance else cached
        return "?"

    def _set_adopted(self, adopted: dict[str, str]) -> None:
        """An adoption moves calls to their adopter: owners cached before it are stale."""
        self._adopted = adopted
        self._owner_cache.clear()

    def _owner_of_incarnation(self, incarnation: str, iid: str) -> str:
        """Who owns what incarnation ``iid.gen`` began: its adopter if it was adopted,
        else the instance (the same name's later incarnation, back after an adoption,
        owns only what it began itself)."""
        adopter = self._adopted.get(incarnation)
        return adopter if adopter is not None else iid

    def _hinted(self, hint: str) -> str | None:
        """Who owns a call that a callback hint names (None for a hint that is no
        instance's); a hint without a generation names the instance."""
        match = _HINT.fullmatch(hint)
        return None if match is None else self._owner_of_incarnation(hint, match.group(1))

    async def _look_up_owners(self, keys: Sequence[str], items: int) -> dict[str, str]:
        unique = list(dict.fromkeys(keys))
        self.stats.owner_lookups += len(unique)
        values = await self._guarded(
            lambda: self._redis.mget([self.keys.call(k) for k in unique]), items
        )
        found: dict[str, str] = {}
        for key, value in zip(unique, values, strict=True):
            if value is not None:
                owner = text(value)
                found[key] = owner
                self._owner_cache[key] = owner
                if len(self._owner_cache) > self._owner_cache_size:
                    self._owner_cache.popitem(last=False)
        return found

    async def _forward(
        self,
        host: FleetHost,
        foreign: dict[str, list[Any]],
        *,
        hint: str | None = None,
        rerouted: bool = False,
    ) -> None:
        """XADD each owner's items to its inbox. ``NOMKSTREAM``: an owner whose inbox
        does not exist is no instance of this fleet (every instance creates its inbox
        when it starts, and a lost one's stays for its adopter). A validly signed body
        can still name any instance in its ``clientContext`` or callback hint, so its
        items are applied here instead (unmatched, and counted) and no stream is made
        for the name: the number of streams stays the number of instances.
        ``hint``: the callback URL's, kept with the entry for its reader.
        ``rerouted``: items read from an inbox that were not its reader's; their entry
        says so, and is not routed again."""
        count = sum(map(len, foreign.values()))
        now = str(int(time.time() * 1000))
        owners = list(foreign)
        extra = {"r": "1"} if rerouted else {}
        if hint is not None:
            extra["h"] = hint

        async def xadd_all() -> list[object]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for owner in owners:
                    pipe.xadd(
                        self.keys.inbox(owner),
                        {
                            "b": dumps({"value": foreign[owner]}),
                            "f": self.instance,
                            "t": now,
                            **extra,
                        },
                        maxlen=self.stream_max_length,
                        approximate=True,
                        nomkstream=True,
                    )
                return await pipe.execute()  # type: ignore[no-any-return]

        answers = await self._guarded(xadd_all, count)
        for owner, entry_id in zip(owners, answers, strict=True):
            items = foreign[owner]
            if entry_id is None:
                self.stats.stranger_items += len(items)
                for item in items:
                    host.apply_item(item)
            else:
                self.stats.forwarded_items += len(items)
                if rerouted:
                    self.stats.rerouted_items += len(items)

    async def _guarded(self, command: Callable[[], Awaitable[T]], items: int) -> T:
        """A Redis command on the forwarding path: refused at once while the breaker
        is open; any failure becomes ``RelayUnavailableError`` (the webhook's 503)."""
        try:
            self._breaker.check()
            result = await asyncio.wait_for(command(), self.timeout)
        except RelayUnavailableError:
            self.stats.forward_failed += items
            raise
        except _REDIS_ERRORS as exc:
            self._breaker.failed()
            self.stats.forward_failed += items
            raise RelayUnavailableError(
                f"the fleet's Redis is unavailable ({type(exc).__name__})"
            ) from None
        self._breaker.succeeded()
        return result

    # -- the inbox ------------------------------------------------------------------

    async def _read_inbox(self) -> None:
        """Read this instance's inbox (and adopted ones) for ever: pending entries
        first (a previous life's, or this one's before a lost connection), then new
        ones; apply, then acknowledge and delete."""
        backoff = 0.05
        pending_first = True
        while not self._closed:
            try:
                self._breaker.check()
                if self._inboxes_changed.is_set():
                    self._inboxes_changed.clear()
                    pending_first = True
                start = "0" if pending_first else ">"
                answer = await self._reader_redis.xreadgroup(
                    GROUP,
                    self.instance,
                    dict.fromkeys(self._inboxes, start),
                    count=100,
                    block=None if pending_first else int(self.block * 1000),
                )
                backoff = 0.05
                got = await self._apply_entries(answer or [])
                if pending_first and not got:
                    pending_first = False
            except asyncio.CancelledError:
                raise
            except (*_REDIS_ERRORS, RelayUnavailableError) as exc:
                if not isinstance(exc, RelayUnavailableError):
                    self._breaker.failed()
                self.stats.reader_restarts += 1
                pending_first = True
                _log.info("inbox reader: Redis unavailable (%s); retrying", type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            except ClientClosedError:
                return

    async def _apply_entries(self, answer: Sequence[Any]) -> int:
        host = self._host
        assert host is not None
        done: dict[str, list[str]] = {}
        seen = 0
        for stream, entries in answer:
            name = text(stream)
            for entry_id, fields in entries:
                seen += 1
                eid = text(entry_id)
                done.setdefault(name, []).append(eid)
                key = f"{name}/{eid}"
                if key in self._applied:
                    self.stats.inbox_duplicates += 1
                    continue
                if not fields:
                    continue  # deleted while pending: nothing to apply
                body = fields.get(b"b") or fields.get("b")
                rerouted = bool(fields.get(b"r") or fields.get("r"))
                hint = fields.get(b"h") or fields.get("h")
                self.stats.inbox_entries += 1
                try:
                    if rerouted:
                        self.stats.inbox_items += host.feed(body)  # routed twice: ours now
                    else:
                        self.stats.inbox_items += await self._take_entry(
                            host, body, name, None if hint is None else text(hint)
                        )
                except DeserializationError:
                    _log.warning("inbox entry %s is not a notification body; skipped", eid)
                self._applied.add(key)
        if done:
            async with self._reader_redis.pipeline(transaction=False) as pipe:
                for name, ids in done.items():
                    pipe.xack(name, GROUP, *ids)
                    pipe.xdel(name, *ids)
                await pipe.execute()
            for name, ids in done.items():
                self.stats.inbox_acked += len(ids)
                for eid in ids:
                    self._applied.discard(f"{name}/{eid}")
            self._breaker.succeeded()
        return seen

    async def _take_entry(self, host: FleetHost, body: Any, stream: str, hint: str | None) -> int:
        """An inbox entry's items: this instance's applied, any other owner's passed
        on (once: the entry it makes is applied wherever it lands). An entry can be
        another's when its sender's view was stale, or around an adopted instance's
        return: for a moment both it and its adopter read its inbox.
        Nothing is applied until what is passed on is in its owner's inbox: if that
        fails, the entry stays pending and is read again whole."""
        items = read_envelope(body)
        local, foreign, unknown = self._sort(host, items)
        if unknown:
            local += await self._place(unknown, foreign, hint, len(items))
        adopted = self.keys.inbox_owner(stream) if stream != self._inboxes[0] else None
        if adopted is not None and adopted in foreign:
            # Read in an adopted inbox, and that instance's by what it names.
            if await self._is_live(adopted, len(items)):
                # Its new work: it is back, and reads this inbox again. Stop now, not
                # at the next heartbeat, so that what is passed on to it here is not
                # read here.
                self._let_inbox_go(stream)
            else:
                # Named through an adoption it did not live to see (it had adopted
                # the instance the item names, then was lost itself): ours.
                local.extend((item, None) for item in foreign.pop(adopted))
        if foreign:
            await self._forward(host, foreign, rerouted=True)
        for item, ref in local:
            host.apply_item(item, ref)
        return len(items)

    async def _is_live(self, iid: str, items: int) -> bool:
        """True while ``iid`` holds a lease (a lost one's was removed when adopted)."""
        expiry = await self._guarded(lambda: self._redis.zscore(self.keys.live, iid), items)
        return expiry is not None and expiry > time.time() * 1000

    def _let_inbox_go(self, stream: str) -> None:
        """Stop reading an adopted inbox whose instance is back (its own to read)."""
        if stream in self._inboxes:
            self._inboxes.remove(stream)
            self._inboxes_changed.set()
        self._returned.add(stream)

    # -- write-behind ---------------------------------------------------------------

    async def _flush_forever(self) -> None:
        """Write what is dirty, in one round at a time: at once when an action waits
        for its record (every action waiting meanwhile joins the next round), else
        ``flush_interval`` after the first write-behind record, to batch more."""
        backoff = 0.1
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            # What is dirty now is what `waiting`'s actions wrote: taken together, with
            # no await between (a later action waits for the next round).
            waiting, self._waiters = self._waiters, []
            batch = self._take()
            try:
                self._breaker.check()
                await asyncio.wait_for(self._store(*batch), self.timeout)
                backoff = 0.1
            except (*_REDIS_ERRORS, RelayUnavailableError) as exc:
                if not isinstance(exc, RelayUnavailableError):
                    self._breaker.failed()
                self._put_back(*batch)
                self.stats.persist_errors += 1
                self.stats.persist_late += len(waiting)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                self._wake.set()
            finally:
                # Not awaited: the next round may start while these still go out. (A
                # flusher waiting for them made fewer, larger flushes but longer waits:
                # slower on both relay on/off benchmark rows.)
                _let_go_in_turns(waiting)

    async def _flush(self) -> None:
        await self._store(*self._take())

    def _take(self) -> tuple[dict[str, bytes | None], dict[str, str | None]]:
        dirty, owners = self._dirty, self._owners_dirty
        self._dirty, self._owners_dirty = {}, {}
        self.stats.persist_pending = 0
        return dirty, owners

    async def _store(self, dirty: dict[str, bytes | None], owners: dict[str, str | None]) -> None:
        if not dirty and not owners:
            return
        state = self.keys.state(self.instance)
        ttl = int(self.record_ttl)
        try:
            fields = list(dirty.items())
            for start in range(0, len(fields), _STORE_CHUNK):
                chunk = {
                    field: None if record is None else record.decode()
                    for field, record in fields[start : start + _STORE_CHUNK]
                }
                await self._store_records(keys=[state], args=[ttl, dumps(chunk)])
            if owners:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for key, owner in owners.items():
                        if owner is None:
                            pipe.delete(self.keys.call(key))
                        else:
                            pipe.set(self.keys.call(key), owner, ex=ttl)
                    await pipe.execute()
        except asyncio.CancelledError:
            self._put_back(dirty, owners)
            raise
        self.stats.persisted += len(dirty) + len(owners)
        self._breaker.succeeded()

    def _put_back(self, dirty: dict[str, bytes | None], owners: dict[str, str | None]) -> None:
        """A batch that was not stored goes back, under what was written since."""
        for field, record in dirty.items():
            self._dirty.setdefault(field, record)
        for key, owner in owners.items():
            self._owners_dirty.setdefault(key, owner)
        self.stats.persist_pending = len(self._dirty)

    # -- heartbeat, adoption --------------------------------------------------------

    async def _heartbeat_forever(self) -> None:
        while not self._closed:
            await asyncio.sleep(self.lease / 3)
            try:
                self._breaker.check()
                await asyncio.wait_for(self._heartbeat_once(), self.timeout)
                if time.monotonic() - self._healthy_since >= self.adopt_after + self.lease:
                    await self._adopt_the_lost()
            except (*_REDIS_ERRORS, RelayUnavailableError) as exc:
                self._healthy_since = time.monotonic()
                if not isinstance(exc, RelayUnavailableError):
                    self._breaker.failed()
                _log.info("fleet heartbeat failed (%s)", type(exc).__name__)

    async def _heartbeat_once(self) -> None:
        keys = self.keys
        ms = int(self.lease * 1000)
        lock = keys.lock(self.instance)
        renewed = await self._renew(keys=[lock], args=[self._boot, ms])
        if not renewed and not await self._redis.set(lock, self._boot, nx=True, px=ms):
            self.stats.identity_lost += 1
            _log.error(
                "instance %s: another process holds this identity; two processes "
                "must not run under one instance name",
                self.instance,
            )
        now = int(time.time() * 1000)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zadd(keys.live, {self.instance: now + ms})
            pipe.expire(keys.state(self.instance), int(self.record_ttl))
            pipe.hgetall(keys.adopted)
            pipe.smembers(keys.adoptions(self.instance))
            answers = await pipe.execute()
        adopted = {text(k): text(v) for k, v in answers[-2].items()}
        if adopted != self._adopted:
            adopter = adopted.get(self._incarnation[:-1])
            if adopter is not None and self._incarnation[:-1] not in self._adopted:
                self.stats.adopted_while_away += 1
                _log.error(
                    "instance %s was cut off from Redis for longer than adopt_after, and "
                    "%s adopted its work meanwhile: that work's outcomes go there now; "
                    "restart this process",
                    self.instance,
                    adopter,
                )
            self._set_adopted(adopted)
        adopted_inboxes = set(map(text, answers[-1]))
        # An inbox let go because its instance is back stays let go, though its
        # adoption is still listed until that instance's own start removes it.
        self._returned &= adopted_inboxes
        inboxes = [keys.inbox(self.instance), *sorted(adopted_inboxes - self._returned)]
        if inboxes != self._inboxes:
            self._inboxes = inboxes  # adopted, or an adopted instance is back
            self._inboxes_changed.set()
        self._breaker.succeeded()

    async def _adopt_the_lost(self) -> None:
        now = int(time.time() * 1000)
        lost = await self._redis.zrangebyscore(
            self.keys.live, "-inf", now - int(self.adopt_after * 1000)
        )
        for raw in lost:
            iid = text(raw)
            if iid != self.instance:
                await self._adopt(iid)

    async def _adopt(self, lost: str) -> None:
        """Take a lost instance's work, holding its identity's lock meanwhile: no other
        survivor adopts it too, and if it comes back it waits for the lock
        (``lock_wait``), then starts afresh under its next generation."""
        lock = self.keys.lock(lost)
        token = f"adopting:{self._boot}"
        if not await self._redis.set(lock, token, nx=True, px=int(self.lease * 3000)):
            return  # it came back, or another survivor is adopting it
        try:
            await self._take_over(lost)
        finally:
            with contextlib.suppress(*_REDIS_ERRORS):
                await self._release(keys=[lock], args=[token])

    async def _take_over(self, lost: str) -> None:
        keys, redis = self.keys, self._redis
        generation = int(await redis.get(keys.generation(lost)) or 0)
        records = await redis.hgetall(keys.state(lost))
        inbox = keys.inbox(lost)
        if not records and not await redis.xlen(inbox):
            await redis.zrem(keys.live, lost)  # it left nothing behind: just forget it
            return
        await self._ensure_group(inbox)
        # Its unacknowledged entries become ours; the reader takes them as pending.
        start = "0-0"
        while True:
            answer = await redis.xautoclaim(inbox, GROUP, self.instance, 0, start, count=500)
            start = text(answer[0])
            if start == "0-0":
                break
        ttl = int(self.record_ttl)
        async with redis.pipeline(transaction=True) as pipe:
            if records:
                pipe.hset(keys.state(self.instance), mapping=records)
            # Its calls are ours from the same instant as its records: an item about
            # one is routed here by the call's key, not by the lost instance's name
            # (which may come back, and owns what it begins then).
            for key in call_keys(records):
                pipe.set(keys.call(key), self.instance, ex=ttl)
            pipe.delete(keys.state(lost))
            pipe.hset(keys.adopted, f"{lost}.{generation}", self.instance)
            pipe.expire(keys.adopted, ttl)
            pipe.incr(keys.generation(lost))
            pipe.zrem(keys.live, lost)
            pipe.sadd(keys.adoptions(self.instance), inbox)
            await pipe.execute()
        self._set_adopted({**self._adopted, f"{lost}.{generation}": self.instance})
        self.stats.adoptions += 1
        recovery = self._restore(records, adopted_from=lost)
        self._returned.discard(inbox)  # lost again, after it had come back
        if inbox not in self._inboxes:
            self._inboxes.append(inbox)
            self._inboxes_changed.set()
        _log.warning("instance %s adopted the work of lost instance %s", self.instance, lost)
        if recovery is not None:
            self._announce(recovery)

    # -- recovery -------------------------------------------------------------------

    def _restore(self, records: Mapping[Any, Any], *, adopted_from: str | None) -> Recovery | None:
        """Records back as handles and trackers (marked recovered); nothing is sent."""
        host = self._host
        assert host is not None
        if not records:
            return None
        call_records, operation_records, bad = decode(records)
        if bad:
            self.stats.bad_records += bad
            _log.warning("instance %s: %d unreadable records skipped", self.instance, bad)
        calls: list[RecoveredCall] = []
        operations: list[RecoveredOperation] = []
        for call_record in call_records:
            handle = host.restore_call(call_record.call_id, call_record.state)
            if call_record.tag is not None:
                self._tags[handle.key] = call_record.tag
            calls.append(RecoveredCall(handle, call_record.tag))
        for record in operation_records:
            tracker = host.restore_operation(
                call_id=record.call_id,
                client_context=record.client_context,
                operation_id=record.operation_id,
                type_name=record.type_name,
                status=record.status,
                remaining=self._remaining(record),
            )
            if tracker is None:
                continue
            if record.tag is not None:
                self._tags[tracker.client_context] = record.tag
            handle = host.call_handle(record.call_id)
            operations.append(RecoveredOperation(tracker, handle, record.tag, record.confirmed))
        self.stats.recovered_calls += len(calls)
        self.stats.recovered_operations += len(operations)
        return Recovery(
            instance=self.instance,
            adopted_from=adopted_from,
            calls=tuple(calls),
            operations=tuple(operations),
        )

    def _remaining(self, record: OperationRecord) -> float | None:
        """Seconds a recovered tracker has left: what its stored deadline leaves (none
        stored: the client's ``operation_timeout``), at most ``unconfirmed_timeout``
        for one Graph may never have received."""
        left = record.time_left()
        cap = None if record.confirmed else self.unconfirmed_timeout
        if cap is not None and (left is None or cap < left):
            return cap
        return left

    def _announce(self, recovery: Recovery) -> None:
        host = self._host
        assert host is not None
        if self.on_recovered is not None:
            host.run_callback(self.on_recovered, recovery)
        task = asyncio.get_running_loop().create_task(self._read_back(recovery))
        self._hooks.add(task)
        task.add_done_callback(self._hooks.discard)

    async def _read_back(self, recovery: Recovery) -> None:
        """What may have finished meanwhile: read back from Graph where it serves it."""
        host = self._host
        assert host is not None
        for item in recovery.operations:
            if await host.read_back(item.tracker):
                self.stats.read_backs += 1
        for call in recovery.calls:
            if not call.call.ended:
                await host.refresh_call(call.call)


def _where(url: str) -> str:
    """Where ``url`` points, for a message: no user, password or query (which may
    hold a password too)."""
    parsed = URL(url)
    if parsed.host is not None:
        return f"{parsed.scheme}://{parsed.host}:{parsed.port}"
    return f"{parsed.scheme}://{parsed.path}"
