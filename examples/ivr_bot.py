"""An IVR bot: answer, greet, read a menu choice by DTMF, act on it, say goodbye.

python examples/ivr_bot.py
"""

import asyncio
from collections.abc import Awaitable, Callable

from _runtime import runtime

from graphcomms import CallHandle, MediaPrompt

PROMPTS = {
    name: MediaPrompt.from_uri(f"https://media.example.com/ivr/{name}.wav")
    for name in ("welcome", "menu", "sales", "support", "goodbye")
}


async def read_key(call: CallHandle, timeout: float) -> str | None:
    """The next key the caller presses, or None after ``timeout`` seconds."""
    tones = call.tones()
    try:
        tone = await asyncio.wait_for(tones.__anext__(), timeout)
    except (TimeoutError, asyncio.TimeoutError, StopAsyncIteration):
        return None
    return tone.key


async def handle(call: CallHandle, press: Callable[[], Awaitable[None]]) -> None:
    await call.answer()
    await call.wait_for_state("established", timeout=30)
    await call.subscribe_to_tone()
    await (await call.play_prompt([PROMPTS["welcome"], PROMPTS["menu"]]))
    key = asyncio.ensure_future(read_key(call, timeout=30))
    await press()  # the emulator's caller presses a key; on real Graph, a person does
    choice = await key
    print(f"caller chose {choice!r}")
    if choice == "1":
        await (await call.play_prompt([PROMPTS["sales"]]))
    elif choice == "2":
        await (await call.play_prompt([PROMPTS["support"]]))
    await (await call.play_prompt([PROMPTS["goodbye"]]))
    await call.hang_up()
    await call.wait_for_state("terminated", timeout=30)
    print(f"call {call.id} done")


async def main() -> None:
    async with runtime() as rt:
        incoming = rt.client.incoming_calls()
        call_id = None
        if rt.emulator is not None:
            call_id = await rt.emulator.simulate_incoming_call(callback_uri=rt.client.callback_uri)
        call = await incoming.__anext__()
        emulator = rt.emulator

        async def press() -> None:
            if emulator is not None and call_id is not None:
                await emulator.press_keys(call_id, "2")

        await handle(call, press)
    print("OK")


if __name__ == "__main__":
    asyncio.run(main())
