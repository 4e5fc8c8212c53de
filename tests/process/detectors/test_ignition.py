from __future__ import annotations

from fleetpulse.model.vocabulary import IGNITION_OFF, IGNITION_ON
from fleetpulse.process.detectors.ignition import IgnitionState, detect_ignition
from tests.process.timeline import at, drive, events_of, make_settings, record


def test_ignition_first_value_no_event() -> None:
    state, emitted = drive(
        detect_ignition, IgnitionState(), [record(0, ignition=True)], make_settings()
    )
    assert emitted == []
    assert state.ignition is True


def test_ignition_changes_emit() -> None:
    timeline = [
        record(0, ignition=False),
        record(10, ignition=True),
        record(20, ignition=True),
        record(30),
        record(40, ignition=False),
    ]
    _, emitted = drive(detect_ignition, IgnitionState(), timeline, make_settings())
    events = events_of(emitted)
    assert [(e.type, e.ts_ms) for e in events] == [(IGNITION_ON, at(10)), (IGNITION_OFF, at(40))]


def test_ignition_unknown_keeps_state() -> None:
    timeline = [record(0, ignition=True), record(10), record(20, ignition=True)]
    _, emitted = drive(detect_ignition, IgnitionState(), timeline, make_settings())
    assert emitted == []
