"""Behaviour specific to the SQLite queue: crashes, a full disk and the file's schema."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fleetpulse.errors import QueueError
from fleetpulse.queue.base import Delivery
from fleetpulse.queue.sqlite import QUEUE_FILE, SCHEMA_VERSION, SqliteQueue
from tests.queue.queue_helpers import make_records, make_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
KILL_ROUNDS = 3
# Acknowledged publishes to wait for before the kill, so the kill lands mid-stream.
LINES_BEFORE_KILL = 40
# Kills a child that hangs, so a broken queue fails the test instead of stalling it.
CHILD_TIMEOUT_S = 20.0


async def fetch_all(queue: SqliteQueue) -> list[Delivery]:
    deliveries: list[Delivery] = []
    for _ in range(100_000):
        batch = await queue.fetch(5_000, 0.01)
        if not batch:
            return deliveries
        deliveries.extend(batch)
    raise AssertionError("fetch never ran dry")


def run_and_kill_publisher(data_dir: Path, round_no: int) -> set[tuple[str, int]]:
    """Run the child publisher, SIGKILL it mid-stream and return the acknowledged record keys."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.queue.crash_publisher", str(data_dir), str(round_no)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(CHILD_TIMEOUT_S, child.kill)
    watchdog.start()
    try:
        assert child.stdout is not None
        lines = [child.stdout.readline()]
        while len(lines) <= LINES_BEFORE_KILL and lines[-1]:
            lines.append(child.stdout.readline())
        child.send_signal(signal.SIGKILL)
        # Lines already in the pipe were printed after their publish returned.
        lines.append(child.stdout.read())
        child.wait()
    finally:
        watchdog.cancel()
        if child.poll() is None:
            child.kill()
            child.wait()

    assert lines[0] == "started\n"
    acknowledged: set[tuple[str, int]] = set()
    # A line cut off by the kill has no newline and is not counted.
    complete = "".join(lines[1:]).split("\n")[:-1]
    for line in complete:
        device_id, first_ts_ms, count = line.split()
        for ts_ms in range(int(first_ts_ms), int(first_ts_ms) + int(count)):
            acknowledged.add((device_id, ts_ms))
    assert len(acknowledged) >= LINES_BEFORE_KILL
    return acknowledged


async def test_crash_keeps_acknowledged_publishes(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = make_settings("sqlite", data_dir)
    acked_earlier: set[tuple[str, int]] = set()

    for round_no in range(KILL_ROUNDS):
        acknowledged = run_and_kill_publisher(data_dir, round_no)

        queue = SqliteQueue(settings)
        await queue.start()
        deliveries = await fetch_all(queue)
        delivered = {(r.device_id, r.ts_ms) for d in deliveries for r in d.records}
        assert acknowledged <= delivered, f"round {round_no}: acknowledged publishes lost"
        assert not delivered & acked_earlier, f"round {round_no}: acked records came back"
        assert queue.depth() == len(delivered)

        await queue.ack(deliveries)
        acked_earlier |= delivered
        await queue.close()

    queue = SqliteQueue(settings)
    await queue.start()
    try:
        assert await fetch_all(queue) == []
        assert queue.depth() == 0
    finally:
        await queue.close()


async def test_full_disk_raises(tmp_path: Path) -> None:
    queue = SqliteQueue(make_settings("sqlite", tmp_path))
    await queue.start()
    try:
        await queue.publish(make_records("v1", 0, 1))
        writer = queue._writer
        assert writer is not None
        # A page limit at the current size makes SQLite fail as on a full disk.
        pages = await writer.submit(
            lambda c: c.execute("PRAGMA page_count").fetchone()[0], "test setup"
        )
        await writer.submit(lambda c: c.execute(f"PRAGMA max_page_count = {pages}"), "test setup")

        with pytest.raises(QueueError, match="database or disk is full") as caught:
            await queue.publish(make_records("v1", 1, 2_000))

        assert isinstance(caught.value.__cause__, sqlite3.Error)
        assert queue.depth() == 1
    finally:
        await queue.close()


async def test_newer_schema_rejected(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / QUEUE_FILE) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    queue = SqliteQueue(make_settings("sqlite", tmp_path))

    with pytest.raises(QueueError, match="upgrade fleetpulse"):
        await queue.start()
    await queue.close()


async def test_start_creates_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "a" / "b"
    queue = SqliteQueue(make_settings("sqlite", data_dir))

    await queue.start()
    await queue.close()

    assert (data_dir / QUEUE_FILE).is_file()


async def test_offsets_never_reused(tmp_path: Path) -> None:
    queue = SqliteQueue(make_settings("sqlite", tmp_path))
    await queue.start()
    try:
        await queue.publish(make_records("v1", 0, 1))
        first = await fetch_all(queue)
        await queue.ack(first)

        await queue.publish(make_records("v1", 1, 1))
        second = await fetch_all(queue)
    finally:
        await queue.close()

    assert second[0].offset > first[-1].offset
