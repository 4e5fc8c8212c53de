from __future__ import annotations

import pytest

from fleetpulse.model.record import Record
from fleetpulse.model.vocabulary import MAINTENANCE_DUE
from fleetpulse.process.chain import build_chain
from fleetpulse.process.detectors.maintenance import (
    DUE_AHEAD_FRACTION,
    KIND_ENGINE_HOURS,
    KIND_ODOMETER,
    MaintenanceState,
    detect_maintenance,
)
from tests.process.timeline import at, drive, events_of, make_settings, record


def odometer_timeline(start_km: float, end_km: float, step_km: float = 1.0) -> list[Record]:
    # One km a minute: 60 km/h, which the odometer glitch check accepts.
    count = int((end_km - start_km) / step_km) + 1
    return [
        record(60 * i, odometer_m=(start_km + step_km * i) * 1000.0, ignition=True)
        for i in range(count)
    ]


def test_maintenance_odometer_one_event_per_point() -> None:
    settings = make_settings(service_every_km=1000.0)
    timeline = odometer_timeline(500.0, 2500.0)
    state, emitted = drive(detect_maintenance, MaintenanceState(), timeline, settings)
    events = events_of(emitted, MAINTENANCE_DUE)
    assert [event.details["service_at_km"] for event in events] == [1000.0, 2000.0]
    assert all(event.details["kind"] == KIND_ODOMETER for event in events)


def test_maintenance_event_at_window_start() -> None:
    settings = make_settings(service_every_km=1000.0)
    timeline = odometer_timeline(500.0, 1200.0)
    _, emitted = drive(detect_maintenance, MaintenanceState(), timeline, settings)
    (event,) = events_of(emitted, MAINTENANCE_DUE)
    window_start_km = 1000.0 * (1 - DUE_AHEAD_FRACTION)
    assert event.details["remaining_km"] <= 1000.0 * DUE_AHEAD_FRACTION
    assert event.details["remaining_km"] > 1000.0 * DUE_AHEAD_FRACTION - 1.0
    assert event.ts_ms == at(60 * int(window_start_km - 500.0))


def test_maintenance_due_inside_window() -> None:
    settings = make_settings(service_every_km=1000.0)
    timeline = odometer_timeline(900.0, 980.0)
    state, _ = drive(detect_maintenance, MaintenanceState(), timeline, settings)
    assert state.due
    assert state.remaining_km == pytest.approx(20.0)


def test_maintenance_not_due_after_point() -> None:
    settings = make_settings(service_every_km=1000.0)
    timeline = odometer_timeline(900.0, 1100.0)
    state, _ = drive(detect_maintenance, MaintenanceState(), timeline, settings)
    assert not state.due
    assert state.remaining_km == pytest.approx(900.0)


def test_maintenance_points_before_first_reading_serviced() -> None:
    settings = make_settings(service_every_km=1000.0)
    timeline = odometer_timeline(120_010.0, 120_500.0)
    _, emitted = drive(detect_maintenance, MaintenanceState(), timeline, settings)
    assert events_of(emitted, MAINTENANCE_DUE) == []


def test_maintenance_jump_past_window_reported() -> None:
    settings = make_settings(service_every_km=1000.0)
    timeline = [
        record(0, odometer_m=500_000.0),
        # Twelve hours without data: 58 km/h on average, which the glitch check accepts.
        record(12 * 3600, odometer_m=1_200_000.0),
    ]
    _, emitted = drive(detect_maintenance, MaintenanceState(), timeline, settings)
    (event,) = events_of(emitted, MAINTENANCE_DUE)
    assert event.details["service_at_km"] == 1000.0
    assert event.details["remaining_km"] < 0


def test_maintenance_engine_hours_counted_with_ignition_on() -> None:
    settings = make_settings(service_every_engine_h=1.0)
    timeline = [record(t, ignition=True) for t in range(0, 3 * 3600 + 1, 60)]
    state, emitted = drive(detect_maintenance, MaintenanceState(), timeline, settings)
    events = events_of(emitted, MAINTENANCE_DUE)
    assert [event.details["service_at_engine_h"] for event in events] == [1.0, 2.0, 3.0]
    assert all(event.details["kind"] == KIND_ENGINE_HOURS for event in events)
    assert state.engine_s == pytest.approx(3 * 3600.0)


def test_maintenance_engine_hours_skip_ignition_off() -> None:
    settings = make_settings(service_every_engine_h=10.0)
    on = [record(t, ignition=True) for t in range(0, 1801, 60)]
    off = [record(t, ignition=False) for t in range(1860, 7200, 60)]
    state, _ = drive(detect_maintenance, MaintenanceState(), on + off, settings)
    # The engine ran from 0 s to the first record with the ignition off, at 1860 s.
    assert state.engine_s == pytest.approx(1860.0)


def test_maintenance_engine_hours_skip_long_gap() -> None:
    settings = make_settings(service_every_engine_h=10.0, offline_after_s=600.0)
    timeline = [record(0, ignition=True), record(60, ignition=True), record(7260, ignition=True)]
    state, _ = drive(detect_maintenance, MaintenanceState(), timeline, settings)
    assert state.engine_s == pytest.approx(60.0)


def test_maintenance_vehicle_override() -> None:
    settings = make_settings(
        service_every_km=1000.0, vehicles={"truck-7": {"service_every_km": 500.0}}
    )
    timeline = odometer_timeline(100.0, 600.0)
    _, emitted = drive(detect_maintenance, MaintenanceState(), timeline, settings)
    (event,) = events_of(emitted, MAINTENANCE_DUE)
    assert event.details["service_at_km"] == 500.0


def test_maintenance_without_interval_no_state() -> None:
    settings = make_settings()
    timeline = odometer_timeline(900.0, 1100.0)
    state, emitted = drive(detect_maintenance, MaintenanceState(), timeline, settings)
    assert emitted == []
    assert state == MaintenanceState()


def test_maintenance_left_out_of_chain_without_interval() -> None:
    names = [detector.name for detector in build_chain(make_settings()).detectors]
    assert "maintenance" not in names


def test_maintenance_in_chain_with_vehicle_interval() -> None:
    settings = make_settings(vehicles={"truck-7": {"service_every_engine_h": 250.0}})
    names = [detector.name for detector in build_chain(settings).detectors]
    assert "maintenance" in names
