"""Scores of one scenario: per event type, and for trips, from matched truth and output.

Truth entries that the run cut short (``complete`` False) can absorb a matching event,
so it is no false positive, but they do not count for recall: the records that would
show them may not exist.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import msgspec

from fleetpulse.evaluate.matching import Occurrence, Window, match
from fleetpulse.model.event import Event, Trip
from fleetpulse.sim import truth
from fleetpulse.sim.truth import TruthEntry


class EventTypeScore(msgspec.Struct, frozen=True):
    """Scores of one event type.

    ``truth`` counts the complete truth entries, ``events`` the server's events.
    Precision and recall are None when their denominator is 0. Delays are event
    ``ts_ms`` minus truth ``start_ms`` in seconds, over matched pairs: the median, and
    the delay furthest from 0 with its sign.
    """

    event_type: str
    truth: int
    events: int
    matched_events: int
    matched_truth: int
    precision: float | None
    recall: float | None
    delay_p50_s: float | None
    delay_max_s: float | None


class TripScore(msgspec.Struct, frozen=True):
    """Scores of the server's trips against the trips the simulator drove.

    ``distance_error`` is (server - truth) / truth of the summed distances of the
    matched trips that both sides finished, ``distance_error_max`` the largest such
    relative error of a single trip. ``idle_error_s`` is the summed server ``idle_s``
    minus the summed truth ``idle_s`` of the same trips, ``idle_truth_s`` their truth sum.
    """

    truth: int
    trips: int
    matched_trips: int
    matched_truth: int
    precision: float | None
    recall: float | None
    compared: int
    distance_truth_m: float
    distance_error: float | None
    distance_error_max: float | None
    idle_truth_s: float
    idle_error_s: float | None


def score_event_type(
    event_type: str, events: Sequence[Event], entries: Sequence[TruthEntry], tolerance_ms: int
) -> EventTypeScore:
    """Score the server's events of ``event_type`` against the entries expecting it."""
    mine = [event for event in events if event.type == event_type]
    expected = [entry for entry in entries if entry.event == event_type]
    occurrences = [Occurrence(event.device_id, event.ts_ms) for event in mine]
    windows = [Window(entry.device_id, entry.start_ms, entry.end_ms) for entry in expected]
    matching = match(occurrences, windows, tolerance_ms)

    complete = sum(1 for entry in expected if entry.complete)
    matched_complete = sum(1 for _, w in matching.pairs if expected[w].complete)
    delays_s = [(mine[e].ts_ms - expected[w].start_ms) / 1000.0 for e, w in matching.pairs]
    return EventTypeScore(
        event_type=event_type,
        truth=complete,
        events=len(mine),
        matched_events=len(matching.pairs),
        matched_truth=matched_complete,
        precision=_ratio(len(matching.pairs), len(mine)),
        recall=_ratio(matched_complete, complete),
        delay_p50_s=statistics.median(delays_s) if delays_s else None,
        delay_max_s=max(delays_s, key=abs) if delays_s else None,
    )


def score_trips(
    trips: Sequence[Trip], entries: Sequence[TruthEntry], min_distance_m: float, tolerance_ms: int
) -> TripScore:
    """Score the server's trips against the truth trips of at least ``min_distance_m``.

    A server trip matches by its start time. Shorter truth trips are left out, because
    the server discards trips below its minimum distance by design.
    """
    expected = [
        entry
        for entry in entries
        if entry.type == truth.TRIP and float(entry.values.get("distance_m", 0.0)) >= min_distance_m
    ]
    occurrences = [Occurrence(trip.device_id, trip.start_ts_ms) for trip in trips]
    windows = [Window(entry.device_id, entry.start_ms, entry.end_ms) for entry in expected]
    matching = match(occurrences, windows, tolerance_ms)

    complete = sum(1 for entry in expected if entry.complete)
    matched_complete = sum(1 for _, w in matching.pairs if expected[w].complete)
    finished = [
        (trips[t], expected[w])
        for t, w in matching.pairs
        if expected[w].complete and trips[t].end_ts_ms is not None
    ]
    truth_m = sum(float(entry.values["distance_m"]) for _, entry in finished)
    server_m = sum(trip.distance_m for trip, _ in finished)
    errors = [
        (trip.distance_m - float(entry.values["distance_m"])) / float(entry.values["distance_m"])
        for trip, entry in finished
    ]
    idle_truth_s = sum(float(entry.values.get("idle_s", 0.0)) for _, entry in finished)
    idle_server_s = sum(trip.idle_s for trip, _ in finished)
    return TripScore(
        truth=complete,
        trips=len(trips),
        matched_trips=len(matching.pairs),
        matched_truth=matched_complete,
        precision=_ratio(len(matching.pairs), len(trips)),
        recall=_ratio(matched_complete, complete),
        compared=len(finished),
        distance_truth_m=round(truth_m, 1),
        distance_error=(server_m - truth_m) / truth_m if truth_m > 0 else None,
        distance_error_max=max(errors, key=abs) if errors else None,
        idle_truth_s=round(idle_truth_s, 1),
        idle_error_s=round(idle_server_s - idle_truth_s, 1) if finished else None,
    )


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None
