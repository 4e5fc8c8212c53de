"""The PostgreSQL store against the SQLite store: the same writes must give the same results.

The SQLite store is the reference, because its rules are the ones the contract tests and
the report tests were written for. Each test writes one sequence of batches to both stores
and compares every query, the hourly activity behind reports included.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fleetpulse.model.event import Event, Trip
from fleetpulse.model.vocabulary import (
    CRITICAL,
    HARSH_ACCELERATION,
    HARSH_BRAKING,
    IDLING,
    INFO,
    OVERSPEED,
    SEVERITY_WARNING,
)
from fleetpulse.store.base import ProcessedBatch, Store
from fleetpulse.store.postgres import PostgresStore
from fleetpulse.store.sqlite import SqliteStore
from tests.reports.fixtures import DAY0_MS, DAY1_MS, HOUR_MS, event, fixed_batch, trip
from tests.store.store_helpers import make_enriched, make_settings, make_snapshot

END_MS = DAY1_MS + 24 * HOUR_MS
DEVICES = ("v1", "v2", "v3", "v10")


@pytest.fixture
async def both(postgres_dsn: str, tmp_path: Path) -> AsyncIterator[tuple[Store, Store]]:
    """The SQLite store and the PostgreSQL store, both empty, closed afterwards."""
    sqlite = SqliteStore(make_settings("sqlite", tmp_path / "data"))
    postgres = PostgresStore(make_settings("postgres", tmp_path / "data", postgres_dsn))
    await sqlite.start()
    await postgres.start()
    yield sqlite, postgres
    await sqlite.close()
    await postgres.close()


async def query_results(store: Store) -> dict[str, Any]:
    """Every query's result over the whole time range, with event and dead letter ids left
    out, because the two backends number them differently."""
    found: dict[str, Any] = {
        "counts": await store.counts(),
        "vehicles": await store.vehicles(),
        "fleet activity": await store.fleet_activity(DAY0_MS, END_MS),
        "fleet activity day 1": await store.fleet_activity(DAY1_MS, END_MS),
        "event counts": await store.event_counts(DAY0_MS, END_MS),
        "alert leaders": await store.alert_leaders(DAY0_MS, END_MS, 10),
        "distance": round(await store.distance_m(DAY0_MS, END_MS), 6),
        "events": [s.event for s in await store.events(None, None, DAY0_MS, END_MS, 1000)],
        "dead letters": [s.letter for s in await store.dead_letters(1000)],
    }
    for device_id in DEVICES:
        found[f"positions {device_id}"] = await store.positions(device_id, DAY0_MS, END_MS, 1000)
        found[f"trips {device_id}"] = await store.trips(device_id, DAY0_MS, END_MS)
        found[f"hours {device_id}"] = await store.vehicle_activity(device_id, DAY0_MS, END_MS)
        found[f"events {device_id}"] = [
            s.event for s in await store.events(device_id, OVERSPEED, DAY0_MS, END_MS, 1000)
        ]
        found[f"state {device_id}"] = await store.load_states([device_id])
    return found


def assert_same(reference: dict[str, Any], candidate: dict[str, Any]) -> None:
    for key, expected in reference.items():
        assert candidate[key] == expected, f"{key} differs"


async def write_both(stores: tuple[Store, Store], batches: list[ProcessedBatch]) -> None:
    for store in stores:
        for batch in batches:
            await store.write(batch)


async def test_fixed_batch_same(both: tuple[Store, Store]) -> None:
    sqlite, postgres = both
    await write_both(both, [fixed_batch(), fixed_batch()])

    reference = await query_results(sqlite)
    candidate = await query_results(postgres)

    assert_same(reference, candidate)
    v1 = candidate["fleet activity"][0]
    assert v1.device_id == "v1"
    assert v1.distance_m == 25_000 + 15_000 + 10_000
    assert v1.stops == 2
    assert v1.overspeed_s == 90


async def test_activity_updates_same(both: tuple[Store, Store]) -> None:
    start_ms = DAY0_MS + 5 * HOUR_MS
    ts_ms = DAY0_MS + 3 * HOUR_MS
    batches = [
        ProcessedBatch(trips=[trip("v1", start_ms, 1_000.0, 100.0, 0.0, 50.0, closed=False)]),
        ProcessedBatch(trips=[trip("v1", start_ms, 6_000.0, 500.0, 20.0, 80.0)]),
        # A redelivered older batch: the open trip and the ongoing overspeed again.
        ProcessedBatch(trips=[trip("v1", start_ms, 1_000.0, 100.0, 0.0, 50.0, closed=False)]),
        ProcessedBatch(events=[event("v1", ts_ms, OVERSPEED, duration_s=12.0, ongoing=True)]),
        ProcessedBatch(events=[event("v1", ts_ms, OVERSPEED, duration_s=75.0, ongoing=False)]),
        ProcessedBatch(events=[event("v1", ts_ms, OVERSPEED, duration_s=12.0, ongoing=True)]),
        ProcessedBatch(
            trips=[
                trip("v2", DAY1_MS - 1, 1_000.0, 100.0, 0.0, 50.0),
                trip("v2", DAY1_MS, 2_000.0, 100.0, 0.0, 50.0),
            ],
            vehicles=[make_snapshot("v1", DAY1_MS), make_snapshot("v2", DAY1_MS)],
        ),
    ]

    await write_both(both, batches)
    sqlite, postgres = both
    reference = await query_results(sqlite)
    candidate = await query_results(postgres)

    assert_same(reference, candidate)
    (hour,) = candidate["hours v1"][1:]
    assert hour.distance_m == 6_000
    assert candidate["hours v1"][0].overspeed_s == 75


def random_batches(seed: int) -> list[ProcessedBatch]:
    """Batches with the cases the write rules decide: repeated record keys, events emitted
    again ongoing and final, trips growing and closing, older vehicle views, redelivery."""
    rng = random.Random(seed)
    batches: list[ProcessedBatch] = []
    for number in range(12):
        batch = ProcessedBatch()
        for _ in range(rng.randint(0, 40)):
            ts_ms = DAY0_MS + rng.randrange(0, 2 * 24 * HOUR_MS, 1000)
            distance = float(rng.randint(0, 500))
            batch.records.append(make_enriched(rng.choice(DEVICES), ts_ms, distance_m=distance))
        for _ in range(rng.randint(0, 8)):
            ts_ms = DAY0_MS + rng.randrange(0, 2 * 24 * HOUR_MS, 60_000)
            type_ = rng.choice((OVERSPEED, HARSH_BRAKING, HARSH_ACCELERATION, IDLING))
            details = {"duration_s": float(rng.randint(1, 300)), "ongoing": rng.random() < 0.5}
            severity = rng.choice((INFO, SEVERITY_WARNING, CRITICAL))
            batch.events.append(
                Event(
                    device_id=rng.choice(DEVICES),
                    ts_ms=ts_ms,
                    type=type_,
                    severity=severity,
                    details=details,
                )
            )
        for _ in range(rng.randint(0, 4)):
            start_ms = DAY0_MS + rng.randrange(0, 48) * HOUR_MS + rng.choice((0, 1800_000))
            duration_s = float(rng.randint(60, 3600))
            batch.trips.append(
                trip(
                    rng.choice(DEVICES),
                    start_ms,
                    float(rng.randint(100, 50_000)),
                    duration_s,
                    float(rng.randint(0, 60)),
                    float(rng.randint(20, 160)),
                    closed=rng.random() < 0.5,
                )
            )
        for device_id in rng.sample(DEVICES, rng.randint(0, len(DEVICES))):
            # Few distinct times, so that views with an equal last_ts_ms but another
            # state occur too.
            last_ts_ms = DAY0_MS + rng.randrange(0, 8) * HOUR_MS
            state = f"{device_id} batch {number}".encode()
            batch.vehicles.append(make_snapshot(device_id, last_ts_ms, state=state))
            if rng.random() < 0.3:
                # A second snapshot of the vehicle in the same batch, older, equal or newer.
                later_ts_ms = last_ts_ms + rng.choice((-HOUR_MS, 0, HOUR_MS))
                state = f"{device_id} batch {number} again".encode()
                batch.vehicles.append(make_snapshot(device_id, later_ts_ms, state=state))
        batches.append(batch)
        if rng.random() < 0.3:
            batches.append(rng.choice(batches))
    return batches


@pytest.mark.parametrize("seed", range(6))
async def test_random_batches_same(both: tuple[Store, Store], seed: int) -> None:
    sqlite, postgres = both
    await write_both(both, random_batches(seed))

    before_purge = await query_results(sqlite)
    assert_same(before_purge, await query_results(postgres))

    cutoff = DAY0_MS + random.Random(seed).randrange(0, 48) * HOUR_MS
    purged_sqlite = await sqlite.purge(cutoff)
    purged_postgres = await postgres.purge(cutoff)

    assert purged_postgres == purged_sqlite
    assert_same(await query_results(sqlite), await query_results(postgres))


def test_random_batches_cover_cases() -> None:
    batches = random_batches(0)

    trips: list[Trip] = [trip for batch in batches for trip in batch.trips]
    assert any(trip.end_ts_ms is None for trip in trips)
    assert any(trip.end_ts_ms is not None for trip in trips)
    assert sum(len(batch.records) for batch in batches) > 100
