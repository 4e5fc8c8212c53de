"""Separate ingest, process and API processes on NATS JetStream and PostgreSQL.

One ``fleetpulse ingest``, three ``fleetpulse process`` and one ``fleetpulse api`` share
a real nats-server and a real PostgreSQL server. A simulated fleet sends a fixed set of
records, and one processor is killed with SIGKILL while the records flow. The same
records then go through ``fleetpulse run`` on SQLite, which is the reference.

The distributed run must store every acknowledged record once and enrich each one
exactly as the reference did. That holds only if every vehicle's records were processed
in order, across the handover of the killed processor's partitions. It must also store
the same events, and stream views and events to a live WebSocket client of the API
process.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as websocket_connect

from fleetpulse.model.timestamps import parse_rfc3339_ms
from fleetpulse.sim.fleet import Fleet
from fleetpulse.sim.options import BehaviourRates, SimulationOptions
from fleetpulse.sim.truth import TruthLog
from tests.e2e.roleproc import RoleProcess, upgrade_database, write_config
from tests.e2e.serverproc import ServerProcess
from tests.nats_server import require_nats_server, start_nats_server
from tests.postgres_server import PostgresMissing, PostgresServer, start_postgres_server

pytestmark = pytest.mark.slow

VEHICLES = 30
DURATION_S = 600
SEED = 11
PARTITIONS = 8
PROCESSORS = 3
# Simulated seconds per request: 10 ticks of 30 vehicles make batches of 300 records.
TICKS_PER_BATCH = 10
# Pause between requests, so the records flow for several seconds and the kill lands
# while the processors have work.
SEND_PAUSE_S = 0.1
KILL_AFTER_SHARE = 0.3
# The kill must come before this share of the batches is sent.
KILL_BEFORE_SHARE = 0.8
MAX_SEND_ATTEMPTS = 20
# The killed processor's partitions move after its leases expire ([nats] lease_ttl_s,
# 6 s by default), and the survivors then process its backlog.
SETTLE_TIMEOUT_S = 60.0
LIVE_TIMEOUT_S = 15.0
ALL_TIME = {"from": 0, "to": 2**62}

# Fields of a stored position that the processing chain computes. They equal the
# reference only when the vehicle's records were processed in the same order.
ENRICHED_FIELDS = ("distance_m", "speed_kmh", "motion", "status", "reasons", "flags")


@dataclass
class SendLog:
    """What the sender saw: acknowledged record keys, and the request count by status."""

    acked: set[tuple[str, int]] = field(default_factory=set)
    statuses: dict[int, int] = field(default_factory=dict)


@dataclass
class LiveLog:
    """Frames a live WebSocket client received, read by a background thread."""

    frames: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""
    stop: threading.Event = field(default_factory=threading.Event)

    def event_ids(self) -> set[int]:
        return {
            event["id"]
            for frame in self.frames
            if frame["type"] == "events"
            for event in frame["events"]
        }

    def vehicle_ids(self) -> set[str]:
        return {
            view["device_id"]
            for frame in self.frames
            if frame["type"] == "vehicles"
            for view in frame["vehicles"]
        }


def _fleet_batches() -> list[bytes]:
    """Encode the simulated fleet's records as JSON request bodies, in device-time order."""
    options = SimulationOptions(
        vehicles=VEHICLES,
        duration_s=DURATION_S,
        seed=SEED,
        bad_share=0.0,
        duplicate_share=0.0,
        truth_path=None,
        # Outages make devices send buffered records late, which the processor flags
        # "late". Without them, an out-of-order record can only come from the pipeline.
        behaviours=BehaviourRates(outage_per_hour=0.0),
    )
    start_ms = int(time.time() * 1000) - 2 * 3_600_000
    fleet = Fleet(options, start_ms, TruthLog(None))
    encoder = msgspec.json.Encoder()
    batches: list[bytes] = []
    pending: list[Any] = []
    for tick, (_, records) in enumerate(fleet.ticks(), start=1):
        pending.extend(records)
        if tick % TICKS_PER_BATCH == 0:
            batches.append(encoder.encode(pending))
            pending = []
    if pending:
        batches.append(encoder.encode(pending))
    return batches


