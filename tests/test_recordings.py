"""Downloading recordings: only over https (unless the client itself talks plain http),
within a size the caller allows, streamed to a file or callable, and never with the
signed URL's query string in an error (reference §2.2; a recording's access token and
location are secrets)."""

from __future__ import annotations

import asyncio
import io
import traceback
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aioresponses import aioresponses

from graphcomms import CommsClient, RecordOperation
from graphcomms.errors import (
    GraphCommsError,
    InvalidRequestError,
    ResponseTooLargeError,
    TransportError,
)

TOKEN = "recording-access-token-SECRET"
SECRET_QUERY = "sig=signed-SECRET"
WAV = b"RIFF" + bytes(range(256)) * 4096  # 1 MiB and change


def operation(url: str) -> RecordOperation:
    return RecordOperation(status="completed", recording_location=url, recording_access_token=TOKEN)


def printed(error: BaseException) -> str:
    return "".join(traceback.format_exception(type(error), error, error.__traceback__))


class RecordingServer:
    """Serves recordings on loopback, with the faults a CDN or proxy can show."""

    def __init__(self) -> None:
        self.gets = 0
        app = web.Application()
        app.router.add_get("/rec", self.whole)
        app.router.add_get("/chunked", self.chunked)
        app.router.add_get("/cut", self.cut)
        app.router.add_get("/loop", self.loop)
        app.router.add_get("/ftp", self.ftp)
        self.runner = web.AppRunner(app, access_log=None)
        self.url = ""

    async def start(self) -> None:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self.runner.addresses[0][1]}"

    async def whole(self, request: web.Request) -> web.Response:
        self.gets += 1
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        return web.Response(body=WAV, content_type="audio/wav")

    async def chunked(self, request: web.Request) -> web.StreamResponse:
        self.gets += 1
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(WAV), 65536):
            await response.write(WAV[start : start + 65536])
        await response.write_eof()
        return response

    async def cut(self, request: web.Request) -> web.StreamResponse:
        """Promises the whole file, sends a part, and drops the connection."""
        self.gets += 1
        response = web.StreamResponse(headers={"Content-Length": str(len(WAV))})
        await response.prepare(request)
        await response.write(WAV[:200_000])
        await asyncio.sleep(0.05)
        assert request.transport is not None
        request.transport.close()
        return response

    async def loop(self, request: web.Request) -> web.Response:
        self.gets += 1
        raise web.HTTPFound(f"/loop?{SECRET_QUERY}")

    async def ftp(self, request: web.Request) -> web.Response:
        self.gets += 1
        raise web.HTTPFound(f"ftp://files.test/rec?{SECRET_QUERY}")


@pytest.fixture
async def server() -> AsyncIterator[RecordingServer]:
    recordings = RecordingServer()
    await recordings.start()
    yield recordings
    await recordings.runner.cleanup()


@pytest.fixture
async def client(server: RecordingServer) -> AsyncIterator[CommsClient]:
    # Plain http to the base URL (as with the emulator): plain http recordings allowed.
    async with CommsClient("graph-token", base_url=server.url + "/v1.0/") as c:
        yield c


async def test_an_http_recording_is_refused_when_graph_is_reached_over_https(
    mock_graph: aioresponses,
) -> None:
    async with CommsClient("graph-token", base_url="https://graph.test/v1.0/") as client:
        with pytest.raises(InvalidRequestError, match="https") as caught:
            await client.download_recording(operation(f"http://cdn.test/rec?{SECRET_QUERY}"))
        with pytest.raises(InvalidRequestError):
            await client.save_recording(operation("ftp://cdn.test/rec"), io.BytesIO())
    assert mock_graph.requests == {}  # the token went nowhere
    assert SECRET_QUERY not in printed(caught.value)


@pytest.mark.parametrize("path", ["/rec", "/chunked"])
async def test_download_stops_at_max_size(
    client: CommsClient, server: RecordingServer, path: str
) -> None:
    recording = operation(f"{server.url}{path}?{SECRET_QUERY}")
    with pytest.raises(ResponseTooLargeError) as caught:
        await client.download_recording(recording, max_size=len(WAV) - 1)
    assert SECRET_QUERY not in printed(caught.value)
    assert await client.download_recording(recording, max_size=len(WAV)) == WAV


async def test_save_recording_streams_to_a_path_a_file_or_a_callable(
    client: CommsClient, server: RecordingServer, tmp_path: Path
) -> None:
    recording = operation(f"{server.url}/chunked?{SECRET_QUERY}")
    target = tmp_path / "call.wav"
    assert await client.save_recording(recording, target) == len(WAV)
    assert target.read_bytes() == WAV

    buffer = io.BytesIO()
    assert await client.save_recording(recording, buffer) == len(WAV)
    assert buffer.getvalue() == WAV

    chunks: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        await asyncio.sleep(0)
        chunks.append(chunk)

    assert await client.save_recording(recording, sink) == len(WAV)
    assert b"".join(chunks) == WAV
    assert len(chunks) > 1  # it arrived, and was handed on, in pieces
    with pytest.raises(ResponseTooLargeError):
        await client.save_recording(recording, io.BytesIO(), max_size=1000)


async def test_a_stream_cut_after_the_first_chunk_is_not_fetched_again(
    client: CommsClient, server: RecordingServer
) -> None:
    written = io.BytesIO()
    with pytest.raises(TransportError) as caught:
        await client.save_recording(operation(f"{server.url}/cut?{SECRET_QUERY}"), written)
    assert server.gets == 1  # a retry would have written the start twice
    assert 0 < len(written.getvalue()) < len(WAV)
    assert SECRET_QUERY not in printed(caught.value)


@pytest.mark.parametrize("path", ["/loop", "/ftp"])
async def test_redirect_failures_never_show_the_query_string(
    client: CommsClient, server: RecordingServer, path: str
) -> None:
    with pytest.raises(GraphCommsError) as caught:
        await client.download_recording(operation(f"{server.url}{path}?{SECRET_QUERY}"))
    assert SECRET_QUERY not in printed(caught.value)
    assert TOKEN not in printed(caught.value)
    # Followed once (aiohttp gives up after 10 redirects), never retried from the start.
    assert 1 <= server.gets <= 11


async def test_an_invalid_url_never_shows_the_query_string(client: CommsClient) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        await client.download_recording(operation(f"http://[not-a-host/rec?{SECRET_QUERY}"))
    assert SECRET_QUERY not in printed(caught.value)
