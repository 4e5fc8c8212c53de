"""The processor on the real SQLite queue and store, in a temporary folder."""

from __future__ import annotations

import time
from pathlib import Path

import msgspec

from fleetpulse.config import ServerSettings, Settings
from fleetpulse.model.record import Record
from fleetpulse.model.vocabulary import IGNITION_ON
from fleetpulse.process.engine import Processor
from fleetpulse.queue.sqlite import SqliteQueue
from fleetpulse.store.sqlite import SqliteStore
from tests.process.timeline import DEVICE, drive_east, record

DRAIN_TIMEOUT_S = 20.0


def received_now(records: list[Record]) -> list[Record]:
    now_ms = int(time.time() * 1000)
    return [msgspec.structs.replace(r, received_at_ms=now_ms) for r in records]


async def test_sqlite_processor_restart(tmp_path: Path) -> None:
    settings = Settings(server=ServerSettings(data_dir=str(tmp_path)))
    queue = SqliteQueue(settings)
    store = SqliteStore(settings)
    await queue.start()
    await store.start()
    try:
        timeline = [record(0, ignition=False), record(5, ignition=True)]
        timeline += drive_east(10, 120, 40.0, ignition=True)
        first = Processor(settings, queue, store)
        await first.start()
        await queue.publish(received_now(timeline))
        assert await first.drain(DRAIN_TIMEOUT_S)
        await first.close()
        counts = await store.counts()
        assert counts.records == len(timeline)
        assert IGNITION_ON in await store.event_counts(0, 2**62)

        # A new processor takes the vehicle's state from the store and continues.
        second = Processor(settings, queue, store)
        await second.start()
        last = timeline[-1]
        newer = record(200, last.lat, last.lon, ignition=True)
        # The last three records are redelivered duplicates, so only the newer one is stored.
        await queue.publish(received_now(timeline[-3:] + [newer]))
        assert await second.drain(DRAIN_TIMEOUT_S)
        state = second.vehicle_state(DEVICE)
        await second.close()
        assert state is not None
        assert state.last_ts_ms == newer.ts_ms
        assert (await store.counts()).records == len(timeline) + 1
        assert (await store.counts()).events == counts.events
    finally:
        await queue.close()
        await store.close()
