"""Idling: ignition on and not moving for longer than ``idle_after_s``, one event per period.

The event is emitted as soon as the period passes ``idle_after_s``, with ``ts_ms`` at
the start of the period, so a dispatcher learns of an idling vehicle while it idles.
"""

from __future__ import annotations

import msgspec

from fleetpulse.config import Settings
from fleetpulse.model.event import Event
from fleetpulse.model.vocabulary import IDLING, SEVERITY_WARNING
from fleetpulse.process.detectors.base import MS_PER_S, NO_EVENTS, make_event
from fleetpulse.process.sample import Sample


class IdlingState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The idle period in progress. Append new fields at the end.

    ``active`` is True once the period has been reported.
    """

    since_ms: int | None = None
    active: bool = False


IDLING_CLEAR = IdlingState()


def detect_idling(
    state: IdlingState, sample: Sample, settings: Settings
) -> tuple[IdlingState, tuple[Event, ...]]:
    """Track idle periods and emit one event per period once it lasts ``idle_after_s``."""
    if sample.moving or sample.ignition is not True:
        return IDLING_CLEAR, NO_EVENTS

    ts_ms = sample.record.ts_ms
    if state.since_ms is None:
        state = IdlingState(since_ms=ts_ms)
    if state.active:
        return state, NO_EVENTS

    assert state.since_ms is not None
    idle_s = (ts_ms - state.since_ms) / MS_PER_S
    if idle_s < settings.detectors.idle_after_s:
        return state, NO_EVENTS
    details = {"idle_after_s": settings.detectors.idle_after_s}
    event = make_event(sample, IDLING, SEVERITY_WARNING, state.since_ms, details)
    return IdlingState(since_ms=state.since_ms, active=True), (event,)
