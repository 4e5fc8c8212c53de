"""POST /v1/telemetry at the ASGI level: the raw endpoint and the fast path of the full app.

The endpoint reads the body from ASGI messages itself, without Starlette's Request.
These tests cover what Starlette used to handle: bodies in many chunks, chunked
transfer encoding, a client that goes away mid-body, the body timeout and the exact
response headers. The app is the full one of ``api.app.create_app``, served by uvicorn
on 127.0.0.1, with the in-memory queue and store of conftest.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from starlette.applications import Starlette

from fleetpulse.api.app import create_app
from fleetpulse.api.context import ApiContext
from fleetpulse.httpserve import bind_tcp, start_uvicorn
from fleetpulse.ingest.http import TelemetryEndpoint, TelemetryFastPath, telemetry_routes
from fleetpulse.ingest.service import IngestService
from fleetpulse.model.vocabulary import TOO_LARGE
from tests.ingest.conftest import MemoryQueue, MemoryStore, json_body, make_settings, record

ANSWER_TIMEOUT_S = 10.0
BODY_TIMEOUT_S = 0.3
MAX_BODY_BYTES = 4_096

Message = dict[str, Any]


def full_app(service: IngestService, queue: MemoryQueue, store: MemoryStore) -> Starlette:
    context = ApiContext(settings=service.settings, store=store, queue=queue)
    return create_app(context, extra_routes=list(telemetry_routes(service)))


@pytest.fixture
def service(queue: MemoryQueue, store: MemoryStore) -> IngestService:
    settings = make_settings(body_timeout_s=BODY_TIMEOUT_S, max_body_bytes=MAX_BODY_BYTES)
    return IngestService(settings, queue, store)


@pytest.fixture
async def port(
    service: IngestService, queue: MemoryQueue, store: MemoryStore
) -> AsyncIterator[int]:
    """Serve the full app on a free port of 127.0.0.1 and yield the port."""
    sock = bind_tcp("127.0.0.1", 0, "test")
    server, task = await start_uvicorn(full_app(service, queue, store), sock, "test-fast-path")
    try:
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()


async def exchange(port: int, request: bytes, *, close_after: bool = False) -> bytes:
    """Send raw request bytes and return everything the server sends until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        if close_after:
            writer.close()
            return b""
        return await asyncio.wait_for(reader.read(), ANSWER_TIMEOUT_S)
    finally:
        writer.close()


def request_head(headers: str) -> bytes:
    return (
        "POST /v1/telemetry HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/json\r\nConnection: close\r\n" + headers + "\r\n"
    ).encode()


def split_response(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status_line, headers, body


def chunked(body: bytes, size: int) -> bytes:
    parts = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"


def test_create_app_mounts_fast_path(
    service: IngestService, queue: MemoryQueue, store: MemoryStore
) -> None:
    app = full_app(service, queue, store)

    classes = [middleware.cls for middleware in app.user_middleware]
    assert TelemetryFastPath in classes


async def test_chunked_body_202(port: int, queue: MemoryQueue) -> None:
    body = json_body(record(device_id="truck-7"))

    answer = await exchange(port, request_head("Transfer-Encoding: chunked\r\n") + chunked(body, 7))

    status_line, headers, payload = split_response(answer)
    assert status_line == "HTTP/1.1 202 Accepted"
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(payload))
    assert json.loads(payload) == {
        "accepted": 1,
        "rejected": 0,
        "errors": [],
        "errors_truncated": 0,
    }
    assert [item.device_id for item in queue.records] == ["truck-7"]


async def test_chunked_body_over_limit_413(
    port: int, queue: MemoryQueue, store: MemoryStore
) -> None:
    records = [record(device_id=f"truck-{i}") for i in range(100)]
    body = json_body(*records)
    assert len(body) > MAX_BODY_BYTES

    answer = await exchange(
        port, request_head("Transfer-Encoding: chunked\r\n") + chunked(body, 1_000)
    )

    status_line, _, payload = split_response(answer)
    assert status_line.startswith("HTTP/1.1 413")
    assert json.loads(payload)["error"]["code"] == TOO_LARGE
    assert queue.records == []
    assert [letter.reason for letter in store.letters] == [TOO_LARGE]
    # Only the chunks received before the limit was passed are kept, at most all but one.
    assert body.decode().startswith(store.letters[0].raw)


async def test_keep_alive_serves_two_requests(port: int, queue: MemoryQueue) -> None:
    body = json_body(record())
    one = (
        "POST /v1/telemetry HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        statuses = []
        for _ in range(2):
            writer.write(one)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), ANSWER_TIMEOUT_S)
            _, headers, _ = split_response(head)
            await reader.readexactly(int(headers["content-length"]))
            statuses.append(head.split(b"\r\n")[0])
            assert "connection" not in headers
    finally:
        writer.close()

    assert statuses == [b"HTTP/1.1 202 Accepted"] * 2
    assert len(queue.records) == 2


