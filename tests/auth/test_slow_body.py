"""Slow request bodies on POST /v1/telemetry: the body timeout and in-flight byte counting.

A slow client opens a raw TCP connection with a valid gateway token, declares a large
Content-Length and sends a few bytes. It must neither take the in-flight byte limit from
other clients nor hold its connection past ``[ingest] body_timeout_s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.auth.conftest import AuthServer, Tokens, auth_settings, record, running_server

DECLARED_BYTES = 16_000_000
BODY_TIMEOUT_S = 1.0
# Far below the declared length, which the server counted up front before the fix.
MAX_INFLIGHT_BYTES = 1_000_000
ANSWER_TIMEOUT_S = 10.0


@pytest.fixture
async def slow_server(tmp_path: Path, tokens: Tokens) -> AsyncIterator[AuthServer]:
    settings = auth_settings(
        tmp_path / "data",
        ingest={"body_timeout_s": BODY_TIMEOUT_S, "max_inflight_bytes": MAX_INFLIGHT_BYTES},
    )
    async with running_server(settings, tokens) as server:
        yield server


@contextlib.asynccontextmanager
async def slow_upload(
    server: AuthServer, token: str
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """Open a request that declares DECLARED_BYTES and sends only its first byte."""
    address = urlsplit(server.url)
    assert address.hostname is not None and address.port is not None
    reader, writer = await asyncio.open_connection(address.hostname, address.port)
    head = (
        "POST /v1/telemetry HTTP/1.1\r\n"
        f"Host: {address.netloc}\r\n"
        f"Authorization: Bearer {token}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {DECLARED_BYTES}\r\n\r\n["
    )
    writer.write(head.encode())
    await writer.drain()
    try:
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def inflight_after_close(server: AuthServer) -> int:
    """Return the in-flight bytes once the server has seen the slow client go, or after 5 s."""
    for _ in range(50):
        if server.service.inflight_bytes == 0:
            break
        await asyncio.sleep(0.1)
    return server.service.inflight_bytes


async def post(server: AuthServer, token: str, records: list[dict[str, Any]]) -> httpx.Response:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=ANSWER_TIMEOUT_S) as client:
        return await client.post("/v1/telemetry", headers=headers, content=json.dumps(records))


async def test_slow_body_holds_no_declared_bytes(slow_server: AuthServer) -> None:
    tokens = slow_server.tokens
    async with slow_upload(slow_server, tokens.gateway):
        await asyncio.sleep(0.2)
        inflight = slow_server.service.inflight_bytes
        response = await post(slow_server, tokens.device, [record("truck-1")])

    assert inflight < 100
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 1


async def test_slow_body_times_out_408(slow_server: AuthServer) -> None:
    async with slow_upload(slow_server, slow_server.tokens.gateway) as (reader, _):
        answer = await asyncio.wait_for(reader.read(), ANSWER_TIMEOUT_S)

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), head
    assert b"connection: close" in head.lower()
    error = json.loads(body)["error"]
    assert error["code"] == "request_timeout"
    assert "body_timeout_s" in error["message"]
    assert slow_server.service.inflight_bytes == 0


async def test_body_over_inflight_limit_503(slow_server: AuthServer) -> None:
    tokens = slow_server.tokens
    # The slow upload has sent one byte, so the server counts another request in progress.
    async with slow_upload(slow_server, tokens.gateway):
        await asyncio.sleep(0.2)
        padding = {"note": "x" * 1000}
        records = [record("gw-1", 100 - i / 1000, attributes=padding) for i in range(2_000)]
        response = await post(slow_server, tokens.gateway, records)

    assert len(json.dumps(records)) > MAX_INFLIGHT_BYTES
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "overloaded"
    assert await inflight_after_close(slow_server) == 0
