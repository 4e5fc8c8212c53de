"""A surge of hostile senders on top of a paced fleet: back-pressure, bounded memory, no loss.

Used by ``tests/e2e/test_overload.py`` (a short run) and ``benchmarks/overload_soak.py``
(a long one). The surge clients post large batches back to back and ignore Retry-After,
so they offer far more than the server can process. Meanwhile an HTTP simulator and a
Teltonika simulator send a paced fleet and retry as a well-behaved client does. The run
records every response, samples the server's peak memory, and at the end checks that the
simulators' records and every acknowledged surge record are stored.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.harness import PinnedServer, free_port, simulate_command, truth_expectations

SIMULATOR_EXIT_TIMEOUT_S = 600.0
SURGE_REQUEST_TIMEOUT_S = 30.0


@dataclass
class OverloadPlan:
    """The shape of one run: the fleet, the surge and the server's limits."""

    surge_s: float = 15.0
    surge_clients: int = 32
    surge_batch_records: int = 1000
    surge_devices_per_client: int = 4
    # The surge starts this long after the fleet, so the fleet has been acknowledged before.
    surge_delay_s: float = 3.0
    http_vehicles: int = 20
    teltonika_vehicles: int = 10
    duration_s: int = 1800
    speed: float = 60.0
    max_inflight_bytes: int = 4 * 1024 * 1024
    capacity_records: int = 50_000
    seed: int = 11


