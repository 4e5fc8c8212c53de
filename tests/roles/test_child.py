"""The processor child of ``fleetpulse run``: its own process, restarted, and merged metrics."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest
from prometheus_client.parser import text_string_to_metric_families

from fleetpulse.config import Settings, load_settings
from fleetpulse.process.engine import Processor
from fleetpulse.queue.sqlite import SqliteQueue
from fleetpulse.roles import child as child_module
from fleetpulse.roles.child import ChildProcessRole, ProcessorChildError
from fleetpulse.server import EmbeddedServer
from fleetpulse.store.base import ProcessedBatch
from tests.e2e.serverproc import ServerProcess
from tests.queue.queue_helpers import make_records

WAIT_S = 20.0
CHILD_MODULE = b"fleetpulse.roles.child_main"


def _settings(data_dir: Path, child_process: bool = True) -> Settings:
    return load_settings(
        environ={},
        overrides={
            "server": {"data_dir": str(data_dir), "port": 0},
            "process": {"child_process": child_process},
        },
    )


def _body(device_id: str, count: int, start_ms: int) -> bytes:
    records = [
        {
            "device_id": device_id,
            "ts": start_ms + index * 1000,
            "lat": 48.137 + index * 1e-4,
            "lon": 11.575,
            "speed_kmh": 40.0,
            "ignition": index % 2 == 0,
        }
        for index in range(count)
    ]
    return msgspec.json.encode(records)


async def _post(server: EmbeddedServer, device_id: str, count: int, start_ms: int) -> None:
    result = await server.ingest.ingest_body(
        _body(device_id, count, start_ms), "application/json", "http"
    )
    assert result.accepted == count, result


async def _stored_positions(server: EmbeddedServer, device_id: str) -> int:
    positions = await server.store.positions(device_id, 0, 2**62, 100_000)
    return len(positions)


def _cmdline(pid: int) -> list[bytes]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")


def _child_pids(pid: int) -> list[int]:
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children.extend(int(child) for child in text)
    return children


def _is_alive(pid: int) -> bool:
    """Return True while the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[EmbeddedServer]:
    server = EmbeddedServer(_settings(tmp_path / "data"))
    await server.start()
    try:
        yield server
    finally:
        await server.close()


def _role(server: EmbeddedServer) -> ChildProcessRole:
    role = server.process_role
    assert isinstance(role, ChildProcessRole)
    return role


async def test_child_processes_in_own_process(server: EmbeddedServer) -> None:
    role = _role(server)
    assert role.pid is not None
    assert role.pid != os.getpid()
    assert CHILD_MODULE in _cmdline(role.pid)

    start_ms = int(time.time() * 1000) - 600_000
    await _post(server, "van-1", 40, start_ms)
    assert await server.processor.drain(WAIT_S)

    assert await _stored_positions(server, "van-1") == 40
    assert server.queue.depth() == 0
    assert server.context.health_problems() == []


async def test_child_feeds_live_bus(server: EmbeddedServer) -> None:
    published: list[ProcessedBatch] = []
    hub_publish = server.live.publish

    def record_publish(batch: ProcessedBatch) -> None:
        published.append(batch)
        hub_publish(batch)

    # The bus calls its handler, the hub's publish, with each stored batch.
    server.bus.subscribe(record_publish)
    start_ms = int(time.time() * 1000) - 600_000
    await _post(server, "van-2", 10, start_ms)
    assert await server.processor.drain(WAIT_S)

    views = [snapshot.view for batch in published for snapshot in batch.vehicles]
    assert [view.device_id for view in views][-1:] == ["van-2"]
    events = [event for batch in published for event in batch.events]
    assert any(event.device_id == "van-2" for event in events)


async def test_child_killed_restarts_without_loss(server: EmbeddedServer) -> None:
    role = _role(server)
    first_pid = role.pid
    assert first_pid is not None
    # Two hours back: the 6,000 records of one second each all lie in the past.
    start_ms = int(time.time() * 1000) - 7_200_000
    batches = 30
    per_batch = 200

    for batch_no in range(batches):
        await _post(
            server, f"kill-{batch_no % 3}", per_batch, start_ms + batch_no * per_batch * 1000
        )
        if batch_no == 10:
            os.kill(first_pid, signal.SIGKILL)

    # The death is reported until the restart, which comes after 1 s.
    deadline = time.monotonic() + WAIT_S
    seen_problem = False
    while role.restarts == 0 and time.monotonic() < deadline:
        seen_problem = seen_problem or any(
            "exited" in problem for problem in server.context.health_problems()
        )
        await asyncio.sleep(0.02)
    assert role.restarts == 1
    assert seen_problem
    assert role.pid is not None
    assert role.pid != first_pid
    assert not _is_alive(first_pid)

    assert await server.processor.drain(WAIT_S)
    stored = 0
    for vehicle in range(3):
        stored += await _stored_positions(server, f"kill-{vehicle}")
    assert stored == batches * per_batch
    assert server.queue.depth() == 0
    assert server.context.health_problems() == []


