"""The live bus: local calls, and msgpack messages over a real nats-server."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import nats
import pytest

from fleetpulse.config import load_settings
from fleetpulse.live import bus as bus_module
from fleetpulse.live.bus import (
    ITEMS_PER_MESSAGE,
    LiveBusError,
    LocalLiveBus,
    NatsLiveBus,
    bus_kind,
)
from fleetpulse.model.event import Event
from fleetpulse.model.vehicle import VehicleView
from fleetpulse.store.base import ProcessedBatch, VehicleSnapshot
from tests.nats_server import NatsServer, nats_server_fixture

__all__ = ["nats_server_fixture"]

SUBJECT = "test.live"
RECEIVE_TIMEOUT_S = 10.0


def _view(device_id: str, ts_ms: int = 1_000) -> VehicleView:
    return VehicleView(
        device_id=device_id,
        last_ts_ms=ts_ms,
        last_received_at_ms=ts_ms + 5,
        motion="moving",
        status="ok",
        lat=48.1,
        lon=11.5,
        speed_kmh=42.0,
    )


def _event(device_id: str, ts_ms: int) -> Event:
    return Event(
        device_id=device_id,
        ts_ms=ts_ms,
        type="overspeed",
        severity="warning",
        details={"ongoing": True, "max_speed_kmh": 131.5},
    )


def _batch(views: list[VehicleView], events: list[Event]) -> ProcessedBatch:
    return ProcessedBatch(
        events=events,
        vehicles=[VehicleSnapshot(view=view, state=b"opaque state") for view in views],
    )


async def _wait_for(condition: Callable[[], bool], timeout_s: float = RECEIVE_TIMEOUT_S) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        assert loop.time() < deadline, "bus did not deliver in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def bus_pair(
    nats_server: NatsServer,
) -> AsyncIterator[tuple[NatsLiveBus, list[ProcessedBatch]]]:
    """A publishing bus and a started subscribing bus whose batches land in a list."""
    received: list[ProcessedBatch] = []
    subscriber = NatsLiveBus(nats_server.url, SUBJECT, "test-api")
    subscriber.subscribe(received.append)
    publisher = NatsLiveBus(nats_server.url, SUBJECT, "test-process")
    await subscriber.start()
    await publisher.start()
    try:
        yield publisher, received
    finally:
        await publisher.close()
        await subscriber.close()


async def test_nats_bus_delivers_views_and_events(
    bus_pair: tuple[NatsLiveBus, list[ProcessedBatch]],
) -> None:
    publisher, received = bus_pair
    views = [_view("truck-1"), _view("truck-2", 2_000)]
    events = [_event("truck-1", 1_000)]

    publisher.publish(_batch(views, events))
    await _wait_for(lambda: len(received) == 1)

    batch = received[0]
    assert [snapshot.view for snapshot in batch.vehicles] == views
    assert batch.events == events
    # The hub needs no processing state, so the bus does not carry it.
    assert all(snapshot.state == b"" for snapshot in batch.vehicles)
    assert publisher.sent_messages == 1


async def test_nats_bus_splits_large_batch(
    bus_pair: tuple[NatsLiveBus, list[ProcessedBatch]],
) -> None:
    publisher, received = bus_pair
    views = [_view(f"van-{index:04d}", 1_000 + index) for index in range(2 * ITEMS_PER_MESSAGE + 1)]
    events = [_event("van-0001", 5_000 + index) for index in range(3)]

    publisher.publish(_batch(views, events))
    await _wait_for(lambda: len(received) == 3)

    got_views = [snapshot.view for batch in received for snapshot in batch.vehicles]
    got_events = [event for batch in received for event in batch.events]
    assert got_views == views
    assert got_events == events


async def test_nats_bus_skips_undecodable_message(
    nats_server: NatsServer, bus_pair: tuple[NatsLiveBus, list[ProcessedBatch]]
) -> None:
    publisher, received = bus_pair
    raw = await nats.connect(nats_server.url)
    try:
        await raw.publish(SUBJECT, b"\xc1 not msgpack")
        await raw.flush()
    finally:
        await raw.close()
    publisher.publish(_batch([_view("truck-9")], []))

    await _wait_for(lambda: len(received) == 1)
    assert received[0].vehicles[0].view.device_id == "truck-9"


async def test_nats_bus_skips_empty_batch(
    bus_pair: tuple[NatsLiveBus, list[ProcessedBatch]],
) -> None:
    publisher, received = bus_pair
    publisher.publish(ProcessedBatch())
    publisher.publish(_batch([_view("truck-3")], []))

    await _wait_for(lambda: len(received) == 1)
    assert publisher.sent_messages == 1


async def test_nats_bus_connect_failure_names_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bus_module, "START_TIMEOUT_S", 1.5)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    bus = NatsLiveBus(f"nats://user:secret@127.0.0.1:{port}", SUBJECT, "test")

    with pytest.raises(LiveBusError) as caught:
        await bus.start()

    message = str(caught.value)
    assert f"nats://127.0.0.1:{port}" in message
    assert "secret" not in message
    assert "[nats] url" in message


async def test_nats_bus_drops_oldest_past_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bus_module, "MAX_PENDING_MESSAGES", 3)
    bus = NatsLiveBus("nats://127.0.0.1:4222", SUBJECT, "test")
    # A bus whose sender task does not run: publish only queues.
    bus._client = object()

    for index in range(5):
        bus.publish(_batch([_view(f"truck-{index}")], []))

    assert bus.dropped_messages == 2
    assert len(bus._pending) == 3


def test_local_bus_calls_handler() -> None:
    received: list[ProcessedBatch] = []
    bus = LocalLiveBus()
    bus.subscribe(received.append)
    batch = _batch([_view("truck-1")], [_event("truck-1", 1_000)])

    bus.publish(batch)

    assert received == [batch]


def test_bus_kind_follows_queue_backend(tmp_path: Path) -> None:
    embedded = load_settings(environ={})
    forced = load_settings(environ={}, overrides={"live": {"bus": "nats"}})

    assert bus_kind(embedded) == "local"
    assert bus_kind(forced) == "nats"
