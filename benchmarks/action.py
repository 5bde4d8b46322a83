"""Comparison 2, in process: what an action costs on the client side.

``await call.play_prompt([MediaPrompt.from_uri(...)])`` one after another, with the
network replaced by the in-process fake Graph (:mod:`benchmarks._fakegraph`): the
request model and its body, the tracker and its registration before the POST, the
answer read as a ``PlayPromptOperation``, the bind. That is graphcomms' whole client
side; the loopback rows of :mod:`benchmarks.roundtrip` add aiohttp, the kernel and a
server to it.

The floor posts through the same fake session and does the least a client that
tracks operations can do: a fresh ``clientContext``, a future registered under it
before the POST, the body encoded with orjson, the answer decoded with orjson, the
future indexed by the answer's id. Both keep what they made (a bot keeps its
trackers); each round's operations are resolved afterwards, untimed, so every round
starts with none pending.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from benchmarks._fakegraph import FakeGraphSession
from benchmarks._harness import Row, Series, Sizes, compare, workload_round
from benchmarks._instructions import CountSpec, Variant, counted_rows
from benchmarks._payloads import PROMPT_URI
from benchmarks._tracking import TOKEN, bot_client, completions
from graphcomms import GRAPH_V1, CommsClient, MediaPrompt

__all__ = ["FloorAction", "GraphcommsAction", "run_action"]

CALL_ID = "421f4c00-4436-4c3a-9d9a-c4924b1e5e5f"
_CALL_KEY = CALL_ID.replace("-", "")


class GraphcommsAction:
    """``await call.play_prompt([MediaPrompt.from_uri(uri)])``, tracker kept."""

    item = "action"

    def __init__(self) -> None:
        self.facts: dict[str, Any] = {}
        self._trackers: list[Any] = []
        self._client: CommsClient | None = None

    async def open(self) -> None:
        self._client, _ = bot_client(FakeGraphSession())
        self._call = self._client.call(CALL_ID)

    async def prepare(self, count: int) -> None:
        self._trackers = []

    async def run(self, count: int) -> None:
        play_prompt, from_uri, keep = self._call.play_prompt, MediaPrompt.from_uri, self._trackers
        for _ in range(count):
            keep.append(await play_prompt([from_uri(PROMPT_URI)]))

    def check(self) -> None:
        client, trackers = self._client, self._trackers
        assert client is not None
        if client.stats.pending != len(trackers) or any(t.done() for t in trackers):
            raise RuntimeError("an action did not leave its tracker pending")
        # Untimed: resolve them, so that the next round starts with none pending.
        for body in completions([_CALL_KEY] * len(trackers), trackers):
            client.feed(body)
        if client.stats.pending:
            raise RuntimeError("a notification did not resolve its tracker")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()


class FloorAction:
    """Context, future registered, orjson body, POST, orjson answer, future indexed."""

    item = "action"

    def __init__(self) -> None:
        self.facts: dict[str, Any] = {}
        self._by_context: dict[str, asyncio.Future[Any]] = {}
        self._by_id: dict[str, asyncio.Future[Any]] = {}

    async def open(self) -> None:
        import orjson

        self._dumps, self._loads = orjson.dumps, orjson.loads
        self._session = FakeGraphSession()
        self._url = f"{GRAPH_V1}communications/calls/{CALL_ID}/playPrompt"
        self._authorization = f"Bearer {TOKEN}"

    async def prepare(self, count: int) -> None:
        self._by_context, self._by_id = {}, {}

    async def run(self, count: int) -> None:
        loop = asyncio.get_running_loop()
        session, url, dumps, loads = self._session, self._url, self._dumps, self._loads
        by_context, by_id, authorization = self._by_context, self._by_id, self._authorization
        for _ in range(count):
            context = os.urandom(16).hex()
            future = by_context[context] = loop.create_future()
            body = {
                "prompts": [
                    {
                        "@odata.type": "#microsoft.graph.mediaPrompt",
                        "mediaInfo": {
                            "@odata.type": "#microsoft.graph.mediaInfo",
                            "uri": PROMPT_URI,
                        },
                    }
                ],
                "clientContext": context,
            }
            headers = {"Authorization": authorization, "Content-Type": "application/json"}
            async with session.request("POST", url, data=dumps(body), headers=headers) as answer:
                if answer.status != 200:
                    raise RuntimeError(f"answered {answer.status}")
                operation = loads(await answer.read())
            by_id[operation["id"]] = future

    def check(self) -> None:
        if len(self._by_id) != len(self._by_context):
            raise RuntimeError("the floor lost an answer")

    async def aclose(self) -> None:
        return None


def run_action(sizes: Sizes) -> list[Row]:
    """graphcomms' client side of an action against the floor; in time, and with
    ``--instructions`` in instructions. No target: the issues set none, and the
    loopback rows (comparison 2) hold the end-to-end one."""
    title = "2. play_prompt client side, in process{}, vs context+post+decode floor"
    meaning = "graphcomms throughput / floor throughput"
    rows: list[Row] = []
    if sizes.timing:
        row = Row(key="action", title=title.format(""), target=None, ratio_meaning=meaning)

        async def main() -> None:
            ours, floor = GraphcommsAction(), FloorAction()
            try:
                await ours.open()
                await floor.open()
                await compare(
                    row,
                    (Series("graphcomms", "actions/s"), workload_round(ours, sizes.action_n)),
                    (Series("floor", "actions/s"), workload_round(floor, sizes.action_n)),
                    repeats=sizes.repeats,
                )
                row.extra["n_per_round"] = sizes.action_n
            finally:
                await ours.aclose()
                await floor.aclose()

        asyncio.run(main())
        rows.append(row)
    if sizes.instructions:
        rows.extend(
            counted_rows(
                [
                    CountSpec(
                        key="action.instructions",
                        title=title.format(", instructions"),
                        target=None,
                        subject=Variant("graphcomms", "benchmarks.action:GraphcommsAction"),
                        baseline=Variant("floor", "benchmarks.action:FloorAction"),
                        n=sizes.instr_action_n,
                        warmup=sizes.instr_warmup,
                        ratio_meaning="floor instructions / graphcomms instructions",
                    )
                ],
                sizes,
            )
        )
    return rows
