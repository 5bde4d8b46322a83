"""The names a documentation block may use without defining them.

A block in README.md or docs/*.md names its setup in an HTML comment on the line
before its fence, ``<!-- docs-test: setup=bot_call -->``; ``tests/test_docs_blocks.py``
runs it as the body of an ``async def`` with the setup's names in scope, and mypy
checks it with the setup's ``declarations`` in front. A setup that talks to Graph talks
to the emulator in ``graphcomms.testing``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs

from graphcomms import CallState, CommsClient, IdentitySet, InvitationParticipantInfo, MediaPrompt
from graphcomms.testing import EmulatedBot, GraphEmulator, emulated_bot

Namespace = dict[str, Any]


@attrs.frozen
class Setup:
    #: Enters before the block runs and yields its globals; leaves after it.
    enter: Callable[[], contextlib.AbstractAsyncContextManager[Namespace]]
    #: What mypy is told those names are (module-level declarations and imports).
    declarations: str


def _as_client(bot: EmulatedBot) -> Callable[..., contextlib.AbstractAsyncContextManager[Any]]:
    """Stands for ``CommsClient(token, callback_uri=...)`` in a block: the bot's own
    client, already wired to the emulator, left open when the block's ``async with``
    ends (the setup closes it)."""

    def factory(*_: Any, **__: Any) -> contextlib.AbstractAsyncContextManager[CommsClient]:
        return contextlib.nullcontext(bot.client)

    return factory


@contextlib.asynccontextmanager
async def _emulated(
    prompt_seconds: float = 0.01,
) -> AsyncIterator[tuple[GraphEmulator, EmulatedBot]]:
    async with (
        GraphEmulator(seed=0, prompt_seconds=prompt_seconds) as emulator,
        emulated_bot(emulator) as bot,
    ):
        yield emulator, bot


@contextlib.asynccontextmanager
async def bot() -> AsyncIterator[Namespace]:
    """``client``: a client wired to the emulator, with no call yet."""
    async with _emulated() as (_, emulated):
        yield {"client": emulated.client}


@contextlib.asynccontextmanager
async def bot_call(prompt_seconds: float = 0.01) -> AsyncIterator[Namespace]:
    """An established call: ``client``, ``call`` and its id ``call_id``, ``prompts``, a
    done-callback ``on_done``, and ``CommsClient`` standing for a client made with
    ``token`` and ``CALLBACK_URL`` (the same client)."""
    async with _emulated(prompt_seconds) as (_, emulated):
        client = emulated.client
        callee = InvitationParticipantInfo(identity=IdentitySet.for_phone("+14255550100"))
        call = await client.create_call(targets=[callee])
        await call.wait_for_state(CallState.ESTABLISHED, timeout=10)
        done: list[object] = []
        yield {
            "CommsClient": _as_client(emulated),
            "token": "a Graph token",
            "CALLBACK_URL": emulated.callback_uri,
            "GREETING_WAV": "https://example.com/greeting.wav",
            "MediaPrompt": MediaPrompt,
            "client": client,
            "call": call,
            "call_id": call.id,
            "prompts": [MediaPrompt.from_uri("https://example.com/menu.wav")],
            "on_done": done.append,
        }


@contextlib.asynccontextmanager
async def ringing_bot() -> AsyncIterator[Namespace]:
    """``client``, and a caller who rings it and, once the bot subscribed to tones,
    keeps pressing 1 then # until the call ends."""
    async with _emulated() as (emulator, emulated):
        loop = asyncio.get_running_loop()

        async def ring() -> tuple[str, float]:
            call_id = await emulator.simulate_incoming_call(callback_uri=emulated.callback_uri)
            return call_id, loop.time()

        async def caller() -> None:
            call_id, rung_at = await ring()
            while True:
                await asyncio.sleep(0.05)
                call = emulator.calls[call_id]
                if call.state == "incoming" and loop.time() - rung_at > 2:
                    # Not answered: the block may not have been listening yet. Ring
                    # again (a retry, not a deadline: the test's bound is its own).
                    call_id, rung_at = await ring()
                elif call.tone_subscribed:
                    try:
                        await emulator.press_keys(call_id, "1#")
                    except ValueError:  # the call has ended
                        return

        task = asyncio.create_task(caller())
        try:
            yield {"client": emulated.client}
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def long_media_call() -> contextlib.AbstractAsyncContextManager[Namespace]:
    """``bot_call``, where a prompt plays for a minute: still running when the block
    ends the call or closes the client."""
    return bot_call(prompt_seconds=60.0)


_CLIENT = "from graphcomms import CommsClient\nclient: CommsClient\n"

_CALL = (
    _CLIENT + "from collections.abc import Sequence\n"
    "from typing import Any\n"
    "from graphcomms import CallHandle, MediaPrompt, OperationTracker\n"
    "from graphcomms.typing import TokenLike\n"
    "token: TokenLike\n"
    "CALLBACK_URL: str\n"
    "GREETING_WAV: str\n"
    "call: CallHandle\n"
    "call_id: str\n"
    "prompts: Sequence[MediaPrompt]\n"
    "def on_done(tracker: OperationTracker[Any], /) -> None: ...\n"
)

SETUPS: dict[str, Setup] = {
    "bot": Setup(bot, _CLIENT),
    "ringing_bot": Setup(ringing_bot, _CLIENT),
    "bot_call": Setup(bot_call, _CALL),
    "long_media_call": Setup(long_media_call, _CALL),
}
