"""An IVR bot: answer, greet, read a menu choice by DTMF (collect_tones, with barge-in),
act on it, say goodbye.

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


async def handle(call: CallHandle, press: Callable[[], Awaitable[None]]) -> None:
    await call.answer()
    await call.wait_for_state("established", timeout=30)
    # Returns once the subscription is effective: every key from now on is kept until
    # read, even the ones typed while a prompt plays and nobody is reading.
    await (await call.subscribe_to_tone())
    await (await call.play_prompt([PROMPTS["welcome"]]))
    # The emulator's caller will press a key during the menu; on real Graph, a person does.
    await press()
    # Play the menu and read one key; the first key stops the menu (barge-in).
    menu = await call.collect_tones(prompt=PROMPTS["menu"], max_tones=1, first_tone_timeout=10)
    print(f"caller chose {menu.keys!r} ({menu.reason})")
    if menu.keys == "1":
        await (await call.play_prompt([PROMPTS["sales"]]))
    elif menu.keys == "2":
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
                await emulator.press_keys(call_id, "2", during_prompt=True)

        await handle(call, press)
    print("OK")


if __name__ == "__main__":
    asyncio.run(main())
