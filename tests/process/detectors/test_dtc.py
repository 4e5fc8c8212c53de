from __future__ import annotations

from fleetpulse.model.vocabulary import DTC
from fleetpulse.process.detectors.dtc import DtcState, detect_dtc
from tests.process.timeline import at, drive, events_of, make_settings, record


def test_dtc_new_codes_one_event() -> None:
    state, emitted = drive(
        detect_dtc, DtcState(), [record(0, dtc=["P0301", "P0420", "P0301"])], make_settings()
    )
    (event,) = events_of(emitted, DTC)
    assert event.details["codes"] == ["P0301", "P0420"]
    assert state.active == ("P0301", "P0420")


def test_dtc_repeated_codes_no_event() -> None:
    timeline = [record(0, dtc=["P0301"]), record(10, dtc=["P0301"]), record(20)]
    state, emitted = drive(detect_dtc, DtcState(), timeline, make_settings())
    assert len(events_of(emitted, DTC)) == 1
    assert state.active == ("P0301",)


def test_dtc_added_code_reports_only_new() -> None:
    timeline = [record(0, dtc=["P0301"]), record(10, dtc=["P0301", "P0171"])]
    _, emitted = drive(detect_dtc, DtcState(), timeline, make_settings())
    events = events_of(emitted, DTC)
    assert [e.details["codes"] for e in events] == [["P0301"], ["P0171"]]
    assert events[1].ts_ms == at(10)


def test_dtc_cleared_then_reported_again() -> None:
    timeline = [record(0, dtc=["P0301"]), record(10, dtc=[]), record(20, dtc=["P0301"])]
    state, emitted = drive(detect_dtc, DtcState(), timeline, make_settings())
    assert [e.ts_ms for e in events_of(emitted, DTC)] == [at(0), at(20)]
    assert state.active == ("P0301",)


def test_dtc_missing_field_keeps_set() -> None:
    timeline = [record(0, dtc=["P0301"]), record(10), record(20)]
    state, _ = drive(detect_dtc, DtcState(), timeline, make_settings())
    assert state.active == ("P0301",)