def _send(url: str, batches: list[bytes], log: SendLog, on_batch: Any = None) -> None:
    """POST the batches in order, retry 503 responses and record what was acknowledged."""
    headers = {"Content-Type": "application/json"}
    with httpx.Client(timeout=30) as client:
        for index, body in enumerate(batches):
            if on_batch is not None:
                on_batch(index)
            for _ in range(MAX_SEND_ATTEMPTS):
                response = client.post(url + "/v1/telemetry", content=body, headers=headers)
                log.statuses[response.status_code] = log.statuses.get(response.status_code, 0) + 1
                if response.status_code != 503:
                    break
                time.sleep(float(response.headers.get("Retry-After", "1")))
            assert response.status_code == 202, f"batch {index}: {response.text}"
            assert response.json()["rejected"] == 0, response.text
            for record in json.loads(body):
                log.acked.add((record["device_id"], _ts_ms(record["ts"])))
            time.sleep(SEND_PAUSE_S)


def _ts_ms(ts: int | str) -> int:
    # The simulator sends some devices' times as RFC 3339 text, as real devices do.
    return ts if isinstance(ts, int) else parse_rfc3339_ms(ts)


def _read_live(url: str, live: LiveLog) -> None:
    ws_url = url.replace("http://", "ws://", 1) + "/v1/live?interval_s=0.2"
    try:
        with websocket_connect(ws_url, open_timeout=10) as websocket:
            while not live.stop.is_set():
                try:
                    raw = websocket.recv(timeout=0.5)
                except TimeoutError:
                    continue
                live.frames.append(json.loads(raw))
    except (ConnectionClosed, OSError) as exc:
        live.error = repr(exc)


def _positions(get: Any, device_id: str) -> list[dict[str, Any]]:
    positions: list[dict[str, Any]] = []
    params: dict[str, Any] = {**ALL_TIME, "limit": 10_000}
    while True:
        page = get(f"/v1/vehicles/{device_id}/positions", **params)
        positions.extend(page["positions"])
        if page["next"] is None:
            return positions
        params["from"] = page["positions"][-1]["ts_ms"] + 1


def _events(get: Any) -> list[dict[str, Any]]:
    page = get("/v1/events", **ALL_TIME, limit=10_000)
    assert page["count"] < 10_000, "more events than one page; page with after_id"
    events: list[dict[str, Any]] = page["events"]
    return events


def _stored_count(get: Any, device_ids: set[str]) -> int:
    return sum(len(_positions(get, device_id)) for device_id in device_ids)


def _event_key(event: dict[str, Any]) -> tuple[str, str, int, str, str]:
    details = json.dumps(event["details"], sort_keys=True)
    return (event["device_id"], event["type"], event["ts_ms"], event["severity"], details)


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    try:
        server = start_postgres_server(tmp_path_factory.mktemp("postgres"))
    except PostgresMissing as error:
        if os.environ.get("CI"):
            pytest.fail(str(error))
        pytest.skip(str(error))
    try:
        yield server
    finally:
        server.stop()


