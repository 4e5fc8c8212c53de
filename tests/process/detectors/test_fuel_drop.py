from __future__ import annotations

from fleetpulse.model.vocabulary import FUEL_DROP
from fleetpulse.process.detectors.fuel_drop import FuelDropState, detect_fuel_drop
from tests.process.timeline import at, drive, drive_east, events_of, make_settings, record


def parked(start_s: int, levels: list[float], **fields: object) -> list:
    return [record(start_s + 60 * i, fuel_pct=level, **fields) for i, level in enumerate(levels)]


def test_fuel_drop_while_parked() -> None:
    settings = make_settings(fuel_drop_pct=8.0)
    timeline = parked(0, [60.0, 60.0, 59.5, 50.0, 50.0])
    _, emitted = drive(detect_fuel_drop, FuelDropState(), timeline, settings)
    (event,) = events_of(emitted, FUEL_DROP)
    assert event.ts_ms == at(180)
    assert event.details["from_pct"] == 60.0
    assert event.details["to_pct"] == 50.0


def test_fuel_drop_slow_loss_counts() -> None:
    settings = make_settings(fuel_drop_pct=8.0)
    # Two 5 % losses at one stop: measured against the level when it stopped.
    timeline = parked(0, [60.0, 55.0, 50.0])
    _, emitted = drive(detect_fuel_drop, FuelDropState(), timeline, settings)
    assert [e.ts_ms for e in events_of(emitted, FUEL_DROP)] == [at(120)]


def test_fuel_drop_consumption_while_driving() -> None:
    settings = make_settings(fuel_drop_pct=8.0)
    timeline = drive_east(0, 600, speed_kmh=50.0, step_s=60)
    timeline = [
        record((rec.ts_ms - timeline[0].ts_ms) / 1000, rec.lat, rec.lon, fuel_pct=60.0 - 2.0 * i)
        for i, rec in enumerate(timeline)
    ]
    _, emitted = drive(detect_fuel_drop, FuelDropState(), timeline, settings)
    assert emitted == []


def test_fuel_drop_after_refuel() -> None:
    settings = make_settings(fuel_drop_pct=8.0)
    timeline = parked(0, [20.0, 80.0, 70.0])
    _, emitted = drive(detect_fuel_drop, FuelDropState(), timeline, settings)
    (event,) = events_of(emitted, FUEL_DROP)
    assert event.details["from_pct"] == 80.0


def test_fuel_drop_second_theft_reported() -> None:
    settings = make_settings(fuel_drop_pct=8.0)
    timeline = parked(0, [60.0, 50.0, 50.0, 40.0])
    _, emitted = drive(detect_fuel_drop, FuelDropState(), timeline, settings)
    assert [e.ts_ms for e in events_of(emitted, FUEL_DROP)] == [at(60), at(180)]
