"""Callbacks: answer incoming calls, react to DTMF tones and to finished operations,
without awaiting each step.  python examples/callbacks.py
"""

import asyncio
from typing import Any

from _runtime import runtime

from graphcomms import CallHandle, MediaPrompt, OperationTracker, ToneInfo

MENU = MediaPrompt.from_uri("https://media.example.com/menu.wav")


async def main() -> None:
    async with runtime() as rt:
        done = asyncio.Event()

        def prompt_done(tracker: OperationTracker[Any]) -> None:
            print(f"menu prompt finished: {tracker.status}, success={tracker.succeeded()}")

        async def on_incoming(call: CallHandle) -> None:
            print(f"incoming call {call.id}: answering")

            def on_tone(tone: ToneInfo) -> None:
                key = tone.key
                print(f"caller pressed {key}")
                if key == "#":
                    done.set()

            call.on_tone(on_tone)
            await call.answer()
            await call.wait_for_state("established", timeout=30)
            await call.subscribe_to_tone()
            (await call.play_prompt([MENU])).add_done_callback(prompt_done)

        rt.client.on_incoming_call(on_incoming)

        if rt.emulator is not None:
            call_id = await rt.emulator.simulate_incoming_call(callback_uri=rt.client.callback_uri)
            await asyncio.sleep(0.2)
            await rt.emulator.press_keys(call_id, "1#")
        await asyncio.wait_for(done.wait(), timeout=120)
    print("OK")


if __name__ == "__main__":
    asyncio.run(main())
