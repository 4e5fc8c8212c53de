"""A real recorded drive, replayed through a running server, yields the right trips.

The trace is the 1 Hz Munich drive from the BMW Car IT barefoot project (Apache-2.0,
see tests/data/traces/PROVENANCE.md).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tests.e2e.serverproc import ServerProcess

pytestmark = pytest.mark.slow

TRACE = Path(__file__).parents[1] / "data" / "traces" / "barefoot_munich_x0001-001_1hz.json"
DEVICE_ID = "munich-1hz"
# A hop faster than this between two 1 s fixes is not a car; the trace has one, at 07:04:26.
JUMP_SPEED_KMH = 300.0
EARTH_RADIUS_M = 6_371_008.8


def _haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def _trace_points() -> list[tuple[float, float, float]]:
    points = []
    for item in json.loads(TRACE.read_text()):
        lon_text, lat_text = item["point"][len("POINT(") : -1].split()
        moment = datetime.strptime(item["time"], "%Y-%m-%d %H:%M:%S%z")
        points.append((moment.timestamp(), float(lat_text), float(lon_text)))
    return points


def _path_length_without_jumps_m(points: list[tuple[float, float, float]]) -> tuple[float, int]:
    total, jumps = 0.0, 0
    for (t1, la1, lo1), (t2, la2, lo2) in zip(points, points[1:], strict=False):
        hop = _haversine_m(la1, lo1, la2, lo2)
        if hop / (t2 - t1) * 3.6 > JUMP_SPEED_KMH:
            jumps += 1
            continue
        total += hop
    return total, jumps


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    server = ServerProcess(tmp_path_factory.mktemp("replay") / "data").start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "fleetpulse.cli.main", "replay", str(TRACE), "--speed", "max",
             "--device-id", DEVICE_ID, "--url", server.url],
            capture_output=True, text=True, timeout=120,
        )
        assert done.returncode == 0, done.stderr
        server.wait_drained()
        yield server
    finally:
        server.stop()


def test_replay_trip_distance_matches_path(replayed: ServerProcess) -> None:
    expected_m, jumps = _path_length_without_jumps_m(_trace_points())
    trips = replayed.get(f"/v1/vehicles/{DEVICE_ID}/trips", **{"from": 0, "to": 2**62})["trips"]
    assert jumps == 1
    assert trips, "no trip was recorded for the replayed drive"
    total_m = sum(trip["distance_m"] for trip in trips)
    assert abs(total_m - expected_m) / expected_m < 0.05, (total_m, expected_m)


def test_replay_flags_known_gps_jump(replayed: ServerProcess) -> None:
    points = _trace_points()
    events = replayed.get("/v1/events", device_id=DEVICE_ID, type="gps_jump",
                          **{"from": 0, "to": 2**62})["events"]
    assert len(events) == 1
    # The replay shifts the drive to end now; the jump keeps its offset from the end.
    jump_index = next(
        i for i, (a, b) in enumerate(zip(points, points[1:], strict=False), start=1)
        if _haversine_m(a[1], a[2], b[1], b[2]) / (b[0] - a[0]) * 3.6 > JUMP_SPEED_KMH
    )
    from_end_ms = round((points[-1][0] - points[jump_index][0]) * 1000)
    stored = replayed.get(f"/v1/vehicles/{DEVICE_ID}/positions",
                          **{"from": 0, "to": 2**62, "limit": 10_000})["positions"]
    assert events[0]["ts_ms"] == stored[-1]["ts_ms"] - from_end_ms


def test_replay_stationary_adds_no_distance(replayed: ServerProcess) -> None:
    stored = replayed.get(f"/v1/vehicles/{DEVICE_ID}/positions",
                          **{"from": 0, "to": 2**62, "limit": 10_000})["positions"]
    assert len(stored) == len(_trace_points())
    stationary = [p for p in stored if p["motion"] != "moving"]
    assert stationary, "the drive has stops at traffic lights; none was found"
    assert sum(p["distance_m"] for p in stationary) == 0.0
