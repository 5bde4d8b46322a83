"""OpenTelemetry tracing against the emulator, read back from the SDK's in-memory
exporter: a span per action to its outcome, the HTTP request as its child,
notifications as events, failures recorded; and nothing imported when it is off."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
import pytest_asyncio
from integration_support import place_call
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from graphcomms import (
    CallEndedError,
    CallHandle,
    ClientClosedError,
    MediaPrompt,
    OperationFailedError,
)
from graphcomms.errors import ServerError
from graphcomms.testing import EmulatedBot, GraphEmulator, emulated_bot

PROMPT = MediaPrompt.from_uri("https://media.example.com/prompt.wav")
T = 5


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest_asyncio.fixture
async def bot(
    graph_emulator: GraphEmulator, exporter: InMemorySpanExporter
) -> AsyncIterator[EmulatedBot]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    async with emulated_bot(graph_emulator, tracer_provider=provider) as bot:
        yield bot
    provider.shutdown()


@pytest_asyncio.fixture
async def call(bot: EmulatedBot) -> CallHandle:
    return await place_call(bot.client)


def only(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    (span,) = [s for s in spans if s.name == name]
    return span


def children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    context = parent.get_span_context()
    assert context is not None
    return [s for s in spans if s.parent is not None and s.parent.span_id == context.span_id]


def attrs_of(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


async def test_an_action_is_a_span_from_its_post_to_its_notified_end(
    call: CallHandle, exporter: InMemorySpanExporter
) -> None:
    tracker = await call.play_prompt([PROMPT])
    final = await asyncio.wait_for(tracker, T)
    spans = exporter.get_finished_spans()
    action = only(spans, "graphcomms playPrompt")
    assert action.kind is SpanKind.INTERNAL
    assert action.status.status_code is StatusCode.OK
    a = attrs_of(action)
    assert a["graphcomms.call.id"] == tracker.call_id
    assert a["graphcomms.operation.id"] == tracker.operation_id
    assert a["graphcomms.operation.client_context"] == tracker.client_context
    assert a["graphcomms.operation.type"] == "PlayPromptOperation"
    assert a["graphcomms.operation.status"] == "completed"
    assert final.result_info is not None
    assert a["graphcomms.result.code"] == final.result_info.code == 200
    assert a["graphcomms.result.subcode"] == final.result_info.subcode
    if final.completion_reason is not None:
        assert a["graphcomms.operation.completion_reason"] == str(final.completion_reason)
    # The POST is the action's child, and names the same client-request-id.
    (post,) = children(spans, action)
    assert post.name == "POST"
    assert post.kind is SpanKind.CLIENT
    p = attrs_of(post)
    assert p["http.request.method"] == "POST"
    assert str(p["url.full"]).endswith("/playPrompt")
    assert p["http.response.status_code"] in (200, 201, 202)
    assert p["graphcomms.client_request_id"] == a["graphcomms.client_request_id"]
    assert post.end_time is not None
    assert action.end_time is not None
    assert post.end_time <= action.end_time
    # The terminal notification is an event on the action's span.
    events = [e for e in action.events if e.name == "graphcomms.notification"]
    assert events
    assert dict(events[-1].attributes or {})["graphcomms.operation.status"] == "completed"


async def test_a_failed_operation_ends_its_span_as_an_error_with_the_exception(
    bot: EmulatedBot, call: CallHandle, exporter: InMemorySpanExporter
) -> None:
    bot.emulator.prompt_seconds = 30  # nothing ends by itself during the test
    tracker = await call.play_prompt([PROMPT])
    assert await tracker.cancel() is True
    with pytest.raises(OperationFailedError):
        await asyncio.wait_for(tracker, T)
    spans = exporter.get_finished_spans()
    action = only(spans, "graphcomms playPrompt")
    assert action.status.status_code is StatusCode.ERROR
    a = attrs_of(action)
    assert a["graphcomms.operation.status"] == "failed"
    assert a["graphcomms.operation.completion_reason"] == "mediaOperationCanceled"
    assert a["error.type"] == "OperationFailedError"
    (exception,) = [e for e in action.events if e.name == "exception"]
    assert str(dict(exception.attributes or {})["exception.type"]).endswith("OperationFailedError")
    # The cancel is an action of its own, a success (Graph answers it completed).
    cancel = only(spans, "graphcomms cancelMediaProcessing")
    assert cancel.status.status_code is StatusCode.OK
    assert attrs_of(cancel)["graphcomms.call.id"] == tracker.call_id


async def test_the_calls_end_ends_a_pending_actions_span_with_call_ended(
    bot: EmulatedBot, call: CallHandle, exporter: InMemorySpanExporter
) -> None:
    bot.emulator.prompt_seconds = 30
    tracker = await call.play_prompt([PROMPT])
    await bot.emulator.caller_hangs_up(call.id)
    with pytest.raises(CallEndedError):
        await asyncio.wait_for(tracker, T)
    action = only(exporter.get_finished_spans(), "graphcomms playPrompt")
    assert action.status.status_code is StatusCode.ERROR
    assert attrs_of(action)["error.type"] == "CallEndedError"
    assert [e.name for e in action.events].count("exception") == 1
    assert bot.client.stats.pending == 0


async def test_a_refused_post_ends_the_action_and_its_http_span_as_errors(
    bot: EmulatedBot, call: CallHandle, exporter: InMemorySpanExporter
) -> None:
    bot.emulator.fail_next(500, path_contains="/playPrompt")
    with pytest.raises(ServerError):
        await call.play_prompt([PROMPT])
    spans = exporter.get_finished_spans()
    action = only(spans, "graphcomms playPrompt")
    assert action.status.status_code is StatusCode.ERROR
    assert attrs_of(action)["error.type"] == "ServerError"
    (post,) = children(spans, action)
    assert post.status.status_code is StatusCode.ERROR
    assert attrs_of(post)["http.response.status_code"] == 500
    assert attrs_of(post)["graphcomms.client_request_id"]
    assert bot.client.stats.pending == 0


async def test_closing_the_client_ends_a_pending_actions_span_as_an_error(
    bot: EmulatedBot, call: CallHandle, exporter: InMemorySpanExporter
) -> None:
    bot.emulator.prompt_seconds = 30
    tracker = await call.play_prompt([PROMPT])
    await bot.client.aclose()
    with pytest.raises(ClientClosedError):
        await tracker
    action = only(exporter.get_finished_spans(), "graphcomms playPrompt")
    assert action.status.status_code is StatusCode.ERROR
    assert attrs_of(action)["error.type"] == "ClientClosedError"


async def test_a_notification_that_overtakes_the_answer_is_an_event_too(
    bot: EmulatedBot, call: CallHandle, exporter: InMemorySpanExporter
) -> None:
    bot.emulator.deliver_early_next(path_contains="/playPrompt")
    tracker = await call.play_prompt([PROMPT])
    await asyncio.wait_for(tracker, T)
    action = only(exporter.get_finished_spans(), "graphcomms playPrompt")
    assert action.status.status_code is StatusCode.OK
    assert attrs_of(action)["graphcomms.operation.id"] == tracker.operation_id
    assert [e.name for e in action.events] == ["graphcomms.notification"]


async def test_plain_requests_have_http_spans_too(
    bot: EmulatedBot, exporter: InMemorySpanExporter
) -> None:
    call = await place_call(bot.client)
    await call.hang_up()
    names = [s.name for s in exporter.get_finished_spans()]
    assert "DELETE" in names
    assert names.count("POST") >= 1  # the create-call


def test_nothing_of_opentelemetry_is_imported_when_tracing_is_off() -> None:
    """A full action round trip in a fresh interpreter, then a look at sys.modules."""
    script = textwrap.dedent(
        """
        import asyncio, sys
        from graphcomms import IdentitySet, InvitationParticipantInfo, MediaPrompt
        from graphcomms.testing import GraphEmulator, emulated_bot

        async def main():
            async with GraphEmulator(seed=0, prompt_seconds=0.01) as emulator:
                async with emulated_bot(emulator) as bot:
                    call = await bot.client.create_call(targets=[InvitationParticipantInfo(
                        identity=IdentitySet.for_phone("+14255550100"))])
                    await call.wait_for_state("established", timeout=5)
                    op = await call.play_prompt([MediaPrompt.from_uri("https://m/p.wav")])
                    await asyncio.wait_for(op, 5)
                    await call.hang_up()
            loaded = sorted(m for m in sys.modules if m.startswith("opentelemetry"))
            print("loaded:", loaded, "tracing:", "graphcomms._tracing" in sys.modules)

        asyncio.run(main())
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == "loaded: [] tracing: False", out.stderr
