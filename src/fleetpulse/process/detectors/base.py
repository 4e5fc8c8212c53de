"""The contract, result shape and unit constants that every detector shares.

A detector is a pure function ``detect(state, sample, settings) -> (state, events)``.
It returns the state object it was given when nothing changed, so a quiet record costs
no allocation, and it never stores or sends what it finds.
"""

from __future__ import annotations

from typing import Any

from fleetpulse.model.event import Event
from fleetpulse.process.sample import Sample

# The shared empty result. It is a tuple, so no detector can append to it by mistake.
NO_EVENTS: tuple[Event, ...] = ()

MS_PER_S = 1000.0
KMH_TO_MPS = 1 / 3.6


def make_event(
    sample: Sample, event_type: str, severity: str, ts_ms: int, details: dict[str, Any]
) -> Event:
    """Build an event of the sample's vehicle."""
    return Event(
        device_id=sample.record.device_id,
        ts_ms=ts_ms,
        type=event_type,
        severity=severity,
        details=details,
    )
