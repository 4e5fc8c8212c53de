"""SIGKILL of nats-server or of the PostgreSQL postmaster while records flow.

Each test runs ``fleetpulse ingest`` and one ``fleetpulse process`` on a real nats-server
and a real PostgreSQL server that the test starts. While a client sends records, it
kills one of the two servers with SIGKILL and restarts it on the same port and data
directory. The client behaves like a device: it sends a request again after a ``503``
or a lost connection until it gets ``202``. At the end every acknowledged record must
be in the PostgreSQL store exactly once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import pytest

from tests.e2e.roleproc import RoleProcess, upgrade_database, write_config
from tests.nats_server import NatsServer, require_nats_server, start_nats_server
from tests.postgres_server import (
    PostgresMissing,
    PostgresServer,
    _server_user,
    _wait_ready,
    find_postgres_bin,
    start_postgres_server,
)

pytestmark = pytest.mark.slow

VEHICLES = 8
BATCH_RECORDS = 100
PARTITIONS = 4
SEND_PAUSE_S = 0.05
# Each batch's records get their own millisecond stamps, within the hour before now.
MAX_BATCHES = 2_000
# Short NATS timeouts: a publish in progress when nats-server dies fails after about
# 3 s (3 attempts of 1 s) instead of the default 15 s.
NATS_OVERRIDES: dict[str, dict[str, Any]] = {
    "nats": {"request_timeout_s": 1.0, "connect_timeout_s": 1.0},
}
# Batches acknowledged before the kill, and again after the restart, before the sender stops.
BATCHES_BEFORE_KILL = 10
BATCHES_AFTER_RESTART = 10
# Batches acknowledged while the processor is paused just before nats-server is killed.
# The processor has asked for at most PAUSED_PULL_BATCH messages per partition, so the
# rest of them wait in the stream's files, not yet delivered, when nats-server dies.
BATCHES_PAUSED = 5
PAUSED_PULL_BATCH = 2
# The killed server stays down this long, longer than one publish with all its attempts.
DOWN_S = 8.0
# Bounds of the waits: records flowing, the client recovering, the store catching up.
FLOW_TIMEOUT_S = 30.0
STORED_TIMEOUT_S = 40.0
# Old PostgreSQL backends exit when they notice that the postmaster died. A restart
# before they have exited fails with "pre-existing shared memory block".
POSTGRES_RESTART_TIMEOUT_S = 20.0


@dataclass
class Attempt:
    """One POST of the sender: when it started and ended (monotonic s) and its status."""

    batch: int
    started: float
    ended: float
    status: int | None
    error_code: str = ""


@dataclass
class Sender:
    """A client thread that sends numbered batches and sends a batch again until 202."""

    url: str
    start_ms: int
    attempts: list[Attempt] = field(default_factory=list)
    acked: set[tuple[str, int]] = field(default_factory=set)
    sent: set[tuple[str, int]] = field(default_factory=set)
    acked_batches: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    # Set when the test ends early: the sender then gives up the batch in progress.
    abandon: threading.Event = field(default_factory=threading.Event)
    failure: str = ""
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="sender", daemon=True)
        self.thread.start()

    def finish(self) -> None:
        """Stop after the batch in progress is acknowledged, and wait for the thread."""
        self.stop.set()
        assert self.thread is not None
        self.thread.join(timeout=60)
        assert not self.thread.is_alive(), "the sender did not stop within 60 s"

    def wait_for_acked(self, batches: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self.acked_batches < batches:
            assert not self.failure, self.failure
            assert time.monotonic() < deadline, (
                f"only {self.acked_batches} of {batches} batches acknowledged in {timeout_s} s"
            )
            time.sleep(0.1)

    def _run(self) -> None:
        try:
            with httpx.Client(timeout=10) as client:
                for batch_no in range(MAX_BATCHES):
                    if self.stop.is_set() or self.abandon.is_set():
                        return
                    self._send_until_acked(client, batch_no)
                    time.sleep(SEND_PAUSE_S)
            self.failure = f"the sender ran out of its {MAX_BATCHES} batches"
        except Exception as exc:  # The test thread reads and reports self.failure.
            self.failure = f"the sender failed: {exc!r}"

    def _send_until_acked(self, client: httpx.Client, batch_no: int) -> None:
        batch = _batch(self.start_ms, batch_no)
        keys = {(str(record["device_id"]), int(record["ts"])) for record in batch}
        while not self.abandon.is_set():
            self.sent |= keys
            started = time.monotonic()
            try:
                response = client.post(self.url + "/v1/telemetry", json=batch)
            except httpx.TransportError as exc:
                self.attempts.append(Attempt(batch_no, started, time.monotonic(), None, repr(exc)))
                time.sleep(0.5)
                continue
            ended = time.monotonic()
            if response.status_code == 202:
                assert response.json()["accepted"] == BATCH_RECORDS, response.text
                self.attempts.append(Attempt(batch_no, started, ended, 202))
                self.acked |= keys
                self.acked_batches += 1
                return
            code = ""
            if response.headers.get("content-type", "").startswith("application/json"):
                code = str(response.json().get("error", {}).get("code", ""))
            self.attempts.append(Attempt(batch_no, started, ended, response.status_code, code))
            time.sleep(float(response.headers.get("Retry-After", "1")))


def _batch(start_ms: int, batch_no: int) -> list[dict[str, Any]]:
    records = []
    for i in range(BATCH_RECORDS):
        records.append(
            {
                "device_id": f"kill-{i % VEHICLES}",
                "ts": start_ms + batch_no * BATCH_RECORDS + i,
                "lat": 48.1 + (batch_no * BATCH_RECORDS + i) * 1e-6,
                "lon": 11.5,
                "speed_kmh": 30.0,
                "ignition": True,
            }
        )
    return records


async def _stored_keys_async(dsn: str) -> list[tuple[str, int]]:
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT device_id, ts_ms FROM records")
    finally:
        await connection.close()
    return [(row["device_id"], row["ts_ms"]) for row in rows]


def _stored_keys(dsn: str) -> list[tuple[str, int]]:
    """Return (device_id, ts_ms) of every stored record, one entry per row."""
    return asyncio.run(_stored_keys_async(dsn))


def _wait_stored(dsn: str, expected: set[tuple[str, int]]) -> list[tuple[str, int]]:
    deadline = time.monotonic() + STORED_TIMEOUT_S
    while True:
        stored = _stored_keys(dsn)
        if expected <= set(stored) or time.monotonic() > deadline:
            return stored
        time.sleep(0.5)


async def _stream_messages_async(url: str, stream: str) -> int:
    client = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        info = await client.jetstream().stream_info(stream)
    finally:
        await client.close()
    return int(info.state.messages)


def _stream_messages(url: str, stream: str = "fleetpulse-records") -> int:
    """Return the number of messages in the stream, which are the unacknowledged ones."""
    return asyncio.run(_stream_messages_async(url, stream))


async def _undelivered_messages_async(url: str, stream: str) -> int:
    client = await nats.connect(url, connect_timeout=2, allow_reconnect=False)
    try:
        consumers = await client.jetstream().consumers_info(stream)
    finally:
        await client.close()
    return sum(int(consumer.num_pending or 0) for consumer in consumers)


def _undelivered_messages(url: str, stream: str = "fleetpulse-records") -> int:
    """Return the messages that the stream's consumers have not delivered yet."""
    return asyncio.run(_undelivered_messages_async(url, stream))


