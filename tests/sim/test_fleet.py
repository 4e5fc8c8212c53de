"""The simulated fleet: determinism for a seed and physically plausible records."""

from __future__ import annotations

import statistics

import msgspec
import pytest

from fleetpulse.model.record import RecordIn
from fleetpulse.sim import truth
from fleetpulse.sim.geo import haversine_m
from fleetpulse.sim.kinematics import MAX_BRAKE_MPS2
from fleetpulse.sim.options import SimulationOptions
from fleetpulse.sim.vehicle import OVERHEAT_CODE, START_MIN_LEFT_M
from fleetpulse.sim.wire import encode_batch
from tests.sim.helpers import FORCED, START_MS, FleetRun, run_fleet, ts_ms

# The strongest ordinary start: the top of the drivers' standstill acceleration range.
MAX_ORDINARY_ACCEL_MPS2 = 2.5
# Rounding speeds to 0.1 km/h adds up to this much to a one-second difference.
ROUNDING_MPS2 = 0.1 / 3.6
# GPS noise of a few metres on both fixes of a hop.
NOISE_MARGIN_M = 25.0
# Enough vehicles that every start phase occurs.
START_VEHICLES = 60


@pytest.fixture(scope="module")
def start_run() -> FleetRun:
    """The first 10 minutes of a larger fleet, to see how vehicles start the run."""
    options = SimulationOptions(
        vehicles=START_VEHICLES, duration_s=600, seed=3, truth_path=None, behaviours=FORCED
    )
    return run_fleet(options)


@pytest.fixture(scope="module")
def forced_run() -> FleetRun:
    options = SimulationOptions(
        vehicles=12, duration_s=7200, seed=11, truth_path=None, behaviours=FORCED
    )
    return run_fleet(options)


def test_fleet_same_seed_same_records() -> None:
    options = SimulationOptions(vehicles=4, duration_s=900, seed=5, truth_path=None)
    first = run_fleet(options)
    second = run_fleet(options)

    first_bytes = [encode_batch(records) for _, records in first.ticks]
    second_bytes = [encode_batch(records) for _, records in second.ticks]
    assert first_bytes == second_bytes
    assert first.truth == second.truth


def test_fleet_other_seed_other_records() -> None:
    first = run_fleet(SimulationOptions(vehicles=4, duration_s=300, seed=5, truth_path=None))
    second = run_fleet(SimulationOptions(vehicles=4, duration_s=300, seed=6, truth_path=None))

    assert [encode_batch(r) for _, r in first.ticks] != [encode_batch(r) for _, r in second.ticks]


def test_fleet_faults_leave_motion_unchanged() -> None:
    clean = run_fleet(
        SimulationOptions(vehicles=3, duration_s=900, seed=2, truth_path=None, bad_share=0.0)
    )
    faulty = run_fleet(
        SimulationOptions(vehicles=3, duration_s=900, seed=2, truth_path=None, bad_share=0.3)
    )

    for device_id, records in clean.by_device.items():
        speeds = [record.speed_kmh for record in records]
        assert speeds == [record.speed_kmh for record in faulty.by_device[device_id]]
    assert faulty.bad


def test_fleet_record_count(forced_run: FleetRun) -> None:
    good = sum(len(records) for records in forced_run.by_device.values())

    assert good == forced_run.records_generated
    assert good == 12 * 7200


def test_fleet_records_pass_server_ranges(forced_run: FleetRun) -> None:
    for records in forced_run.by_device.values():
        for record in records:
            converted = msgspec.convert(msgspec.to_builtins(record), RecordIn)
            assert converted.device_id == record.device_id


def test_fleet_timestamps_one_interval_apart(forced_run: FleetRun) -> None:
    for records in forced_run.by_device.values():
        steps = {ts_ms(b) - ts_ms(a) for a, b in zip(records, records[1:], strict=False)}
        assert steps == {1000}


