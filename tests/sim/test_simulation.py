"""simulate() end to end against a small ingest server on 127.0.0.1."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fleetpulse.sim import ServerUnreachableError, SimulationOptions, simulate
from fleetpulse.sim.progress import Progress
from fleetpulse.sim.truth import read_truth
from tests.sim.conftest import IngestStub


def _options(stub: IngestStub, tmp_path: Path, **changes: object) -> SimulationOptions:
    settings: dict[str, object] = {
        "vehicles": 5,
        "duration_s": 300.0,
        "speed": math.inf,
        "url": stub.url,
        "seed": 4,
        "bad_share": 0.05,
        "duplicate_share": 0.01,
        "batch_size": 200,
        "truth_path": str(tmp_path / "truth.jsonl"),
    }
    settings.update(changes)
    return SimulationOptions(**settings)  # type: ignore[arg-type]


async def test_simulate_counts_match_truth(ingest_stub: IngestStub, tmp_path: Path) -> None:
    options = _options(ingest_stub, tmp_path)

    summary = await simulate(options)

    entries, truth_summary = read_truth(options.truth_path or "")
    assert truth_summary is not None
    sent = summary.records_generated + summary.bad_records_injected + summary.duplicates_injected
    assert summary.records_generated == 5 * 300
    assert summary.records_sent == sent
    assert summary.accepted == summary.records_generated + summary.duplicates_injected
    assert summary.rejected == summary.bad_records_injected
    assert len(ingest_stub.rejected_reasons) == summary.bad_records_injected
    assert truth_summary.records_sent == summary.records_sent
    assert truth_summary.bad_records == summary.bad_records_injected
    assert truth_summary.duplicates == summary.duplicates_injected
    assert len(entries) == sum(truth_summary.entries_by_type.values())


async def test_simulate_batches_capped(ingest_stub: IngestStub, tmp_path: Path) -> None:
    await simulate(_options(ingest_stub, tmp_path, batch_size=64))

    assert max(ingest_stub.batch_sizes) == 64


async def test_simulate_max_speed_never_future(ingest_stub: IngestStub, tmp_path: Path) -> None:
    await simulate(_options(ingest_stub, tmp_path))

    assert ingest_stub.accepted
    assert all(item.ts_ms <= item.received_ms for item in ingest_stub.accepted)


async def test_simulate_paced_never_future(ingest_stub: IngestStub, tmp_path: Path) -> None:
    # 120 s of device time at 100x: about 1.2 s of wall time.
    options = _options(ingest_stub, tmp_path, duration_s=120.0, speed=100.0, vehicles=3)

    summary = await simulate(options)

    assert summary.accepted == 3 * 120 + summary.duplicates_injected
    assert all(item.ts_ms <= item.received_ms for item in ingest_stub.accepted)


async def test_simulate_keeps_device_order(ingest_stub: IngestStub, tmp_path: Path) -> None:
    await simulate(_options(ingest_stub, tmp_path, vehicles=12, batch_size=50, concurrency=4))

    arrivals: dict[str, list[int]] = {}
    for item in ingest_stub.accepted:
        arrivals.setdefault(item.record.device_id, []).append(item.ts_ms)
    assert len(arrivals) == 12
    for device_id, stamps in arrivals.items():
        assert stamps == sorted(stamps), device_id


async def test_simulate_retries_503(ingest_stub: IngestStub, tmp_path: Path) -> None:
    ingest_stub.fail_first = 3

    summary = await simulate(_options(ingest_stub, tmp_path, concurrency=1))

    assert summary.retries == 3
    assert summary.accepted == summary.records_generated + summary.duplicates_injected


async def test_simulate_retries_429(ingest_stub: IngestStub, tmp_path: Path) -> None:
    ingest_stub.fail_first = 2
    ingest_stub.fail_status = 429
    ingest_stub.retry_after = None

    summary = await simulate(_options(ingest_stub, tmp_path, concurrency=1))

    assert summary.retries == 2
    assert summary.rejected == summary.bad_records_injected


async def test_simulate_retries_dropped_connection(ingest_stub: IngestStub, tmp_path: Path) -> None:
    ingest_stub.drop_first = 2

    summary = await simulate(_options(ingest_stub, tmp_path, concurrency=1))

    assert summary.retries >= 2
    assert summary.accepted == summary.records_generated + summary.duplicates_injected


async def test_simulate_reports_progress(ingest_stub: IngestStub, tmp_path: Path) -> None:
    seen: list[Progress] = []

    summary = await simulate(_options(ingest_stub, tmp_path), seen.append)

    assert seen
    assert seen[-1].records_sent == summary.records_sent
    assert seen[-1].done_s == seen[-1].total_s


async def test_simulate_unreachable_server(closed_port_url: str, tmp_path: Path) -> None:
    options = SimulationOptions(url=closed_port_url, truth_path=str(tmp_path / "truth.jsonl"))

    with pytest.raises(ServerUnreachableError, match="is `fleetpulse run` started"):
        await simulate(options)

    assert not (tmp_path / "truth.jsonl").exists()
