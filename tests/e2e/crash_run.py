"""A simulated fleet sends to a server SIGKILLed at random moments, then the store is checked.

Used by ``tests/e2e/test_crash_random.py`` (a short run) and ``benchmarks/crash_soak.py``
(a long one). Two simulators run at once: HTTP vehicles and Teltonika devices, both
paced and both retrying until every record is acknowledged. A seeded generator picks
the moments of the kills, and the server restarts on the same ports after each one.
At the end the simulators' truth files list what the store must contain.
"""

from __future__ import annotations

import json
import logging
import random
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetpulse.model.vocabulary import OFFLINE_EVENT
from tests.e2e.harness import (
    ALL_TIME,
    INJECTED_EVENT_TYPES,
    PinnedServer,
    free_port,
    simulate_command,
    truth_expectations,
)

log = logging.getLogger(__name__)

HTTP_PREFIX = "sim-"
TELTONIKA_PREFIX = "35000000000"
# Each simulator gives up after its own give_up_after_s (300 s) without a response, and this
# bounds the wait for a simulator whose server stopped coming back.
SIMULATOR_EXIT_TIMEOUT_S = 600.0
POLL_S = 0.1


@dataclass
class CrashPlan:
    """The shape of one run: fleet sizes, pacing and how often to kill."""

    seed: int
    max_kills: int
    http_vehicles: int = 20
    teltonika_vehicles: int = 10
    duration_s: int = 3600
    speed: float = 60.0
    # The gap before each kill is drawn uniformly from this range, in seconds.
    kill_gap_s: tuple[float, float] = (2.0, 6.0)
    # The pause between a kill and the restart, so that clients meet a refused connection.
    down_s: tuple[float, float] = (0.0, 1.0)


@dataclass
class CrashOutcome:
    """What the run did and what the store contains against what the simulators sent."""

    seed: int
    kill_times_s: list[float] = field(default_factory=list)
    simulator_exit_codes: dict[str, int] = field(default_factory=dict)
    simulator_summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    records_generated: dict[str, int] = field(default_factory=dict)
    records_stored: dict[str, int] = field(default_factory=dict)
    duplicate_keys: dict[str, int] = field(default_factory=dict)
    events_expected: Counter[tuple[str, str]] = field(default_factory=Counter)
    events_found: Counter[tuple[str, str]] = field(default_factory=Counter)
    # Every stored event by vehicle and type, offline events left out because they
    # depend on the wall clock, and every trip by vehicle and distance in metres.
    all_events: Counter[tuple[str, str]] = field(default_factory=Counter)
    trips: Counter[tuple[str, int]] = field(default_factory=Counter)
    duplicate_events: int = 0
    peak_rss_kib: int = 0
    wall_s: float = 0.0

    @property
    def kills(self) -> int:
        """Return how many times the server was killed."""
        return len(self.kill_times_s)

    def to_json(self) -> dict[str, Any]:
        """Return the outcome as plain JSON values, for a report file."""
        return {
            "seed": self.seed,
            "kills": self.kills,
            "kill_times_s": [round(t, 2) for t in self.kill_times_s],
            "simulator_exit_codes": self.simulator_exit_codes,
            "records_generated": self.records_generated,
            "records_stored": self.records_stored,
            "duplicate_keys": self.duplicate_keys,
            "events_expected": sum(self.events_expected.values()),
            "events_found": sum(self.events_found.values()),
            "events_differ": sorted(
                f"{key}: expected {self.events_expected[key]}, found {self.events_found[key]}"
                for key in set(self.events_expected) | set(self.events_found)
                if self.events_expected[key] != self.events_found[key]
            ),
            "all_events": sum(self.all_events.values()),
            "trips": sum(self.trips.values()),
            "duplicate_events": self.duplicate_events,
            "peak_rss_kib": self.peak_rss_kib,
            "wall_s": round(self.wall_s, 1),
        }


def run_with_kills(folder: Path, plan: CrashPlan) -> CrashOutcome:
    """Run both simulators against a server killed up to ``plan.max_kills`` times, then check."""
    rng = random.Random(plan.seed)
    outcome = CrashOutcome(seed=plan.seed)
    teltonika_port = free_port()
    env = {
        "FLEETPULSE_TELTONIKA_ENABLED": "true",
        "FLEETPULSE_TELTONIKA_PORT": str(teltonika_port),
        "FLEETPULSE_TELTONIKA_ALLOW_UNKNOWN_IMEIS": "true",
    }
    server = PinnedServer(folder / "data", free_port(), env).start()
    log.info("crash run seed=%d url=%s teltonika_port=%d", plan.seed, server.url, teltonika_port)
    started = time.monotonic()
    simulators = _start_simulators(folder, plan, server.url, teltonika_port)
    try:
        _kill_while_running(server, simulators, plan, rng, outcome, started)
        for name, process in simulators.items():
            outcome.simulator_exit_codes[name] = process.wait(timeout=SIMULATOR_EXIT_TIMEOUT_S)
        server.wait_drained(timeout_s=120.0)
        _check_store(server, folder, plan, outcome)
        outcome.wall_s = time.monotonic() - started
    finally:
        for process in simulators.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        server.stop()
        outcome.peak_rss_kib = server.peak_rss_kib
    return outcome