def test_fleet_speeds_in_range(forced_run: FleetRun) -> None:
    reported = [r.speed_kmh for records in forced_run.by_device.values() for r in records]
    speeds = [speed for speed in reported if speed is not None]

    assert len(speeds) == len(reported)
    assert min(speeds) == 0.0
    assert max(speeds) <= 160.0


def test_fleet_accelerations_bounded_outside_harsh(forced_run: FleetRun) -> None:
    harsh = _windows(forced_run, (truth.HARSH_BRAKING, truth.HARSH_ACCELERATION))
    checked = 0
    for device_id, records in forced_run.by_device.items():
        for a, b in zip(records, records[1:], strict=False):
            start, end = ts_ms(a), ts_ms(b)
            if any(lo <= start and end <= hi for lo, hi in harsh.get(device_id, [])):
                continue
            assert a.speed_kmh is not None and b.speed_kmh is not None
            accel = (b.speed_kmh - a.speed_kmh) / 3.6 / ((end - start) / 1000)
            assert accel <= MAX_ORDINARY_ACCEL_MPS2 + ROUNDING_MPS2, (device_id, start)
            assert accel >= -(MAX_BRAKE_MPS2 + ROUNDING_MPS2), (device_id, start)
            checked += 1
    assert checked > 12 * 7000


def test_fleet_harsh_episodes_exceed_thresholds(forced_run: FleetRun) -> None:
    braking = [e for e in forced_run.truth if e.type == truth.HARSH_BRAKING]
    starts = [e for e in forced_run.truth if e.type == truth.HARSH_ACCELERATION]

    assert braking
    assert starts
    for entry in braking:
        assert entry.values["mean_accel_mps2"] < -4.0
    for entry in starts:
        assert entry.values["from_speed_kmh"] == 0.0


def test_fleet_no_teleports_except_jumps(forced_run: FleetRun) -> None:
    jumps = _windows(forced_run, (truth.GPS_JUMP,))
    for device_id, records in forced_run.by_device.items():
        jump_times = {start for start, _ in jumps.get(device_id, [])}
        for a, b in zip(records, records[1:], strict=False):
            if ts_ms(a) in jump_times or ts_ms(b) in jump_times:
                continue
            assert a.speed_kmh is not None and b.speed_kmh is not None
            dt_s = (ts_ms(b) - ts_ms(a)) / 1000
            reach_m = max(a.speed_kmh, b.speed_kmh) / 3.6 * dt_s + NOISE_MARGIN_M
            assert haversine_m(a.lat, a.lon, b.lat, b.lon) <= reach_m, (device_id, ts_ms(a))


def test_fleet_gps_jumps_land_kilometres_away(forced_run: FleetRun) -> None:
    jumps = [e for e in forced_run.truth if e.type == truth.GPS_JUMP]

    assert jumps
    for entry in jumps:
        records = forced_run.by_device[entry.device_id]
        index = next(i for i, r in enumerate(records) if ts_ms(r) == entry.start_ms)
        before, jumped = records[index - 1], records[index]
        assert haversine_m(before.lat, before.lon, jumped.lat, jumped.lon) > 1900.0


def test_fleet_ignition_off_means_engine_stopped(forced_run: FleetRun) -> None:
    parked = [r for records in forced_run.by_device.values() for r in records if not r.ignition]

    assert parked
    assert all(record.speed_kmh == 0.0 for record in parked)
    assert all(record.engine_rpm == 0 for record in parked)
    assert all(record.battery_v is not None and record.battery_v < 13.5 for record in parked)


def test_fleet_running_engine_charges_battery(forced_run: FleetRun) -> None:
    running = [r for records in forced_run.by_device.values() for r in records if r.ignition]

    assert all(record.battery_v is not None and record.battery_v > 13.5 for record in running)
    assert all(record.engine_rpm is not None and record.engine_rpm > 500 for record in running)


