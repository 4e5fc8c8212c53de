from __future__ import annotations

from fleetpulse.model.record import Record
from fleetpulse.model.vocabulary import FLAG_GPS_JUMP, GPS_JUMP
from fleetpulse.process.detectors.gps_jump import detect_gps_jump
from fleetpulse.process.motion import JUMP_BACK_WITHIN_S
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
    samples,
)

# A 36 km/h drive covers this many metres per second.
DRIVE_MPS = 10.0


def drive_with_outlier(outlier_s: int, held_s: int = 1) -> tuple[list[Record], list[Record]]:
    """A drive east whose fixes from second ``outlier_s`` on lie 2 km north for ``held_s`` s.

    Returns the whole timeline and the outlier fixes.
    """
    timeline = drive_east(0, outlier_s + held_s + 20, speed_kmh=36.0)
    outliers = []
    for i in range(outlier_s, outlier_s + held_s):
        true = timeline[i]
        timeline[i] = record(i, *moved(true.lat, true.lon, 2000.0, 0.0))
        outliers.append(timeline[i])
    return timeline, outliers


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


def test_gps_jump_lone_outlier_one_event() -> None:
    settings = make_settings()
    timeline, (outlier,) = drive_with_outlier(20)
    _, emitted = drive(detect_gps_jump, None, timeline, settings)
    (event,) = events_of(emitted, GPS_JUMP)
    assert event.ts_ms == outlier.ts_ms


def test_gps_jump_lone_outlier_both_flagged() -> None:
    settings = make_settings()
    timeline, (outlier,) = drive_with_outlier(20)
    flagged = [
        s.record.ts_ms for s in samples(timeline, settings) if FLAG_GPS_JUMP in s.enriched.flags
    ]
    assert flagged == [outlier.ts_ms, at(21)]


def test_gps_jump_held_outlier_one_event() -> None:
    settings = make_settings()
    # The receiver reports the wrong position for 5 fixes, then the true one again.
    timeline, outliers = drive_with_outlier(20, held_s=5)
    _, emitted = drive(detect_gps_jump, None, timeline, settings)
    (event,) = events_of(emitted, GPS_JUMP)
    assert event.ts_ms == outliers[0].ts_ms


def test_gps_jump_parked_outlier_one_event() -> None:
    settings = make_settings()
    far = moved(HOME_LAT, HOME_LON, 0.0, 3000.0)
    timeline = [record(t) for t in range(0, 300, 30)]
    timeline += [record(300, *far), record(330), record(360)]
    _, emitted = drive(detect_gps_jump, None, timeline, settings)
    assert [e.ts_ms for e in events_of(emitted, GPS_JUMP)] == [at(300)]


def test_gps_jump_tunnel_exit_one_event() -> None:
    settings = make_settings()
    before = drive_east(0, 20, speed_kmh=54.0)
    held = before[-1]
    # The receiver repeats its last position for 15 s, then jumps 15 s * 15 m/s ahead
    # and stays on the true track.
    stale = [record(21 + i, held.lat, held.lon) for i in range(15)]
    after = drive_east(36, 30, speed_kmh=54.0, east_m=20 * 15.0 + 16 * 15.0)
    _, emitted = drive(detect_gps_jump, None, before + stale + after, settings)
    assert [e.ts_ms for e in events_of(emitted, GPS_JUMP)] == [at(36)]


def test_gps_jump_two_outliers_two_events() -> None:
    settings = make_settings()
    timeline, (first,) = drive_with_outlier(20)
    later = drive_east(41, 200, speed_kmh=36.0, east_m=41 * DRIVE_MPS)
    second_s = 141
    index = second_s - 41
    true = later[index]
    later[index] = record(second_s, *moved(true.lat, true.lon, 0.0, -3000.0))
    _, emitted = drive(detect_gps_jump, None, timeline + later, settings)
    assert [e.ts_ms for e in events_of(emitted, GPS_JUMP)] == [first.ts_ms, at(second_s)]


def test_gps_jump_late_return_is_new() -> None:
    settings = make_settings()
    # Parked, and the receiver stays 2 km away for longer than JUMP_BACK_WITHIN_S.
    away_s = int(JUMP_BACK_WITHIN_S) + 30
    far = moved(HOME_LAT, HOME_LON, 2000.0, 0.0)
    timeline = [record(t) for t in range(0, 60, 10)]
    timeline += [record(60 + t, *far) for t in range(0, away_s, 10)]
    back_s = 60 + away_s
    timeline += [record(back_s), record(back_s + 10)]
    _, emitted = drive(detect_gps_jump, None, timeline, settings)
    assert [e.ts_ms for e in events_of(emitted, GPS_JUMP)] == [at(60), at(back_s)]
