"""Matching of events to truth windows, on hand-made inputs."""

from __future__ import annotations

from fleetpulse.evaluate.matching import Occurrence, Window, match

TOLERANCE_MS = 1_000


def test_match_inside_window() -> None:
    result = match([Occurrence("a", 5_000)], [Window("a", 4_000, 6_000)], TOLERANCE_MS)
    assert result.pairs == [(0, 0)]
    assert result.unmatched_occurrences == []
    assert result.unmatched_windows == []


def test_match_within_tolerance_either_side() -> None:
    windows = [Window("a", 10_000, 12_000), Window("a", 20_000, 22_000)]
    occurrences = [Occurrence("a", 9_000), Occurrence("a", 23_000)]
    result = match(occurrences, windows, TOLERANCE_MS)
    assert sorted(result.pairs) == [(0, 0), (1, 1)]


def test_match_outside_tolerance() -> None:
    result = match([Occurrence("a", 8_999)], [Window("a", 10_000, 12_000)], TOLERANCE_MS)
    assert result.pairs == []
    assert result.unmatched_occurrences == [0]
    assert result.unmatched_windows == [0]


def test_match_other_vehicle_never() -> None:
    result = match([Occurrence("b", 5_000)], [Window("a", 4_000, 6_000)], TOLERANCE_MS)
    assert result.pairs == []


def test_match_each_window_once() -> None:
    occurrences = [Occurrence("a", 5_000), Occurrence("a", 5_500)]
    result = match(occurrences, [Window("a", 4_000, 6_000)], TOLERANCE_MS)
    assert len(result.pairs) == 1
    assert len(result.unmatched_occurrences) == 1


def test_match_largest_pairing() -> None:
    # The first event lies in both windows. Taking the long window for it would leave
    # the second event without one.
    windows = [Window("a", 0, 100_000), Window("a", 9_000, 11_000)]
    occurrences = [Occurrence("a", 10_000), Occurrence("a", 50_000)]
    result = match(occurrences, windows, 0)
    assert sorted(result.pairs) == [(0, 1), (1, 0)]


def test_match_unordered_input() -> None:
    windows = [Window("a", 30_000, 30_000), Window("a", 10_000, 10_000)]
    occurrences = [Occurrence("a", 30_000), Occurrence("a", 10_000)]
    result = match(occurrences, windows, 0)
    assert sorted(result.pairs) == [(0, 0), (1, 1)]
