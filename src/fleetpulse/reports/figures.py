"""The figures of a report row, derived from summed activity, and the safety score."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from fleetpulse.store.base import VehicleActivity

# Harsh events and overspeed minutes are rated per this distance, so that a vehicle that
# drives more is not penalised for the longer exposure.
RATE_DISTANCE_M = 100_000.0
# Points off the safety score per harsh event (braking or acceleration) per 100 km.
# A judgment call: 4 per 100 km, already frequent, costs 20 points, and 20 cost all 100.
HARSH_PENALTY_PER_RATE = 5.0
# Points off per overspeed minute per 100 km. A judgment call: 10 minutes of sustained
# speeding per 100 km costs 20 points, as 4 harsh events do.
OVERSPEED_PENALTY_PER_MINUTE_RATE = 2.0
# Below this distance the score is null. Over 10 km a single harsh event already costs
# 50 points, so a shorter distance is too little evidence of how a vehicle is driven.
MIN_SCORE_DISTANCE_M = 10_000.0
MAX_SCORE = 100.0


class Figures(msgspec.Struct, gc=False):
    """The figures of one report row. Metres, seconds, km/h.

    ``utilization`` is driving time over the length of the period (the vehicle count
    times the period for a fleet total), from 0 to 1. The per-100-km rates are null
    without distance, and ``safety_score`` is null below MIN_SCORE_DISTANCE_M.
    """

    distance_m: float
    driving_s: float
    idle_s: float
    trips: int
    stops: int
    max_speed_kmh: float
    overspeed_count: int
    overspeed_s: float
    harsh_braking_count: int
    harsh_acceleration_count: int
    harsh_per_100km: float | None
    overspeed_min_per_100km: float | None
    utilization: float
    safety_score: float | None


def sum_activity(
    device_id: str, start_ms: int, items: Iterable[VehicleActivity]
) -> VehicleActivity:
    """Add up activity: sums of every figure, and the max of ``max_speed_kmh``."""
    total = VehicleActivity(device_id=device_id, start_ms=start_ms)
    for item in items:
        total.distance_m += item.distance_m
        total.driving_s += item.driving_s
        total.idle_s += item.idle_s
        total.trips += item.trips
        total.stops += item.stops
        total.max_speed_kmh = max(total.max_speed_kmh, item.max_speed_kmh)
        total.overspeeds += item.overspeeds
        total.overspeed_s += item.overspeed_s
        total.harsh_brakings += item.harsh_brakings
        total.harsh_accelerations += item.harsh_accelerations
    return total


def safety_score(distance_m: float, harsh_events: int, overspeed_s: float) -> float | None:
    """Return 100 minus the penalties for harsh events and overspeed minutes per 100 km,
    at least 0 and rounded to 0.1; None below MIN_SCORE_DISTANCE_M."""
    if distance_m < MIN_SCORE_DISTANCE_M:
        return None
    harsh_rate = harsh_events * RATE_DISTANCE_M / distance_m
    overspeed_rate = overspeed_s / 60 * RATE_DISTANCE_M / distance_m
    penalty = (
        HARSH_PENALTY_PER_RATE * harsh_rate + OVERSPEED_PENALTY_PER_MINUTE_RATE * overspeed_rate
    )
    return round(max(0.0, MAX_SCORE - penalty), 1)


def figures(total: VehicleActivity, available_s: float) -> Figures:
    """Derive the figures of summed activity. ``available_s`` is the time the driving
    time is compared with for ``utilization``; 0 gives a utilization of 0."""
    harsh_events = total.harsh_brakings + total.harsh_accelerations
    harsh_rate = None
    overspeed_rate = None
    if total.distance_m > 0:
        harsh_rate = harsh_events * RATE_DISTANCE_M / total.distance_m
        overspeed_rate = total.overspeed_s / 60 * RATE_DISTANCE_M / total.distance_m
    return Figures(
        distance_m=total.distance_m,
        driving_s=total.driving_s,
        idle_s=total.idle_s,
        trips=total.trips,
        stops=total.stops,
        max_speed_kmh=total.max_speed_kmh,
        overspeed_count=total.overspeeds,
        overspeed_s=total.overspeed_s,
        harsh_braking_count=total.harsh_brakings,
        harsh_acceleration_count=total.harsh_accelerations,
        harsh_per_100km=harsh_rate,
        overspeed_min_per_100km=overspeed_rate,
        utilization=total.driving_s / available_s if available_s > 0 else 0.0,
        safety_score=safety_score(total.distance_m, harsh_events, total.overspeed_s),
    )
