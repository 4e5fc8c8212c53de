from __future__ import annotations

from fleetpulse.config import Geofence
from fleetpulse.model.vocabulary import GEOFENCE_ENTER, GEOFENCE_EXIT
from fleetpulse.process.detectors.geofence import GeofenceState, geofence_detector
from fleetpulse.process.geo import compile_geofences
from tests.process.timeline import (
    HOME_LAT,
    HOME_LON,
    at,
    drive,
    drive_east,
    events_of,
    make_settings,
    moved,
    record,
)

DEPOT = Geofence(id="depot", lat=HOME_LAT, lon=HOME_LON, radius_m=100.0)
# A square 300-500 m east of HOME, 200 m north-south.
YARD = Geofence(
    id="yard",
    polygon=[
        moved(HOME_LAT, HOME_LON, -100.0, 300.0),
        moved(HOME_LAT, HOME_LON, 100.0, 300.0),
        moved(HOME_LAT, HOME_LON, 100.0, 500.0),
        moved(HOME_LAT, HOME_LON, -100.0, 500.0),
    ],
)
# The west half of the yard, to enter two fences with one fix.
GATE = Geofence(
    id="gate",
    polygon=[
        moved(HOME_LAT, HOME_LON, -100.0, 300.0),
        moved(HOME_LAT, HOME_LON, 100.0, 300.0),
        moved(HOME_LAT, HOME_LON, 100.0, 400.0),
        moved(HOME_LAT, HOME_LON, -100.0, 400.0),
    ],
)


def detector(*fences: Geofence):
    return geofence_detector(compile_geofences(fences))


def test_geofence_exit_then_enter_polygon() -> None:
    settings = make_settings(geofences=[DEPOT, YARD])
    timeline = drive_east(0, 60, speed_kmh=36.0)
    state, emitted = drive(detector(DEPOT, YARD), GeofenceState(), timeline, settings)
    events = events_of(emitted)
    assert [(e.type, e.details["geofences"]) for e in events] == [
        (GEOFENCE_EXIT, ["depot"]),
        (GEOFENCE_ENTER, ["yard"]),
        (GEOFENCE_EXIT, ["yard"]),
    ]
    assert events[0].ts_ms == at(11)
    assert state.inside == ()


def test_geofence_first_fix_silent() -> None:
    settings = make_settings(geofences=[DEPOT])
    state, emitted = drive(detector(DEPOT), GeofenceState(), [record(0)], settings)
    assert emitted == []
    assert state.inside == ("depot",)


def test_geofence_two_fences_one_event() -> None:
    settings = make_settings(geofences=[YARD, GATE])
    timeline = drive_east(0, 40, speed_kmh=36.0)
    _, emitted = drive(detector(YARD, GATE), GeofenceState(), timeline, settings)
    enters = events_of(emitted, GEOFENCE_ENTER)
    assert [sorted(e.details["geofences"]) for e in enters] == [["gate", "yard"]]


def test_geofence_no_fix_does_not_exit() -> None:
    settings = make_settings(geofences=[DEPOT])
    far = moved(HOME_LAT, HOME_LON, 5000.0, 0.0)
    timeline = [record(0), record(1, *far, valid=False), record(2, 0.0, 0.0), record(3)]
    _, emitted = drive(detector(DEPOT), GeofenceState(), timeline, settings)
    assert emitted == []


def test_geofence_gps_jump_does_not_flap() -> None:
    settings = make_settings(geofences=[DEPOT])
    outlier = moved(HOME_LAT, HOME_LON, 3000.0, 0.0)
    timeline = [record(0), record(1), record(2, *outlier), record(3), record(4)]
    _, emitted = drive(detector(DEPOT), GeofenceState(), timeline, settings)
    assert emitted == []
