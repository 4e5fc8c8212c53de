from __future__ import annotations

import random

import pytest

from fleetpulse import metrics
from fleetpulse.config import Geofence
from fleetpulse.model.event import Event
from fleetpulse.model.record import Record
from fleetpulse.model.vocabulary import (
    ALERT,
    ENGINE_OVERHEAT,
    FLAG_LATE,
    FLAG_NO_FIX,
    GEOFENCE_ENTER,
    GEOFENCE_EXIT,
    IGNITION_OFF,
    IGNITION_ON,
    LOW_FUEL,
    MOVING,
    NORMAL,
    OFFLINE,
    OFFLINE_EVENT,
    OVERSPEED,
    WARNING,
)
from fleetpulse.process import batch as batch_module
from fleetpulse.process.batch import DUPLICATE_WINDOW, process_records, sweep_offline
from fleetpulse.process.state import VehicleState, decode_state, encode_state
from tests.process.timeline import (
    DEVICE,
    HOME_LAT,
    HOME_LON,
    T0_MS,
    at,
    drive_east,
    make_settings,
    moved,
    record,
)

DEPOT = Geofence(id="depot", lat=HOME_LAT, lon=HOME_LON, radius_m=100.0)


def counter(metric: object, **labels: str) -> float:
    name = {
        id(metrics.RECORDS_DUPLICATE): "fleetpulse_records_duplicate_total",
        id(metrics.RECORDS_LATE): "fleetpulse_records_late_total",
        id(metrics.RECORDS_NO_FIX): "fleetpulse_records_no_fix_total",
        id(metrics.EVENTS): "fleetpulse_events_total",
    }[id(metric)]
    return metrics.REGISTRY.get_sample_value(name, labels or None) or 0.0


def event_keys(events: list[Event]) -> list[tuple[str, int]]:
    return [(event.type, event.ts_ms) for event in events]


def drive_with_events() -> list[Record]:
    """Ignition on, a drive out of the depot with an overspeed episode, ignition off."""
    timeline = [record(0, ignition=True)]
    timeline += drive_east(1, 60, speed_kmh=50.0, report_speed=True, ignition=True)
    fast = drive_east(62, 30, speed_kmh=140.0, east_m=850.0, report_speed=True, ignition=True)
    timeline += fast
    last = fast[-1]
    timeline += [record(93, last.lat, last.lon, speed_kmh=0.0, ignition=False)]
    return timeline


def test_batch_sorts_out_of_order() -> None:
    settings = make_settings(geofences=[DEPOT])
    timeline = drive_with_events()
    ordered = process_records({}, timeline, settings, at(100))
    shuffled = list(timeline)
    random.Random(3).shuffle(shuffled)
    mixed = process_records({}, shuffled, settings, at(100))
    assert event_keys(mixed.events) == event_keys(ordered.events)
    assert [r.record.ts_ms for r in mixed.records] == [r.record.ts_ms for r in ordered.records]


def test_batch_events_of_drive() -> None:
    settings = make_settings(geofences=[DEPOT])
    batch = process_records({}, drive_with_events(), settings, at(100))
    types = {event.type for event in batch.events}
    assert {GEOFENCE_EXIT, OVERSPEED, IGNITION_OFF} <= types
    assert len(batch.trips) == 1


@pytest.mark.parametrize("split", [1, 2, 7, 30, 61, 90])
def test_batch_split_matches_whole(split: int) -> None:
    settings = make_settings(geofences=[DEPOT])
    timeline = drive_with_events()
    whole = process_records({}, timeline, settings, at(100))

    states: dict[str, VehicleState] = {}
    first = process_records(states, timeline[:split], settings, at(100))
    # Reload the state from bytes, as a restarted processor would.
    states = {DEVICE: decode_state(encode_state(states[DEVICE]))}
    second = process_records(states, timeline[split:], settings, at(100))
    assert event_keys(first.events + second.events) == event_keys(whole.events)
    closed = [trip for trip in first.trips + second.trips if trip.end_ts_ms is not None]
    assert closed == [trip for trip in whole.trips if trip.end_ts_ms is not None]


