"""Tests of POST /v1/telemetry over a real uvicorn server on 127.0.0.1, and in-process cases.

The queue and store are the in-memory fakes of conftest.py. The real SQLite backends
are tested in tests/queue and tests/store, and the end-to-end tests use them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from fleetpulse.ingest.http import MAX_RESPONSE_ERRORS, telemetry_routes
from fleetpulse.ingest.service import IngestService
from fleetpulse.model.vocabulary import (
    ERROR_INTERNAL,
    ERROR_QUEUE_FULL,
    INVALID_JSON,
    OUT_OF_RANGE,
    TOO_LARGE,
    UNSUPPORTED_MEDIA_TYPE,
)
from tests.ingest.conftest import (
    MemoryQueue,
    MemoryStore,
    json_body,
    make_settings,
    ndjson_body,
    record,
)

URL = "/v1/telemetry"
JSON_HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
async def client(server_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server_url, timeout=10.0) as http:
        yield http


def client_for(service: IngestService) -> httpx.AsyncClient:
    """A client that calls the route in-process through ASGI, without a socket."""
    transport = httpx.ASGITransport(app=Starlette(routes=telemetry_routes(service)))
    return httpx.AsyncClient(transport=transport, base_url="http://ingest.test")


@pytest.fixture
async def local_client(service: IngestService) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(service) as http:
        yield http


# --- over a real socket ----------------------------------------------------------------------


async def test_post_batch_202(client: httpx.AsyncClient, queue: MemoryQueue) -> None:
    body = json_body(record(), record(lat=95.0), record(device_id="b"))

    response = await client.post(URL, content=body, headers=JSON_HEADERS)

    assert response.status_code == 202
    payload = response.json()
    assert payload["accepted"] == 2
    assert payload["rejected"] == 1
    assert payload["errors_truncated"] == 0
    assert payload["errors"][0]["index"] == 1
    assert payload["errors"][0]["reason"] == OUT_OF_RANGE
    assert "$.lat" in payload["errors"][0]["detail"]
    assert len(queue.records) == 2


async def test_post_ndjson_202(client: httpx.AsyncClient, queue: MemoryQueue) -> None:
    body = ndjson_body(record(), record()) + b"{oops\n"

    response = await client.post(
        URL, content=body, headers={"Content-Type": "application/x-ndjson"}
    )

    assert response.status_code == 202
    assert response.json()["errors"][0]["reason"] == INVALID_JSON
    assert len(queue.records) == 2


async def test_response_only_after_publish(client: httpx.AsyncClient, queue: MemoryQueue) -> None:
    queue.gate = asyncio.Event()
    request = asyncio.create_task(
        client.post(URL, content=json_body(record()), headers=JSON_HEADERS)
    )

    await asyncio.wait_for(queue.publish_entered.wait(), timeout=10.0)
    # Gives a wrong implementation time to respond early. A correct one passes however
    # long this sleep is.
    await asyncio.sleep(0.05)
    assert not request.done()
    assert queue.records == []

    queue.gate.set()
    response = await request
    assert response.status_code == 202
    assert len(queue.records) == 1


async def test_queue_full_503_retry_after(server_url: str, queue: MemoryQueue) -> None:
    queue.capacity_records = 0

    async with httpx.AsyncClient(base_url=server_url, timeout=10.0) as http:
        response = await http.post(URL, content=json_body(record()), headers=JSON_HEADERS)

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json()["error"]["code"] == ERROR_QUEUE_FULL
    assert "again" in response.json()["error"]["message"]


async def test_streamed_body_over_limit_413(store: MemoryStore) -> None:
    service = IngestService(make_settings(max_body_bytes=1000), MemoryQueue(), store)
    chunks = [b"[" + b" " * 600, b" " * 600, b"]"]

    async def stream() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    # ASGITransport streams the body without a Content-Length, so the limit must be
    # enforced while reading.
    async with client_for(service) as http:
        response = await http.post(URL, content=stream(), headers=JSON_HEADERS)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == TOO_LARGE
    assert store.letters[0].reason == TOO_LARGE
    assert len(store.letters[0].raw) <= service.settings.ingest.dead_letter_raw_bytes


async def test_content_length_over_limit_413(store: MemoryStore) -> None:
    service = IngestService(make_settings(max_body_bytes=100), MemoryQueue(), store)

    async with client_for(service) as http:
        response = await http.post(URL, content=json_body(*[record()] * 5), headers=JSON_HEADERS)

    assert response.status_code == 413
    assert "Content-Length" in response.json()["error"]["message"]


# --- in-process cases --------------------------------------------------------


async def test_malformed_json_400(local_client: httpx.AsyncClient) -> None:
    response = await local_client.post(URL, content=b'{"lat": NaN}', headers=JSON_HEADERS)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == INVALID_JSON
    assert "byte" in error["message"]


async def test_unknown_content_type_415(
    local_client: httpx.AsyncClient, store: MemoryStore
) -> None:
    response = await local_client.post(URL, content=b"a,b", headers={"Content-Type": "text/csv"})

    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == UNSUPPORTED_MEDIA_TYPE
    assert "application/json" in error["message"]
    assert store.letters[0].reason == UNSUPPORTED_MEDIA_TYPE


async def test_missing_content_type_415(local_client: httpx.AsyncClient) -> None:
    response = await local_client.post(URL, content=json_body(record()))

    assert response.status_code == 415
    assert "Content-Type: application/json" in response.json()["error"]["message"]


async def test_errors_capped(local_client: httpx.AsyncClient) -> None:
    bad = [record(lat=100.0)] * (MAX_RESPONSE_ERRORS + 7)

    response = await local_client.post(URL, content=json_body(*bad), headers=JSON_HEADERS)

    payload = response.json()
    assert payload["rejected"] == MAX_RESPONSE_ERRORS + 7
    assert len(payload["errors"]) == MAX_RESPONSE_ERRORS
    assert payload["errors_truncated"] == 7


async def test_get_not_allowed(local_client: httpx.AsyncClient) -> None:
    response = await local_client.get(URL)

    assert response.status_code == 405


async def test_unexpected_error_500_json(store: MemoryStore) -> None:
    class BrokenQueue(MemoryQueue):
        async def publish(self, records: object) -> None:
            raise RuntimeError("disk on fire")

    service = IngestService(make_settings(), BrokenQueue(), store)

    async with client_for(service) as http:
        response = await http.post(URL, content=json_body(record()), headers=JSON_HEADERS)

    assert response.status_code == 500
    assert response.json()["error"]["code"] == ERROR_INTERNAL
