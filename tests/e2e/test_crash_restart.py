"""A server killed with SIGKILL mid-ingest loses no acknowledged record."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.serverproc import ServerProcess

pytestmark = pytest.mark.slow

VEHICLES = 5
BATCH_RECORDS = 200
KILL_ROUNDS = 3
# Each round stamps its records in its own time window, within the hour before now.
MAX_BATCHES_PER_ROUND = 1_000


def _batch(start_ms: int, round_no: int, batch_no: int) -> list[dict[str, object]]:
    records = []
    for i in range(BATCH_RECORDS):
        ts_ms = start_ms + (round_no * MAX_BATCHES_PER_ROUND + batch_no) * BATCH_RECORDS + i
        records.append({
            "device_id": f"crash-{i % VEHICLES}",
            "ts": ts_ms,
            "lat": 48.1 + i * 1e-5,
            "lon": 11.5,
            "speed_kmh": 30.0,
            "ignition": True,
        })
    return records


def _send_until_killed(url: str, round_no: int, start_ms: int,
                       acked: dict[str, set[int]]) -> int:
    """Send batches until the server dies; record every acknowledged record."""
    sent = 0
    with httpx.Client(timeout=5) as client:
        for batch_no in range(MAX_BATCHES_PER_ROUND):
            batch = _batch(start_ms, round_no, batch_no)
            try:
                answer = client.post(url + "/v1/telemetry", json=batch)
            except httpx.TransportError:
                return sent
            if answer.status_code == 202:
                assert answer.json()["accepted"] == BATCH_RECORDS
                for record in batch:
                    acked.setdefault(str(record["device_id"]), set()).add(int(record["ts"]))
                sent += 1
    return sent


def test_sigkill_loses_no_acked_record(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    acked: dict[str, set[int]] = {}
    start_ms = int(time.time() * 1000) - 3_600_000
    rng = random.Random(2026)
    for round_no in range(KILL_ROUNDS):
        server = ServerProcess(data_dir).start()
        killer = threading.Timer(rng.uniform(0.8, 2.0), server.kill)
        killer.start()
        sent = _send_until_killed(server.url, round_no, start_ms, acked)
        killer.join()
        assert sent > 0, f"round {round_no}: no batch was acknowledged before the kill"
    server = ServerProcess(data_dir).start()
    try:
        server.wait_drained()
        for device_id, expected in acked.items():
            stored: set[int] = set()
            params: dict[str, object] = {"from": 0, "to": 2**62, "limit": 10_000}
            while True:
                page = server.get(f"/v1/vehicles/{device_id}/positions", **params)
                stored.update(p["ts_ms"] for p in page["positions"])
                if page["next"] is None:
                    break
                params["from"] = page["positions"][-1]["ts_ms"] + 1
            missing = expected - stored
            assert not missing, f"{device_id}: {len(missing)} acknowledged records lost"
    finally:
        server.stop()
