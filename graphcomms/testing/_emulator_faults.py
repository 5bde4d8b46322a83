"""Fault injection for the emulator: random (by probability, under the seed) or on cue.

Every decision draws from a ``random.Random`` the emulator hands in; nothing here reads
the clock or the OS's randomness, so the same seed and the same sequence of requests
give the same faults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from random import Random
from typing import Literal, Protocol, TypeAlias, TypeVar

__all__ = ["Faults", "NotificationFault"]

NotificationFault: TypeAlias = Literal["duplicate", "reorder", "delay", "drop", "quirks"]
_NOTIFICATION_FAULTS: frozenset[str] = frozenset(
    {"duplicate", "reorder", "delay", "drop", "quirks"}
)


@dataclass(frozen=True, kw_only=True)
class Faults:
    """Probabilities of each fault, per notification or per request.

    Per notification: ``duplicate`` (sent twice), ``reorder`` (swapped with the next
    notification of the same call), ``delay`` (held for a time drawn from
    ``delay_seconds``; later notifications of the call wait behind it), ``drop`` (never
    sent). Per request: ``early`` (an action's terminal notification is delivered before
    its HTTP response), ``throttle`` (429 with ``Retry-After: retry_after``),
    ``server_error`` (503 with ``Retry-After`` or 500); throttled and failed requests
    are not processed. ``quirks`` turns on every §5.8 wire quirk on every notification.
    """

    duplicate: float = 0.0
    reorder: float = 0.0
    delay: float = 0.0
    delay_seconds: tuple[float, float] = (0.0, 0.05)
    early: float = 0.0
    drop: float = 0.0
    throttle: float = 0.0
    server_error: float = 0.0
    quirks: bool = False
    retry_after: int = 1

    def __post_init__(self) -> None:
        for name in ("duplicate", "reorder", "delay", "early", "drop", "throttle", "server_error"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"Faults.{name} is a probability, got {value!r}")
        low, high = self.delay_seconds
        if not 0.0 <= low <= high:
            raise ValueError(f"Faults.delay_seconds must be 0 <= low <= high, got {low}, {high}")
        if self.retry_after < 0:
            raise ValueError("Faults.retry_after must be >= 0")


@dataclass(frozen=True)
class RequestFailure:
    """What a failed request answers: the status and an optional ``Retry-After``."""

    status: int
    retry_after: int | None


@dataclass
class NotificationPlan:
    """The faults decided for one notification before it is queued."""

    duplicate: bool = False
    reorder: bool = False
    delay: float = 0.0
    drop: bool = False
    quirks: bool = False


@dataclass
class _RequestCue:
    status: int
    retry_after: int | None
    times: int
    path_contains: str | None
    method: str | None

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method.upper() == method) and (
            self.path_contains is None or self.path_contains in path
        )


@dataclass
class _EarlyCue:
    times: int
    path_contains: str | None


@dataclass
class _NotificationCue:
    faults: frozenset[str]
    times: int
    call_id: str | None
    change_type: str | None
    resource_contains: str | None
    delay_seconds: float | None

    def matches(self, call_id: str, change_type: str, resource_url: str) -> bool:
        return (
            (self.call_id is None or self.call_id == call_id)
            and (self.change_type is None or self.change_type == change_type)
            and (self.resource_contains is None or self.resource_contains in resource_url)
        )


@dataclass
class FaultPlan:
    """Decides faults: a cue that matches wins; otherwise the probabilities of ``faults``.

    Random draws happen only for probabilities above zero, so a run without faults
    consumes no randomness and adding a cue never shifts the ids a seed produces.
    """

    faults: Faults = field(default_factory=Faults)
    _request_cues: list[_RequestCue] = field(default_factory=list)
    _early_cues: list[_EarlyCue] = field(default_factory=list)
    _notification_cues: list[_NotificationCue] = field(default_factory=list)

    def add_request_cue(
        self,
        status: int,
        *,
        retry_after: int | None,
        times: int,
        path_contains: str | None,
        method: str | None,
    ) -> None:
        if not 400 <= status <= 599:
            raise ValueError(f"fail_next needs an error status, got {status}")
        _check_times(times)
        if retry_after is None and status == 429:
            retry_after = self.faults.retry_after
        self._request_cues.append(_RequestCue(status, retry_after, times, path_contains, method))

    def add_early_cue(self, *, times: int, path_contains: str | None) -> None:
        _check_times(times)
        self._early_cues.append(_EarlyCue(times, path_contains))

    def add_notification_cue(
        self,
        faults: Sequence[NotificationFault],
        *,
        times: int,
        call_id: str | None,
        change_type: str | None,
        resource_contains: str | None,
        delay_seconds: float | None,
    ) -> None:
        _check_times(times)
        unknown = set(faults) - _NOTIFICATION_FAULTS
        if not faults or unknown:
            raise ValueError(f"unknown notification faults: {sorted(unknown) or faults!r}")
        self._notification_cues.append(
            _NotificationCue(
                frozenset(faults), times, call_id, change_type, resource_contains, delay_seconds
            )
        )

    def request_failure(self, method: str, path: str, rng: Random) -> RequestFailure | None:
        for cue in self._request_cues:
            if cue.matches(method, path):
                _consume(self._request_cues, cue)
                return RequestFailure(cue.status, cue.retry_after)
        if _draw(rng, self.faults.throttle):
            return RequestFailure(429, self.faults.retry_after)
        if _draw(rng, self.faults.server_error):
            # Graph's 503s may carry Retry-After (§8.1); its 500s never do.
            if rng.random() < 0.5:
                return RequestFailure(503, self.faults.retry_after)
            return RequestFailure(500, None)
        return None

    def early(self, path: str, rng: Random) -> bool:
        for cue in self._early_cues:
            if cue.path_contains is None or cue.path_contains in path:
                _consume(self._early_cues, cue)
                return True
        return _draw(rng, self.faults.early)

    def notification(
        self, call_id: str, change_type: str, resource_url: str, rng: Random
    ) -> NotificationPlan:
        for cue in self._notification_cues:
            if cue.matches(call_id, change_type, resource_url):
                _consume(self._notification_cues, cue)
                delay = 0.0
                if "delay" in cue.faults:
                    delay = (
                        cue.delay_seconds
                        if cue.delay_seconds is not None
                        else self.faults.delay_seconds[1]
                    )
                return NotificationPlan(
                    duplicate="duplicate" in cue.faults,
                    reorder="reorder" in cue.faults,
                    delay=delay,
                    drop="drop" in cue.faults,
                    quirks="quirks" in cue.faults or self.faults.quirks,
                )
        f = self.faults
        plan = NotificationPlan(quirks=f.quirks)
        plan.duplicate = _draw(rng, f.duplicate)
        plan.reorder = _draw(rng, f.reorder)
        if _draw(rng, f.delay):
            plan.delay = rng.uniform(*f.delay_seconds)
        plan.drop = _draw(rng, f.drop)
        return plan


def _draw(rng: Random, probability: float) -> bool:
    return probability > 0.0 and rng.random() < probability


def _check_times(times: int) -> None:
    if times < 1:
        raise ValueError(f"times must be >= 1, got {times}")


class _Cue(Protocol):
    times: int


_CueT = TypeVar("_CueT", bound=_Cue)


def _consume(cues: list[_CueT], cue: _CueT) -> None:
    cue.times -= 1
    if cue.times == 0:
        cues.remove(cue)
