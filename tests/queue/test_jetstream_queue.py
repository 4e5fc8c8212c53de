"""The JetStream backend beyond the contract: limits, partition ownership and handover.

Every test runs against its own nats-server (tests/nats_server.py).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
import nats
import pytest

from fleetpulse.config import NatsSettings, Settings
from fleetpulse.errors import QueueError, QueueFullError
from fleetpulse.model.record import Record
from fleetpulse.process.engine import Processor
from fleetpulse.queue.base import Delivery, partition_of
from fleetpulse.queue.jetstream import JetStreamQueue, redact_url
from fleetpulse.store.sqlite import SqliteStore
from tests.nats_server import NatsServer, require_nats_server, start_nats_server
from tests.queue.queue_helpers import make_records, make_settings

REPO_ROOT = Path(__file__).resolve().parents[2]
# Short leases keep the handover tests fast. A cycle runs every third of the TTL.
LEASE_TTL_S = 1.5
PARTITIONS = 16
FETCH_WAIT_S = 0.1
# Generous bounds for a loaded machine. A healthy run takes a fraction of them.
SETTLE_TIMEOUT_S = 15.0
CHILD_START_TIMEOUT_S = 30.0
# Handover after a kill: the lease expires after LEASE_TTL_S, the next cycle of the
# survivor claims it within LEASE_TTL_S / 3, plus this margin for a loaded machine.
HANDOVER_MARGIN_S = 3.0

OpenJetStream = Callable[..., Awaitable[JetStreamQueue]]


def jetstream_settings(
    server: NatsServer, data_dir: Path, nats_fields: dict[str, Any], **queue_fields: Any
) -> Settings:
    nats_settings = msgspec.structs.replace(
        NatsSettings(url=server.url, lease_ttl_s=LEASE_TTL_S), **nats_fields
    )
    return make_settings("jetstream", data_dir, nats_settings, **queue_fields)


@pytest.fixture
async def open_jetstream(nats_server: NatsServer, tmp_path: Path) -> AsyncIterator[OpenJetStream]:
    """A function that opens a JetStream queue on the test's server; all are closed at the end.

    Keyword arguments named like a ``[nats]`` key set that key, the others ``[queue]`` keys.
    """
    opened: list[JetStreamQueue] = []

    async def open_(**fields: Any) -> JetStreamQueue:
        nats_keys = set(NatsSettings.__struct_fields__)
        nats_fields = {key: value for key, value in fields.items() if key in nats_keys}
        queue_fields = {key: value for key, value in fields.items() if key not in nats_keys}
        settings = jetstream_settings(nats_server, tmp_path / "data", nats_fields, **queue_fields)
        queue = JetStreamQueue(settings)
        await queue.start()
        opened.append(queue)
        return queue

    yield open_
    for queue in opened:
        await queue.close()


async def fetch_until(queue: JetStreamQueue, records: int, timeout_s: float) -> list[Delivery]:
    """Fetch without acknowledging until ``records`` records arrived or the time is up."""
    deliveries: list[Delivery] = []
    deadline = time.monotonic() + timeout_s
    while sum(len(d.records) for d in deliveries) < records and time.monotonic() < deadline:
        deliveries.extend(await queue.fetch(1000, FETCH_WAIT_S))
    return deliveries


def timestamps(deliveries: list[Delivery], device_id: str) -> list[int]:
    return [r.ts_ms for d in deliveries for r in d.records if r.device_id == device_id]


async def stream_messages(server: NatsServer, stream: str = "fleetpulse-records") -> int:
    client = await nats.connect(server.url)
    try:
        info = await client.jetstream().stream_info(stream)
        return info.state.messages
    finally:
        await client.close()


async def test_full_stream_bytes_raises(open_jetstream: OpenJetStream) -> None:
    queue = await open_jetstream(max_stream_bytes=2048)
    stored = 0

    with pytest.raises(QueueFullError) as caught:
        for batch in range(20):
            await queue.publish(make_records("v1", batch * 10, 10))
            stored += 10

    assert caught.value.retriable
    assert stored > 0
    assert queue.depth() == stored


async def test_full_stream_messages_raises(
    open_jetstream: OpenJetStream, nats_server: NatsServer
) -> None:
    # Two publishers whose depth is not refreshed: each one's own count stays below
    # capacity, so only the stream's max_msgs limit can reject the third message.
    first = await open_jetstream(capacity_records=2, depth_refresh_s=600.0)
    second = await open_jetstream(capacity_records=2, depth_refresh_s=600.0)
    await first.publish(make_records("v1", 0, 1))
    await second.publish(make_records("v2", 0, 1))

    with pytest.raises(QueueFullError) as caught:
        await first.publish(make_records("v3", 0, 1))

    assert caught.value.capacity == 2
    assert await stream_messages(nats_server) == 2


async def test_retried_publish_stored_once(
    open_jetstream: OpenJetStream, nats_server: NatsServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = await open_jetstream()
    js = queue._js
    assert js is not None
    real_publish = js.publish
    attempts: list[str] = []

    async def publish_losing_first_reply(subject: str, *args: Any, **kwargs: Any) -> Any:
        # The first attempt reaches the stream but its reply is lost, as in a reconnect.
        ack = await real_publish(subject, *args, **kwargs)
        if not subject.startswith("fleetpulse.records."):
            return ack
        attempts.append(kwargs["headers"]["Nats-Msg-Id"])
        if len(attempts) == 1:
            raise nats.errors.TimeoutError
        return ack

    monkeypatch.setattr(js, "publish", publish_losing_first_reply)
    await queue.publish(make_records("v1", 0, 5))

    assert len(attempts) == 2
    assert attempts[0] == attempts[1]
    assert await stream_messages(nats_server) == 1
    assert queue.depth() == 5
    deliveries = await fetch_until(queue, 5, SETTLE_TIMEOUT_S)
    assert timestamps(deliveries, "v1") == [0, 1, 2, 3, 4]


async def wait_for_split(queues: list[JetStreamQueue], timeout_s: float) -> list[frozenset[int]]:
    """Fetch on every queue until their owned partitions are disjoint and cover all."""
    deadline = time.monotonic() + timeout_s
    share = -(-PARTITIONS // len(queues))
    while True:
        await asyncio.gather(*(queue.fetch(1000, FETCH_WAIT_S) for queue in queues))
        owned = [queue.owned_partitions() or frozenset() for queue in queues]
        union = frozenset().union(*owned)
        if (
            sum(len(o) for o in owned) == PARTITIONS
            and len(union) == PARTITIONS
            and all(len(o) <= share for o in owned)
        ):
            return owned
        if time.monotonic() > deadline:
            raise AssertionError(f"partitions never split: owned={[sorted(o) for o in owned]}")


async def test_two_consumers_split_partitions(open_jetstream: OpenJetStream) -> None:
    first = await open_jetstream()
    second = await open_jetstream()

    owned = await wait_for_split([first, second], SETTLE_TIMEOUT_S)

    assert [len(o) for o in owned] == [8, 8]
    assert owned[0].isdisjoint(owned[1])

    vehicles = [f"v{i}" for i in range(40)]
    for device_id in vehicles:
        await first.publish(make_records(device_id, 0, 3))
    got = await asyncio.gather(
        fetch_until(first, 1, SETTLE_TIMEOUT_S), fetch_until(second, 1, SETTLE_TIMEOUT_S)
    )
    more = await asyncio.gather(*(queue.fetch(1000, FETCH_WAIT_S) for queue in (first, second)))
    deliveries = [got[0] + more[0], got[1] + more[1]]
    for index, queue_deliveries in enumerate(deliveries):
        for delivery in queue_deliveries:
            assert delivery.partition in owned[index]
            for record in delivery.records:
                assert partition_of(record.device_id, PARTITIONS) == delivery.partition
    received = sorted(
        (r.device_id, r.ts_ms) for batch in deliveries for d in batch for r in d.records
    )
    assert received == sorted((v, ts) for v in vehicles for ts in range(3))


async def test_closed_owner_hands_over_unacked(open_jetstream: OpenJetStream) -> None:
    old = await open_jetstream()
    await old.publish(make_records("v1", 0, 3))
    await old.publish(make_records("v1", 3, 3))
    unacked = await fetch_until(old, 6, SETTLE_TIMEOUT_S)
    assert timestamps(unacked, "v1") == list(range(6))
    new = await open_jetstream()
    await new.fetch(1000, FETCH_WAIT_S)
    await new.publish(make_records("v1", 6, 3))

    started = time.monotonic()
    await old.close()
    deliveries = await fetch_until(new, 9, SETTLE_TIMEOUT_S)

    # close() deletes the leases, so the handover does not wait for them to expire.
    assert time.monotonic() - started < LEASE_TTL_S + HANDOVER_MARGIN_S
    assert timestamps(deliveries, "v1") == list(range(9))


async def test_killed_owner_hands_over_unacked(
    open_jetstream: OpenJetStream, nats_server: NatsServer
) -> None:
    publisher = await open_jetstream()
    await publisher.publish(make_records("v1", 0, 5))
    await publisher.publish(make_records("v1", 5, 5))
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.queue.jetstream_owner",
            nats_server.url,
            str(LEASE_TTL_S),
            "10",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(
            asyncio.to_thread(child.stdout.readline), CHILD_START_TIMEOUT_S
        )
        assert line.strip() == "fetched 10"
        # Published after the old owner fetched: the new owner must not get it first.
        await publisher.publish(make_records("v1", 10, 5))
        survivor = await open_jetstream()
        await survivor.fetch(1000, FETCH_WAIT_S)

        child.kill()
        child.wait()
        killed_at = time.monotonic()
        first = await fetch_until(survivor, 1, LEASE_TTL_S + HANDOVER_MARGIN_S + 1.0)
        handover_s = time.monotonic() - killed_at
        rest = await fetch_until(survivor, 15 - sum(len(d.records) for d in first), 5.0)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()

    assert first, "the survivor got no delivery after the owner was killed"
    assert handover_s < LEASE_TTL_S + LEASE_TTL_S / 3 + HANDOVER_MARGIN_S
    # The killed owner's unacknowledged messages come first and in order, long before
    # their ack wait (30 s) would have redelivered them.
    assert timestamps(first + rest, "v1") == list(range(15))


async def test_lost_partition_ack_skipped(open_jetstream: OpenJetStream) -> None:
    old = await open_jetstream()
    await old.publish(make_records("v1", 0, 3))
    stale = await fetch_until(old, 3, SETTLE_TIMEOUT_S)
    partition = stale[0].partition
    assert old._ownership is not None
    # Stops renewing the old owner's leases, as a process cut off from NATS would.
    await old._ownership.stop(release=False)
    new = await open_jetstream()
    redelivered = await fetch_until(new, 3, LEASE_TTL_S + HANDOVER_MARGIN_S + 1.0)

    await old.ack(stale)

    # The old owner's ack did not remove the messages that the new owner now has.
    assert timestamps(redelivered, "v1") == [0, 1, 2]
    assert partition in (new.owned_partitions() or frozenset())
    await new.ack(redelivered)
    assert new.depth() == 0


async def test_server_restart_publish_recovers(tmp_path: Path) -> None:
    binary = require_nats_server()
    settings_fields = {"request_timeout_s": 0.5, "publish_attempts": 2}
    with start_nats_server(tmp_path, binary) as server:
        port = server.port
        queue = JetStreamQueue(jetstream_settings(server, tmp_path / "data", settings_fields))
        await queue.start()
        await queue.publish(make_records("v1", 0, 2))
    try:
        with pytest.raises(QueueError) as caught:
            await queue.publish(make_records("v1", 2, 2))
        assert "fleetpulse.records." in str(caught.value)
        assert caught.value.retriable

        with start_nats_server(tmp_path, binary, port=port):
            deadline = time.monotonic() + SETTLE_TIMEOUT_S
            while True:
                try:
                    await queue.publish(make_records("v1", 2, 2))
                    break
                except QueueError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
            deliveries = await fetch_until(queue, 4, SETTLE_TIMEOUT_S)
            fetched = timestamps(deliveries, "v1")
            # The first publish survived the restart in the stream's files. The publish
            # that raised may be stored too, as the client sends its buffered message
            # after the reconnect, so records 2 and 3 can come twice.
            assert fetched[:2] == [0, 1]
            assert sorted(set(fetched)) == [0, 1, 2, 3]
            assert len(fetched) in (4, 6)
            await queue.close()
    finally:
        await queue.close()


async def test_undecodable_message_skipped(
    open_jetstream: OpenJetStream, nats_server: NatsServer
) -> None:
    queue = await open_jetstream()
    client = await nats.connect(nats_server.url)
    try:
        subject = f"fleetpulse.records.{partition_of('v1', PARTITIONS)}"
        await client.jetstream().publish(subject, b"not msgpack records")
    finally:
        await client.close()
    await queue.publish(make_records("v1", 0, 3))

    deliveries = await fetch_until(queue, 3, SETTLE_TIMEOUT_S)
    await queue.ack(deliveries)

    assert timestamps(deliveries, "v1") == [0, 1, 2]
    assert await stream_messages(nats_server) == 0


def test_redact_url_drops_credentials() -> None:
    assert redact_url("nats://user:secret@10.0.0.1:4222") == "nats://10.0.0.1:4222"
    assert redact_url("nats://token@host:4222,nats://h2:4222") == "nats://host:4222,nats://h2:4222"
    assert redact_url("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222"


# -- the processor's ownership hook -----------------------------------------------------


def received_now(records: list[Record]) -> list[Record]:
    now_ms = int(time.time() * 1000)
    return [msgspec.structs.replace(r, received_at_ms=now_ms) for r in records]


async def wait_until(condition: Callable[[], bool], timeout_s: float, description: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {description}")
        await asyncio.sleep(0.05)


async def wait_for_empty_stream(server: NatsServer) -> None:
    """Wait until every message is acknowledged, which the processor does after storing it."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while await stream_messages(server) > 0:
        if time.monotonic() > deadline:
            raise AssertionError("messages still unacknowledged in the stream")
        await asyncio.sleep(0.05)