def test_batch_duplicates_no_double_events() -> None:
    settings = make_settings(geofences=[DEPOT])
    timeline = drive_with_events()
    before = counter(metrics.RECORDS_DUPLICATE)
    batch = process_records({}, timeline + timeline[:5], settings, at(100))
    assert counter(metrics.RECORDS_DUPLICATE) - before == 5
    assert len(batch.records) == len(timeline)
    whole = process_records({}, timeline, settings, at(100))
    assert event_keys(batch.events) == event_keys(whole.events)


def test_batch_redelivery_produces_nothing() -> None:
    settings = make_settings(geofences=[DEPOT])
    timeline = drive_with_events()
    states: dict[str, VehicleState] = {}
    process_records(states, timeline[:50], settings, at(100))
    before = counter(metrics.RECORDS_DUPLICATE)
    again = process_records(states, timeline[:50], settings, at(100))
    assert again.events == []
    assert again.records == []
    assert again.vehicles == []
    assert counter(metrics.RECORDS_DUPLICATE) - before == min(50, DUPLICATE_WINDOW)


def test_batch_late_record_flagged_and_stored() -> None:
    settings = make_settings()
    states: dict[str, VehicleState] = {}
    process_records(states, [record(0), record(20)], settings, at(30))
    before = counter(metrics.RECORDS_LATE)
    batch = process_records(states, [record(10, coolant_c=120.0)], settings, at(30))
    (late,) = batch.records
    assert late.flags == [FLAG_LATE]
    assert late.status == ALERT
    assert late.reasons == [ENGINE_OVERHEAT]
    assert batch.events == []
    assert counter(metrics.RECORDS_LATE) - before == 1


def test_batch_late_record_keeps_state() -> None:
    settings = make_settings()
    states: dict[str, VehicleState] = {}
    process_records(states, [record(0, fuel_pct=50.0), record(20, fuel_pct=50.0)], settings, at(30))
    state_before = encode_state(states[DEVICE])
    far = moved(HOME_LAT, HOME_LON, 3000.0, 0.0)
    process_records(states, [record(10, *far, ignition=False, fuel_pct=5.0)], settings, at(30))
    after = states[DEVICE]
    assert after.motion == decode_state(state_before).motion
    assert after.ignition == decode_state(state_before).ignition
    assert after.low_fuel == decode_state(state_before).low_fuel
    assert after.last_ts_ms == at(20)


def test_batch_late_record_no_replayed_transitions() -> None:
    settings = make_settings()
    states: dict[str, VehicleState] = {}
    timeline = [record(0, ignition=False), record(10, ignition=True), record(20, ignition=True)]
    first = process_records(states, timeline, settings, at(30))
    assert event_keys(first.events) == [(IGNITION_ON, at(10))]
    # A late record from when the ignition was still off, then a current one.
    late = process_records(
        states, [record(5, ignition=False), record(30, ignition=True)], settings, at(40)
    )
    assert late.events == []
    assert FLAG_LATE in late.records[0].flags


def test_batch_late_fix_geofence_no_flap() -> None:
    settings = make_settings(geofences=[DEPOT])
    states: dict[str, VehicleState] = {}
    outside = moved(HOME_LAT, HOME_LON, 0.0, 500.0)
    process_records(states, [record(0), record(60, *outside)], settings, at(70))
    assert states[DEVICE].geofence.inside == ()
    batch = process_records(states, [record(30), record(90, *outside)], settings, at(100))
    assert [e.type for e in batch.events if e.type in (GEOFENCE_ENTER, GEOFENCE_EXIT)] == []
    assert states[DEVICE].geofence.inside == ()


def test_batch_late_duplicate_counted_once() -> None:
    settings = make_settings()
    states: dict[str, VehicleState] = {}
    process_records(states, [record(0), record(20)], settings, at(30))
    before_late = counter(metrics.RECORDS_LATE)
    before_duplicate = counter(metrics.RECORDS_DUPLICATE)
    process_records(states, [record(10)], settings, at(30))
    again = process_records(states, [record(10)], settings, at(30))
    assert again.records == []
    assert counter(metrics.RECORDS_LATE) - before_late == 1
    assert counter(metrics.RECORDS_DUPLICATE) - before_duplicate == 1


def test_batch_no_fix_counted() -> None:
    settings = make_settings()
    before = counter(metrics.RECORDS_NO_FIX)
    batch = process_records(
        {}, [record(0), record(1, valid=False), record(2, 0.0, 0.0)], settings, at(5)
    )
    assert counter(metrics.RECORDS_NO_FIX) - before == 2
    assert [FLAG_NO_FIX in r.flags for r in batch.records] == [False, True, True]


