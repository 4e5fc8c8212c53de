"""Diagnostic trouble codes: one event per record that reports codes not active before.

A record with a ``dtc`` list replaces the active set, so an empty list clears it. A
record without the field keeps it. All new codes of one record go into one event,
because an event is identified by (device_id, type, ts_ms).
"""

from __future__ import annotations

import msgspec

from fleetpulse.config import Settings
from fleetpulse.model.event import Event
from fleetpulse.model.vocabulary import DTC, SEVERITY_WARNING
from fleetpulse.process.detectors.base import NO_EVENTS, make_event
from fleetpulse.process.sample import Sample


class DtcState(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """The active fault codes, in the order first reported."""

    active: tuple[str, ...] = ()


def detect_dtc(
    state: DtcState, sample: Sample, settings: Settings
) -> tuple[DtcState, tuple[Event, ...]]:
    """Replace the active fault codes and emit one event listing the newly reported ones."""
    codes = sample.record.dtc
    if codes is None:
        return state, NO_EVENTS

    # dict.fromkeys drops repeated codes and keeps the device's order.
    active = tuple(dict.fromkeys(codes))
    if active == state.active:
        return state, NO_EVENTS

    new_codes = [code for code in active if code not in state.active]
    new_state = DtcState(active=active)
    if not new_codes:
        return new_state, NO_EVENTS
    details = {"codes": new_codes, "active": list(active)}
    return new_state, (make_event(sample, DTC, SEVERITY_WARNING, sample.record.ts_ms, details),)