def test_fleet_parked_fixes_wander_metres(forced_run: FleetRun) -> None:
    # The first minute of the first vehicle that starts the run parked for that long.
    starts = [records[:60] for records in forced_run.by_device.values()]
    parked = next((first for first in starts if not any(r.ignition for r in first)), [])
    if not parked:
        pytest.skip("no vehicle stays parked for the first minute to measure the noise")
    lat0, lon0 = parked[0].lat, parked[0].lon
    offsets = [haversine_m(lat0, lon0, r.lat, r.lon) for r in parked]

    assert statistics.pstdev(offsets) > 0.2
    assert max(offsets) < 20.0


def test_fleet_coolant_warms_towards_90(forced_run: FleetRun) -> None:
    for device_id, records in forced_run.by_device.items():
        driving = [r.coolant_c for r in records if r.speed_kmh and r.coolant_c is not None]
        overheated = any(r.dtc and OVERHEAT_CODE in r.dtc for r in records)
        if overheated or len(driving) < 600:
            continue
        assert max(driving) > 80.0, device_id
        assert max(driving) < 95.0, device_id


def test_fleet_odometer_never_decreases(forced_run: FleetRun) -> None:
    for records in forced_run.by_device.values():
        odometers = [r.odometer_m for r in records]
        assert all(
            a is not None and b is not None and b >= a
            for a, b in zip(odometers, odometers[1:], strict=False)
        )


def test_fleet_headings_in_range(forced_run: FleetRun) -> None:
    headings = [r.heading_deg for records in forced_run.by_device.values() for r in records]

    assert all(h is not None and 0.0 <= h < 360.0 for h in headings)


def test_fleet_starts_in_every_phase(start_run: FleetRun) -> None:
    first = [records[0] for records in start_run.by_device.values()]
    driving = [r for r in first if r.ignition and r.speed_kmh is not None and r.speed_kmh > 20.0]
    idling = [r for r in first if r.ignition and r.speed_kmh == 0.0]
    parked = [r for r in first if not r.ignition]

    assert len(driving) > START_VEHICLES // 4
    assert idling
    assert len(parked) > START_VEHICLES // 10


def test_fleet_start_speeds_plausible(start_run: FleetRun) -> None:
    harsh = _windows(start_run, (truth.HARSH_BRAKING, truth.HARSH_ACCELERATION))
    for device_id, records in start_run.by_device.items():
        for a, b in zip(records, records[1:], strict=False):
            start, end = ts_ms(a), ts_ms(b)
            if any(lo <= start and end <= hi for lo, hi in harsh.get(device_id, [])):
                continue
            assert a.speed_kmh is not None and b.speed_kmh is not None
            accel = (b.speed_kmh - a.speed_kmh) / 3.6 / ((end - start) / 1000)
            assert accel <= MAX_ORDINARY_ACCEL_MPS2 + ROUNDING_MPS2, (device_id, start)
            assert accel >= -(MAX_BRAKE_MPS2 + ROUNDING_MPS2), (device_id, start)


def test_fleet_start_injects_nothing_running(start_run: FleetRun) -> None:
    # Faults and fuel changes start at a record the vehicle reaches, never at second 0.
    injected = (truth.ENGINE_FAULT, truth.FUEL_THEFT, truth.REFUEL)
    at_start = [e for e in start_run.truth if e.type in injected and e.start_ms == START_MS]
    assert at_start == []


def test_fleet_trip_running_at_start_recorded(start_run: FleetRun) -> None:
    running = [e for e in start_run.truth if e.type == truth.TRIP and e.start_ms == START_MS]

    assert running
    for entry in running:
        if entry.complete:
            assert entry.values["distance_m"] >= START_MIN_LEFT_M - NOISE_MARGIN_M, entry


def _windows(run: FleetRun, kinds: tuple[str, ...]) -> dict[str, list[tuple[int, int]]]:
    windows: dict[str, list[tuple[int, int]]] = {}
    for entry in run.truth:
        if entry.type in kinds:
            windows.setdefault(entry.device_id, []).append((entry.start_ms, entry.end_ms))
    return windows
