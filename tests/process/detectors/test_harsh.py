from __future__ import annotations

from fleetpulse.model.vocabulary import HARSH_ACCELERATION, HARSH_BRAKING
from fleetpulse.process.detectors.harsh import HarshState, detect_harsh
from tests.process.timeline import at, drive, drive_east, events_of, make_settings, record


def speeds(values: list[float], step_s: int = 1) -> list:
    return [record(i * step_s, speed_kmh=value) for i, value in enumerate(values)]


def test_harsh_braking_one_event_per_episode() -> None:
    settings = make_settings(harsh_braking_mps2=3.5)
    # 72 -> 0 km/h in 4 s: -5 m/s2 for four pairs in a row.
    _, emitted = drive(
        detect_harsh, HarshState(), speeds([72.0, 72.0, 54.0, 36.0, 18.0, 0.0, 0.0]), settings
    )
    (event,) = events_of(emitted, HARSH_BRAKING)
    assert event.ts_ms == at(1)
    assert event.details["from_speed_kmh"] == 72.0
    assert event.details["to_speed_kmh"] == 0.0
    assert event.details["peak_mps2"] == 5.0


def test_harsh_acceleration() -> None:
    settings = make_settings(harsh_acceleration_mps2=3.0)
    _, emitted = drive(detect_harsh, HarshState(), speeds([0.0, 15.0, 30.0, 35.0, 38.0]), settings)
    (event,) = events_of(emitted, HARSH_ACCELERATION)
    assert event.ts_ms == at(0)
    assert event.details["to_speed_kmh"] == 30.0


def test_harsh_gentle_braking_no_event() -> None:
    settings = make_settings(harsh_braking_mps2=3.5)
    _, emitted = drive(detect_harsh, HarshState(), speeds([72.0, 63.0, 54.0, 45.0, 36.0]), settings)
    assert emitted == []


def test_harsh_long_interval_ignored() -> None:
    settings = make_settings(harsh_max_interval_s=3.0)
    # 72 -> 0 km/h, but 10 s apart: the speed between the records is unknown.
    _, emitted = drive(detect_harsh, HarshState(), speeds([72.0, 0.0, 0.0], step_s=10), settings)
    assert emitted == []


def test_harsh_gps_speed_ignored() -> None:
    settings = make_settings()
    # A hard stop seen only in the fixes: 72 km/h, then standing still.
    driving = drive_east(0, 10, speed_kmh=72.0)
    last = driving[-1]
    standing = [record(11 + i, last.lat, last.lon) for i in range(5)]
    _, emitted = drive(detect_harsh, HarshState(), driving + standing, settings)
    assert emitted == []


def test_harsh_braking_then_acceleration() -> None:
    settings = make_settings()
    timeline = speeds([72.0, 50.0, 30.0, 30.0, 50.0, 70.0, 70.0])
    _, emitted = drive(detect_harsh, HarshState(), timeline, settings)
    assert [e.type for e in events_of(emitted)] == [HARSH_BRAKING, HARSH_ACCELERATION]
