"""``python -m graphcomms demo``: an IVR bot built on graphcomms, run against the
embedded Graph emulator, with a live timeline.

The bot is a real one: notifications reach it through the aiohttp webhook receiver
with token validation on (the emulator signs them and serves its keys), and every step
is an ``await`` on graphcomms. Time is short here: the emulator ends a call that has had
no keepAlive for 1.5 s (Graph: 45 minutes), the bot sends one every 0.25 s
(graphcomms' default: 15 minutes), and the caller stays on hold for twice the window.
The demo exits 0 only if every step behaved.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable
from typing import IO, Any, TypeVar

from graphcomms._call import CallHandle
from graphcomms._client import CommsClient
from graphcomms._settings import KeepAliveSettings
from graphcomms._tracker import OperationTracker
from graphcomms.models import (
    Call,
    CallState,
    CommsOperation,
    MediaPrompt,
    RecordOperation,
)

__all__ = ["run_demo"]

OpT = TypeVar("OpT", bound=CommsOperation)

GREETING = MediaPrompt.from_uri("https://media.example.com/ivr/greeting.wav")
RECORD_PROMPT = MediaPrompt.from_uri("https://media.example.com/ivr/after-the-beep.wav")
HOLD_MUSIC = MediaPrompt.from_uri("https://media.example.com/ivr/hold-music.wav")
GOODBYE = MediaPrompt.from_uri("https://media.example.com/ivr/goodbye.wav")
CALLER = "+14255550100"
CALLER_KEYS = "42#"
# Graph's 45 and 15 minutes, scaled down so that keepAlive matters within the demo:
# the caller is on hold for longer than a call lives without one.
KEEP_ALIVE_WINDOW = 1.5
KEEP_ALIVE = KeepAliveSettings(interval=0.25, window=KEEP_ALIVE_WINDOW)
HOLD_SECONDS = 2 * KEEP_ALIVE_WINDOW


class Timeline:
    """Prints what happens, as it happens, relative to the demo's start."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out
        self._start = time.perf_counter()
        self.failures: list[str] = []
        self.operations: list[tuple[str, float, bool]] = []

    def line(self, kind: str, text: str) -> None:
        elapsed = time.perf_counter() - self._start
        print(f"  {elapsed:7.3f}s  {kind:<5} {text}", file=self._out, flush=True)

    def fail(self, what: str) -> None:
        self.failures.append(what)
        self.line("FAIL", what)

    async def operation(self, name: str, pending: Awaitable[OperationTracker[OpT]]) -> OpT | None:
        """Issue an action, follow its tracker to the end, print each step."""
        started = time.perf_counter()
        try:
            tracker = await pending
        except Exception as exc:
            self.fail(f"{name}: request refused: {exc}")
            return None
        self.line("op", f"{name:<18} issued     -> {tracker.status!s}")
        try:
            final = await tracker.wait(timeout=10)
        except Exception as exc:
            self.fail(f"{name}: {type(exc).__name__}: {exc}")
            return None
        ms = (time.perf_counter() - started) * 1000
        info = final.result_info
        detail = f"{info.code}/{info.subcode} {info.message or ''}".strip() if info else ""
        reason = f" reason={final.completion_reason!s}" if final.completion_reason else ""
        ok = tracker.succeeded()
        self.operations.append((name, ms, ok))
        outcome = "completed" if ok else f"FAILED ({final.status!s})"
        self.line("op", f"{name:<18} {outcome:<10} {ms:6.1f} ms  {detail}{reason}")
        if not ok:
            self.fail(f"{name} did not succeed")
        return final


async def run_demo(
    *, seed: int = 0, prompt_seconds: float = 0.05, out: IO[str] | None = None
) -> int:
    """Run the IVR demo; returns the process exit code (0 when every step behaved)."""
    from graphcomms.testing import GraphEmulator, emulated_bot

    stream = out if out is not None else sys.stdout
    timeline = Timeline(stream)
    print("graphcomms demo: an IVR bot against the embedded Graph calling emulator", file=stream)
    async with (
        GraphEmulator(
            seed=seed, prompt_seconds=prompt_seconds, keep_alive_window=KEEP_ALIVE_WINDOW
        ) as emulator,
        emulated_bot(emulator, keep_alive=KEEP_ALIVE) as bot,
    ):
        print(
            f"  emulator {emulator.graph_url}  bot webhook {bot.callback_uri}"
            " (token validation on)\n"
            f"  keepAlive every {KEEP_ALIVE.interval:g} s; the emulator ends a call after"
            f" {KEEP_ALIVE_WINDOW:g} s without one (Graph: 45 min; graphcomms' default: 15 min)\n",
            file=stream,
        )
        try:
            await asyncio.wait_for(_ivr(bot.client, emulator, timeline), timeout=60)
        except asyncio.TimeoutError:
            timeline.fail("the demo did not finish within 60 s")
        stats = bot.client.stats
        rstats = bot.receiver.stats
    print("", file=stream)
    ok = [o for o in timeline.operations if o[2]]
    print(
        f"summary: {len(timeline.operations)} operations, {len(ok)} succeeded, "
        f"{len(timeline.operations) - len(ok)} failed; notifications {rstats.accepted} accepted, "
        f"{rstats.rejected_auth + rstats.rejected_forbidden} rejected; "
        f"duplicates ignored {stats.duplicates}; keepAlives {stats.keep_alives_sent} sent, "
        f"{stats.keep_alives_failed} failed; pending at the end {stats.pending}",
        file=stream,
    )
    if timeline.failures:
        print(
            f"FAILED: {len(timeline.failures)} step(s): {'; '.join(timeline.failures)}", file=stream
        )
        return 1
    print("OK: every step behaved", file=stream)
    return 0


