"""Evaluation of the detectors against the simulator's ground truth.

``run_evaluation()`` runs simulated scenarios (``SCENARIOS``) through an embedded
server and scores each detector's precision, recall and delay, and the trips' count,
distance and idle time, against the floors in ``Floors``.
"""

from fleetpulse.evaluate.report import Evaluation, Floors, ScenarioScore, format_table
from fleetpulse.evaluate.scenarios import SCENARIOS, Scenario
from fleetpulse.evaluate.scoring import EventTypeScore, TripScore
from fleetpulse.evaluate.suite import DEFAULT_TOLERANCE_S, run_evaluation

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "SCENARIOS",
    "Evaluation",
    "EventTypeScore",
    "Floors",
    "Scenario",
    "ScenarioScore",
    "TripScore",
    "format_table",
    "run_evaluation",
]
