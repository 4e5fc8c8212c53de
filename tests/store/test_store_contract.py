"""The Store contract, run against every backend in conftest.BACKENDS."""

from __future__ import annotations

import asyncio

import pytest

from fleetpulse.model.event import Event, Trip
from fleetpulse.model.record import DeadLetter, EnrichedRecord, Record
from fleetpulse.model.vocabulary import (
    CRITICAL,
    DETAIL_ONGOING,
    IGNITION_ON,
    INFO,
    OVERSPEED,
    SEVERITY_WARNING,
    TRIP_START,
)
from fleetpulse.store.base import ProcessedBatch, Store
from tests.store.store_helpers import (
    OpenStore,
    make_enriched,
    make_event,
    make_snapshot,
)

# Far beyond every timestamp the tests write.
END_MS = 10**15


def full_batch() -> ProcessedBatch:
    return ProcessedBatch(
        records=[make_enriched(device_id, ts) for device_id in ("v1", "v2") for ts in range(5)],
        events=[make_event("v1", 1), make_event("v2", 3, IGNITION_ON, INFO)],
        trips=[Trip(device_id="v1", start_ts_ms=0, start_lat=48.1, start_lon=11.5)],
        vehicles=[make_snapshot("v1", 4), make_snapshot("v2", 4)],
    )


def make_letter(received_at_ms: int) -> DeadLetter:
    return DeadLetter(
        received_at_ms=received_at_ms,
        reason="out_of_range",
        detail="lat must be <= 90",
        source="http",
        raw='{"lat": 91}',
        device_id="v1",
        index=received_at_ms % 7,
    )


async def test_write_twice_idempotent(store: Store) -> None:
    batch = full_batch()

    await store.write(batch)
    once = await store.counts()
    await store.write(batch)
    twice = await store.counts()

    assert twice == once
    assert once.records == len(batch.records)
    assert once.events == len(batch.events)
    assert once.trips == len(batch.trips)
    assert once.vehicles == len(batch.vehicles)


async def test_duplicate_keeps_first(store: Store) -> None:
    first = make_enriched("v1", 5, distance_m=1.0)
    second = make_enriched("v1", 5, distance_m=99.0)

    await store.write(ProcessedBatch(records=[first]))
    await store.write(ProcessedBatch(records=[second]))

    assert await store.positions("v1", 0, END_MS, 10) == [first]


async def test_concurrent_writes_all_stored(store: Store) -> None:
    batches = [
        ProcessedBatch(records=[make_enriched(f"v{i}", ts) for ts in range(10)]) for i in range(20)
    ]
    letters = [make_letter(i) for i in range(20)]

    await asyncio.gather(
        *(store.write(batch) for batch in batches),
        *(store.write_dead_letters([letter]) for letter in letters),
    )
    counts = await store.counts()

    assert counts.records == 200
    assert counts.dead_letters == 20


async def test_record_round_trip(store: Store) -> None:
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
        ignition=False,
        engine_rpm=2100.0,
        coolant_c=91.0,
        fuel_pct=55.5,
        battery_v=13.9,
        odometer_m=123_456.7,
        dtc=["P0300", "U0100"],
        valid=True,
        attributes={"door": "open", "temps": [1, 2], "nested": {"a": None}},
        source="replay",
    )
    enriched = EnrichedRecord(
        record=record,
        distance_m=12.25,
        speed_kmh=87.0,
        motion="moving",
        status="alert",
        reasons=["overspeed", "dtc"],
        flags=["late"],
    )

    await store.write(ProcessedBatch(records=[enriched]))

    assert await store.positions("truck-7", 0, END_MS, 10) == [enriched]


async def test_record_round_trip_nulls(store: Store) -> None:
    enriched = EnrichedRecord(
        record=Record(device_id="v1", ts_ms=7, lat=0.0, lon=0.0, received_at_ms=8)
    )

    await store.write(ProcessedBatch(records=[enriched]))

    assert await store.positions("v1", 0, END_MS, 10) == [enriched]


