"""The simulator drives a running server; the API shows what the simulator injected.

The simulator's truth file lists every behaviour it injected (speeding, harsh braking,
bad records, duplicates ...). After the run, the server's responses must match it: the
expected vehicles, events and trips, and counts of accepted, stored and dead-lettered
records that add up.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from fleetpulse.sim.truth import read_truth
from tests.e2e.serverproc import ServerProcess

pytestmark = pytest.mark.slow

VEHICLES = 10
DURATION_S = 3600
SEED = 7
ALL_TIME = {"from": 0, "to": 2**62}
# Event types whose every occurrence the simulator injects on purpose and records.
INJECTED_EVENT_TYPES = ("overspeed", "harsh_braking", "harsh_acceleration", "idling",
                        "gps_jump", "fuel_drop", "dtc", "engine_overheat", "low_fuel")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("fleet")
    server = ServerProcess(folder / "data").start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "fleetpulse.cli.main", "simulate",
             "--vehicles", str(VEHICLES), "--rate", "1", "--duration", str(DURATION_S),
             "--speed", "max", "--seed", str(SEED), "--url", server.url,
             "--truth", str(folder / "truth.jsonl"),
             "--json-summary", str(folder / "summary.json")],
            capture_output=True, text=True, timeout=300,
        )
        assert done.returncode == 0, done.stderr
        server.wait_drained()
        entries, truth_summary = read_truth(folder / "truth.jsonl")
        yield {
            "server": server,
            "summary": json.loads((folder / "summary.json").read_text()),
            "entries": entries,
            "truth_summary": truth_summary,
        }
    finally:
        server.stop()


def _events(server: ServerProcess) -> list[dict[str, Any]]:
    return server.get("/v1/events", limit=10_000, **ALL_TIME)["events"]


def test_fleet_vehicles_all_present(run: dict[str, Any]) -> None:
    vehicles = run["server"].get("/v1/vehicles")["vehicles"]
    assert sorted(v["device_id"] for v in vehicles) == [
        f"sim-{i:04d}" for i in range(1, VEHICLES + 1)
    ]


def test_fleet_accepted_matches_server(run: dict[str, Any]) -> None:
    server: ServerProcess = run["server"]
    assert run["summary"]["accepted"] == server.metric("fleetpulse_records_accepted_total")
    assert run["summary"]["rejected"] == server.metric("fleetpulse_records_rejected_total")


def test_fleet_stored_adds_up(run: dict[str, Any]) -> None:
    server: ServerProcess = run["server"]
    stored = sum(server.count_positions(f"sim-{i:04d}") for i in range(1, VEHICLES + 1))
    # Each injected duplicate repeats a (device_id, ts) already accepted: stored once.
    assert stored == run["summary"]["accepted"] - run["truth_summary"].duplicates
    assert stored == run["truth_summary"].records_generated


def test_fleet_dead_letters_add_up(run: dict[str, Any]) -> None:
    letters = run["server"].get("/v1/dead-letters", limit=10_000)["dead_letters"]
    assert len(letters) == run["summary"]["rejected"]
    by_reason = Counter(letter["reason"] for letter in letters)
    assert by_reason == Counter(run["truth_summary"].bad_records_by_reason)


def test_fleet_events_match_truth(run: dict[str, Any]) -> None:
    server_events = Counter(
        (e["device_id"], e["type"]) for e in _events(run["server"])
        if e["type"] in INJECTED_EVENT_TYPES
    )
    expected = Counter(
        (entry.device_id, entry.event) for entry in run["entries"]
        if entry.event in INJECTED_EVENT_TYPES
    )
    assert expected, "the run injected no behaviour; the test would prove nothing"
    assert server_events == expected


def test_fleet_overspeed_times_match(run: dict[str, Any]) -> None:
    episodes = [e for e in run["entries"] if e.event == "overspeed"]
    events = [e for e in _events(run["server"]) if e["type"] == "overspeed"]
    for episode in episodes:
        matches = [
            e for e in events if e["device_id"] == episode.device_id
            and episode.start_ms - 5_000 <= e["ts_ms"] <= episode.end_ms
        ]
        assert len(matches) == 1, f"{episode} matched {matches}"


def test_fleet_trips_match_truth(run: dict[str, Any]) -> None:
    server: ServerProcess = run["server"]
    expected = Counter(e.device_id for e in run["entries"] if e.type == "trip")
    found: Counter[str] = Counter()
    for device_id in expected:
        trips = server.get(f"/v1/vehicles/{device_id}/trips", **ALL_TIME)["trips"]
        found[device_id] = len(trips)
        assert all(trip["distance_m"] > 0 for trip in trips)
    assert found == expected
