"""The Queue contract, run against every backend in conftest.BACKENDS."""

from __future__ import annotations

import asyncio

import pytest

from fleetpulse.errors import QueueError, QueueFullError
from fleetpulse.model.record import Record
from fleetpulse.queue.base import Delivery, Queue
from tests.queue.queue_helpers import OpenQueue, make_records

# Short enough to keep the suite fast when nothing is expected to arrive.
EMPTY_WAIT_S = 0.05
# Generous: only reached if a backend fails to deliver what is already published.
DELIVERY_WAIT_S = 5.0


async def fetch_all(queue: Queue, max_records: int = 1_000) -> list[Delivery]:
    """Fetch until the queue has nothing more to hand out."""
    deliveries: list[Delivery] = []
    for _ in range(10_000):
        batch = await queue.fetch(max_records, EMPTY_WAIT_S)
        if not batch:
            return deliveries
        deliveries.extend(batch)
    raise AssertionError("fetch never ran dry")


def keys(deliveries: list[Delivery]) -> list[tuple[str, int]]:
    return [(r.device_id, r.ts_ms) for d in deliveries for r in d.records]


def record_keys(records: list[Record]) -> list[tuple[str, int]]:
    return [(r.device_id, r.ts_ms) for r in records]


async def test_fetch_returns_publish_order(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue()
    batches = [make_records("v1", 0, 3), make_records("v2", 100, 2), make_records("v1", 3, 4)]
    for batch in batches:
        await queue.publish(batch)

    deliveries = await fetch_all(queue)

    # The contract orders each vehicle's records; vehicles in different partitions of a
    # partitioned backend may interleave in any order.
    published = [key for batch in batches for key in record_keys(batch)]
    for device_id in ("v1", "v2"):
        fetched = [key for key in keys(deliveries) if key[0] == device_id]
        assert fetched == [key for key in published if key[0] == device_id], device_id
    assert sorted(keys(deliveries)) == sorted(published)


async def test_fetch_returns_records_unchanged(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue()
    record = Record(
        device_id="truck-7",
        ts_ms=1_700_000_000_123,
        lat=-33.9,
        lon=151.2,
        received_at_ms=1_700_000_000_456,
        speed_kmh=88.5,
        heading_deg=270.0,
        altitude_m=12.5,
        accuracy_m=4.0,
        ignition=True,
        engine_rpm=2100.0,
        coolant_c=91.0,
        fuel_pct=55.5,
        battery_v=13.9,
        odometer_m=123_456.7,
        dtc=["P0300"],
        valid=False,
        attributes={"door": "open", "temps": [1, 2]},
        source="replay",
    )
    await queue.publish([record])

    deliveries = await fetch_all(queue)

    assert [r for d in deliveries for r in d.records] == [record]


async def test_ack_empties_queue(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue()
    await queue.publish(make_records("v1", 0, 5))
    deliveries = await fetch_all(queue)

    await queue.ack(deliveries)

    assert queue.depth() == 0
    assert await queue.fetch(100, EMPTY_WAIT_S) == []


async def test_per_vehicle_order_concurrent(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue()

    async def publish_vehicle(device_id: str) -> None:
        for first_ts_ms in range(0, 200, 10):
            await queue.publish(make_records(device_id, first_ts_ms, 10))

    vehicles = [f"v{i}" for i in range(8)]
    await asyncio.gather(*(publish_vehicle(device_id) for device_id in vehicles))
    deliveries = await fetch_all(queue, max_records=37)

    for device_id in vehicles:
        timestamps = [ts for vehicle, ts in keys(deliveries) if vehicle == device_id]
        assert timestamps == list(range(200)), device_id


async def test_fetch_bounds_records(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue()
    for first_ts_ms in range(0, 100, 10):
        await queue.publish(make_records("v1", first_ts_ms, 10))

    first = await queue.fetch(25, EMPTY_WAIT_S)
    rest = await fetch_all(queue, max_records=25)

    first_count = sum(len(d.records) for d in first)
    assert first_count >= 1
    # "About" max_records: a backend may finish the message that crosses the bound.
    assert first_count < 25 + 10
    assert keys(first) + keys(rest) == [("v1", ts) for ts in range(100)]


async def test_fetch_returns_oversized_batch(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue()
    await queue.publish(make_records("v1", 0, 50))

    deliveries = await queue.fetch(10, EMPTY_WAIT_S)

    assert len(deliveries) >= 1


async def test_fetch_times_out_empty(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue()

    assert await queue.fetch(100, EMPTY_WAIT_S) == []


async def test_fetch_wakes_on_publish(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue()
    waiting = asyncio.create_task(queue.fetch(100, DELIVERY_WAIT_S))
    await asyncio.sleep(0.01)

    await queue.publish(make_records("v1", 0, 3))
    deliveries = await waiting

    assert keys(deliveries) == [("v1", 0), ("v1", 1), ("v1", 2)]


async def test_unacked_redelivered_after_restart(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue()
    await queue.publish(make_records("v1", 0, 4))
    first = await fetch_all(queue)
    await queue.close()

    reopened = await open_test_queue()
    again = await fetch_all(reopened)

    assert keys(again) == keys(first)


async def test_acked_not_redelivered(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue()
    await queue.publish(make_records("v1", 0, 4))
    await queue.publish(make_records("v2", 0, 3))
    deliveries = await fetch_all(queue)
    acked = [d for d in deliveries if d.records[0].device_id == "v1"]
    await queue.ack(acked)
    await queue.close()

    reopened = await open_test_queue()
    again = await fetch_all(reopened)

    assert keys(again) == [("v2", 0), ("v2", 1), ("v2", 2)]


async def test_publish_full_raises(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue(capacity_records=10)
    await queue.publish(make_records("v1", 0, 8))

    with pytest.raises(QueueFullError) as caught:
        await queue.publish(make_records("v1", 8, 3))

    assert caught.value.depth == 8
    assert caught.value.capacity == 10
    assert caught.value.retriable


async def test_publish_after_ack_frees_capacity(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue(capacity_records=10)
    await queue.publish(make_records("v1", 0, 8))
    await queue.ack(await fetch_all(queue))

    await queue.publish(make_records("v1", 8, 10))

    assert queue.depth() == 10


async def test_depth_counts_unacked(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue()
    await queue.publish(make_records("v1", 0, 4))
    await queue.publish(make_records("v2", 0, 6))
    assert queue.depth() == 10

    deliveries = await fetch_all(queue)
    assert queue.depth() == 10

    # Which vehicle's message comes first is up to the backend when they are in
    # different partitions.
    await queue.ack(deliveries[:1])
    assert queue.depth() == 10 - len(deliveries[0].records)


async def test_depth_survives_restart(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue()
    await queue.publish(make_records("v1", 0, 4))
    await queue.publish(make_records("v2", 0, 6))
    await queue.close()

    reopened = await open_test_queue()

    assert reopened.depth() == 10


async def test_ack_twice_harmless(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue()
    await queue.publish(make_records("v1", 0, 4))
    await queue.publish(make_records("v2", 0, 6))
    deliveries = await fetch_all(queue)

    await queue.ack(deliveries[:1])
    await queue.ack(deliveries[:1])

    assert queue.depth() == 10 - len(deliveries[0].records)


async def test_publish_empty_noop(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue()

    await queue.publish([])

    assert queue.depth() == 0


async def test_close_twice(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue()
    await queue.publish(make_records("v1", 0, 2))

    await queue.close()
    await queue.close()


async def test_close_wakes_fetch(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue()
    waiting = asyncio.create_task(queue.fetch(100, DELIVERY_WAIT_S))
    await asyncio.sleep(0.01)

    await queue.close()

    assert await waiting == []


async def test_publish_after_close_raises(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue()
    await queue.close()

    with pytest.raises(QueueError):
        await queue.publish(make_records("v1", 0, 1))


async def test_close_keeps_pending_publishes(open_test_queue: OpenQueue) -> None:
    queue = await open_test_queue()
    publishes = [asyncio.create_task(queue.publish(make_records(f"v{i}", 0, 5))) for i in range(20)]
    await asyncio.sleep(0)

    await queue.close()
    await asyncio.gather(*publishes)
    reopened = await open_test_queue()

    assert reopened.depth() == 100
