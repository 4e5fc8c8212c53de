"""In-memory queue and store for the processor loop tests.

They follow the contracts in ``queue/base.py`` and ``store/base.py`` closely enough for
the loop: ordered offsets, at-least-once redelivery, idempotent writes. The SQLite
backends are exercised by their own tests and by the end-to-end tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fleetpulse.errors import StoreError
from fleetpulse.model.event import Event, Trip
from fleetpulse.model.record import DeadLetter, EnrichedRecord, Record
from fleetpulse.model.vehicle import VehicleView
from fleetpulse.queue.base import Delivery, Queue
from fleetpulse.store.base import (
    ProcessedBatch,
    Store,
    StoreCounts,
    StoredDeadLetter,
    StoredEvent,
    VehicleSnapshot,
)


class MemoryQueue(Queue):
    """A queue with one partition. ``restart`` hands out unacknowledged records again."""

    def __init__(self) -> None:
        self.messages: list[tuple[int, Record]] = []
        self.next_offset = 1
        self.handed_out = 0
        self.acked_offset = 0
        self.ack_calls = 0
        self._arrived = asyncio.Event()

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def publish(self, records: Sequence[Record]) -> None:
        for record in records:
            self.messages.append((self.next_offset, record))
            self.next_offset += 1
        self._arrived.set()

    async def fetch(self, max_records: int, timeout_s: float) -> list[Delivery]:
        if self.handed_out >= len(self.messages):
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout_s)
            except TimeoutError:
                return []
        chunk = self.messages[self.handed_out : self.handed_out + max_records]
        self.handed_out += len(chunk)
        return [Delivery(partition=0, offset=chunk[-1][0], records=[r for _, r in chunk])]

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        self.ack_calls += 1
        for delivery in deliveries:
            self.acked_offset = max(self.acked_offset, delivery.offset)

    def depth(self) -> int:
        return sum(1 for offset, _ in self.messages if offset > self.acked_offset)

    def restart(self) -> None:
        """Forget what was handed out, as a restarted backend does."""
        self.handed_out = sum(1 for offset, _ in self.messages if offset <= self.acked_offset)
        self._arrived.set()


class MemoryStore(Store):
    """Keeps the first copy of records and events, the newest of trips and vehicles."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, int], EnrichedRecord] = {}
        self.events: dict[tuple[str, str, int], Event] = {}
        self.trips: dict[tuple[str, int], Trip] = {}
        self.snapshots: dict[str, VehicleSnapshot] = {}
        self.writes = 0
        self.failures_left = 0

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def write(self, batch: ProcessedBatch) -> None:
        if self.failures_left > 0:
            self.failures_left -= 1
            raise StoreError("disk I/O error (injected by the test)")
        self.writes += 1
        for enriched in batch.records:
            key = (enriched.record.device_id, enriched.record.ts_ms)
            self.records.setdefault(key, enriched)
        for event in batch.events:
            self.events.setdefault((event.device_id, event.type, event.ts_ms), event)
        for trip in batch.trips:
            self.trips[(trip.device_id, trip.start_ts_ms)] = trip
        for snapshot in batch.vehicles:
            self.snapshots[snapshot.view.device_id] = snapshot

    async def write_dead_letters(self, letters: Sequence[DeadLetter]) -> None:
        raise NotImplementedError

    async def load_states(self, device_ids: Sequence[str]) -> dict[str, bytes]:
        return {i: self.snapshots[i].state for i in device_ids if i in self.snapshots}

    async def purge(self, older_than_ms: int) -> int:
        raise NotImplementedError

    async def vehicles(self) -> list[VehicleView]:
        return [self.snapshots[i].view for i in sorted(self.snapshots)]

    async def vehicle(self, device_id: str) -> VehicleView | None:
        snapshot = self.snapshots.get(device_id)
        return snapshot.view if snapshot is not None else None

    async def positions(
        self, device_id: str, from_ms: int, to_ms: int, limit: int
    ) -> list[EnrichedRecord]:
        raise NotImplementedError

    async def trips(self, device_id: str, from_ms: int, to_ms: int) -> list[Trip]:
        raise NotImplementedError

    async def events(
        self,
        device_id: str | None,
        event_type: str | None,
        from_ms: int,
        to_ms: int,
        limit: int,
        after_id: int = 0,
    ) -> list[StoredEvent]:
        raise NotImplementedError

    async def event_counts(self, from_ms: int, to_ms: int) -> dict[str, int]:
        raise NotImplementedError

    async def alert_leaders(self, from_ms: int, to_ms: int, limit: int) -> list[tuple[str, int]]:
        raise NotImplementedError

    async def distance_m(self, from_ms: int, to_ms: int) -> float:
        raise NotImplementedError

    async def dead_letters(self, limit: int, after_id: int = 0) -> list[StoredDeadLetter]:
        raise NotImplementedError

    async def counts(self) -> StoreCounts:
        return StoreCounts(
            records=len(self.records),
            events=len(self.events),
            trips=len(self.trips),
            vehicles=len(self.snapshots),
            dead_letters=0,
        )
