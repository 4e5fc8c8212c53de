"""Fuel drop: a sudden loss of fuel while the vehicle is stationary, as from theft or a leak.

While the vehicle is stationary, each fuel reading is compared with the reference
level: the first reading after it stopped, raised by any higher reading since. A level
``fuel_drop_pct`` or more below the reference starts a drop episode, and its event has
``ts_ms`` of that record. One episode gives one event, however far the level falls:

- at detection, with ``"ongoing": true`` and the drop so far;
- again with ``"ongoing": true`` each time the level falls another ``fuel_drop_pct``;
- at the end, with ``"ongoing": false`` and the whole drop.

The store replaces each copy with the next, because all have the same identity. The
episode ends when the vehicle moves, or when the level rises ``fuel_drop_pct`` above
its lowest reading (refuelling), which also makes that level the new reference, so a
theft after refuelling at the same stop is a new episode. Moving clears the
reference, because consumption while driving is not a drop.
"""

from __future__ import annotations

import msgspec

from fleetpulse.config import Settings
from fleetpulse.model.event import Event
from fleetpulse.model.vocabulary import CRITICAL, DETAIL_ONGOING, FUEL_DROP
from fleetpulse.process.detectors.base import NO_EVENTS, make_event
from fleetpulse.process.sample import Sample


class FuelDropState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The current stop's reference level and drop episode. Append new fields at the end.

    ``reference_pct`` is None while moving. ``drop_ts_ms`` is the ``ts_ms`` of the open
    episode's event, or None without one. ``low_pct`` is the episode's lowest level and
    ``reported_pct`` the level in its newest emitted copy, both in percent.
    """

    reference_pct: float | None = None
    drop_ts_ms: int | None = None
    low_pct: float = 0.0
    reported_pct: float = 0.0


FUEL_DROP_CLEAR = FuelDropState()


def detect_fuel_drop(
    state: FuelDropState, sample: Sample, settings: Settings
) -> tuple[FuelDropState, tuple[Event, ...]]:
    """Emit one event per drop of ``fuel_drop_pct`` or more while the vehicle is stationary.

    NOTE: the final copy needs the vehicle to move or be refuelled. Until then the stored
    event stays ongoing, with the drop up to the newest step of ``fuel_drop_pct``.
    """
    if sample.moving:
        if state.drop_ts_ms is not None:
            return FUEL_DROP_CLEAR, (_drop_event(state, sample, ongoing=False),)
        return FUEL_DROP_CLEAR, NO_EVENTS
    fuel_pct = sample.record.fuel_pct
    if fuel_pct is None:
        return state, NO_EVENTS

    if state.drop_ts_ms is not None:
        return _during_drop(state, sample, fuel_pct, settings.detectors.fuel_drop_pct)

    reference_pct = state.reference_pct
    if reference_pct is None or fuel_pct > reference_pct:
        return FuelDropState(reference_pct=fuel_pct), NO_EVENTS
    if reference_pct - fuel_pct < settings.detectors.fuel_drop_pct:
        return state, NO_EVENTS

    started = FuelDropState(
        reference_pct=reference_pct,
        drop_ts_ms=sample.record.ts_ms,
        low_pct=fuel_pct,
        reported_pct=fuel_pct,
    )
    return started, (_drop_event(started, sample, ongoing=True),)


def _during_drop(
    state: FuelDropState, sample: Sample, fuel_pct: float, step_pct: float
) -> tuple[FuelDropState, tuple[Event, ...]]:
    if fuel_pct >= state.low_pct + step_pct:
        # Refuelled: the episode ends and the new level is the reference.
        ended = _drop_event(state, sample, ongoing=False)
        return FuelDropState(reference_pct=fuel_pct), (ended,)
    if fuel_pct >= state.low_pct:
        return state, NO_EVENTS

    lower = msgspec.structs.replace(state, low_pct=fuel_pct)
    if state.reported_pct - fuel_pct < step_pct:
        return lower, NO_EVENTS
    reported = msgspec.structs.replace(lower, reported_pct=fuel_pct)
    return reported, (_drop_event(reported, sample, ongoing=True),)


def _drop_event(state: FuelDropState, sample: Sample, ongoing: bool) -> Event:
    assert state.reference_pct is not None and state.drop_ts_ms is not None
    details = {
        "from_pct": state.reference_pct,
        "to_pct": state.low_pct,
        "drop_pct": round(state.reference_pct - state.low_pct, 2),
        DETAIL_ONGOING: ongoing,
    }
    return make_event(sample, FUEL_DROP, CRITICAL, state.drop_ts_ms, details)