async def test_positions_time_range(store: Store) -> None:
    await store.write(full_batch())

    found = await store.positions("v1", 1, 4, 100)

    assert [e.record.ts_ms for e in found] == [1, 2, 3]
    assert {e.record.device_id for e in found} == {"v1"}


async def test_positions_limit_oldest(store: Store) -> None:
    await store.write(full_batch())

    found = await store.positions("v2", 0, END_MS, 2)

    assert [e.record.ts_ms for e in found] == [0, 1]


async def test_positions_negative_limit(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.positions("v1", 0, END_MS, -1)


async def test_events_newest_first(store: Store) -> None:
    await store.write(ProcessedBatch(events=[make_event("v1", ts) for ts in range(5)]))

    found = await store.events(None, None, 0, END_MS, 100)

    ids = [stored.id for stored in found]
    assert ids == sorted(ids, reverse=True)
    assert [stored.event.ts_ms for stored in found] == [4, 3, 2, 1, 0]
    assert found[0].event == make_event("v1", 4)


async def test_events_after_id_oldest_first(store: Store) -> None:
    await store.write(ProcessedBatch(events=[make_event("v1", ts) for ts in range(5)]))
    everything = await store.events(None, None, 0, END_MS, 100)
    middle_id = everything[2].id

    newer = await store.events(None, None, 0, END_MS, 100, after_id=middle_id)

    assert [stored.id for stored in newer] == sorted(s.id for s in everything if s.id > middle_id)
    assert [stored.event.ts_ms for stored in newer] == [3, 4]


async def test_events_resume_misses_none(store: Store) -> None:
    await store.write(ProcessedBatch(events=[make_event("v1", ts) for ts in range(7)]))
    everything = await store.events(None, None, 0, END_MS, 100)
    oldest_id = everything[-1].id

    pages: list[list[int]] = []
    last_id = oldest_id
    for _ in range(10):
        page = await store.events(None, None, 0, END_MS, 2, after_id=last_id)
        if not page:
            break
        pages.append([stored.event.ts_ms for stored in page])
        last_id = page[-1].id

    assert pages == [[1, 2], [3, 4], [5, 6]]


async def test_events_poll_gets_new(store: Store) -> None:
    await store.write(ProcessedBatch(events=[make_event("v1", ts) for ts in range(3)]))
    (newest,) = await store.events(None, None, 0, END_MS, 1)

    await store.write(ProcessedBatch(events=[make_event("v2", ts) for ts in range(3)]))
    polled = await store.events(None, None, 0, END_MS, 2, after_id=newest.id)

    assert [(s.event.device_id, s.event.ts_ms) for s in polled] == [("v2", 0), ("v2", 1)]


async def test_events_after_id_with_filters(store: Store) -> None:
    events = [make_event(device_id, ts) for ts in range(4) for device_id in ("v1", "v2")]
    await store.write(ProcessedBatch(events=events))
    oldest_v1 = (await store.events("v1", None, 0, END_MS, 100))[-1]

    newer = await store.events("v1", OVERSPEED, 0, 3, 100, after_id=oldest_v1.id)

    assert [(s.event.device_id, s.event.ts_ms) for s in newer] == [("v1", 1), ("v1", 2)]


async def test_events_negative_after_id(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.events(None, None, 0, END_MS, 10, after_id=-1)


async def test_events_ids_increase(store: Store) -> None:
    await store.write(ProcessedBatch(events=[make_event("v1", 10)]))
    await store.write(ProcessedBatch(events=[make_event("v1", 5)]))

    found = await store.events(None, None, 0, END_MS, 100)

    assert [stored.event.ts_ms for stored in found] == [5, 10]
    assert found[0].id > found[1].id


async def test_events_filters(store: Store) -> None:
    await store.write(full_batch())

    by_vehicle = await store.events("v2", None, 0, END_MS, 100)
    by_type = await store.events(None, OVERSPEED, 0, END_MS, 100)
    by_time = await store.events(None, None, 2, 4, 100)
    by_limit = await store.events(None, None, 0, END_MS, 1)

    assert [(s.event.device_id, s.event.type) for s in by_vehicle] == [("v2", IGNITION_ON)]
    assert [(s.event.device_id, s.event.type) for s in by_type] == [("v1", OVERSPEED)]
    assert [s.event.ts_ms for s in by_time] == [3]
    assert len(by_limit) == 1


def overspeed_copy(ongoing: bool, max_speed_kmh: float, severity: str = SEVERITY_WARNING) -> Event:
    """One copy of the same overspeed event, as the detector emits it while and after it runs."""
    details = {"max_speed_kmh": max_speed_kmh, DETAIL_ONGOING: ongoing}
    return Event(device_id="v1", ts_ms=1, type=OVERSPEED, severity=severity, details=details)


async def test_event_duplicate_unchanged(store: Store) -> None:
    await store.write(ProcessedBatch(events=[make_event("v1", 1)]))
    first = await store.events(None, None, 0, END_MS, 10)

    await store.write(ProcessedBatch(events=[make_event("v1", 1)]))

    assert await store.events(None, None, 0, END_MS, 10) == first


async def test_event_upsert_keeps_id(store: Store) -> None:
    ongoing = overspeed_copy(ongoing=True, max_speed_kmh=110.0)
    final = overspeed_copy(ongoing=False, max_speed_kmh=125.0, severity=CRITICAL)
    await store.write(ProcessedBatch(events=[make_event("v2", 0), ongoing]))
    (before,) = await store.events("v1", None, 0, END_MS, 10)

    await store.write(ProcessedBatch(events=[final]))
    (after,) = await store.events("v1", None, 0, END_MS, 10)

    assert after.id == before.id
    assert after.event == final
    assert (await store.counts()).events == 2


async def test_event_upsert_idempotent(store: Store) -> None:
    batch = ProcessedBatch(
        events=[
            overspeed_copy(ongoing=True, max_speed_kmh=110.0),
            overspeed_copy(ongoing=False, max_speed_kmh=125.0),
            make_event("v2", 3),
        ]
    )
    await store.write(batch)
    once = await store.events(None, None, 0, END_MS, 10)

    await store.write(batch)
    twice = await store.events(None, None, 0, END_MS, 10)

    assert twice == once
    assert [s.event.details for s in once if s.event.device_id == "v1"] == [
        {"max_speed_kmh": 125.0, DETAIL_ONGOING: False}
    ]


async def test_event_final_not_reverted(store: Store) -> None:
    final = overspeed_copy(ongoing=False, max_speed_kmh=125.0)
    await store.write(ProcessedBatch(events=[overspeed_copy(ongoing=True, max_speed_kmh=110.0)]))
    await store.write(ProcessedBatch(events=[final]))

    # A redelivered older batch brings the ongoing copy again.
    await store.write(ProcessedBatch(events=[overspeed_copy(ongoing=True, max_speed_kmh=110.0)]))

    assert [s.event for s in await store.events(None, None, 0, END_MS, 10)] == [final]


async def test_trip_upsert_replaces_open(store: Store) -> None:
    opened = Trip(device_id="v1", start_ts_ms=100, start_lat=1.0, start_lon=2.0, distance_m=50.0)
    grown = Trip(device_id="v1", start_ts_ms=100, start_lat=1.0, start_lon=2.0, distance_m=900.0)

    await store.write(ProcessedBatch(trips=[opened]))
    await store.write(ProcessedBatch(trips=[grown]))

    assert await store.trips("v1", 0, END_MS) == [grown]


async def test_trip_closed_not_reopened(store: Store) -> None:
    opened = Trip(device_id="v1", start_ts_ms=100, start_lat=1.0, start_lon=2.0, distance_m=50.0)
    closed = Trip(
        device_id="v1",
        start_ts_ms=100,
        start_lat=1.0,
        start_lon=2.0,
        end_ts_ms=900,
        end_lat=1.1,
        end_lon=2.1,
        distance_m=1200.0,
        duration_s=800.0,
        max_speed_kmh=70.0,
        avg_speed_kmh=5.4,
        idle_s=30.0,
    )

    await store.write(ProcessedBatch(trips=[opened]))
    await store.write(ProcessedBatch(trips=[closed]))
    await store.write(ProcessedBatch(trips=[opened]))

    assert await store.trips("v1", 0, END_MS) == [closed]


async def test_trips_by_start_range(store: Store) -> None:
    trips = [
        Trip(device_id=device_id, start_ts_ms=start, start_lat=1.0, start_lon=2.0)
        for device_id in ("v1", "v2")
        for start in (300, 100, 200)
    ]
    await store.write(ProcessedBatch(trips=trips))

    found = await store.trips("v1", 100, 300)

    assert [(t.device_id, t.start_ts_ms) for t in found] == [("v1", 100), ("v1", 200)]


async def test_vehicle_state_round_trip(store: Store) -> None:
    snapshot = make_snapshot("v1", 4, state=b"\x00\x01binary\xff")
    await store.write(ProcessedBatch(vehicles=[snapshot]))

    states = await store.load_states(["v1", "missing"])

    assert states == {"v1": b"\x00\x01binary\xff"}
    assert await store.vehicle("v1") == snapshot.view
    assert await store.vehicle("missing") is None


async def test_load_states_empty(store: Store) -> None:
    assert await store.load_states([]) == {}


async def test_vehicle_newer_replaces(store: Store) -> None:
    await store.write(ProcessedBatch(vehicles=[make_snapshot("v1", 4, state=b"old")]))

    await store.write(ProcessedBatch(vehicles=[make_snapshot("v1", 9, state=b"new")]))

    assert await store.load_states(["v1"]) == {"v1": b"new"}
    view = await store.vehicle("v1")
    assert view is not None
    assert view.last_ts_ms == 9


async def test_vehicle_older_ignored(store: Store) -> None:
    await store.write(ProcessedBatch(vehicles=[make_snapshot("v1", 9, state=b"new")]))

    await store.write(ProcessedBatch(vehicles=[make_snapshot("v1", 4, state=b"old")]))

    assert await store.load_states(["v1"]) == {"v1": b"new"}


async def test_vehicles_ordered(store: Store) -> None:
    snapshots = [make_snapshot(device_id, 1) for device_id in ("c", "a", "b")]
    await store.write(ProcessedBatch(vehicles=snapshots))

    views = await store.vehicles()

    assert [view.device_id for view in views] == ["a", "b", "c"]


async def test_dead_letters_newest_first(store: Store) -> None:
    letters = [make_letter(ts) for ts in (10, 20, 30)]
    await store.write_dead_letters(letters)

    found = await store.dead_letters(2)

    assert [stored.letter for stored in found] == [letters[2], letters[1]]
    assert found[0].id > found[1].id


async def test_dead_letters_after_id_oldest_first(store: Store) -> None:
    letters = [make_letter(ts) for ts in (10, 20, 30, 40, 50)]
    await store.write_dead_letters(letters)
    everything = await store.dead_letters(10)

    newer = await store.dead_letters(2, after_id=everything[-1].id)

    assert [stored.letter for stored in newer] == [letters[1], letters[2]]
    assert newer[0].id < newer[1].id


async def test_dead_letters_resume_misses_none(store: Store) -> None:
    letters = [make_letter(ts) for ts in range(10, 80, 10)]
    await store.write_dead_letters(letters)
    (newest,) = await store.dead_letters(1)
    late = [make_letter(ts) for ts in (100, 110, 120)]
    await store.write_dead_letters(late)

    resumed: list[DeadLetter] = []
    last_id = newest.id
    for _ in range(10):
        page = await store.dead_letters(2, after_id=last_id)
        if not page:
            break
        resumed.extend(stored.letter for stored in page)
        last_id = page[-1].id

    assert resumed == late


async def test_dead_letters_negative_after_id(store: Store) -> None:
    with pytest.raises(ValueError):
        await store.dead_letters(10, after_id=-1)


async def test_dead_letter_optional_fields(store: Store) -> None:
    letter = DeadLetter(received_at_ms=1, reason="invalid_json", detail="x", source="http", raw="{")

    await store.write_dead_letters([letter])

    assert [stored.letter for stored in await store.dead_letters(10)] == [letter]


async def test_purge_deletes_older(store: Store) -> None:
    await store.write(
        ProcessedBatch(
            records=[make_enriched("v1", ts) for ts in (10, 20, 30, 40)],
            events=[make_event("v1", ts) for ts in (10, 40)],
            trips=[
                Trip(device_id="v1", start_ts_ms=5, start_lat=1.0, start_lon=2.0, end_ts_ms=15),
                Trip(device_id="v1", start_ts_ms=20, start_lat=1.0, start_lon=2.0, end_ts_ms=40),
                Trip(device_id="v2", start_ts_ms=35, start_lat=1.0, start_lon=2.0),
            ],
            vehicles=[make_snapshot("v1", 40)],
        )
    )
    await store.write_dead_letters([make_letter(ts) for ts in (10, 20, 40)])

    deleted = await store.purge(older_than_ms=25)

    counts = await store.counts()
    assert deleted == 2 + 1 + 2 + 1
    assert [e.record.ts_ms for e in await store.positions("v1", 0, END_MS, 10)] == [30, 40]
    assert [s.event.ts_ms for s in await store.events(None, None, 0, END_MS, 10)] == [40]
    assert [t.start_ts_ms for t in await store.trips("v1", 0, END_MS)] == [20]
    assert counts.trips == 2
    assert counts.dead_letters == 1
    assert counts.vehicles == 1


async def test_purge_nothing_old(store: Store) -> None:
    await store.write(full_batch())

    assert await store.purge(older_than_ms=0) == 0


async def test_event_counts_by_type(store: Store) -> None:
    events = [make_event("v1", ts) for ts in range(4)] + [make_event("v2", 2, IGNITION_ON, INFO)]
    await store.write(ProcessedBatch(events=events))

    counts = await store.event_counts(1, 3)

    assert counts == {OVERSPEED: 2, IGNITION_ON: 1}


async def test_alert_leaders_ranked(store: Store) -> None:
    events = (
        [make_event("v1", ts, OVERSPEED, SEVERITY_WARNING) for ts in range(2)]
        + [make_event("v2", ts, OVERSPEED, CRITICAL) for ts in range(3)]
        + [make_event("v3", ts, TRIP_START, INFO) for ts in range(5)]
        + [make_event("v4", ts, OVERSPEED, SEVERITY_WARNING) for ts in range(2)]
    )
    await store.write(ProcessedBatch(events=events))

    leaders = await store.alert_leaders(0, END_MS, 10)
    top = await store.alert_leaders(0, END_MS, 1)
    window = await store.alert_leaders(0, 1, 10)

    assert leaders == [("v2", 3), ("v1", 2), ("v4", 2)]
    assert top == [("v2", 3)]
    assert window == [("v1", 1), ("v2", 1), ("v4", 1)]


async def test_distance_sums_range(store: Store) -> None:
    records = [make_enriched("v1", ts, distance_m=float(ts)) for ts in range(10)]
    records += [make_enriched("v2", ts, distance_m=0.5) for ts in range(10)]
    await store.write(ProcessedBatch(records=records))

    total = await store.distance_m(2, 5)

    assert total == pytest.approx(2.0 + 3.0 + 4.0 + 3 * 0.5)


async def test_distance_empty_zero(store: Store) -> None:
    assert await store.distance_m(0, END_MS) == 0.0


async def test_reopen_keeps_rows(open_test_store: OpenStore) -> None:
    store = await open_test_store()
    await store.write(full_batch())
    before = await store.counts()
    await store.close()

    reopened = await open_test_store()

    assert await reopened.counts() == before


async def test_close_keeps_pending_writes(open_test_store: OpenStore) -> None:
    store = await open_test_store()
    writes = [
        asyncio.create_task(store.write(ProcessedBatch(records=[make_enriched(f"v{i}", 1)])))
        for i in range(10)
    ]
    await asyncio.sleep(0)

    await store.close()
    await asyncio.gather(*writes)
    reopened = await open_test_store()

    assert (await reopened.counts()).records == 10


async def test_close_twice(store: Store) -> None:
    await store.close()
    await store.close()
