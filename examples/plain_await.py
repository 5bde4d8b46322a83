"""Plain ``await``: place a call, play a prompt, wait for its real outcome, hang up.

Runs against the embedded Graph emulator; set the variables in examples/_runtime.py to
run it against real Microsoft Graph.  python examples/plain_await.py
"""

import asyncio

from _runtime import runtime

from graphcomms import MediaPrompt, OperationFailedError

GREETING = MediaPrompt.from_uri("https://media.example.com/greeting.wav")


async def main() -> None:
    async with runtime() as rt:
        call = await rt.client.create_call(targets=[rt.target])
        await call.wait_for_state("established", timeout=30)
        print(f"call {call.id} established")

        op = await call.play_prompt([GREETING])  # the POST is done: a tracker comes back
        print(f"playPrompt accepted, status {op.status}")
        try:
            final = await op  # the terminal PlayPromptOperation, from its notification
            print(f"playPrompt {final.status}: {final.result_info}")
        except OperationFailedError as exc:
            print(f"playPrompt failed: {exc}")
            raise

        await call.hang_up()
        ended = await call.wait_for_state("terminated", timeout=30)
        print(f"call ended: {ended.result_info}")
    print("OK")


if __name__ == "__main__":
    asyncio.run(main())
