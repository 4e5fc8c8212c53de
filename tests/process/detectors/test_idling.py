from __future__ import annotations

from fleetpulse.model.vocabulary import IDLING
from fleetpulse.process.detectors.idling import IdlingState, detect_idling
from tests.process.timeline import at, drive, drive_east, events_of, make_settings, record


def test_idling_one_event_per_period() -> None:
    settings = make_settings(idle_after_s=300.0)
    timeline = [record(t, ignition=True) for t in range(0, 1200, 30)]
    state, emitted = drive(detect_idling, IdlingState(), timeline, settings)
    (event,) = events_of(emitted, IDLING)
    assert event.ts_ms == at(0)
    assert state.active


def test_idling_short_stop_no_event() -> None:
    settings = make_settings(idle_after_s=300.0)
    timeline = [record(t, ignition=True) for t in range(0, 290, 10)]
    _, emitted = drive(detect_idling, IdlingState(), timeline, settings)
    assert emitted == []


def test_idling_ignition_off_no_event() -> None:
    settings = make_settings(idle_after_s=300.0)
    timeline = [record(t, ignition=False) for t in range(0, 1200, 30)]
    _, emitted = drive(detect_idling, IdlingState(), timeline, settings)
    assert emitted == []


def test_idling_ignition_unknown_no_event() -> None:
    settings = make_settings(idle_after_s=60.0)
    timeline = [record(t) for t in range(0, 1200, 30)]
    _, emitted = drive(detect_idling, IdlingState(), timeline, settings)
    assert emitted == []


def test_idling_new_period_after_driving() -> None:
    settings = make_settings(idle_after_s=120.0)
    first = [record(t, ignition=True) for t in range(0, 200, 20)]
    driving = drive_east(200, 60, speed_kmh=36.0, ignition=True)
    last = driving[-1]
    second = [record(261 + t, last.lat, last.lon, ignition=True) for t in range(0, 200, 20)]
    _, emitted = drive(detect_idling, IdlingState(), first + driving + second, settings)
    assert [event.ts_ms for event in events_of(emitted, IDLING)] == [at(0), at(261)]
