"""GPS jump: report the fixes that the motion step flagged as jumps."""

from __future__ import annotations

from fleetpulse.config import Settings
from fleetpulse.model.event import Event
from fleetpulse.model.vocabulary import FLAG_GPS_JUMP, GPS_JUMP, SEVERITY_WARNING
from fleetpulse.process.detectors.base import NO_EVENTS, make_event
from fleetpulse.process.sample import Sample


def detect_gps_jump(
    state: None, sample: Sample, settings: Settings
) -> tuple[None, tuple[Event, ...]]:
    """Emit one event for a record flagged ``gps_jump``. This detector keeps no state."""
    if FLAG_GPS_JUMP not in sample.enriched.flags:
        return None, NO_EVENTS

    implied_kmh = sample.implied_speed_kmh
    details = {
        "distance_m": round(sample.hop_m, 1),
        "implied_speed_kmh": round(implied_kmh, 1) if implied_kmh is not None else None,
    }
    event = make_event(sample, GPS_JUMP, SEVERITY_WARNING, sample.record.ts_ms, details)
    return None, (event,)
