from __future__ import annotations

import math
import random
from typing import Any

import pytest

from fleetpulse.model.record import EnrichedRecord, Record
from fleetpulse.model.vocabulary import (
    FLAG_GPS_JUMP,
    FLAG_GPS_JUMP_BACK,
    FLAG_NO_FIX,
    IDLE,
    MOVING,
    PARKED,
)
from fleetpulse.process.geo import haversine_m
from fleetpulse.process.motion import MotionState, measure_motion
from fleetpulse.process.sample import Sample
from tests.process.timeline import (
    HOME_LAT,
    HOME_LON,
    at,
    drive_east,
    make_settings,
    moved,
    record,
    samples,
)


def jitter(start_s: int, seconds: int, radius_m: float, seed: int) -> list[Record]:
    """Fixes scattered uniformly over a disc around HOME, one per second."""
    rng = random.Random(seed)
    out = []
    for i in range(seconds):
        distance_m = radius_m * math.sqrt(rng.random())
        bearing = rng.uniform(0.0, 2.0 * math.pi)
        north_m = distance_m * math.cos(bearing)
        east_m = distance_m * math.sin(bearing)
        out.append(record(start_s + i, *moved(HOME_LAT, HOME_LON, north_m, east_m)))
    return out


def test_parked_jitter_adds_no_distance() -> None:
    settings = make_settings()
    # Any two fixes on a 12 m disc are under stationary_radius_m apart, yet one second
    # apart they imply up to 86 km/h.
    result = samples(jitter(0, 1800, 12.0, seed=1), settings)
    assert sum(s.enriched.distance_m for s in result) == 0.0
    assert not any(s.moving for s in result)


def test_parked_jitter_implies_speed() -> None:
    settings = make_settings()
    result = samples(jitter(0, 60, 12.0, seed=2), settings)
    assert max(s.enriched.speed_kmh or 0.0 for s in result) > settings.detectors.moving_speed_kmh


def test_parked_slow_drift_adds_no_distance() -> None:
    settings = make_settings()
    # A receiver wandering 0.5 m/s (1.8 km/h) for an hour ends 1.8 km from where it began.
    records = [record(t, *moved(HOME_LAT, HOME_LON, 0.5 * t, 0.0)) for t in range(3600)]
    result = samples(records, settings)
    assert sum(s.enriched.distance_m for s in result) == 0.0


def test_departure_loses_no_distance() -> None:
    settings = make_settings()
    parked = [record(t) for t in range(10)]
    driving = drive_east(10, 60, speed_kmh=36.0)
    result = samples(parked + driving, settings)
    end = driving[-1]
    straight_m = haversine_m(HOME_LAT, HOME_LON, end.lat, end.lon)
    assert sum(s.enriched.distance_m for s in result) == pytest.approx(straight_m, rel=1e-6)


def test_departure_measured_from_anchor() -> None:
    settings = make_settings()
    # The first fixes of a slow departure stay inside the stationary radius.
    result = samples([record(0)] + drive_east(1, 20, speed_kmh=18.0), settings)
    first_moving = next(s for s in result if s.moving)
    anchor_m = haversine_m(HOME_LAT, HOME_LON, first_moving.record.lat, first_moving.record.lon)
    assert first_moving.enriched.distance_m == pytest.approx(anchor_m)
    assert anchor_m > settings.detectors.stationary_radius_m


def test_stop_keeps_stopped_time() -> None:
    settings = make_settings()
    driving = drive_east(0, 30, speed_kmh=36.0)
    stop = driving[-1]
    standing = [record(31 + i, stop.lat, stop.lon) for i in range(20)]
    result = samples(driving + standing, settings)
    assert result[-1].stopped_at_ms == standing[0].ts_ms
    assert not result[-1].moving


def test_implied_speed_without_reported() -> None:
    settings = make_settings()
    result = samples(drive_east(0, 5, speed_kmh=36.0), settings)
    assert result[-1].enriched.speed_kmh == pytest.approx(36.0, rel=1e-3)


