from __future__ import annotations

from fleetpulse.config import Settings
from fleetpulse.model.event import Event
from fleetpulse.model.record import Record
from fleetpulse.model.vocabulary import DETAIL_ONGOING, HARSH_ACCELERATION, HARSH_BRAKING
from fleetpulse.process.detectors.harsh import HarshState, detect_harsh
from tests.process.timeline import at, drive, drive_east, events_of, make_settings, record, samples


def speeds(values: list[float], step_s: int = 1) -> list[Record]:
    return [record(i * step_s, speed_kmh=value) for i, value in enumerate(values)]


def emissions(timeline: list[Record], settings: Settings) -> list[tuple[int, Event]]:
    """Return (ts_ms of the record that emitted it, event) for every event emitted."""
    state = HarshState()
    found: list[tuple[int, Event]] = []
    for sample in samples(timeline, settings):
        state, events = detect_harsh(state, sample, settings)
        found.extend((sample.record.ts_ms, event) for event in events)
    return found


def hard_stop() -> list[Record]:
    # 72 -> 0 km/h in 4 s: -5 m/s2 for four pairs in a row, from 1 s to 5 s.
    return speeds([72.0, 72.0, 54.0, 36.0, 18.0, 0.0, 0.0])


def test_harsh_braking_emitted_at_first_pair() -> None:
    settings = make_settings(harsh_braking_mps2=3.5)
    (emitted_ms, event), _ = emissions(hard_stop(), settings)
    assert emitted_ms == at(2)
    assert event.type == HARSH_BRAKING
    assert event.ts_ms == at(1)
    assert event.details[DETAIL_ONGOING] is True
    assert event.details["from_speed_kmh"] == 72.0
    assert event.details["to_speed_kmh"] == 54.0
    assert event.details["duration_s"] == 1.0


def test_harsh_braking_emitted_again_at_end() -> None:
    settings = make_settings(harsh_braking_mps2=3.5)
    _, (emitted_ms, event) = emissions(hard_stop(), settings)
    assert emitted_ms == at(6)
    assert event.type == HARSH_BRAKING
    assert event.ts_ms == at(1)
    assert event.details[DETAIL_ONGOING] is False
    assert event.details["from_speed_kmh"] == 72.0
    assert event.details["to_speed_kmh"] == 0.0
    assert event.details["peak_mps2"] == 5.0
    assert event.details["duration_s"] == 4.0


def test_harsh_peak_grows_to_final() -> None:
    settings = make_settings(harsh_braking_mps2=3.5)
    # -5 m/s2, then -7.5 m/s2, then a gentle -2.5 m/s2 that ends the episode.
    found = emissions(speeds([72.0, 54.0, 27.0, 18.0]), settings)
    assert [event.details["peak_mps2"] for _, event in found] == [5.0, 7.5]


def test_harsh_open_episode_ongoing_only() -> None:
    settings = make_settings(harsh_braking_mps2=3.5)
    state, emitted = drive(detect_harsh, HarshState(), speeds([72.0, 54.0, 36.0]), settings)
    (event,) = events_of(emitted, HARSH_BRAKING)
    assert event.details[DETAIL_ONGOING] is True
    assert state.kind == HARSH_BRAKING


def test_harsh_acceleration() -> None:
    settings = make_settings(harsh_acceleration_mps2=3.0)
    timeline = speeds([0.0, 15.0, 30.0, 35.0, 38.0])
    _, emitted = drive(detect_harsh, HarshState(), timeline, settings)
    ongoing, final = events_of(emitted, HARSH_ACCELERATION)
    assert ongoing.ts_ms == at(0)
    assert ongoing.details["to_speed_kmh"] == 15.0
    assert final.ts_ms == at(0)
    assert final.details["to_speed_kmh"] == 30.0


def test_harsh_gentle_braking_no_event() -> None:
    settings = make_settings(harsh_braking_mps2=3.5)
    _, emitted = drive(detect_harsh, HarshState(), speeds([72.0, 63.0, 54.0, 45.0, 36.0]), settings)
    assert emitted == []


def test_harsh_long_interval_ignored() -> None:
    settings = make_settings(harsh_max_interval_s=3.0)
    # 72 -> 0 km/h, but 10 s apart: the speed between the records is unknown.
    _, emitted = drive(detect_harsh, HarshState(), speeds([72.0, 0.0, 0.0], step_s=10), settings)
    assert emitted == []


def test_harsh_gps_speed_ignored() -> None:
    settings = make_settings()
    # A hard stop seen only in the fixes: 72 km/h, then standing still.
    driving = drive_east(0, 10, speed_kmh=72.0)
    last = driving[-1]
    standing = [record(11 + i, last.lat, last.lon) for i in range(5)]
    _, emitted = drive(detect_harsh, HarshState(), driving + standing, settings)
    assert emitted == []


def test_harsh_braking_then_acceleration() -> None:
    settings = make_settings()
    timeline = speeds([72.0, 50.0, 30.0, 30.0, 50.0, 70.0, 70.0])
    found = emissions(timeline, settings)
    assert [event.type for _, event in found] == [HARSH_BRAKING] * 2 + [HARSH_ACCELERATION] * 2
    assert [event.details[DETAIL_ONGOING] for _, event in found] == [True, False, True, False]


def test_harsh_kind_switch_same_record() -> None:
    settings = make_settings()
    # -6.1 m/s2, then +6.1 m/s2: the record at 2 s ends the braking and starts the
    # acceleration.
    found = emissions(speeds([72.0, 50.0, 72.0, 72.0]), settings)
    at_2s = [(event.type, event.details[DETAIL_ONGOING]) for ms, event in found if ms == at(2)]
    assert at_2s == [(HARSH_BRAKING, False), (HARSH_ACCELERATION, True)]
