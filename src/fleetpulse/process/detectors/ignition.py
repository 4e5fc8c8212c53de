"""Ignition on and off: a change of the reported ignition from one known value to the other."""

from __future__ import annotations

import msgspec

from fleetpulse.config import Settings
from fleetpulse.model.event import Event
from fleetpulse.model.vocabulary import IGNITION_OFF, IGNITION_ON, INFO
from fleetpulse.process.detectors.base import NO_EVENTS, make_event
from fleetpulse.process.sample import Sample


class IgnitionState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The last reported ignition, or None until a record reports one."""

    ignition: bool | None = None


def detect_ignition(
    state: IgnitionState, sample: Sample, settings: Settings
) -> tuple[IgnitionState, tuple[Event, ...]]:
    """Emit ignition_on or ignition_off when the reported value changes.

    The first known value sets the state without an event, because there is no earlier
    value to change from.
    """
    ignition = sample.record.ignition
    if ignition is None or ignition == state.ignition:
        return state, NO_EVENTS

    new_state = IgnitionState(ignition=ignition)
    if state.ignition is None:
        return new_state, NO_EVENTS
    event_type = IGNITION_ON if ignition else IGNITION_OFF
    return new_state, (make_event(sample, event_type, INFO, sample.record.ts_ms, {}),)