def test_reported_speed_wins() -> None:
    settings = make_settings()
    records = [
        record(0, speed_kmh=40.0),
        record(1, *moved(HOME_LAT, HOME_LON, 0, 10), speed_kmh=40.0),
    ]
    result = samples(records, settings)
    assert result[-1].enriched.speed_kmh == 40.0


def test_reported_speed_departs_inside_radius() -> None:
    settings = make_settings()
    near = moved(HOME_LAT, HOME_LON, 0.0, 5.0)
    result = samples([record(0), record(1, *near, speed_kmh=20.0, ignition=True)], settings)
    assert result[-1].moving


def test_reported_speed_with_ignition_off_stays() -> None:
    settings = make_settings()
    near = moved(HOME_LAT, HOME_LON, 0.0, 5.0)
    result = samples([record(0), record(1, *near, speed_kmh=20.0, ignition=False)], settings)
    assert not result[-1].moving


def test_gps_jump_outlier_flagged_twice() -> None:
    settings = make_settings()
    before = drive_east(0, 20, speed_kmh=36.0)
    last = before[-1]
    outlier = record(21, *moved(last.lat, last.lon, 2000.0, 0.0))
    back = drive_east(22, 20, speed_kmh=36.0, east_m=220.0)
    result = samples(before + [outlier] + back, settings)
    flagged = [s.record.ts_ms for s in result if FLAG_GPS_JUMP in s.enriched.flags]
    assert flagged == [outlier.ts_ms, back[0].ts_ms]


def test_gps_jump_back_flagged_on_return() -> None:
    settings = make_settings()
    before = drive_east(0, 20, speed_kmh=36.0)
    last = before[-1]
    outlier = record(21, *moved(last.lat, last.lon, 2000.0, 0.0))
    back = drive_east(22, 20, speed_kmh=36.0, east_m=220.0)
    result = samples(before + [outlier] + back, settings)
    flagged = [s.record.ts_ms for s in result if FLAG_GPS_JUMP_BACK in s.enriched.flags]
    assert flagged == [back[0].ts_ms]
    assert result[-1].enriched.flags == []


def test_gps_jump_back_closes_outlier() -> None:
    settings = make_settings()
    far = moved(HOME_LAT, HOME_LON, 2000.0, 0.0)
    motion = MotionState()
    states = []
    for rec in [record(0), record(1), record(2, *far), record(3)]:
        motion = measure_motion(motion, Sample(record=rec, enriched=EnrichedRecord(rec)), settings)
        states.append(motion)
    assert states[2].jump_ts_ms == at(2)
    assert states[2].jump_from_ts_ms == at(1)
    assert states[3].jump_ts_ms is None
    assert states[3].jump_from_lat is None


def test_gps_jump_far_landing_not_back() -> None:
    settings = make_settings()
    # The second jump lands 4 km from where the vehicle was before the first one.
    first = moved(HOME_LAT, HOME_LON, 2000.0, 0.0)
    second = moved(HOME_LAT, HOME_LON, 0.0, 4000.0)
    records = [record(0), record(1), record(2, *first), record(3, *second)]
    result = samples(records, settings)
    assert FLAG_GPS_JUMP in result[-1].enriched.flags
    assert FLAG_GPS_JUMP_BACK not in result[-1].enriched.flags


def test_gps_jump_adds_no_distance() -> None:
    settings = make_settings()
    before = drive_east(0, 20, speed_kmh=36.0)
    last = before[-1]
    outlier = record(21, *moved(last.lat, last.lon, 2000.0, 0.0))
    back = drive_east(22, 20, speed_kmh=36.0, east_m=220.0)
    result = samples(before + [outlier] + back, settings)
    jumps = [s for s in result if FLAG_GPS_JUMP in s.enriched.flags]
    assert all(s.enriched.distance_m == 0.0 for s in jumps)
    total_m = sum(s.enriched.distance_m for s in result)
    # 200 m before the outlier and 200 m after it count, but the 20 m across it are lost.
    assert total_m == pytest.approx(400.0, rel=0.01)


