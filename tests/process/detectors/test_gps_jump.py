from __future__ import annotations

from fleetpulse.model.vocabulary import GPS_JUMP
from fleetpulse.process.detectors.gps_jump import detect_gps_jump
from tests.process.timeline import (
    HOME_LAT,
    HOME_LON,
    at,
    drive,
    events_of,
    make_settings,
    moved,
    record,
)


def test_gps_jump_event_details() -> None:
    far = moved(HOME_LAT, HOME_LON, 1000.0, 0.0)
    timeline = [record(0), record(1), record(2, *far)]
    _, emitted = drive(detect_gps_jump, None, timeline, make_settings())
    (event,) = events_of(emitted, GPS_JUMP)
    assert event.ts_ms == at(2)
    assert event.details["distance_m"] == 1000.0
    assert event.details["implied_speed_kmh"] == 3600.0


def test_gps_jump_none_on_drive() -> None:
    timeline = [record(t, *moved(HOME_LAT, HOME_LON, 0.0, 30.0 * t)) for t in range(30)]
    _, emitted = drive(detect_gps_jump, None, timeline, make_settings())
    assert emitted == []
