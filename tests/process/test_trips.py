from __future__ import annotations

import pytest

from fleetpulse.model.event import Trip
from fleetpulse.model.vocabulary import TRIP_END, TRIP_START
from fleetpulse.process.trips import TripState, detect_trip, open_trip
from tests.process.timeline import (
    DEVICE,
    at,
    drive,
    drive_east,
    events_of,
    make_settings,
    record,
)


def trips_of(emitted: list) -> list[Trip]:
    return [item for item in emitted if isinstance(item, Trip)]


def stand(start_s: int, seconds: int, at_record, step_s: int = 10, **fields: object) -> list:
    return [
        record(start_s + i, at_record.lat, at_record.lon, **fields)
        for i in range(0, seconds, step_s)
    ]


def test_trip_ends_on_ignition_off() -> None:
    settings = make_settings()
    parked = stand(0, 60, record(0), ignition=True)
    driving = drive_east(60, 120, speed_kmh=36.0, report_speed=True, ignition=True)
    end = driving[-1]
    off = [record(181, end.lat, end.lon, ignition=False)]
    state, emitted = drive(detect_trip, TripState(), parked + driving + off, settings)
    (trip,) = trips_of(emitted)
    assert trip.start_ts_ms == at(60)
    assert trip.end_ts_ms == at(181)
    assert trip.distance_m == pytest.approx(1200.0, rel=0.01)
    assert trip.duration_s == 121.0
    assert trip.avg_speed_kmh == pytest.approx(1200.0 / 121.0 * 3.6, rel=0.01)
    assert state.start_ms is None


def test_trip_events_at_start_and_end() -> None:
    settings = make_settings()
    driving = drive_east(1, 120, speed_kmh=36.0, report_speed=True, ignition=True)
    off = [record(122, driving[-1].lat, driving[-1].lon, ignition=False)]
    _, emitted = drive(
        detect_trip, TripState(), [record(0, ignition=True)] + driving + off, settings
    )
    events = events_of(emitted)
    assert [(e.type, e.ts_ms) for e in events] == [(TRIP_START, at(1)), (TRIP_END, at(122))]


def test_trip_ends_after_long_stop() -> None:
    settings = make_settings(trip_end_stop_s=300.0)
    driving = drive_east(0, 120, speed_kmh=36.0)
    standing = stand(121, 400, driving[-1])
    _, emitted = drive(detect_trip, TripState(), driving + standing, settings)
    (trip,) = trips_of(emitted)
    # The end is when the vehicle stopped, not when the stop grew long enough.
    assert trip.end_ts_ms == at(121)
    assert trip.idle_s == 0.0


def test_trip_short_stop_is_idle() -> None:
    settings = make_settings(trip_end_stop_s=300.0)
    first = drive_east(0, 60, speed_kmh=36.0, report_speed=True, ignition=True)
    light = stand(61, 60, first[-1], ignition=True)
    second = drive_east(121, 60, 36.0, east_m=600.0, report_speed=True, ignition=True)
    off = [record(182, second[-1].lat, second[-1].lon, ignition=False)]
    _, emitted = drive(detect_trip, TripState(), first + light + second + off, settings)
    (trip,) = trips_of(emitted)
    assert trip.idle_s == 60.0
    assert trip.distance_m == pytest.approx(1200.0, rel=0.01)


def test_trip_short_discarded() -> None:
    settings = make_settings(trip_min_distance_m=200.0)
    driving = drive_east(0, 10, speed_kmh=36.0, ignition=True)
    off = [record(11, driving[-1].lat, driving[-1].lon, ignition=False)]
    state, emitted = drive(
        detect_trip, TripState(), [record(0, ignition=True)] + driving + off, settings
    )
    assert emitted == []
    assert state.start_ms is None


def test_trip_gap_ends_trip() -> None:
    settings = make_settings(trip_end_stop_s=300.0)
    first = drive_east(0, 60, speed_kmh=36.0)
    # An hour without data, then the vehicle is seen driving elsewhere.
    second = drive_east(3660, 60, speed_kmh=36.0, north_m=5000.0)
    _, emitted = drive(detect_trip, TripState(), first + second, settings)
    (trip,) = trips_of(emitted)
    assert trip.end_ts_ms == at(60)


def test_trip_open_while_growing() -> None:
    settings = make_settings(trip_min_distance_m=200.0)
    state, _ = drive(detect_trip, TripState(), drive_east(0, 10, speed_kmh=36.0), settings)
    assert open_trip(state, DEVICE) is None
    state, _ = drive(detect_trip, TripState(), drive_east(0, 60, speed_kmh=36.0), settings)
    trip = open_trip(state, DEVICE)
    assert trip is not None
    assert trip.end_ts_ms is None
    assert trip.distance_m == pytest.approx(600.0, rel=0.01)


def test_trip_max_speed() -> None:
    settings = make_settings()
    timeline = drive_east(0, 30, speed_kmh=36.0, ignition=True)
    timeline[10] = record(10, timeline[10].lat, timeline[10].lon, ignition=True, speed_kmh=62.0)
    timeline.append(record(31, timeline[-1].lat, timeline[-1].lon, ignition=False))
    _, emitted = drive(detect_trip, TripState(), timeline, settings)
    (trip,) = trips_of(emitted)
    assert trip.max_speed_kmh == 62.0


def test_trip_none_while_towed_ignition_off() -> None:
    settings = make_settings()
    _, emitted = drive(detect_trip, TripState(), drive_east(0, 120, 36.0, ignition=False), settings)
    assert emitted == []




def test_trip_never_starts_without_fix() -> None:
    settings = make_settings(trip_end_stop_s=300.0)
    driving = drive_east(0, 120, speed_kmh=36.0, report_speed=True, ignition=True)
    # The device goes silent for 10 minutes, which ends the trip, and comes back still
    # driving but without a fix.
    blind = [
        record(t, 0.0, 0.0, speed_kmh=50.0, ignition=True, valid=False)
        for t in range(721, 731)
    ]
    # Then the fix comes back on the road further east.
    later = drive_east(731, 120, speed_kmh=36.0, east_m=2000.0, report_speed=True, ignition=True)
    _, emitted = drive(detect_trip, TripState(), driving + blind + later, settings)
    starts = events_of(emitted, TRIP_START)
    assert all((e.details["lat"], e.details["lon"]) != (0.0, 0.0) for e in starts)
    assert all((t.start_lat, t.start_lon) != (0.0, 0.0) for t in trips_of(emitted))