@dataclass
class OverloadOutcome:
    """Responses seen during the surge, server memory, and what the store contains."""

    statuses: Counter[str] = field(default_factory=Counter)
    missing_retry_after: int = 0
    surge_timeouts: int = 0
    surge_offered_records: int = 0
    surge_acked_records: int = 0
    surge_missing: int = 0
    surge_wall_s: float = 0.0
    simulator_exit_codes: dict[str, int] = field(default_factory=dict)
    records_generated: dict[str, int] = field(default_factory=dict)
    records_stored: dict[str, int] = field(default_factory=dict)
    server_alive_after_surge: bool = False
    baseline_rss_kib: int = 0
    peak_rss_kib: int = 0
    teltonika_queue_full: float = 0.0
    metrics: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the outcome as plain JSON values, for a report file."""
        return {
            "statuses": dict(self.statuses),
            "missing_retry_after": self.missing_retry_after,
            "surge_timeouts": self.surge_timeouts,
            "surge_offered_records_per_s": round(self.surge_offered_records / self.surge_wall_s),
            "surge_acked_records_per_s": round(self.surge_acked_records / self.surge_wall_s),
            "surge_acked_records": self.surge_acked_records,
            "surge_missing": self.surge_missing,
            "simulator_exit_codes": self.simulator_exit_codes,
            "records_generated": self.records_generated,
            "records_stored": self.records_stored,
            "server_alive_after_surge": self.server_alive_after_surge,
            "baseline_rss_mib": round(self.baseline_rss_kib / 1024, 1),
            "peak_rss_mib": round(self.peak_rss_kib / 1024, 1),
            "teltonika_queue_full": self.teltonika_queue_full,
            "metrics": self.metrics,
        }


def run_overload(folder: Path, plan: OverloadPlan) -> OverloadOutcome:
    """Run the fleet and the surge against one server, then check what it stored."""
    outcome = OverloadOutcome()
    teltonika_port = free_port()
    env = {
        "FLEETPULSE_INGEST_MAX_INFLIGHT_BYTES": str(plan.max_inflight_bytes),
        "FLEETPULSE_QUEUE_CAPACITY_RECORDS": str(plan.capacity_records),
        "FLEETPULSE_TELTONIKA_ENABLED": "true",
        "FLEETPULSE_TELTONIKA_PORT": str(teltonika_port),
        "FLEETPULSE_TELTONIKA_ALLOW_UNKNOWN_IMEIS": "true",
    }
    server = PinnedServer(folder / "data", free_port(), env).start()
    outcome.baseline_rss_kib = server.sample_peak_rss()
    simulators: dict[str, subprocess.Popen[bytes]] = {}
    try:
        runs = {
            "http": (server.url, plan.http_vehicles),
            "teltonika": (f"tcp://127.0.0.1:{teltonika_port}", plan.teltonika_vehicles),
        }
        for name, (target, vehicles) in runs.items():
            command = simulate_command(
                target, folder / f"{name}-truth.jsonl", folder / f"{name}-summary.json",
                vehicles=vehicles, duration_s=plan.duration_s, seed=plan.seed, protocol=name,
            )
            command[command.index("max")] = str(plan.speed)
            with open(folder / f"{name}-simulator.log", "wb") as output:
                simulators[name] = subprocess.Popen(
                    command, stdout=output, stderr=subprocess.STDOUT
                )

        time.sleep(plan.surge_delay_s)
        acked = asyncio.run(_surge(server, plan, outcome))
        outcome.server_alive_after_surge = server.proc is not None and server.proc.poll() is None

        for name, process in simulators.items():
            deadline = time.monotonic() + SIMULATOR_EXIT_TIMEOUT_S
            while process.poll() is None and time.monotonic() < deadline:
                server.sample_peak_rss()
                time.sleep(0.2)
            outcome.simulator_exit_codes[name] = process.wait(timeout=1)
        server.wait_drained(timeout_s=300.0)

        outcome.teltonika_queue_full = server.metric(
            "fleetpulse_queue_full_total", 'source="teltonika"'
        )
        for name in ("fleetpulse_queue_full_total", "fleetpulse_ingest_overloaded_total",
                     "fleetpulse_records_accepted_total"):
            outcome.metrics[name] = server.metric(name)
        _check_fleets(server, folder, plan, outcome)
        outcome.surge_missing = _count_missing(server, acked)
    finally:
        for process in simulators.values():
            if process.poll() is None:
                process.kill()
                process.wait()
        server.stop()
        outcome.peak_rss_kib = server.peak_rss_kib
    return outcome


async def _surge(
    server: PinnedServer, plan: OverloadPlan, outcome: OverloadOutcome
) -> dict[str, set[int]]:
    acked: dict[str, set[int]] = {}
    start_ms = int(time.time() * 1000) - 3_000_000
    stop_at = time.monotonic() + plan.surge_s
    limits = httpx.Limits(max_connections=plan.surge_clients)
    started = time.monotonic()
    async with httpx.AsyncClient(
        base_url=server.url, timeout=SURGE_REQUEST_TIMEOUT_S, limits=limits
    ) as client:

        async def sample_memory() -> None:
            while time.monotonic() < stop_at:
                server.sample_peak_rss()
                await asyncio.sleep(0.1)

        clients = [
            _surge_client(client, number, plan, start_ms, stop_at, outcome, acked)
            for number in range(plan.surge_clients)
        ]
        await asyncio.gather(sample_memory(), *clients)
    outcome.surge_wall_s = time.monotonic() - started
    return acked


async def _surge_client(
    client: httpx.AsyncClient,
    number: int,
    plan: OverloadPlan,
    start_ms: int,
    stop_at: float,
    outcome: OverloadOutcome,
    acked: dict[str, set[int]],
) -> None:
    sequence = 0
    while time.monotonic() < stop_at:
        device_id = f"surge-{number:03d}-{sequence % plan.surge_devices_per_client}"
        first_ts = start_ms + sequence * plan.surge_batch_records
        body = _surge_body(device_id, first_ts, plan.surge_batch_records)
        sequence += 1
        outcome.surge_offered_records += plan.surge_batch_records
        try:
            answer = await client.post(
                "/v1/telemetry", content=body, headers={"Content-Type": "application/json"}
            )
        except httpx.TimeoutException:
            outcome.surge_timeouts += 1
            continue
        if answer.status_code == 202:
            outcome.statuses["202"] += 1
            outcome.surge_acked_records += plan.surge_batch_records
            stamps = acked.setdefault(device_id, set())
            stamps.update(range(first_ts, first_ts + plan.surge_batch_records))
            continue
        code = answer.json().get("error", {}).get("code", "?")
        outcome.statuses[f"{answer.status_code} {code}"] += 1
        if answer.status_code == 503 and "Retry-After" not in answer.headers:
            outcome.missing_retry_after += 1


def _surge_body(device_id: str, first_ts: int, count: int) -> bytes:
    records = [
        {"device_id": device_id, "ts": first_ts + i, "lat": 48.1 + (i % 100) * 1e-4,
         "lon": 11.5, "speed_kmh": 40.0, "ignition": True}
        for i in range(count)
    ]
    return json.dumps(records).encode()


def _check_fleets(
    server: PinnedServer, folder: Path, plan: OverloadPlan, outcome: OverloadOutcome
) -> None:
    fleets = {"http": ("sim-", plan.http_vehicles),
              "teltonika": ("35000000000", plan.teltonika_vehicles)}
    for name, (prefix, vehicles) in fleets.items():
        truth = truth_expectations(folder / f"{name}-truth.jsonl")
        outcome.records_generated[name] = truth["records_generated"]
        outcome.records_stored[name] = sum(
            len(set(server.stored_timestamps(f"{prefix}{number:04d}")))
            for number in range(1, vehicles + 1)
        )


def _count_missing(server: PinnedServer, acked: dict[str, set[int]]) -> int:
    missing = 0
    for device_id, stamps in acked.items():
        missing += len(stamps - set(server.stored_timestamps(device_id)))
    return missing
