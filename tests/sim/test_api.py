"""The public surface of fleetpulse.sim, pinned so that changes are deliberate."""

from __future__ import annotations

import inspect

import fleetpulse.sim
from fleetpulse.cli import simulate as simulate_command


def test_sim_public_names() -> None:
    assert sorted(fleetpulse.sim.__all__) == [
        "BehaviourRates",
        "DeliveryError",
        "Progress",
        "ReplayOptions",
        "ReplaySummary",
        "ServerUnreachableError",
        "SimError",
        "SimulationOptions",
        "SimulationSummary",
        "TraceError",
        "TracePoint",
        "TruthEntry",
        "TruthSummary",
        "read_trace",
        "read_truth",
        "replay",
        "simulate",
    ]


def test_simulate_signature() -> None:
    parameters = list(inspect.signature(fleetpulse.sim.simulate).parameters)

    assert parameters == ["options", "on_progress"]
    assert inspect.iscoroutinefunction(fleetpulse.sim.simulate)
    assert simulate_command.simulate is fleetpulse.sim.simulate


def test_replay_signature() -> None:
    parameters = list(inspect.signature(fleetpulse.sim.replay).parameters)

    assert parameters == ["options", "on_progress"]
    assert inspect.iscoroutinefunction(fleetpulse.sim.replay)
