"""Processor loop tests on the in-memory queue and store of ``fakes.py``."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Sequence

import msgspec
import pytest

from fleetpulse.config import ProcessSettings
from fleetpulse.model.event import Event
from fleetpulse.model.vehicle import VehicleView
from fleetpulse.model.vocabulary import IGNITION_ON, OFFLINE_EVENT
from fleetpulse.process.engine import Processor
from fleetpulse.queue.base import Delivery
from fleetpulse.store.base import ProcessedBatch, VehicleSnapshot
from tests.process.fakes import MemoryQueue, MemoryStore
from tests.process.timeline import DEVICE, drive_east, make_settings, record

DRAIN_TIMEOUT_S = 10.0


@pytest.fixture
def queue() -> MemoryQueue:
    return MemoryQueue()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
async def processor(queue: MemoryQueue, store: MemoryStore) -> AsyncIterator[Processor]:
    proc = Processor(make_settings(), queue, store)
    await proc.start()
    yield proc
    await proc.close()


def ignition_timeline() -> list:
    return [record(0, ignition=False), record(10, ignition=True)] + drive_east(
        20, 120, 40.0, ignition=True
    )


def event_types(store: MemoryStore) -> list[str]:
    return sorted(event.type for event in store.events.values())


async def test_processor_stores_then_acks(
    processor: Processor, queue: MemoryQueue, store: MemoryStore
) -> None:
    timeline = ignition_timeline()
    await queue.publish(timeline)
    assert await processor.drain(DRAIN_TIMEOUT_S)
    assert len(store.records) == len(timeline)
    assert IGNITION_ON in event_types(store)
    assert store.snapshots[DEVICE].view.last_ts_ms == timeline[-1].ts_ms
    assert queue.depth() == 0


async def test_processor_retries_failed_write(
    processor: Processor, queue: MemoryQueue, store: MemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.failures_left = 2
    with caplog.at_level(logging.WARNING, logger="fleetpulse.process.engine"):
        await queue.publish(ignition_timeline())
        assert await processor.drain(DRAIN_TIMEOUT_S)
    assert store.failures_left == 0
    assert store.writes >= 1
    assert len(store.records) == len(ignition_timeline())
    assert "store write failed" in caplog.text
    assert "offsets=0:" in caplog.text


async def test_processor_no_ack_while_write_fails(
    processor: Processor, queue: MemoryQueue, store: MemoryStore
) -> None:
    store.failures_left = 1_000_000
    await queue.publish(ignition_timeline())
    assert not await processor.drain(0.3)
    assert queue.ack_calls == 0
    assert queue.depth() == len(ignition_timeline())


async def test_processor_redelivery_after_crash(queue: MemoryQueue, store: MemoryStore) -> None:
    settings = make_settings()
    timeline = ignition_timeline()
    first = Processor(settings, queue, store)
    await first.start()
    await queue.publish(timeline)
    assert await first.drain(DRAIN_TIMEOUT_S)
    await first.close()
    events_before = dict(store.events)

    # The store has the batch but the ack was lost: the queue hands it out again.
    queue.acked_offset = 0
    queue.restart()
    second = Processor(settings, queue, store)
    await second.start()
    assert await second.drain(DRAIN_TIMEOUT_S)
    await second.close()
    assert store.events == events_before
    assert len(store.records) == len(timeline)


async def test_processor_resumes_from_saved_state(queue: MemoryQueue, store: MemoryStore) -> None:
    settings = make_settings()
    first = Processor(settings, queue, store)
    await first.start()
    await queue.publish([record(0, ignition=False)])
    assert await first.drain(DRAIN_TIMEOUT_S)
    await first.close()

    second = Processor(settings, queue, store)
    await second.start()
    await queue.publish([record(10, ignition=True)])
    assert await second.drain(DRAIN_TIMEOUT_S)
    await second.close()
    assert IGNITION_ON in event_types(store)


async def test_processor_bad_state_starts_fresh(
    queue: MemoryQueue, store: MemoryStore, caplog: pytest.LogCaptureFixture
) -> None:
    view = VehicleView(
        device_id=DEVICE, last_ts_ms=0, last_received_at_ms=0, motion="parked", status="normal"
    )
    store.snapshots[DEVICE] = VehicleSnapshot(view=view, state=b"\x00garbage")
    proc = Processor(make_settings(), queue, store)
    with caplog.at_level(logging.WARNING, logger="fleetpulse.process.engine"):
        await proc.start()
        await queue.publish([record(0)])
        assert await proc.drain(DRAIN_TIMEOUT_S)
    await proc.close()
    assert f"vehicle={DEVICE}" in caplog.text
    assert msgspec.msgpack.decode(store.snapshots[DEVICE].state)["last_ts_ms"] == record(0).ts_ms


async def test_processor_offline_sweep(queue: MemoryQueue, store: MemoryStore) -> None:
    settings = msgspec.structs.replace(
        make_settings(),
        process=ProcessSettings(offline_after_s=0.2, offline_check_interval_s=0.05),
    )
    proc = Processor(settings, queue, store)
    await proc.start()
    now_ms = int(time.time() * 1000)
    await queue.publish([msgspec.structs.replace(record(0), received_at_ms=now_ms)])
    assert await proc.drain(DRAIN_TIMEOUT_S)
    for _ in range(100):
        if OFFLINE_EVENT in event_types(store):
            break
        await asyncio.sleep(0.05)
    await proc.close()
    offline: list[Event] = [e for e in store.events.values() if e.type == OFFLINE_EVENT]
    assert len(offline) == 1
    assert store.snapshots[DEVICE].view.offline


async def test_processor_close_twice(queue: MemoryQueue, store: MemoryStore) -> None:
    proc = Processor(make_settings(), queue, store)
    await proc.start()
    await proc.close()
    await proc.close()


async def test_processor_drain_not_running(queue: MemoryQueue, store: MemoryStore) -> None:
    proc = Processor(make_settings(), queue, store)
    with pytest.raises(RuntimeError, match="not running"):
        await proc.drain(0.1)


async def test_processor_start_twice_rejected(processor: Processor) -> None:
    with pytest.raises(RuntimeError, match="already started"):
        await processor.start()


class GatedStore(MemoryStore):
    """A store whose writes wait until the test opens the gate, and that logs the order."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.log: list[str] = []

    async def write(self, batch: ProcessedBatch) -> None:
        self.log.append(f"write start {len(batch.records)}")
        await self.gate.wait()
        await super().write(batch)
        self.log.append(f"write end {len(batch.records)}")


