"""Back-pressure of ingest: the in-flight byte limit and a full disk under the SQLite queue.

The in-flight cases hold a publish open with the in-memory queue's gate, so a second
request arrives while the first is in progress. The disk-full cases run the real SQLite
queue with a page limit at its current size, which makes SQLite fail as on a full disk.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from fleetpulse import metrics
from fleetpulse.config import load_settings
from fleetpulse.errors import OverloadedError, QueueError, QueueStorageFullError
from fleetpulse.ingest.http import telemetry_routes
from fleetpulse.ingest.service import IngestService
from fleetpulse.model.vocabulary import ERROR_OVERLOADED, ERROR_STORAGE_FULL
from fleetpulse.queue.sqlite import SqliteQueue
from tests.ingest.conftest import MemoryQueue, MemoryStore, json_body, make_settings, record

URL = "/v1/telemetry"
JSON_HEADERS = {"Content-Type": "application/json"}


def _database_full(path: Path) -> float:
    for family in metrics.DATABASE_FULL.collect():
        for sample in family.samples:
            if sample.labels["file"] == str(path):
                return sample.value
    return 0.0


async def test_second_request_over_limit_503(store: MemoryStore) -> None:
    body = json_body(*[record(ts=record()["ts"] - i) for i in range(10)])
    queue = MemoryQueue()
    queue.gate = asyncio.Event()
    service = IngestService(make_settings(max_inflight_bytes=len(body) + 10), queue, store)
    transport = httpx.ASGITransport(app=_app(service))
    async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
        first = asyncio.create_task(client.post(URL, content=body, headers=JSON_HEADERS))
        await asyncio.wait_for(queue.publish_entered.wait(), timeout=10.0)
        assert service.inflight_bytes == len(body)

        second = await client.post(URL, content=body, headers=JSON_HEADERS)

        queue.gate.set()
        assert (await first).status_code == 202
    assert second.status_code == 503
    assert second.json()["error"]["code"] == ERROR_OVERLOADED
    assert second.headers["Retry-After"] == "1"
    assert service.inflight_bytes == 0


def test_lone_request_over_limit_admitted(store: MemoryStore) -> None:
    service = IngestService(make_settings(max_inflight_bytes=10), MemoryQueue(), store)
    with service.admit(5_000):
        assert service.inflight_bytes == 5_000
    assert service.inflight_bytes == 0


def test_undeclared_length_counts_max_body(store: MemoryStore) -> None:
    settings = make_settings(max_inflight_bytes=100_000, max_body_bytes=60_000)
    service = IngestService(settings, MemoryQueue(), store)
    with service.admit(None):
        assert service.inflight_bytes == 60_000
        with pytest.raises(OverloadedError, match="max_inflight_bytes = 100000"):
            with service.admit(None):
                pass
    assert service.inflight_bytes == 0


async def test_full_disk_raises_storage_full(tmp_path: Path) -> None:
    settings = load_settings(environ={}, overrides={"server": {"data_dir": str(tmp_path)}})
    queue = SqliteQueue(settings)
    await queue.start()
    service = IngestService(settings, queue, MemoryStore())
    path = tmp_path / "queue.db"
    try:
        writer = queue._writer
        assert writer is not None
        pages = await writer.submit(
            lambda c: c.execute("PRAGMA page_count").fetchone()[0], "test setup"
        )
        await writer.submit(lambda c: c.execute(f"PRAGMA max_page_count = {pages}"), "test setup")
        padding = {"note": "x" * 100}
        body = json_body(*[record(ts=record()["ts"] - i, attributes=padding) for i in range(500)])
        transport = httpx.ASGITransport(app=_app(service))
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            refused = await client.post(URL, content=body, headers=JSON_HEADERS)

            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == ERROR_STORAGE_FULL
            assert _database_full(path) == 1.0
            with pytest.raises(QueueStorageFullError) as caught:
                await service.ingest_body(body, "application/json")
            assert isinstance(caught.value, QueueError)

            await writer.submit(lambda c: c.execute("PRAGMA max_page_count = 1000000"), "test")
            accepted = await client.post(URL, content=body, headers=JSON_HEADERS)
        assert accepted.status_code == 202, accepted.text
        assert _database_full(path) == 0.0
    finally:
        await queue.close()


def _app(service: IngestService) -> Starlette:
    return Starlette(routes=telemetry_routes(service))