def _wait_stream_empty(url: str) -> int:
    """Wait until the processor acknowledged every message, and return the number left."""
    deadline = time.monotonic() + STORED_TIMEOUT_S
    messages = _stream_messages(url)
    while messages > 0 and time.monotonic() < deadline:
        time.sleep(0.5)
        messages = _stream_messages(url)
    return messages


def _assert_stored_once(stored: list[tuple[str, int]], sender: Sender) -> None:
    stored_set = set(stored)
    missing = sender.acked - stored_set
    assert not missing, (
        f"{len(missing)} acknowledged records not stored, e.g. {sorted(missing)[:3]}"
    )
    assert len(stored) == len(stored_set), (
        f"{len(stored) - len(stored_set)} records stored more than once"
    )
    unknown = stored_set - sender.sent
    assert not unknown, f"{len(unknown)} stored records were never sent, e.g. {sorted(unknown)[:3]}"


def _wait_processed(processor: RoleProcess) -> None:
    deadline = time.monotonic() + FLOW_TIMEOUT_S
    while processor.metric("fleetpulse_records_processed_total") == 0:
        assert time.monotonic() < deadline, f"the processor stored no record in {FLOW_TIMEOUT_S} s"
        time.sleep(0.2)


def _count_statuses(sender: Sender) -> dict[int | None, int]:
    counts: dict[int | None, int] = {}
    for attempt in sender.attempts:
        counts[attempt.status] = counts.get(attempt.status, 0) + 1
    return counts


