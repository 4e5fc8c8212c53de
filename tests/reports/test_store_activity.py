"""The store's hourly activity aggregates: figures, redelivery, updates, migration, purge."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from fleetpulse.model.vocabulary import OVERSPEED
from fleetpulse.store.base import ProcessedBatch, VehicleActivity
from fleetpulse.store.sqlite import STORE_FILE, SqliteStore
from tests.reports.fixtures import (
    DAY0_MS,
    DAY1_MS,
    HOUR_MS,
    event,
    fixed_batch,
    open_sqlite,
    trip,
)

END_MS = DAY1_MS + 24 * HOUR_MS


def by_device(found: list[VehicleActivity]) -> dict[str, VehicleActivity]:
    return {item.device_id: item for item in found}


async def test_fleet_activity_sums(tmp_path: Path) -> None:
    store = await open_sqlite(tmp_path)
    try:
        await store.write(fixed_batch())
        found = by_device(await store.fleet_activity(DAY0_MS, DAY1_MS))
    finally:
        await store.close()

    v1 = found["v1"]
    assert v1.start_ms == DAY0_MS
    assert v1.distance_m == 25_000 + 15_000
    assert v1.driving_s == (1_800 - 300) + 1_200
    assert v1.idle_s == 300
    assert v1.trips == 2
    # The trip of 17:00 is still open.
    assert v1.stops == 1
    assert v1.max_speed_kmh == 130
    assert v1.overspeeds == 1
    assert v1.overspeed_s == 90
    assert v1.harsh_brakings == 1
    assert v1.harsh_accelerations == 1
    assert found["v2"].distance_m == 5_000
    assert found["v3"] == VehicleActivity(device_id="v3", start_ms=DAY0_MS)


async def test_fleet_activity_ordered(tmp_path: Path) -> None:
    store = await open_sqlite(tmp_path)
    try:
        await store.write(fixed_batch())
        found = await store.fleet_activity(DAY0_MS, END_MS)
    finally:
        await store.close()

    assert [item.device_id for item in found] == ["v1", "v2", "v3"]


async def test_vehicle_activity_hours(tmp_path: Path) -> None:
    store = await open_sqlite(tmp_path)
    try:
        await store.write(fixed_batch())
        hours = await store.vehicle_activity("v1", DAY0_MS, END_MS)
    finally:
        await store.close()

    assert [hour.start_ms for hour in hours] == [
        DAY0_MS + 8 * HOUR_MS,
        DAY0_MS + 17 * HOUR_MS,
        DAY1_MS + 9 * HOUR_MS,
    ]
    assert [hour.distance_m for hour in hours] == [25_000, 15_000, 10_000]


async def test_redelivery_changes_nothing(tmp_path: Path) -> None:
    store = await open_sqlite(tmp_path)
    try:
        await store.write(fixed_batch())
        once = await store.fleet_activity(DAY0_MS, END_MS)
        await store.write(fixed_batch())
        twice = await store.fleet_activity(DAY0_MS, END_MS)
    finally:
        await store.close()

    assert twice == once


async def test_open_trip_update_replaces(tmp_path: Path) -> None:
    start_ms = DAY0_MS + 5 * HOUR_MS
    store = await open_sqlite(tmp_path)
    try:
        await store.write(
            ProcessedBatch(trips=[trip("v1", start_ms, 1_000.0, 100.0, 0.0, 50.0, closed=False)])
        )
        await store.write(
            ProcessedBatch(trips=[trip("v1", start_ms, 4_000.0, 300.0, 20.0, 80.0, closed=False)])
        )
        await store.write(ProcessedBatch(trips=[trip("v1", start_ms, 6_000.0, 500.0, 20.0, 80.0)]))
        hours = await store.vehicle_activity("v1", DAY0_MS, DAY1_MS)
    finally:
        await store.close()

    assert len(hours) == 1
    assert hours[0].distance_m == 6_000
    assert hours[0].driving_s == 500 - 20
    assert hours[0].trips == 1
    assert hours[0].stops == 1


async def test_stale_open_trip_ignored(tmp_path: Path) -> None:
    start_ms = DAY0_MS + 5 * HOUR_MS
    store = await open_sqlite(tmp_path)
    try:
        await store.write(ProcessedBatch(trips=[trip("v1", start_ms, 6_000.0, 500.0, 20.0, 80.0)]))
        # A redelivered older batch with the open version of the trip.
        await store.write(
            ProcessedBatch(trips=[trip("v1", start_ms, 1_000.0, 100.0, 0.0, 50.0, closed=False)])
        )
        hours = await store.vehicle_activity("v1", DAY0_MS, DAY1_MS)
    finally:
        await store.close()

    assert hours[0].distance_m == 6_000
    assert hours[0].stops == 1


async def test_final_overspeed_replaces_ongoing(tmp_path: Path) -> None:
    ts_ms = DAY0_MS + 3 * HOUR_MS
    store = await open_sqlite(tmp_path)
    try:
        await store.write(
            ProcessedBatch(events=[event("v1", ts_ms, OVERSPEED, duration_s=12.0, ongoing=True)])
        )
        await store.write(
            ProcessedBatch(events=[event("v1", ts_ms, OVERSPEED, duration_s=75.0, ongoing=False)])
        )
        await store.write(
            ProcessedBatch(events=[event("v1", ts_ms, OVERSPEED, duration_s=12.0, ongoing=True)])
        )
        hours = await store.vehicle_activity("v1", DAY0_MS, DAY1_MS)
    finally:
        await store.close()

    assert hours[0].overspeeds == 1
    assert hours[0].overspeed_s == 75


async def test_hour_boundary_splits(tmp_path: Path) -> None:
    store = await open_sqlite(tmp_path)
    try:
        batch = ProcessedBatch(
            trips=[
                trip("v1", DAY1_MS - 1, 1_000.0, 100.0, 0.0, 50.0),
                trip("v1", DAY1_MS, 2_000.0, 100.0, 0.0, 50.0),
            ]
        )
        await store.write(batch)
        day0 = await store.vehicle_activity("v1", DAY0_MS, DAY1_MS)
        day1 = await store.vehicle_activity("v1", DAY1_MS, END_MS)
    finally:
        await store.close()

    assert [hour.distance_m for hour in day0] == [1_000]
    assert [hour.distance_m for hour in day1] == [2_000]


async def test_unaligned_range_raises(tmp_path: Path) -> None:
    store = await open_sqlite(tmp_path)
    try:
        with pytest.raises(ValueError, match="from_ms"):
            await store.fleet_activity(DAY0_MS + 1, DAY1_MS)
        with pytest.raises(ValueError, match="to_ms"):
            await store.vehicle_activity("v1", DAY0_MS, DAY1_MS - 1)
    finally:
        await store.close()


async def test_migration_backfills(tmp_path: Path) -> None:
    store = await open_sqlite(tmp_path)
    try:
        await store.write(fixed_batch())
        before = await store.fleet_activity(DAY0_MS, END_MS)
    finally:
        await store.close()
    # Turn the file back into a version 1 file, which had no aggregates.
    with sqlite3.connect(tmp_path / STORE_FILE) as connection:
        connection.execute("DROP TABLE vehicle_hours")
        connection.execute("PRAGMA user_version = 1")
    connection.close()

    store = await open_sqlite(tmp_path)
    try:
        after = await store.fleet_activity(DAY0_MS, END_MS)
    finally:
        await store.close()

    assert after == before
    assert after[0].distance_m == 50_000


async def test_purge_deletes_old_hours(tmp_path: Path) -> None:
    store: SqliteStore = await open_sqlite(tmp_path)
    try:
        await store.write(fixed_batch())
        await store.purge(DAY1_MS)
        day0 = await store.vehicle_activity("v1", DAY0_MS, DAY1_MS)
        day1 = await store.vehicle_activity("v1", DAY1_MS, END_MS)
    finally:
        await store.close()

    assert day0 == []
    assert [hour.distance_m for hour in day1] == [10_000]
