"""Engine overheat: coolant above ``coolant_overheat_c``, re-armed below ``coolant_recover_c``."""

from __future__ import annotations

from fleetpulse.config import Settings
from fleetpulse.model.event import Event
from fleetpulse.model.vocabulary import CRITICAL, ENGINE_OVERHEAT
from fleetpulse.process.detectors.base import NO_EVENTS, make_event
from fleetpulse.process.detectors.level import ACTIVE_FALSE, ACTIVE_TRUE, LevelState
from fleetpulse.process.sample import Sample


def detect_overheat(
    state: LevelState, sample: Sample, settings: Settings
) -> tuple[LevelState, tuple[Event, ...]]:
    """Emit one event each time the coolant temperature rises above the overheat threshold."""
    coolant_c = sample.record.coolant_c
    if coolant_c is None:
        return state, NO_EVENTS

    thresholds = settings.detectors
    if state.active:
        return (ACTIVE_FALSE if coolant_c < thresholds.coolant_recover_c else state), NO_EVENTS
    if coolant_c <= thresholds.coolant_overheat_c:
        return state, NO_EVENTS

    details = {"coolant_c": coolant_c, "threshold_c": thresholds.coolant_overheat_c}
    event = make_event(sample, ENGINE_OVERHEAT, CRITICAL, sample.record.ts_ms, details)
    return ACTIVE_TRUE, (event,)