async def test_metrics_merge_child_families(server: EmbeddedServer) -> None:
    start_ms = int(time.time() * 1000) - 600_000
    before = await _metrics(server)
    await _post(server, "van-3", 25, start_ms)
    assert await server.processor.drain(WAIT_S)

    families = await _metrics(server)
    assert len(families) == len({family.name for family in families})
    values = _sample_values(families)

    processed = values[("fleetpulse_records_processed_total", ())]
    assert (
        processed - _sample_values(before).get(("fleetpulse_records_processed_total", ()), 0) == 25
    )
    assert values[("fleetpulse_queue_depth_records", ())] == 0
    assert values[("fleetpulse_vehicles_tracked", ())] >= 1
    stages = {
        dict(labels)["stage"]
        for (name, labels) in values
        if name == "fleetpulse_stage_seconds_count"
    }
    assert {"validate", "enqueue", "fetch", "process", "store", "ack"} <= stages


async def test_stopped_child_is_a_health_problem(
    server: EmbeddedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(child_module, "UNRESPONSIVE_AFTER_S", 1.5)
    role = _role(server)
    pid = role.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + WAIT_S
        while not server.context.health_problems():
            assert time.monotonic() < deadline, "a stopped child never became a health problem"
            await asyncio.sleep(0.1)
        problems = server.context.health_problems()
        assert any(f"pid {pid} has sent nothing" in problem for problem in problems), problems

        # The first scrape waits for the child once; later ones return at once.
        await _metrics(server)
        started = time.monotonic()
        await _metrics(server)
        assert time.monotonic() - started < child_module.METRICS_TIMEOUT_S
    finally:
        os.kill(pid, signal.SIGCONT)

    deadline = time.monotonic() + WAIT_S
    while server.context.health_problems():
        assert time.monotonic() < deadline, server.context.health_problems()
        await asyncio.sleep(0.1)
    assert role.pid == pid


async def _metrics(server: EmbeddedServer) -> list[object]:
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fleetpulse") as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200
    return list(text_string_to_metric_families(answer.text))


def _sample_values(families: list[object]) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    values = {}
    for family in families:
        for sample in family.samples:  # type: ignore[attr-defined]
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return values


async def test_child_start_failure_raises_its_error(tmp_path: Path) -> None:
    settings = _settings(tmp_path / "data")
    (tmp_path / "data").mkdir()
    # A folder where the lock file belongs: the child cannot open it.
    (tmp_path / "data" / "processor.lock").mkdir()
    queue = SqliteQueue(settings)
    await queue.start()
    role = ChildProcessRole(settings, queue, lambda batch: None)
    try:
        with pytest.raises(ProcessorChildError, match="processor.lock"):
            await role.start()
    finally:
        await role.close()
        await queue.close()


async def test_queue_counts_rows_acked_elsewhere(tmp_path: Path) -> None:
    # The parent's check after a child died during an ack: which rows are still there.
    settings = _settings(tmp_path / "data")
    (tmp_path / "data").mkdir()
    publisher = SqliteQueue(settings)
    consumer = SqliteQueue(settings)
    await publisher.start()
    await consumer.start()
    try:
        await publisher.publish(make_records("van-6", 1_000, 3))
        await publisher.publish(make_records("van-6", 10_000, 2))
        deliveries = await consumer.fetch(1, 1.0)
        assert len(deliveries) == 1
        offsets = [deliveries[0].offset, deliveries[0].offset + 1]
        assert await publisher.count_rows(offsets) == 2

        await consumer.ack(deliveries)

        assert await publisher.count_rows(offsets) == 1
        assert publisher.depth() == 5
        publisher.add_external_acks(3)
        assert publisher.depth() == 2
    finally:
        await consumer.close()
        await publisher.close()


async def test_child_process_off_keeps_processor(tmp_path: Path) -> None:
    server = EmbeddedServer(_settings(tmp_path / "data", child_process=False))
    await server.start()
    try:
        assert isinstance(server.processor, Processor)
        await _post(server, "van-4", 5, int(time.time() * 1000) - 600_000)
        assert await server.processor.drain(WAIT_S)
        assert await _stored_positions(server, "van-4") == 5
    finally:
        await server.close()


@pytest.mark.slow
def test_parent_sigkill_takes_child_down(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir).start()
    try:
        assert server.proc is not None
        children = [pid for pid in _child_pids(server.proc.pid) if CHILD_MODULE in _cmdline(pid)]
        assert len(children) == 1, children
        child_pid = children[0]

        server.kill()
        deadline = time.monotonic() + 10.0
        while _is_alive(child_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _is_alive(child_pid), f"processor child {child_pid} outlived its parent"
    finally:
        server.kill()

    # A new server on the same folder gets a working child.
    again = ServerProcess(data_dir).start()
    try:
        start_ms = int(time.time() * 1000) - 600_000
        records = msgspec.json.decode(_body("van-5", 20, start_ms))
        answer = httpx.post(again.url + "/v1/telemetry", json=records, timeout=10)
        assert answer.status_code == 202, answer.text
        again.wait_drained(timeout_s=WAIT_S)
        assert again.count_positions("van-5") == 20
    finally:
        assert again.stop() == 0