def test_batch_no_fix_keeps_engine_values() -> None:
    settings = make_settings()
    batch = process_records(
        {}, [record(0), record(1, valid=False, coolant_c=88.0, fuel_pct=5.0)], settings, at(5)
    )
    (snapshot,) = batch.vehicles
    assert snapshot.view.coolant_c == 88.0
    assert snapshot.view.lat == HOME_LAT
    assert LOW_FUEL in [event.type for event in batch.events]
    assert batch.records[-1].status == WARNING


def test_batch_counts_events_by_type() -> None:
    settings = make_settings()
    before = counter(metrics.EVENTS, type=IGNITION_ON)
    process_records({}, [record(0, ignition=False), record(1, ignition=True)], settings, at(5))
    assert counter(metrics.EVENTS, type=IGNITION_ON) - before == 1


def test_batch_status_alert_during_overspeed() -> None:
    settings = make_settings(overspeed_limit_kmh=100.0, overspeed_min_duration_s=5.0)
    timeline = drive_east(0, 20, speed_kmh=130.0, report_speed=True)
    batch = process_records({}, timeline, settings, at(30))
    statuses = [r.status for r in batch.records]
    assert statuses[:5] == [NORMAL] * 5
    assert statuses[5:] == [ALERT] * 16
    assert batch.records[-1].reasons == [OVERSPEED]


def test_batch_view_of_vehicle() -> None:
    settings = make_settings()
    timeline = drive_east(
        0, 30, speed_kmh=50.0, report_speed=True, ignition=True, odometer_m=1000.0
    )
    timeline.append(record(31, timeline[-1].lat, timeline[-1].lon, ignition=True, odometer_m=0.0))
    batch = process_records({}, timeline, settings, at(40))
    (snapshot,) = batch.vehicles
    view = snapshot.view
    assert view.device_id == DEVICE
    assert view.last_ts_ms == at(31)
    assert view.odometer_m == 1000.0
    assert view.ignition is True
    assert view.lat == timeline[-1].lat
    assert view.trip_distance_m is not None
    assert decode_state(snapshot.state).last_ts_ms == at(31)


def test_batch_view_moving_motion() -> None:
    batch = process_records({}, drive_east(0, 30, 50.0), make_settings(), at(40))
    assert batch.vehicles[0].view.motion == MOVING


def test_sweep_offline_once_and_cleared() -> None:
    settings = make_settings(offline_after_s=600.0)
    states: dict[str, VehicleState] = {}
    process_records(states, [record(0)], settings, at(1))
    quiet = sweep_offline(states, settings, at(500))
    assert quiet.events == []
    swept = sweep_offline(states, settings, at(700))
    assert [e.type for e in swept.events] == [OFFLINE_EVENT]
    assert swept.vehicles[0].view.motion == OFFLINE
    assert swept.vehicles[0].view.offline
    assert sweep_offline(states, settings, at(800)).events == []

    back = process_records(states, [record(900)], settings, at(901))
    assert not back.vehicles[0].view.offline
    again = sweep_offline(states, settings, at(1600))
    assert [e.ts_ms for e in again.events] == [T0_MS + 900_000 + 40 + 600_000]


def test_batch_releases_gil_after_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(batch_module.time, "sleep", sleeps.append)
    settings = make_settings()
    records = [record(0), record(1), record(0, device_id="van-2"), record(0, device_id="van-3")]

    monkeypatch.setattr(batch_module, "YIELD_INTERVAL_S", 0.0)
    process_records({}, records, settings, at(10))
    # With no interval, the thread sleeps once after each vehicle's records.
    assert sleeps == [0, 0, 0]

    sleeps.clear()
    monkeypatch.setattr(batch_module, "YIELD_INTERVAL_S", 3600.0)
    process_records({}, records, settings, at(10))
    assert sleeps == []


def test_batch_quiet_records_own_reasons() -> None:
    batch = process_records({}, [record(0), record(1)], make_settings(), at(10))
    first, second = batch.records
    assert first.status == NORMAL
    assert first.reasons == []
    assert second.reasons == []
    # Each record has its own list, so changing one record cannot change another.
    assert first.reasons is not second.reasons