def _start_simulators(
    folder: Path, plan: CrashPlan, url: str, teltonika_port: int
) -> dict[str, subprocess.Popen[bytes]]:
    runs = {
        "http": (url, plan.http_vehicles, plan.seed),
        "teltonika": (f"tcp://127.0.0.1:{teltonika_port}", plan.teltonika_vehicles, plan.seed + 1),
    }
    simulators = {}
    for name, (target, vehicles, seed) in runs.items():
        if vehicles == 0:
            continue
        command = simulate_command(
            target, folder / f"{name}-truth.jsonl", folder / f"{name}-summary.json",
            vehicles=vehicles, duration_s=plan.duration_s, seed=seed, protocol=name,
        )
        command[command.index("max")] = str(plan.speed)
        with open(folder / f"{name}-simulator.log", "wb") as output:
            simulators[name] = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
    return simulators


def _kill_while_running(
    server: PinnedServer,
    simulators: dict[str, subprocess.Popen[bytes]],
    plan: CrashPlan,
    rng: random.Random,
    outcome: CrashOutcome,
    started: float,
) -> None:
    while outcome.kills < plan.max_kills:
        kill_at = time.monotonic() + rng.uniform(*plan.kill_gap_s)
        while time.monotonic() < kill_at:
            if all(process.poll() is not None for process in simulators.values()):
                return
            server.sample_peak_rss()
            time.sleep(POLL_S)
        server.kill()
        outcome.kill_times_s.append(time.monotonic() - started)
        log.info("killed server kill=%d at_s=%.2f", outcome.kills, outcome.kill_times_s[-1])
        time.sleep(rng.uniform(*plan.down_s))
        server.start()
    while any(process.poll() is None for process in simulators.values()):
        server.sample_peak_rss()
        time.sleep(POLL_S)


def _check_store(
    server: PinnedServer, folder: Path, plan: CrashPlan, outcome: CrashOutcome
) -> None:
    fleets = {"http": (HTTP_PREFIX, plan.http_vehicles),
              "teltonika": (TELTONIKA_PREFIX, plan.teltonika_vehicles)}
    for name, (prefix, vehicles) in fleets.items():
        if vehicles == 0:
            continue
        summary_path = folder / f"{name}-summary.json"
        if summary_path.exists():
            outcome.simulator_summaries[name] = json.loads(summary_path.read_text())
        truth = truth_expectations(folder / f"{name}-truth.jsonl")
        outcome.records_generated[name] = truth["records_generated"]
        stored = 0
        duplicates = 0
        for number in range(1, vehicles + 1):
            stamps = server.stored_timestamps(f"{prefix}{number:04d}")
            stored += len(set(stamps))
            duplicates += len(stamps) - len(set(stamps))
        outcome.records_stored[name] = stored
        outcome.duplicate_keys[name] = duplicates
        if name == "http":
            # The Teltonika IO elements carry no fault codes or coolant temperature, so
            # only the HTTP fleet's events are compared with its truth.
            outcome.events_expected = truth["events"]
        for number in range(1, vehicles + 1):
            device_id = f"{prefix}{number:04d}"
            found = server.get(f"/v1/vehicles/{device_id}/trips", **ALL_TIME)
            outcome.trips.update((device_id, round(t["distance_m"])) for t in found["trips"])

    device_ids = [f"{HTTP_PREFIX}{n:04d}" for n in range(1, plan.http_vehicles + 1)]
    device_ids += [f"{TELTONIKA_PREFIX}{n:04d}" for n in range(1, plan.teltonika_vehicles + 1)]
    events = server.events(device_ids)
    keys = Counter((e["device_id"], e["type"], e["ts_ms"]) for e in events)
    outcome.duplicate_events = sum(count - 1 for count in keys.values() if count > 1)
    outcome.events_found = Counter(
        (e["device_id"], e["type"]) for e in events
        if e["type"] in INJECTED_EVENT_TYPES and e["device_id"].startswith(HTTP_PREFIX)
    )
    outcome.all_events = Counter(
        (e["device_id"], e["type"]) for e in events if e["type"] != OFFLINE_EVENT
    )
