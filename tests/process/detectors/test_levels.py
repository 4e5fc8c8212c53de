from __future__ import annotations

import pytest

from fleetpulse.model.vocabulary import CRITICAL, ENGINE_OVERHEAT, LOW_BATTERY, LOW_FUEL
from fleetpulse.process.detectors.level import LevelState
from fleetpulse.process.detectors.low_battery import detect_low_battery
from fleetpulse.process.detectors.low_fuel import detect_low_fuel
from fleetpulse.process.detectors.overheat import detect_overheat
from tests.process.timeline import at, drive, events_of, make_settings, record

# (detector, record field, event type, values, times of expected events)
CASES = [
    # Low fuel at 10 %, re-armed at 15 %: the wobble around 10 % is one event.
    (detect_low_fuel, "fuel_pct", LOW_FUEL, [20, 10, 11, 9, 12, 10, 40, 8], [1, 7]),
    # Low battery at 11.8 V, re-armed at 12.2 V.
    (detect_low_battery, "battery_v", LOW_BATTERY, [12.6, 11.7, 11.9, 11.6, 12.4, 11.8], [1, 5]),
    # Overheat above 105 C, re-armed below 100 C.
    (detect_overheat, "coolant_c", ENGINE_OVERHEAT, [90, 106, 103, 107, 99, 106], [1, 5]),
]


@pytest.mark.parametrize(("detect", "field", "event_type", "values", "times"), CASES)
def test_level_hysteresis(detect, field, event_type, values, times) -> None:
    timeline = [record(i, **{field: float(value)}) for i, value in enumerate(values)]
    _, emitted = drive(detect, LevelState(), timeline, make_settings())
    events = events_of(emitted)
    assert [e.type for e in events] == [event_type] * len(times)
    assert [e.ts_ms for e in events] == [at(t) for t in times]


@pytest.mark.parametrize(("detect", "field", "event_type", "values", "times"), CASES)
def test_level_missing_value_keeps_state(detect, field, event_type, values, times) -> None:
    active, _ = drive(
        detect, LevelState(), [record(0, **{field: float(values[1])})], make_settings()
    )
    after, emitted = drive(detect, active, [record(1)], make_settings())
    assert after is active
    assert emitted == []


def test_overheat_is_critical() -> None:
    _, emitted = drive(detect_overheat, LevelState(), [record(0, coolant_c=120.0)], make_settings())
    (event,) = events_of(emitted)
    assert event.severity == CRITICAL
    assert event.details["coolant_c"] == 120.0
