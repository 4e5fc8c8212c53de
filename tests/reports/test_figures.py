"""Derived report figures: rates per 100 km, utilization and the safety score."""

from __future__ import annotations

from fleetpulse.reports.figures import figures, safety_score, sum_activity
from fleetpulse.store.base import VehicleActivity


def test_score_penalties() -> None:
    # 2 harsh events over 40 km are 5 per 100 km: 25 points. 90 s of overspeed over
    # 40 km are 3.75 min per 100 km: 7.5 points.
    assert safety_score(40_000.0, 2, 90.0) == 67.5


def test_score_without_events() -> None:
    assert safety_score(40_000.0, 0, 0.0) == 100.0


def test_score_floor_zero() -> None:
    # 30 harsh events over 10 km are 300 per 100 km.
    assert safety_score(10_000.0, 30, 0.0) == 0.0


def test_score_short_distance_null() -> None:
    assert safety_score(9_999.0, 0, 0.0) is None


def test_figures_rates() -> None:
    total = VehicleActivity(
        device_id="v1",
        start_ms=0,
        distance_m=50_000.0,
        driving_s=3_600.0,
        overspeed_s=120.0,
        harsh_brakings=1,
        harsh_accelerations=2,
    )

    result = figures(total, 4 * 3_600.0)

    assert result.harsh_per_100km == 3 * 2
    assert result.overspeed_min_per_100km == 2 * 2
    assert result.utilization == 0.25
    assert result.safety_score == 100 - 5 * 6 - 2 * 4


def test_figures_no_distance() -> None:
    result = figures(VehicleActivity(device_id="v1", start_ms=0), 0.0)

    assert result.harsh_per_100km is None
    assert result.overspeed_min_per_100km is None
    assert result.utilization == 0.0
    assert result.safety_score is None


def test_sum_keeps_max_speed() -> None:
    items = [
        VehicleActivity(device_id="v1", start_ms=0, distance_m=1.0, trips=1, max_speed_kmh=90.0),
        VehicleActivity(device_id="v1", start_ms=1, distance_m=2.0, trips=2, max_speed_kmh=70.0),
    ]

    total = sum_activity("v1", 0, items)

    assert total.distance_m == 3.0
    assert total.trips == 3
    assert total.max_speed_kmh == 90.0


def test_csv_cell_safe_from_formulas() -> None:
    from fleetpulse.reports.export import _csv_safe

    assert _csv_safe('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert _csv_safe("@cmd") == "'@cmd"
    assert _csv_safe("truck-7") == "truck-7"
    assert _csv_safe(-5.0) == -5.0
