"""Low battery: the voltage falls to ``low_battery_v``, re-armed at ``low_battery_recover_v``."""

from __future__ import annotations

from fleetpulse.config import Settings
from fleetpulse.model.event import Event
from fleetpulse.model.vocabulary import LOW_BATTERY, SEVERITY_WARNING
from fleetpulse.process.detectors.base import NO_EVENTS, make_event
from fleetpulse.process.detectors.level import ACTIVE_FALSE, ACTIVE_TRUE, LevelState
from fleetpulse.process.sample import Sample


def detect_low_battery(
    state: LevelState, sample: Sample, settings: Settings
) -> tuple[LevelState, tuple[Event, ...]]:
    """Emit one event each time the battery voltage falls to the low threshold."""
    battery_v = sample.record.battery_v
    if battery_v is None:
        return state, NO_EVENTS

    thresholds = settings.detectors
    if state.active:
        return (ACTIVE_FALSE if battery_v >= thresholds.low_battery_recover_v else state), NO_EVENTS
    if battery_v > thresholds.low_battery_v:
        return state, NO_EVENTS

    details = {"battery_v": battery_v, "threshold_v": thresholds.low_battery_v}
    event = make_event(sample, LOW_BATTERY, SEVERITY_WARNING, sample.record.ts_ms, details)
    return ACTIVE_TRUE, (event,)