async def _ivr(client: CommsClient, emulator: Any, timeline: Timeline) -> None:
    incoming = client.incoming_calls()
    call_id = await emulator.simulate_incoming_call(caller=CALLER, callback_uri=client.callback_uri)
    call: CallHandle = await asyncio.wait_for(incoming.__anext__(), timeout=5)
    timeline.line("call", f"incoming from {CALLER} (call {call.id})")

    def on_state(snapshot: Call) -> None:
        timeline.line("call", f"state {snapshot.state!s}")

    call.on_state(on_state)
    await call.answer()
    timeline.line("call", "answer accepted (202)")
    await call.wait_for_state(CallState.ESTABLISHED, timeout=5)

    await timeline.operation("subscribeToTone", call.subscribe_to_tone())
    await timeline.operation("playPrompt greeting", call.play_prompt([GREETING]))

    recording = await timeline.operation(
        "recordResponse",
        call.record_response(prompts=[RECORD_PROMPT], max_record_duration=5, play_beep=True),
    )
    if isinstance(recording, RecordOperation):
        audio = await client.download_recording(recording)
        if audio[:4] == b"RIFF" and audio[8:12] == b"WAVE":
            timeline.line("media", f"recording downloaded: {len(audio)} bytes of WAV")
        else:
            timeline.fail("the recording is not a WAV file")

    # The caller types an extension; the bot reads tones until '#'.
    digits: list[str] = []
    tones = call.tones()

    async def collect() -> None:
        async for tone in tones:
            timeline.line("dtmf", f"caller pressed {tone.key} (sequenceId {tone.sequence_id})")
            if tone.key == "#":
                return
            digits.append(tone.key)

    collector = asyncio.create_task(collect())
    await emulator.press_keys(call_id, CALLER_KEYS)
    await asyncio.wait_for(collector, timeout=5)
    entered = "".join(digits)
    if entered == CALLER_KEYS.rstrip("#"):
        timeline.line("dtmf", f"extension {entered} collected")
    else:
        timeline.fail(f"collected {entered!r}, expected {CALLER_KEYS.rstrip('#')!r}")

    await timeline.operation("sendDtmfTones", call.send_dtmf_tones(entered))

    if not await _hold(call, emulator, timeline):
        return
    await timeline.operation("playPrompt goodbye", call.play_prompt([GOODBYE]))
    await call.hang_up()
    timeline.line("call", "hang up accepted (204)")
    ended = await call.wait_for_state(CallState.TERMINATED, timeout=5)
    info = ended.result_info
    timeline.line("call", f"ended: {info.code}/{info.subcode} {info.message}" if info else "ended")


async def _hold(call: CallHandle, emulator: Any, timeline: Timeline) -> bool:
    """Hold music for longer than a call lives without a keepAlive; False if the call
    did not survive it."""
    caller = next(
        (p for p in await call.list_participants() if p.id != call.snapshot.my_participant_id),
        None,
    )
    if caller is None or caller.id is None:
        timeline.fail("no caller in the participant list")
        return True
    who = call.participant(caller.id)
    await timeline.operation("startHoldMusic", who.start_hold_music(custom_prompt=HOLD_MUSIC))
    timeline.line(
        "call",
        f"caller on hold for {HOLD_SECONDS:g} s, past the {KEEP_ALIVE_WINDOW:g} s"
        " a call lives without a keepAlive",
    )
    await asyncio.sleep(HOLD_SECONDS)
    if call.ended:
        timeline.fail(f"the call ended while on hold: {call.result_info}")
        return False
    kept = emulator.calls[call.id].keep_alives
    timeline.line("call", f"still {call.state!s} after the hold: {kept} keepAlives so far")
    await timeline.operation("stopHoldMusic", who.stop_hold_music())
    return True
