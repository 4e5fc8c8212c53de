"""The fleet simulator and trace replay: vehicles that send records to ``/v1/telemetry``.

``simulate(options)`` drives a synthetic fleet and writes the ground truth of what it
injected. ``replay(options)`` sends recorded traces read by ``read_trace(path)``.
"""

from fleetpulse.sim.errors import DeliveryError, ServerUnreachableError, SimError, TraceError
from fleetpulse.sim.options import BehaviourRates, SimulationOptions
from fleetpulse.sim.progress import Progress
from fleetpulse.sim.replay import ReplayOptions, ReplaySummary, replay
from fleetpulse.sim.simulation import SimulationSummary, simulate
from fleetpulse.sim.traces import TracePoint, read_trace
from fleetpulse.sim.truth import TruthEntry, TruthSummary, read_truth

__all__ = [
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