def test_distributed_roles_survive_processor_kill(tmp_path: Path, postgres: PostgresServer) -> None:
    require_nats_server()
    batches = _fleet_batches()
    kill_at = int(len(batches) * KILL_AFTER_SHARE)
    dsn = postgres.create_database_sync()

    with start_nats_server(tmp_path) as nats:
        config = write_config(tmp_path / "fleetpulse.toml", nats.url, dsn, PARTITIONS)
        upgrade_database(config)
        ingest = RoleProcess("ingest", config, tmp_path)
        processors = [
            RoleProcess("process", config, tmp_path, f"process-{index}")
            for index in range(PROCESSORS)
        ]
        api = RoleProcess("api", config, tmp_path)
        roles = [ingest, *processors, api]
        victim = processors[1]
        live = LiveLog()
        try:
            for role in roles:
                role.start()
            reader = threading.Thread(target=_read_live, args=(api.url, live), daemon=True)
            reader.start()
            killed_at: list[float] = []
            killed_at_batch: list[int] = []

            def kill_mid_run(index: int) -> None:
                # The processors divide the partitions within a few seconds of their
                # start, so the victim is killed once it has processed records.
                if killed_at or index < kill_at:
                    return
                if victim.metric("fleetpulse_records_processed_total") > 0:
                    victim.kill()
                    killed_at.append(time.monotonic())
                    killed_at_batch.append(index)

            sent = SendLog()
            _send(ingest.url, batches, sent, kill_mid_run)
            assert killed_at, "the victim processed no record before the last batch"
            assert killed_at_batch[0] < len(batches) * KILL_BEFORE_SHARE, killed_at_batch
            assert not victim.alive()

            device_ids = {device_id for device_id, _ in sent.acked}
            deadline = time.monotonic() + SETTLE_TIMEOUT_S
            stored = _stored_count(api.get, device_ids)
            while stored < len(sent.acked) and time.monotonic() < deadline:
                time.sleep(1.0)
                stored = _stored_count(api.get, device_ids)
            settled_s = time.monotonic() - killed_at[0]
            print(f"records stored {settled_s:.1f} s after the kill: {stored}/{len(sent.acked)}")

            distributed = {device_id: _positions(api.get, device_id) for device_id in device_ids}
            distributed_events = _events(api.get)

            stored_ids = {event["id"] for event in distributed_events}
            live_deadline = time.monotonic() + LIVE_TIMEOUT_S
            while not stored_ids <= live.event_ids() and time.monotonic() < live_deadline:
                time.sleep(0.2)
            live.stop.set()
            reader.join(timeout=5)
            for survivor in (processors[0], processors[2]):
                assert survivor.alive(), survivor.log_tail()
                health = survivor.get("/healthz")
                assert health["status"] == "ok", health
        finally:
            live.stop.set()
            exit_codes = {role.name: role.stop() for role in roles}

    reference_server = ServerProcess(tmp_path / "reference-data").start()
    try:
        _send(reference_server.url, batches, SendLog())
        reference_server.wait_drained()
        reference = {
            device_id: _positions(reference_server.get, device_id) for device_id in device_ids
        }
        reference_events = _events(reference_server.get)
    finally:
        reference_server.stop()

    # SIGTERM stops every surviving role through its close(), which exits with 0.
    assert exit_codes.pop(victim.name) == -9
    assert exit_codes == dict.fromkeys(exit_codes, 0)

    # Every acknowledged record is stored, and stored once.
    for device_id, positions in distributed.items():
        stamps = [position["ts_ms"] for position in positions]
        assert len(stamps) == len(set(stamps)), f"{device_id}: a record is stored twice"
        expected = sorted(ts for vehicle, ts in sent.acked if vehicle == device_id)
        assert stamps == expected, f"{device_id}: stored records differ from the acknowledged"

    # Per-vehicle order: no record came after a newer one of its vehicle, and every
    # record was enriched as in the single-process reference.
    for device_id, positions in distributed.items():
        late = [p["ts_ms"] for p in positions if "late" in p.get("flags", [])]
        assert late == [], f"{device_id}: records processed out of order: {late[:5]}"
        reference_positions = reference[device_id]
        assert len(positions) == len(reference_positions), device_id
        for got, want in zip(positions, reference_positions, strict=True):
            for name in ENRICHED_FIELDS:
                assert got.get(name) == want.get(name), (
                    f"{device_id} ts_ms={got['ts_ms']}: {name} {got.get(name)!r} != "
                    f"reference {want.get(name)!r}"
                )

    # Events: the same set as the reference, none lost and none doubled.
    assert reference_events, "the reference run produced no event; the fleet is too quiet"
    distributed_keys = [_event_key(event) for event in distributed_events]
    assert len(distributed_keys) == len(set(distributed_keys)), "an event is stored twice"
    assert sorted(distributed_keys) == sorted(_event_key(event) for event in reference_events)

    # The API process streamed what the processors stored.
    assert live.frames, f"the live client received no frame: {live.error}"
    assert live.frames[0]["type"] == "hello"
    assert live.vehicle_ids() == device_ids
    missing = stored_ids - live.event_ids()
    assert not missing, f"{len(missing)} stored events never reached the live client"
