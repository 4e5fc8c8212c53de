"""``run_evaluation()``: run the chosen scenarios one after another and score them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from fleetpulse.config import DetectorSettings
from fleetpulse.evaluate.report import (
    Evaluation,
    Floors,
    ScenarioScore,
    missed_floors,
    score_scenario,
)
from fleetpulse.evaluate.runner import run_scenario
from fleetpulse.evaluate.scenarios import SCENARIOS

log = logging.getLogger(__name__)

# An event may be stamped a few records before its truth entry starts: a vehicle slowing
# through 5 km/h is already stationary for the server while it still reports a speed.
DEFAULT_TOLERANCE_S = 10.0

ScenarioCallback = Callable[[int, int, str], None]


async def run_evaluation(
    names: Sequence[str],
    vehicles: int,
    duration_s: float,
    seed: int,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    floors: Floors | None = None,
    on_scenario: ScenarioCallback | None = None,
) -> Evaluation:
    """Run the scenarios ``names`` in order, each on a fresh server, and score them.

    ``floors`` defaults to ``Floors()``. ``on_scenario(number, total, name)`` is called
    before each one starts. Raises
    KeyError for an unknown scenario name before running anything.
    """
    scenarios = [SCENARIOS[name] for name in names]
    floors = Floors() if floors is None else floors
    detectors = DetectorSettings()
    scores: list[ScenarioScore] = []
    failures: list[str] = []
    for number, scenario in enumerate(scenarios, start=1):
        if on_scenario is not None:
            on_scenario(number, len(scenarios), scenario.name)
        run = await run_scenario(scenario, vehicles, duration_s, seed, detectors)
        score = score_scenario(scenario, run, vehicles, duration_s, seed, tolerance_s, detectors)
        scores.append(score)
        missed = missed_floors(score, floors)
        for failure in missed:
            log.warning("floor missed: %s", failure)
        failures.extend(missed)
    return Evaluation(tolerance_s=tolerance_s, floors=floors, scenarios=scores, failures=failures)