async def test_disconnect_mid_body_releases_bytes(
    port: int, service: IngestService, queue: MemoryQueue, store: MemoryStore
) -> None:
    partial_body = request_head("Content-Length: 1000\r\n") + b'[{"device_id": "tr'

    await exchange(port, partial_body, close_after=True)
    for _ in range(50):
        if service.inflight_bytes == 0:
            break
        await asyncio.sleep(0.05)

    assert service.inflight_bytes == 0
    assert queue.records == []
    assert store.letters == []
    answer = await exchange(port, request_head("Content-Length: 2\r\n") + b"[]")
    assert answer.startswith(b"HTTP/1.1 202")


async def test_other_method_on_path_405(port: int) -> None:
    answer = await exchange(
        port, b"GET /v1/telemetry HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )

    status_line, headers, _ = split_response(answer)
    assert status_line.startswith("HTTP/1.1 405")
    assert headers["allow"] == "POST"


# --- the endpoint alone, with scripted ASGI messages ------------------------------------------


def http_scope(headers: list[tuple[bytes, bytes]], root_path: str = "") -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": "/v1/telemetry",
        "root_path": root_path,
        "headers": headers,
        "client": ("127.0.0.1", 5000),
    }


async def call(endpoint: Any, scope: dict[str, Any], messages: list[Message]) -> list[Message]:
    """Call an ASGI app with ``messages`` to receive, then block; return what it sent."""
    pending = list(messages)
    sent: list[Message] = []

    async def receive() -> Message:
        if pending:
            return pending.pop(0)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await asyncio.wait_for(endpoint(scope, receive, send), ANSWER_TIMEOUT_S)
    return sent


JSON_TYPE = (b"content-type", b"application/json")


async def test_endpoint_joins_body_chunks(service: IngestService, queue: MemoryQueue) -> None:
    body = json_body(record(device_id="truck-3"))
    messages: list[Message] = [
        {"type": "http.request", "body": body[:5], "more_body": True},
        {"type": "http.request", "body": b"", "more_body": True},
        {"type": "http.request", "body": body[5:], "more_body": False},
    ]

    sent = await call(TelemetryEndpoint(service), http_scope([JSON_TYPE]), messages)

    assert sent[0]["status"] == 202
    assert sent[0]["headers"] == [
        (b"content-length", str(len(sent[1]["body"])).encode()),
        JSON_TYPE,
    ]
    assert [item.device_id for item in queue.records] == ["truck-3"]


async def test_endpoint_disconnect_400_empty(service: IngestService, store: MemoryStore) -> None:
    messages: list[Message] = [
        {"type": "http.request", "body": b"[{", "more_body": True},
        {"type": "http.disconnect"},
    ]

    sent = await call(TelemetryEndpoint(service), http_scope([JSON_TYPE]), messages)

    assert sent[0] == {
        "type": "http.response.start",
        "status": 400,
        "headers": [(b"content-length", b"0")],
    }
    assert sent[1]["body"] == b""
    assert store.letters == []
    assert service.inflight_bytes == 0


async def test_endpoint_body_timeout_408_closes(service: IngestService) -> None:
    messages: list[Message] = [{"type": "http.request", "body": b"[", "more_body": True}]
    started = time.monotonic()

    sent = await call(TelemetryEndpoint(service), http_scope([JSON_TYPE]), messages)

    elapsed_s = time.monotonic() - started
    # The deadlines are checked every eighth of the timeout, so one tick late at most.
    # The event loop's clock may run a few milliseconds behind time.monotonic().
    assert elapsed_s >= BODY_TIMEOUT_S - 0.02
    assert elapsed_s < BODY_TIMEOUT_S * 1.125 + 0.5
    headers = dict(sent[0]["headers"])
    assert sent[0]["status"] == 408
    assert headers[b"connection"] == b"close"
    assert json.loads(sent[1]["body"])["error"]["code"] == "request_timeout"
    assert service.inflight_bytes == 0


async def test_endpoint_cancel_not_timeout(service: IngestService) -> None:
    messages: list[Message] = [{"type": "http.request", "body": b"[", "more_body": True}]
    task = asyncio.create_task(call(TelemetryEndpoint(service), http_scope([JSON_TYPE]), messages))
    await asyncio.sleep(0.05)

    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert service.inflight_bytes == 0


async def test_fast_path_passes_root_path_on(service: IngestService) -> None:
    passed: list[str] = []

    async def router(scope: dict[str, Any], receive: Any, send: Any) -> None:
        passed.append(scope["path"])

    fast_path = TelemetryFastPath(router, TelemetryEndpoint(service))
    scope = http_scope([JSON_TYPE], root_path="/fleet")

    await call(fast_path, scope, [])

    assert passed == ["/v1/telemetry"]
