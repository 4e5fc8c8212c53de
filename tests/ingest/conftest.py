"""Fixtures for the ingest tests: an in-memory queue and store, the service and a live server.

The fakes implement the Queue and Store interfaces in memory so that these tests can
check exactly what ingest publishes and writes. The real SQLite backends are tested in
tests/queue and tests/store, and the end-to-end tests in tests/e2e run ingest on them.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Sequence
from typing import Any

import msgspec
import pytest
import uvicorn
from starlette.applications import Starlette

from fleetpulse.config import IngestSettings, Settings
from fleetpulse.errors import QueueFullError, StoreError
from fleetpulse.ingest.http import telemetry_routes
from fleetpulse.ingest.service import IngestService
from fleetpulse.model.event import Trip
from fleetpulse.model.record import DeadLetter, EnrichedRecord, Record
from fleetpulse.model.timestamps import now_ms
from fleetpulse.model.vehicle import VehicleView
from fleetpulse.queue.base import Delivery, Queue
from fleetpulse.store.base import ProcessedBatch, Store, StoreCounts, StoredDeadLetter, StoredEvent

# Bounded wait for the test server to start: 500 polls of 10 ms.
SERVER_START_POLLS = 500


class MemoryQueue(Queue):
    """A queue in a list. ``gate``, when set, blocks publish until the test sets it."""

    def __init__(self, capacity_records: int = 1_000_000) -> None:
        self.capacity_records = capacity_records
        self.records: list[Record] = []
        self.publish_calls = 0
        self.publish_entered = asyncio.Event()
        self.gate: asyncio.Event | None = None
        self._acked = 0

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def publish(self, records: Sequence[Record]) -> None:
        self.publish_calls += 1
        self.publish_entered.set()
        if len(self.records) + len(records) > self.capacity_records:
            raise QueueFullError(len(self.records), self.capacity_records)
        if self.gate is not None:
            await self.gate.wait()
        self.records.extend(records)

    async def fetch(self, max_records: int, timeout_s: float) -> list[Delivery]:
        pending = self.records[self._acked : self._acked + max_records]
        if not pending:
            return []
        return [Delivery(partition=0, offset=self._acked + len(pending), records=pending)]

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            self._acked = max(self._acked, delivery.offset)

    def depth(self) -> int:
        return len(self.records) - self._acked


class MemoryStore(Store):
    """A store in lists; only dead letters and counts are queried by these tests."""

    def __init__(self, fail_dead_letters: bool = False) -> None:
        self.fail_dead_letters = fail_dead_letters
        self.batches: list[ProcessedBatch] = []
        self.letters: list[DeadLetter] = []

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def write(self, batch: ProcessedBatch) -> None:
        self.batches.append(batch)

    async def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        if self.fail_dead_letters:
            raise StoreError("dead-letter table is not writable (test failure)")
        self.letters.extend(letters)

    async def load_states(self, device_ids: Sequence[str]) -> dict[str, bytes]:
        return {}

    async def purge(self, older_than_ms: int) -> int:
        return 0

    async def vehicles(self) -> list[VehicleView]:
        return []

    async def vehicle(self, device_id: str) -> VehicleView | None:
        return None

    async def positions(
        self, device_id: str, from_ms: int, to_ms: int, limit: int
    ) -> list[EnrichedRecord]:
        return []

    async def trips(self, device_id: str, from_ms: int, to_ms: int) -> list[Trip]:
        return []

    async def events(
        self,
        device_id: str | None,
        event_type: str | None,
        from_ms: int,
        to_ms: int,
        limit: int,
        after_id: int = 0,
    ) -> list[StoredEvent]:
        return []

    async def event_counts(self, from_ms: int, to_ms: int) -> dict[str, int]:
        return {}

    async def alert_leaders(self, from_ms: int, to_ms: int, limit: int) -> list[tuple[str, int]]:
        return []

    async def distance_m(self, from_ms: int, to_ms: int) -> float:
        return 0.0

    async def dead_letters(self, limit: int, after_id: int = 0) -> list[StoredDeadLetter]:
        stored = [StoredDeadLetter(i + 1, letter) for i, letter in enumerate(self.letters)]
        newer = [item for item in stored if item.id > after_id]
        return list(reversed(newer))[:limit]

    async def counts(self) -> StoreCounts:
        records = sum(len(batch.records) for batch in self.batches)
        return StoreCounts(records, 0, 0, 0, len(self.letters))


def make_settings(**ingest_fields: Any) -> Settings:
    """Default settings with some ``[ingest]`` keys overridden."""
    return Settings(ingest=IngestSettings(**ingest_fields))


def record(**fields: Any) -> dict[str, Any]:
    """A valid wire record with ts = now; keyword arguments replace or add fields."""
    base: dict[str, Any] = {"device_id": "truck-1", "ts": now_ms(), "lat": 52.52, "lon": 13.4}
    base.update(fields)
    return base


def json_body(*records: Any) -> bytes:
    return msgspec.json.encode(list(records))


def ndjson_body(*records: Any) -> bytes:
    return b"".join(msgspec.json.encode(item) + b"\n" for item in records)


@pytest.fixture
def settings() -> Settings:
    return make_settings()


@pytest.fixture
def queue() -> MemoryQueue:
    return MemoryQueue()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def service(settings: Settings, queue: MemoryQueue, store: MemoryStore) -> IngestService:
    return IngestService(settings, queue, store)


@pytest.fixture
def app(service: IngestService) -> Starlette:
    return Starlette(routes=telemetry_routes(service))


@pytest.fixture
async def server_url(app: Starlette) -> AsyncIterator[str]:
    """Serve ``app`` with uvicorn on a free port of 127.0.0.1 for one test."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[listener]))
    for _ in range(SERVER_START_POLLS):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    assert server.started, "uvicorn did not start"

    yield f"http://127.0.0.1:{port}"

    server.should_exit = True
    await task
    listener.close()
