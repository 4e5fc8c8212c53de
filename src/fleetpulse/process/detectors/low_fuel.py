"""Low fuel: the level falls to ``low_fuel_pct``, re-armed at ``low_fuel_recover_pct``."""

from __future__ import annotations

from fleetpulse.config import Settings
from fleetpulse.model.event import Event
from fleetpulse.model.vocabulary import LOW_FUEL, SEVERITY_WARNING
from fleetpulse.process.detectors.base import NO_EVENTS, make_event
from fleetpulse.process.detectors.level import ACTIVE_FALSE, ACTIVE_TRUE, LevelState
from fleetpulse.process.sample import Sample


def detect_low_fuel(
    state: LevelState, sample: Sample, settings: Settings
) -> tuple[LevelState, tuple[Event, ...]]:
    """Emit one event each time the fuel level falls to the low threshold."""
    fuel_pct = sample.record.fuel_pct
    if fuel_pct is None:
        return state, NO_EVENTS

    thresholds = settings.detectors
    if state.active:
        return (ACTIVE_FALSE if fuel_pct >= thresholds.low_fuel_recover_pct else state), NO_EVENTS
    if fuel_pct > thresholds.low_fuel_pct:
        return state, NO_EVENTS

    details = {"fuel_pct": fuel_pct, "threshold_pct": thresholds.low_fuel_pct}
    event = make_event(sample, LOW_FUEL, SEVERITY_WARNING, sample.record.ts_ms, details)
    return ACTIVE_TRUE, (event,)
