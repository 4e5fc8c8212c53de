"""Scores and floors computed from hand-made events, trips and truth entries."""

from __future__ import annotations

import msgspec

from fleetpulse.evaluate.report import (
    Evaluation,
    Floors,
    ScenarioScore,
    format_table,
    missed_floors,
)
from fleetpulse.evaluate.scoring import EventTypeScore, score_event_type, score_trips
from fleetpulse.model.event import Event, Trip
from fleetpulse.sim.truth import TruthEntry

TOLERANCE_MS = 5_000


def _event(device_id: str, ts_ms: int, event_type: str = "overspeed") -> Event:
    return Event(device_id, ts_ms, event_type, "warning")


def _entry(
    device_id: str,
    start_ms: int,
    end_ms: int,
    event: str | None = "overspeed",
    complete: bool = True,
    kind: str = "speeding",
    **values: float,
) -> TruthEntry:
    return TruthEntry(kind, device_id, start_ms, end_ms, event, complete, dict(values))


def _trip(device_id: str, start_ms: int, distance_m: float, idle_s: float = 0.0) -> Trip:
    return Trip(
        device_id,
        start_ms,
        48.1,
        11.5,
        end_ts_ms=start_ms + 600_000,
        distance_m=distance_m,
        idle_s=idle_s,
    )


def test_score_precision_recall() -> None:
    events = [_event("a", 10_000), _event("a", 90_000), _event("b", 10_000)]
    entries = [_entry("a", 10_000, 30_000), _entry("b", 9_000, 12_000), _entry("c", 0, 1)]
    score = score_event_type("overspeed", events, entries, TOLERANCE_MS)
    assert score.truth == 3
    assert score.events == 3
    assert score.matched_events == 2
    assert score.precision == 2 / 3
    assert score.recall == 2 / 3


def test_score_delay_from_truth_start() -> None:
    events = [_event("a", 12_000), _event("b", 10_000)]
    entries = [_entry("a", 10_000, 30_000), _entry("b", 7_000, 12_000)]
    score = score_event_type("overspeed", events, entries, TOLERANCE_MS)
    assert score.delay_p50_s == 2.5
    assert score.delay_max_s == 3.0


def test_score_other_types_ignored() -> None:
    events = [_event("a", 10_000, "idling")]
    entries = [_entry("a", 10_000, 30_000, event="idling"), _entry("a", 10_000, 30_000)]
    score = score_event_type("overspeed", events, entries, TOLERANCE_MS)
    assert score.events == 0
    assert score.truth == 1
    assert score.precision is None
    assert score.recall == 0.0


def test_score_incomplete_truth_absorbs_event() -> None:
    events = [_event("a", 10_000)]
    entries = [_entry("a", 10_000, 12_000, complete=False)]
    score = score_event_type("overspeed", events, entries, TOLERANCE_MS)
    assert score.precision == 1.0
    assert score.truth == 0
    assert score.recall is None


def test_score_incomplete_truth_not_missed() -> None:
    entries = [_entry("a", 10_000, 12_000, complete=False), _entry("a", 50_000, 52_000)]
    score = score_event_type("overspeed", [_event("a", 50_000)], entries, TOLERANCE_MS)
    assert score.recall == 1.0


def test_trips_distance_error() -> None:
    entries = [
        _entry("a", 0, 600_000, event=None, kind="trip", distance_m=1000.0, idle_s=30.0),
        _entry("a", 900_000, 1_500_000, event=None, kind="trip", distance_m=3000.0, idle_s=0.0),
    ]
    trips = [_trip("a", 1_000, 1010.0, idle_s=34.0), _trip("a", 900_000, 3030.0)]
    score = score_trips(trips, entries, 200.0, TOLERANCE_MS)
    assert score.compared == 2
    assert score.distance_truth_m == 4000.0
    assert round(score.distance_error or 0.0, 6) == 0.01
    assert round(score.distance_error_max or 0.0, 6) == 0.01
    assert score.idle_truth_s == 30.0
    assert score.idle_error_s == 4.0


def test_trips_short_truth_left_out() -> None:
    entries = [_entry("a", 0, 60_000, event=None, kind="trip", distance_m=150.0)]
    score = score_trips([], entries, 200.0, TOLERANCE_MS)
    assert score.truth == 0
    assert score.recall is None


def test_trips_extra_server_trip() -> None:
    entries = [_entry("a", 0, 600_000, event=None, kind="trip", distance_m=1000.0)]
    trips = [_trip("a", 0, 1000.0), _trip("a", 2_000_000, 500.0)]
    score = score_trips(trips, entries, 200.0, TOLERANCE_MS)
    assert score.precision == 0.5
    assert score.recall == 1.0


def test_trips_open_not_compared() -> None:
    entries = [_entry("a", 0, 600_000, event=None, kind="trip", distance_m=1000.0)]
    open_trip = msgspec.structs.replace(_trip("a", 0, 400.0), end_ts_ms=None)
    score = score_trips([open_trip], entries, 200.0, TOLERANCE_MS)
    assert score.compared == 0
    assert score.distance_error is None


def _scenario(*scores: EventTypeScore, distance_error: float = 0.0) -> ScenarioScore:
    entries = [_entry("a", 0, 600_000, event=None, kind="trip", distance_m=1000.0)]
    trips = score_trips(
        [_trip("a", 0, 1000.0 * (1 + distance_error))], entries, 200.0, TOLERANCE_MS
    )
    return ScenarioScore("clean", "test", 1, 600.0, 1, 600, 0.1, list(scores), trips)


def _type_score(truth: int, precision: float, recall: float) -> EventTypeScore:
    return EventTypeScore("overspeed", truth, truth, truth, truth, precision, recall, 0.0, 0.0)


def test_floors_met() -> None:
    assert missed_floors(_scenario(_type_score(10, 0.95, 1.0)), Floors()) == []


def test_floors_recall_missed() -> None:
    failures = missed_floors(_scenario(_type_score(10, 1.0, 0.9)), Floors())
    assert len(failures) == 1
    assert "clean overspeed" in failures[0]
    assert "recall 0.900" in failures[0]


def test_floors_few_truth_exempt() -> None:
    assert missed_floors(_scenario(_type_score(4, 0.0, 0.0)), Floors()) == []


def test_floors_trip_distance_missed() -> None:
    failures = missed_floors(_scenario(distance_error=0.03), Floors())
    assert len(failures) == 1
    assert "clean trips" in failures[0]


def test_table_names_failures() -> None:
    scenario = _scenario(_type_score(10, 1.0, 0.5))
    failures = missed_floors(scenario, Floors())
    table = format_table(Evaluation(10.0, Floors(), [scenario], failures))
    assert "1 floors missed" in table
    assert failures[0] in table
