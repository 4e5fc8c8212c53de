"""Run one scenario through the real pipeline and read back what it reported.

An EmbeddedServer on 127.0.0.1 (port 0) with its data in a temporary folder takes the
records of ``fleetpulse.sim.simulate`` sent as fast as it accepts them. After the
processor has drained the queue, events and trips are read from the store.
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from fleetpulse.config import DetectorSettings, Settings, load_settings
from fleetpulse.evaluate.scenarios import Scenario
from fleetpulse.model.event import Event, Trip
from fleetpulse.server import EmbeddedServer
from fleetpulse.sim.options import SimulationOptions
from fleetpulse.sim.simulation import simulate
from fleetpulse.sim.truth import TruthEntry, TruthSummary, read_truth

log = logging.getLogger(__name__)

# Draining a run of a few hundred thousand records takes seconds, so ten minutes means
# the processor is stuck.
DRAIN_TIMEOUT_S = 600.0
# Device times fit between 0 and this (far beyond any run), for reading everything back.
ALL_TIME_MS = 2**62
# More events than any run stores, so one read returns them all.
MAX_EVENTS = 10_000_000


@dataclass(slots=True)
class ScenarioRun:
    """The truth of one run, and the events and trips the server reported for it."""

    entries: list[TruthEntry]
    summary: TruthSummary | None
    events: list[Event]
    trips: list[Trip]
    elapsed_s: float


async def run_scenario(
    scenario: Scenario,
    vehicles: int,
    duration_s: float,
    seed: int,
    detectors: DetectorSettings | None = None,
) -> ScenarioRun:
    """Simulate ``scenario`` against a fresh embedded server and collect the results.

    ``detectors`` defaults to the default detector settings. Raises SimError if the
    simulator cannot deliver, and RuntimeError if the processor stops or does not drain
    within DRAIN_TIMEOUT_S.
    """
    started_s = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="fleetpulse-evaluate-") as folder:
        settings = _settings(Path(folder) / "data", detectors)
        truth_path = Path(folder) / "truth.jsonl"
        server = EmbeddedServer(settings)
        await server.start()
        try:
            options = SimulationOptions(
                vehicles=vehicles,
                duration_s=duration_s,
                seed=seed,
                url=server.url,
                speed=math.inf,
                truth_path=str(truth_path),
                behaviours=scenario.behaviours,
                faults=scenario.faults,
                duplicate_share=scenario.duplicate_share,
                bad_share=scenario.bad_share,
            )
            await simulate(options)
            if not await server.processor.drain(DRAIN_TIMEOUT_S):
                raise RuntimeError(
                    f"scenario {scenario.name}: the processor did not drain the queue "
                    f"within {DRAIN_TIMEOUT_S:g} s"
                )
            entries, summary = read_truth(truth_path)
            events, trips = await _read_results(server)
        finally:
            await server.close()
    elapsed_s = time.monotonic() - started_s
    log.info(
        "scenario %s done events=%d trips=%d in %.1f s",
        scenario.name,
        len(events),
        len(trips),
        elapsed_s,
    )
    return ScenarioRun(entries, summary, events, trips, elapsed_s)


def _settings(data_dir: Path, detectors: DetectorSettings | None) -> Settings:
    # Unsynced writes are safe here: the data is thrown away after the run.
    overrides: dict[str, dict[str, Any]] = {
        "server": {"host": "127.0.0.1", "port": 0, "data_dir": str(data_dir)},
        "queue": {"synchronous": "normal"},
        "store": {"synchronous": "normal"},
    }
    settings = load_settings(environ={}, overrides=overrides)
    if detectors is not None:
        settings = msgspec.structs.replace(settings, detectors=detectors)
    return settings


async def _read_results(server: EmbeddedServer) -> tuple[list[Event], list[Trip]]:
    stored = await server.store.events(None, None, 0, ALL_TIME_MS, MAX_EVENTS)
    events = [item.event for item in stored]
    trips: list[Trip] = []
    for vehicle in await server.store.vehicles():
        trips.extend(await server.store.trips(vehicle.device_id, 0, ALL_TIME_MS))
    return events, trips
