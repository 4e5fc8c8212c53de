"""Scores of every scenario, the floors they must meet, and their table and JSON forms."""

from __future__ import annotations

import msgspec

from fleetpulse.config import DetectorSettings
from fleetpulse.evaluate.runner import ScenarioRun
from fleetpulse.evaluate.scenarios import Scenario
from fleetpulse.evaluate.scoring import (
    EventTypeScore,
    TripScore,
    score_event_type,
    score_trips,
)
from fleetpulse.model import vocabulary

# Event types the simulator injects or must never cause. The others (ignition,
# geofence, offline, trip start and end) have no truth entries, and trips are scored whole.
SCORED_EVENT_TYPES = (
    vocabulary.OVERSPEED,
    vocabulary.HARSH_BRAKING,
    vocabulary.HARSH_ACCELERATION,
    vocabulary.IDLING,
    vocabulary.GPS_JUMP,
    vocabulary.FUEL_DROP,
    vocabulary.DTC,
    vocabulary.ENGINE_OVERHEAT,
    vocabulary.LOW_FUEL,
    vocabulary.LOW_BATTERY,
)


class Floors(msgspec.Struct, frozen=True):
    """The minimum scores. A type with fewer than ``min_truth`` complete truth entries
    is reported but not held to the precision and recall floors, because a handful of
    entries cannot measure a rate of 95 %."""

    min_precision: float = 0.95
    min_recall: float = 0.95
    min_truth: int = 5
    max_trip_distance_error: float = 0.02


class ScenarioScore(msgspec.Struct, frozen=True):
    """The scores of one scenario run."""

    name: str
    description: str
    vehicles: int
    duration_s: float
    seed: int
    records_generated: int
    elapsed_s: float
    events: list[EventTypeScore]
    trips: TripScore


class Evaluation(msgspec.Struct, frozen=True):
    """A whole evaluation: settings, scores per scenario and the floors missed."""

    tolerance_s: float
    floors: Floors
    scenarios: list[ScenarioScore]
    failures: list[str]


def score_scenario(
    scenario: Scenario,
    run: ScenarioRun,
    vehicles: int,
    duration_s: float,
    seed: int,
    tolerance_s: float,
    detectors: DetectorSettings,
) -> ScenarioScore:
    """Score every event type and the trips of one run."""
    tolerance_ms = round(tolerance_s * 1000)
    events = [
        score_event_type(event_type, run.events, run.entries, tolerance_ms)
        for event_type in SCORED_EVENT_TYPES
    ]
    trips = score_trips(run.trips, run.entries, detectors.trip_min_distance_m, tolerance_ms)
    return ScenarioScore(
        name=scenario.name,
        description=scenario.description,
        vehicles=vehicles,
        duration_s=duration_s,
        seed=seed,
        records_generated=run.summary.records_generated if run.summary else 0,
        elapsed_s=round(run.elapsed_s, 1),
        events=events,
        trips=trips,
    )


def missed_floors(scenario: ScenarioScore, floors: Floors) -> list[str]:
    """Return one line per floor the scenario misses, naming the scenario and the row."""
    failures = []
    for score in scenario.events:
        if score.truth < floors.min_truth:
            continue
        where = f"{scenario.name} {score.event_type} ({score.truth} truth entries)"
        if score.precision is not None and score.precision < floors.min_precision:
            failures.append(f"{where}: precision {score.precision:.3f} < {floors.min_precision}")
        if score.recall is not None and score.recall < floors.min_recall:
            failures.append(f"{where}: recall {score.recall:.3f} < {floors.min_recall}")
    error = scenario.trips.distance_error
    if error is not None and abs(error) > floors.max_trip_distance_error:
        failures.append(
            f"{scenario.name} trips ({scenario.trips.compared} compared): distance error "
            f"{error:+.2%} beyond ±{floors.max_trip_distance_error:.0%}"
        )
    return failures


def format_table(evaluation: Evaluation) -> str:
    """Return the terminal table: one row per scenario and event type, then the trips."""
    header = (
        f"{'scenario':<18} {'event type':<19} {'truth':>5} {'events':>6} "
        f"{'precision':>9} {'recall':>6} {'delay p50 s':>11} {'delay max s':>11}"
    )
    lines = [header, "-" * len(header)]
    for scenario in evaluation.scenarios:
        for score in scenario.events:
            if score.truth == 0 and score.events == 0:
                continue
            lines.append(
                f"{scenario.name:<18} {score.event_type:<19} {score.truth:>5} {score.events:>6} "
                f"{_number(score.precision, 3):>9} {_number(score.recall, 3):>6} "
                f"{_number(score.delay_p50_s, 1):>11} {_number(score.delay_max_s, 1):>11}"
            )
    lines.append("")
    trip_header = (
        f"{'scenario':<18} {'truth':>5} {'trips':>5} {'precision':>9} {'recall':>6} "
        f"{'compared':>8} {'distance km':>11} {'dist. error':>11} {'worst trip':>10} "
        f"{'idle s':>7} {'idle error s':>12}"
    )
    lines += [trip_header, "-" * len(trip_header)]
    for scenario in evaluation.scenarios:
        trips = scenario.trips
        lines.append(
            f"{scenario.name:<18} {trips.truth:>5} {trips.trips:>5} "
            f"{_number(trips.precision, 3):>9} {_number(trips.recall, 3):>6} "
            f"{trips.compared:>8} {trips.distance_truth_m / 1000:>11.1f} "
            f"{_percent(trips.distance_error):>11} {_percent(trips.distance_error_max):>10} "
            f"{trips.idle_truth_s:>7.0f} {_number(trips.idle_error_s, 0):>12}"
        )
    lines.append("")
    if evaluation.failures:
        lines.append(f"{len(evaluation.failures)} floors missed:")
        lines += [f"  {failure}" for failure in evaluation.failures]
    else:
        floors = evaluation.floors
        lines.append(
            f"all floors met: precision and recall >= {floors.min_precision} for types with "
            f"at least {floors.min_truth} truth entries, trip distance within "
            f"±{floors.max_trip_distance_error:.0%}"
        )
    return "\n".join(lines)


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2%}"