async def test_processor_moves_states_with_partitions(
    nats_server: NatsServer, tmp_path: Path
) -> None:
    settings = jetstream_settings(nats_server, tmp_path, {})
    store = SqliteStore(settings)
    await store.start()
    queues = [JetStreamQueue(settings) for _ in range(3)]
    for queue in queues:
        await queue.start()
    first = Processor(settings, queues[0], store)
    second = Processor(settings, queues[1], store)
    try:
        vehicles = [f"v{i}" for i in range(24)]
        await first.start()
        # Published by a third queue, as ingest would. The processors' depth() includes
        # it only after a refresh, so the test waits for the stream instead of drain().
        for device_id in vehicles:
            await queues[2].publish(received_now(make_records(device_id, 1_000, 2)))
        await wait_for_empty_stream(nats_server)
        assert all(first.vehicle_state(v) is not None for v in vehicles)

        # A second processor joins. The first releases half of the partitions and drops
        # their vehicles, and the second loads those vehicles from the store.
        await second.start()
        await wait_until(
            lambda: (
                len(queues[0].owned_partitions() or ()) == 8
                and len(queues[1].owned_partitions() or ()) == 8
            ),
            SETTLE_TIMEOUT_S,
            "the processors own 8 partitions each",
        )
        moved = [v for v in vehicles if partition_of(v, PARTITIONS) in queues[1].owned_partitions()]
        assert moved
        await wait_until(
            lambda: all(second.vehicle_state(v) is not None for v in moved),
            SETTLE_TIMEOUT_S,
            "the second processor loaded the moved vehicles",
        )
        assert all(first.vehicle_state(v) is None for v in moved)

        # The second processor stores newer records, then stops. The first takes the
        # partitions back and must read the newer states, not stale ones.
        for device_id in moved:
            await queues[2].publish(received_now(make_records(device_id, 5_000, 1)))
        await wait_for_empty_stream(nats_server)
        await second.close()
        await queues[1].close()
        await wait_until(
            lambda: len(queues[0].owned_partitions() or ()) == PARTITIONS,
            SETTLE_TIMEOUT_S,
            "the first processor owns every partition again",
        )
        await wait_until(
            lambda: all(first.vehicle_state(v) is not None for v in moved),
            SETTLE_TIMEOUT_S,
            "the first processor reloaded the moved vehicles",
        )
        for device_id in moved:
            state = first.vehicle_state(device_id)
            assert state is not None
            assert state.last_ts_ms == 5_000, device_id
    finally:
        await first.close()
        await second.close()
        for queue in queues:
            await queue.close()
        await store.close()