@pytest.fixture
def postgres(tmp_path: Path) -> Iterator[PostgresServer]:
    try:
        folder = tmp_path / "postgres-cluster"
        folder.mkdir()
        server = start_postgres_server(folder)
    except PostgresMissing as error:
        if os.environ.get("CI"):
            pytest.fail(str(error))
        pytest.skip(str(error))
    # A test that restarts the server replaces server.process, and stop() stops the new one.
    try:
        yield server
    finally:
        server.stop()


def _kill_postgres(server: PostgresServer) -> None:
    """SIGKILL the postmaster by PID, as a crash of the database host would."""
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)


def _restart_postgres(server: PostgresServer) -> None:
    """Start postgres again on the server's data directory and port, in place.

    Crash recovery replays the WAL. Retries while old backends still hold the shared
    memory of the killed postmaster.
    """
    bin_dir = find_postgres_bin()
    assert bin_dir is not None
    user = _server_user()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
    command = [
        str(bin_dir / "postgres"),
        "-D",
        str(server.data_dir),
        "-p",
        str(server.port),
        "-k",
        str(server.socket_dir),
        "-c",
        f"listen_addresses={server.host}",
    ]
    deadline = time.monotonic() + POSTGRES_RESTART_TIMEOUT_S
    while True:
        with server.log_path.open("ab") as log_file:
            process = subprocess.Popen(
                command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                user=None if user is None else user.pw_uid,
                group=None if user is None else user.pw_gid,
            )
        try:
            _wait_ready(bin_dir, server.port, process, server.log_path)
        except RuntimeError:
            if process.poll() is None:
                process.kill()
                process.wait()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
            continue
        server.process = process
        return


def _start_roles(
    tmp_path: Path, nats_url: str, dsn: str, pull_batch: int | None = None
) -> tuple[RoleProcess, RoleProcess]:
    overrides = {section: dict(values) for section, values in NATS_OVERRIDES.items()}
    if pull_batch is not None:
        overrides["nats"]["pull_batch"] = pull_batch
    config = write_config(tmp_path / "fleetpulse.toml", nats_url, dsn, PARTITIONS, overrides)
    upgrade_database(config)
    ingest = RoleProcess("ingest", config, tmp_path).start()
    processor = RoleProcess("process", config, tmp_path)
    try:
        processor.start()
    except RuntimeError:
        ingest.stop()
        raise
    return ingest, processor


def test_nats_server_kill_keeps_acked(tmp_path: Path, postgres: PostgresServer) -> None:
    require_nats_server()
    dsn = postgres.create_database_sync()
    start_ms = int(time.time() * 1000) - 3_600_000

    with ExitStack() as servers:
        nats_server: NatsServer = servers.enter_context(start_nats_server(tmp_path))
        ingest, processor = _start_roles(tmp_path, nats_server.url, dsn, PAUSED_PULL_BATCH)
        sender = Sender(ingest.url, start_ms)
        try:
            sender.start()
            sender.wait_for_acked(BATCHES_BEFORE_KILL, FLOW_TIMEOUT_S)
            _wait_processed(processor)

            # While the processor is paused, acknowledged records collect in the stream, so
            # some of them are not yet delivered when nats-server dies.
            os.kill(processor.pid, signal.SIGSTOP)
            try:
                sender.wait_for_acked(sender.acked_batches + BATCHES_PAUSED, FLOW_TIMEOUT_S)
                undelivered_at_kill = _undelivered_messages(nats_server.url)
                nats_server.process.send_signal(signal.SIGKILL)
                nats_server.process.wait(timeout=10)
                killed_at = time.monotonic()
            finally:
                os.kill(processor.pid, signal.SIGCONT)
            time.sleep(DOWN_S)
            restarted_at = time.monotonic()
            servers.enter_context(start_nats_server(tmp_path, port=nats_server.port))

            acked_at_restart = sender.acked_batches
            sender.wait_for_acked(acked_at_restart + BATCHES_AFTER_RESTART, FLOW_TIMEOUT_S)
            sender.finish()
            stored = _wait_stored(dsn, sender.acked)
            assert ingest.alive(), ingest.log_tail()
            assert processor.alive(), processor.log_tail()
        finally:
            sender.abandon.set()
            exit_codes = {role.name: role.stop() for role in (ingest, processor)}

    assert not sender.failure, sender.failure
    assert exit_codes == {"ingest": 0, "process": 0}

    # While nats-server was down, ingest responded with 503 unavailable, never 202.
    while_down = [a for a in sender.attempts if a.started > killed_at and a.ended < restarted_at]
    assert while_down, "no request got a response while nats-server was down"
    for attempt in while_down:
        assert attempt.status == 503, attempt
        assert attempt.error_code == "unavailable", attempt
    acked_after = [a for a in sender.attempts if a.status == 202 and a.started > restarted_at]
    assert acked_after, "ingest acknowledged nothing after nats-server restarted"
    assert undelivered_at_kill > 0, "no undelivered message in the stream at the kill"
    print(
        f"messages not yet delivered at the kill: {undelivered_at_kill}, "
        f"requests with a response while nats-server was down: {len(while_down)}, attempts by "
        f"status: {_count_statuses(sender)}, records acknowledged: {len(sender.acked)}, "
        f"stored: {len(stored)}"
    )

    _assert_stored_once(stored, sender)


