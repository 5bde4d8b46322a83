"""Whole flows: the IVR demo, every example as a user runs it, and the emulator's
determinism with our client driving it."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from integration_support import place_call

from graphcomms import CallState, MediaPrompt
from graphcomms._demo import run_demo
from graphcomms.testing import Faults, GraphEmulator, emulated_bot

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.name for p in (ROOT / "examples").glob("*.py") if not p.name.startswith("_"))
PROMPT = MediaPrompt.from_uri("https://media.example.com/prompt.wav")
T = 5


# -- the IVR demo ----------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 20240611])
async def test_the_ivr_demo_behaves(seed: int) -> None:
    out = io.StringIO()
    code = await run_demo(seed=seed, prompt_seconds=0.01, out=out)
    text = out.getvalue()
    assert code == 0, text
    assert text.rstrip().splitlines()[-1] == "OK: every step behaved"
    for step in (
        "incoming from",
        "answer accepted (202)",
        "state established",
        "subscribeToTone",
        "playPrompt greeting",
        "recordResponse",
        "bytes of WAV",
        "menu prompt stopped by the first key",
        "extension 42 collected",
        "sendDtmfTones",
        "startHoldMusic",
        "stopHoldMusic",
        "playPrompt goodbye",
        "hang up accepted (204)",
        "ended: 200/7000",
    ):
        assert step in text, f"{step!r} missing from the demo's timeline:\n{text}"
    assert "FAIL" not in text
    assert "pending at the end 0" in text


async def test_the_demo_with_default_settings() -> None:
    """What `python -m graphcomms demo` runs (seed 0, 50 ms prompts)."""
    out = io.StringIO()
    assert await run_demo(out=out) == 0, out.getvalue()
    assert out.getvalue().rstrip().endswith("OK: every step behaved")


# -- the examples ------------------------------------------------------------------------------


def test_there_are_examples() -> None:
    assert {"callbacks.py", "context_manager.py", "ivr_bot.py", "plain_await.py"} <= set(EXAMPLES)


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_runs_against_the_emulator(example: str) -> None:
    # Without the GRAPHCOMMS_* settings the examples run against the emulator.
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRAPHCOMMS_")}
    result = subprocess.run(
        [sys.executable, "-W", "error", f"examples/{example}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.returncode == 0, report
    assert result.stdout.rstrip().splitlines()[-1] == "OK", report
    assert "Traceback" not in result.stderr, report


# -- determinism -------------------------------------------------------------------------------


async def _scripted_run(seed: int, faults: Faults) -> list[tuple[Any, ...]]:
    """One fixed script of calls, actions and caller events; returns the delivery log."""
    async with (
        GraphEmulator(seed=seed, prompt_seconds=0.01, faults=faults) as emulator,
        emulated_bot(emulator) as bot,
    ):
        call = await place_call(bot.client)
        await call.subscribe_to_tone()
        await asyncio.wait_for(await call.play_prompt([PROMPT]), T)
        tones = call.tones()
        await emulator.press_keys(call.id, "1*#")
        for _ in range(3):
            await asyncio.wait_for(tones.__anext__(), T)
        record = await asyncio.wait_for(await call.record_response(max_record_duration=5), T)
        assert record.recording_location
        await asyncio.wait_for(await call.send_dtmf_tones("42"), T)
        await asyncio.wait_for(await call.add_large_gallery_view(), T)
        await call.mute()
        await call.hang_up()
        await call.wait_for_state(CallState.TERMINATED, timeout=T)

        incoming = bot.client.incoming_calls()
        second_id = await emulator.simulate_incoming_call(callback_uri=bot.callback_uri)
        second = await asyncio.wait_for(incoming.__anext__(), T)
        await second.answer()
        await second.wait_for_state(CallState.ESTABLISHED, timeout=T)
        await asyncio.wait_for(await second.play_prompt([PROMPT]), T)
        await emulator.caller_hangs_up(second_id)
        await second.wait_for_state(CallState.TERMINATED, timeout=T)
        await emulator.drain()
        assert bot.client.stats.pending == 0
        return [
            (
                d.seq,
                d.call_id,
                d.operation_id,
                d.change_type,
                d.resource_url,
                d.message_id,
                tuple(sorted(d.faults)),
                d.status,
            )
            for d in emulator.deliveries
        ]


@pytest.mark.parametrize(
    "faults",
    [
        Faults(),
        Faults(duplicate=0.3, reorder=0.2, delay=0.3, delay_seconds=(0.0, 0.02), quirks=True),
    ],
    ids=["clean", "faulty"],
)
async def test_same_seed_same_script_same_deliveries(faults: Faults) -> None:
    first = await _scripted_run(7, faults)
    second = await _scripted_run(7, faults)
    assert first == second
    assert len(first) >= 17
    assert all(status == 202 for *_, status in first)
    if faults.duplicate:
        assert any("duplicate" in f for *_, f, _ in first)


async def test_a_different_seed_gives_different_ids() -> None:
    a = await _scripted_run(1, Faults())
    b = await _scripted_run(2, Faults())
    assert [d[3] for d in a] == [d[3] for d in b]  # the same events...
    assert [d[4] for d in a] != [d[4] for d in b]  # ...about other ids
