"""Publish groups of the SQLite queue: concurrent publishes share one row and one commit.

A job that waits on a gate blocks the writer thread, so that every publish started
meanwhile joins the same group. The queue and its file are real.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fleetpulse.errors import QueueError, QueueFullError
from fleetpulse.queue.sqlite import SqliteQueue
from tests.queue.queue_helpers import make_records, make_settings

GATE_TIMEOUT_S = 10.0


@pytest.fixture
async def queue(tmp_path: Path) -> AsyncIterator[SqliteQueue]:
    queue = SqliteQueue(make_settings("sqlite", tmp_path, capacity_records=100))
    await queue.start()
    yield queue
    await queue.close()


def hold_writer(queue: SqliteQueue) -> tuple[threading.Event, asyncio.Future[bool]]:
    """Queue a job that blocks the writer thread until the returned gate is set."""
    writer = queue._writer
    assert writer is not None
    gate = threading.Event()
    gate_job = writer.enqueue(lambda _connection: gate.wait(GATE_TIMEOUT_S), "test gate")
    return gate, gate_job


async def start_publishes(queue: SqliteQueue, counts: list[int]) -> list[asyncio.Task[None]]:
    """Start one publish per count, each of its own device, and let each reach its await."""
    tasks = [
        asyncio.create_task(queue.publish(make_records(f"v{index}", 0, count)))
        for index, count in enumerate(counts)
    ]
    await asyncio.sleep(0)
    return tasks


def row_count(queue: SqliteQueue) -> int:
    with sqlite3.connect(queue._path) as connection:
        count: int = connection.execute("SELECT COUNT(*) FROM batches").fetchone()[0]
    connection.close()
    return count


async def test_concurrent_publishes_share_one_row(queue: SqliteQueue) -> None:
    gate, gate_job = hold_writer(queue)
    tasks = await start_publishes(queue, [1, 2, 3])
    assert not any(task.done() for task in tasks)

    gate.set()
    await asyncio.gather(gate_job, *tasks)

    assert row_count(queue) == 1
    deliveries = await queue.fetch(100, 0.1)
    assert len(deliveries) == 1
    devices = [record.device_id for record in deliveries[0].records]
    assert devices == ["v0", "v1", "v1", "v2", "v2", "v2"]
    assert queue.depth() == 6


async def test_group_capped_at_fetch_size(tmp_path: Path) -> None:
    queue = SqliteQueue(make_settings("sqlite", tmp_path, fetch_max_records=3))
    await queue.start()
    try:
        gate, gate_job = hold_writer(queue)
        tasks = await start_publishes(queue, [2, 1, 2])

        gate.set()
        await asyncio.gather(gate_job, *tasks)

        deliveries = await queue.fetch(100, 0.1)
    finally:
        await queue.close()

    devices = [[record.device_id for record in delivery.records] for delivery in deliveries]
    assert devices == [["v0", "v0", "v1"], ["v2", "v2"]]


async def test_sequential_publishes_separate_rows(queue: SqliteQueue) -> None:
    await queue.publish(make_records("v0", 0, 1))
    await queue.publish(make_records("v1", 0, 1))

    assert row_count(queue) == 2
    assert queue.depth() == 2


async def test_failed_insert_fails_every_caller(queue: SqliteQueue) -> None:
    await queue.publish(make_records("v9", 0, 1))
    writer = queue._writer
    assert writer is not None
    # A real SQLite error for the grouped row only: single-record rows still insert.
    await writer.submit(
        lambda connection: connection.execute(
            "CREATE TRIGGER reject_large BEFORE INSERT ON batches WHEN NEW.record_count > 1 "
            "BEGIN SELECT RAISE(ABORT, 'row rejected by test trigger'); END"
        ),
        "test setup",
    )
    gate, gate_job = hold_writer(queue)
    tasks = await start_publishes(queue, [1, 1, 1])

    gate.set()
    await gate_job
    results = await asyncio.gather(*tasks, return_exceptions=True)

    for result in results:
        assert isinstance(result, QueueError)
        assert "row rejected by test trigger" in str(result)
    assert queue.depth() == 1
    assert row_count(queue) == 1
    await queue.publish(make_records("v8", 0, 1))
    assert queue.depth() == 2


async def test_capacity_checked_per_publish(tmp_path: Path) -> None:
    queue = SqliteQueue(make_settings("sqlite", tmp_path, capacity_records=3))
    await queue.start()
    try:
        gate, gate_job = hold_writer(queue)
        first = asyncio.create_task(queue.publish(make_records("v0", 0, 2)))
        await asyncio.sleep(0)

        with pytest.raises(QueueFullError):
            await queue.publish(make_records("v1", 0, 2))
        gate.set()
        await asyncio.gather(gate_job, first)

        assert queue.depth() == 2
        assert row_count(queue) == 1
    finally:
        await queue.close()


async def test_cancelled_caller_still_committed(queue: SqliteQueue) -> None:
    gate, gate_job = hold_writer(queue)
    tasks = await start_publishes(queue, [1, 1])
    tasks[0].cancel()

    gate.set()
    await gate_job
    await tasks[1]
    with pytest.raises(asyncio.CancelledError):
        await tasks[0]

    deliveries = await queue.fetch(100, 0.1)
    assert [record.device_id for record in deliveries[0].records] == ["v0", "v1"]
    assert queue.depth() == 2


async def test_close_commits_open_group(tmp_path: Path) -> None:
    queue = SqliteQueue(make_settings("sqlite", tmp_path))
    await queue.start()
    gate, gate_job = hold_writer(queue)
    tasks = await start_publishes(queue, [1, 1])

    closing = asyncio.create_task(queue.close())
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(gate_job, closing, *tasks)

    reopened = SqliteQueue(make_settings("sqlite", tmp_path))
    await reopened.start()
    try:
        assert reopened.depth() == 2
    finally:
        await reopened.close()