def test_gps_jump_after_tunnel_reanchors() -> None:
    settings = make_settings()
    before = drive_east(0, 20, speed_kmh=54.0)
    held = before[-1]
    # The receiver repeats its last position for 15 s, then jumps 15 s * 15 m/s ahead.
    stale = [record(21 + i, held.lat, held.lon) for i in range(15)]
    after = drive_east(36, 30, speed_kmh=54.0, east_m=20 * 15.0 + 16 * 15.0)
    result = samples(before + stale + after, settings)
    assert FLAG_GPS_JUMP in result[len(before) + len(stale)].enriched.flags
    assert not any(FLAG_GPS_JUMP_BACK in s.enriched.flags for s in result)
    after_samples = result[len(before) + len(stale) + 1 :]
    after_m = sum(s.enriched.distance_m for s in after_samples)
    assert after_m == pytest.approx(30 * 15.0, rel=0.01)


def test_gps_jump_short_hop_not_flagged() -> None:
    settings = make_settings()
    # 150 m in one second is 540 km/h but shorter than gps_jump_min_distance_m.
    records = [record(0), record(1, *moved(HOME_LAT, HOME_LON, 150.0, 0.0))]
    result = samples(records, settings)
    assert FLAG_GPS_JUMP not in result[-1].enriched.flags


@pytest.mark.parametrize("fields", [{"valid": False}, {"lat": 0.0, "lon": 0.0}])
def test_no_fix_keeps_position(fields: dict[str, Any]) -> None:
    settings = make_settings()
    driving = drive_east(0, 10, speed_kmh=36.0, ignition=True)
    far = moved(HOME_LAT, HOME_LON, 5000.0, 0.0)
    position = {"lat": far[0], "lon": far[1], **fields}
    blind = record(11, ignition=True, coolant_c=90.0, **position)
    after = record(12, *moved(HOME_LAT, HOME_LON, 0.0, 120.0), ignition=True)
    result = samples(driving + [blind, after], settings)
    assert FLAG_NO_FIX in result[-2].enriched.flags
    assert result[-2].enriched.distance_m == 0.0
    assert not result[-2].fix
    assert FLAG_GPS_JUMP not in result[-1].enriched.flags
    assert result[-1].enriched.distance_m == pytest.approx(20.0, rel=0.01)


def test_no_fix_keeps_ignition() -> None:
    settings = make_settings()
    result = samples([record(0), record(1, valid=False, ignition=True), record(2)], settings)
    assert result[1].ignition is True
    assert result[2].ignition is True


def test_no_fix_with_ignition_off_stops() -> None:
    settings = make_settings()
    driving = drive_east(0, 10, speed_kmh=36.0)
    result = samples(driving + [record(11, valid=False, ignition=False)], settings)
    assert result[-2].moving
    assert not result[-1].moving


def test_motion_idle_with_ignition_on() -> None:
    settings = make_settings()
    result = samples([record(t, ignition=True) for t in range(0, 1000, 100)], settings)
    assert {s.enriched.motion for s in result} == {IDLE}


def test_motion_parked_with_ignition_off() -> None:
    settings = make_settings()
    result = samples([record(t, ignition=False) for t in range(0, 100, 10)], settings)
    assert {s.enriched.motion for s in result} == {PARKED}


def test_motion_unknown_ignition_parks_later() -> None:
    settings = make_settings(parked_after_s=300.0)
    result = samples([record(t) for t in range(0, 600, 60)], settings)
    motions = [s.enriched.motion for s in result]
    assert motions[:5] == [IDLE] * 5
    assert motions[5:] == [PARKED] * 5


def test_motion_moving() -> None:
    settings = make_settings()
    result = samples(drive_east(0, 10, speed_kmh=50.0), settings)
    assert result[-1].enriched.motion == MOVING


def test_motion_close_fixes_give_no_speed() -> None:
    """44 m of noise between fixes 20 ms apart is not 8,000 km/h."""
    settings = make_settings()
    first = record(0.0)
    lat, lon = moved(first.lat, first.lon, 0.0, 44.0)
    second = record(0.02, lat, lon)
    last = samples([first, second], settings)[-1]
    assert last.enriched.speed_kmh is None
    assert "gps_jump" not in last.enriched.flags
