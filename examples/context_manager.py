"""``async with``: the client, and a recording that is cancelled server-side if the block
is left before it ends.  python examples/context_manager.py
"""

import asyncio

from _runtime import runtime

from graphcomms import MediaPrompt

ASK = MediaPrompt.from_uri("https://media.example.com/leave-a-message.wav")


async def main() -> None:
    async with runtime() as rt:  # closing the client fails whatever is still pending
        call = await rt.client.create_call(targets=[rt.target])
        await call.wait_for_state("established", timeout=30)

        # A recording we wait for: leaving the block early would cancel it on Graph.
        async with call.record_response(prompts=[ASK], max_record_duration=5) as rec:
            final = await rec.wait(timeout=60)
        audio = await rt.client.download_recording(final)
        print(f"recorded {len(audio)} bytes ({final.completion_reason})")

        # A recording we give up on: the timeout leaves the block, which cancels it.
        try:
            async with call.record_response(max_record_duration=120) as rec:
                await rec.wait(timeout=0.01)
        except TimeoutError:
            print("gave up waiting; cancelMediaProcessing sent")
        cancelled = await rec.wait(timeout=30)
        print(f"the abandoned recording ended {cancelled.status}: {cancelled.completion_reason}")

        await call.hang_up()
    print("OK")


if __name__ == "__main__":
    asyncio.run(main())
