"""Fuel drop: a sudden loss of fuel while the vehicle is stationary, as from theft or a leak.

While the vehicle is stationary, each fuel reading is compared with the reference
level: the first reading after it stopped, raised by any refuelling since. A loss of at
least ``fuel_drop_pct`` emits an event and becomes the new reference, so a second
siphoning at the same stop is reported too. Moving clears the reference, because
consumption while driving is not a drop.
"""

from __future__ import annotations

import msgspec

from fleetpulse.config import Settings
from fleetpulse.model.event import Event
from fleetpulse.model.vocabulary import CRITICAL, FUEL_DROP
from fleetpulse.process.detectors.base import NO_EVENTS, make_event
from fleetpulse.process.sample import Sample


class FuelDropState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The reference fuel level of the current stop in percent, or None while moving."""

    reference_pct: float | None = None


FUEL_DROP_CLEAR = FuelDropState()


def detect_fuel_drop(
    state: FuelDropState, sample: Sample, settings: Settings
) -> tuple[FuelDropState, tuple[Event, ...]]:
    """Emit an event when the fuel level of a stationary vehicle drops by ``fuel_drop_pct``."""
    if sample.moving:
        return FUEL_DROP_CLEAR, NO_EVENTS
    fuel_pct = sample.record.fuel_pct
    if fuel_pct is None:
        return state, NO_EVENTS

    reference_pct = state.reference_pct
    if reference_pct is None or fuel_pct > reference_pct:
        return FuelDropState(reference_pct=fuel_pct), NO_EVENTS

    drop_pct = reference_pct - fuel_pct
    if drop_pct < settings.detectors.fuel_drop_pct:
        return state, NO_EVENTS
    details = {
        "from_pct": reference_pct,
        "to_pct": fuel_pct,
        "drop_pct": round(drop_pct, 2),
    }
    event = make_event(sample, FUEL_DROP, CRITICAL, sample.record.ts_ms, details)
    return FuelDropState(reference_pct=fuel_pct), (event,)