def test_postgres_kill_batch_retried(tmp_path: Path, postgres: PostgresServer) -> None:
    require_nats_server()
    dsn = postgres.create_database_sync()
    start_ms = int(time.time() * 1000) - 3_600_000

    with start_nats_server(tmp_path) as nats_server:
        ingest, processor = _start_roles(tmp_path, nats_server.url, dsn)
        sender = Sender(ingest.url, start_ms)
        try:
            sender.start()
            sender.wait_for_acked(BATCHES_BEFORE_KILL, FLOW_TIMEOUT_S)
            _wait_processed(processor)

            _kill_postgres(postgres)
            # A batch whose store commit finished just before the kill may still be
            # acknowledged; after that, nothing is acknowledged until the restart.
            time.sleep(1.0)
            processed_after_kill = processor.metric("fleetpulse_records_processed_total")
            time.sleep(DOWN_S)
            processed_before_restart = processor.metric("fleetpulse_records_processed_total")
            waiting_messages = _stream_messages(nats_server.url)
            _restart_postgres(postgres)

            acked_at_restart = sender.acked_batches
            sender.wait_for_acked(acked_at_restart + BATCHES_AFTER_RESTART, FLOW_TIMEOUT_S)
            sender.finish()
            stored = _wait_stored(dsn, sender.acked)
            left_in_stream = _wait_stream_empty(nats_server.url)
            assert ingest.alive(), ingest.log_tail()
            assert processor.alive(), processor.log_tail()
            processor_log = processor.log_tail(200_000)
        finally:
            sender.abandon.set()
            exit_codes = {role.name: role.stop() for role in (ingest, processor)}

    assert not sender.failure, sender.failure
    assert exit_codes == {"ingest": 0, "process": 0}

    # While PostgreSQL was down the processor acknowledged nothing, so the records of
    # the failed batch and those sent meanwhile waited in the stream.
    assert processed_before_restart == processed_after_kill
    assert waiting_messages > 0, "no unacknowledged message in the stream while PostgreSQL was down"
    assert "store write failed, retrying" in processor_log
    assert left_in_stream == 0, f"{left_in_stream} messages never acknowledged after the restart"
    print(
        f"messages waiting while PostgreSQL was down: {waiting_messages}, attempts by status: "
        f"{_count_statuses(sender)}, records acknowledged: {len(sender.acked)}, "
        f"stored: {len(stored)}"
    )

    _assert_stored_once(stored, sender)


def test_postgres_restart_keeps_data(tmp_path: Path, postgres: PostgresServer) -> None:
    dsn = postgres.create_database_sync()
    asyncio.run(_create_marker(dsn))
    _kill_postgres(postgres)

    _restart_postgres(postgres)

    assert postgres.process.poll() is None
    assert asyncio.run(_read_marker(dsn)) == 1


async def _create_marker(dsn: str) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("CREATE TABLE marker (value integer)")
        await connection.execute("INSERT INTO marker VALUES (1)")
    finally:
        await connection.close()


async def _read_marker(dsn: str) -> int:
    connection = await asyncpg.connect(dsn)
    try:
        value: int = await connection.fetchval("SELECT value FROM marker")
    finally:
        await connection.close()
    return value
