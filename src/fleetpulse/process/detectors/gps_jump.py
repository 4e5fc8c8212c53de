"""GPS jump: report each jump that the motion step flagged, once per outlier.

A lone outlier is flagged twice by the motion step, on the jump away and on the jump
back. The jump back also carries ``gps_jump_back``, and this detector skips it, so the
outlier gives one event, at the jump away. A receiver that jumps once and stays there,
as after a tunnel, gives one event too.
"""

from __future__ import annotations

from fleetpulse.config import Settings
from fleetpulse.model.event import Event
from fleetpulse.model.vocabulary import (
    FLAG_GPS_JUMP,
    FLAG_GPS_JUMP_BACK,
    GPS_JUMP,
    SEVERITY_WARNING,
)
from fleetpulse.process.detectors.base import NO_EVENTS, make_event
from fleetpulse.process.sample import Sample


def detect_gps_jump(
    state: None, sample: Sample, settings: Settings
) -> tuple[None, tuple[Event, ...]]:
    """Emit one event for a record flagged ``gps_jump``, unless it is the jump back.

    This detector keeps no state, because the motion step keeps the open jump.
    """
    flags = sample.enriched.flags
    if FLAG_GPS_JUMP not in flags or FLAG_GPS_JUMP_BACK in flags:
        return None, NO_EVENTS

    implied_kmh = sample.implied_speed_kmh
    details = {
        "distance_m": round(sample.hop_m, 1),
        "implied_speed_kmh": round(implied_kmh, 1) if implied_kmh is not None else None,
    }
    event = make_event(sample, GPS_JUMP, SEVERITY_WARNING, sample.record.ts_ms, details)
    return None, (event,)