class LoggingQueue(MemoryQueue):
    """A queue that adds each ack to the store's log, so the test can check the order."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.log = log

    async def ack(self, deliveries: Sequence[Delivery]) -> None:
        self.log.append(f"ack {sum(len(delivery.records) for delivery in deliveries)}")
        await super().ack(deliveries)


async def test_processor_overlaps_next_batch_with_write() -> None:
    store = GatedStore()
    queue = LoggingQueue(store.log)
    timeline = ignition_timeline()
    half = len(timeline) // 2
    # Two batches of equal size, so that each fetch of fetch_max_records takes one.
    first, second = timeline[:half], timeline[half : 2 * half]
    settings = msgspec.structs.replace(
        make_settings(),
        queue=msgspec.structs.replace(make_settings().queue, fetch_max_records=len(first)),
    )
    proc = Processor(settings, queue, store)
    await proc.start()
    try:
        await queue.publish(first)
        await queue.publish(second)

        # The second batch is processed while the first one's write waits: its records
        # reach the in-memory state, but nothing is written or acknowledged after it.
        for _ in range(200):
            state = proc.vehicle_state(DEVICE)
            if state is not None and state.last_ts_ms == second[-1].ts_ms:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the second batch was not processed while the first was written")
        assert store.log == [f"write start {len(first)}"]
        assert queue.ack_calls == 0

        store.gate.set()
        assert await proc.drain(DRAIN_TIMEOUT_S)
    finally:
        await proc.close()

    assert store.log == [
        f"write start {len(first)}",
        f"write end {len(first)}",
        f"ack {len(first)}",
        f"write start {len(second)}",
        f"write end {len(second)}",
        f"ack {len(second)}",
    ]
    assert len(store.records) == len(first) + len(second)
    assert queue.depth() == 0
