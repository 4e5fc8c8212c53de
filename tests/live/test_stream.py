"""GET /v1/live against a real server on 127.0.0.1 with a real WebSocket client."""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from fleetpulse.api.app import create_app
from tests.live.conftest import Frame, collect, drive, events_of, now_ms, vehicles_of


def has_event_ids(ids: list[int]) -> Any:
    def done(frames: list[Frame]) -> bool:
        return {event["id"] for event in events_of(frames)} >= set(ids)

    return done


def has_vehicle(device_id: str, last_ts_ms: int) -> Any:
    def done(frames: list[Frame]) -> bool:
        return any(
            view["device_id"] == device_id and view["last_ts_ms"] == last_ts_ms
            for view in vehicles_of(frames)
        )

    return done


async def test_hello_first(live_server: Any) -> None:
    live = await live_server()
    async with connect(live.ws_url("interval_s=0.5")) as ws:
        hello = json.loads(await ws.recv())
    assert hello["type"] == "hello"
    assert hello["interval_s"] == 0.5
    assert hello["last_event_id"] == 0


async def test_hello_last_event_id(live_server: Any) -> None:
    live = await live_server()
    await live.send(drive("truck-1", 8, now_ms() - 60_000, toggle_ignition=True))
    stored = await live.stored_event_ids()
    async with connect(live.ws_url()) as ws:
        hello = json.loads(await ws.recv())
    assert stored
    assert hello["last_event_id"] == max(stored)


async def test_vehicle_view_shape(live_server: Any) -> None:
    live = await live_server()
    records = drive("truck-1", 3, now_ms() - 60_000)
    async with connect(live.ws_url("interval_s=0.1")) as ws:
        await ws.recv()
        await live.send(records)
        frames = await collect(ws, has_vehicle("truck-1", records[-1]["ts"]))
    rest = (await live.http.get("/v1/vehicles/truck-1")).json()
    views = [v for v in vehicles_of(frames) if v["last_ts_ms"] == records[-1]["ts"]]
    assert len(views) == 1
    assert set(views[0]) == set(rest)
    assert views[0]["last_ts"] == rest["last_ts"]


async def test_device_filter(live_server: Any) -> None:
    live = await live_server()
    start_ms = now_ms() - 60_000
    async with connect(live.ws_url("device_id=truck-2,truck-3&interval_s=0.1")) as ws:
        await ws.recv()
        await live.send(drive("truck-1", 3, start_ms) + drive("truck-2", 3, start_ms))
        frames = await collect(ws, has_vehicle("truck-2", start_ms + 2000))
    seen = {view["device_id"] for view in vehicles_of(frames)}
    assert seen == {"truck-2"}


async def test_bbox_filter(live_server: Any) -> None:
    live = await live_server()
    start_ms = now_ms() - 60_000
    munich = drive("munich", 3, start_ms, lat=48.137, lon=11.575)
    berlin = drive("berlin", 3, start_ms, lat=52.52, lon=13.405)
    async with connect(live.ws_url("bbox=11.0,48.0,12.0,48.5&interval_s=0.1")) as ws:
        await ws.recv()
        await live.send(berlin + munich)
        frames = await collect(ws, has_vehicle("munich", munich[-1]["ts"]))
    seen = {view["device_id"] for view in vehicles_of(frames)}
    assert seen == {"munich"}


async def test_types_filter(live_server: Any) -> None:
    live = await live_server()
    async with connect(live.ws_url("types=ignition_on&interval_s=0.1")) as ws:
        await ws.recv()
        await live.send(drive("truck-1", 12, now_ms() - 60_000, toggle_ignition=True))
        stored = (await live.http.get("/v1/events", params={"type": "ignition_on"})).json()
        wanted = [event["id"] for event in stored["events"]]
        frames = await collect(ws, has_event_ids(wanted))
    received = events_of(frames)
    assert wanted
    assert sorted(event["id"] for event in received) == sorted(wanted)
    assert {event["type"] for event in received} == {"ignition_on"}


async def test_subscribe_replaces_filter(live_server: Any) -> None:
    live = await live_server()
    start_ms = now_ms() - 60_000
    async with connect(live.ws_url("device_id=truck-1&interval_s=0.1")) as ws:
        await ws.recv()
        await ws.send(json.dumps({"type": "subscribe", "device_id": ["truck-2"]}))
        # A frame the server sends after the subscribe shows it was applied: the
        # receiver applies messages in order, before the next records are stored.
        await asyncio.sleep(0.2)
        await live.send(drive("truck-1", 3, start_ms) + drive("truck-2", 3, start_ms))
        frames = await collect(ws, has_vehicle("truck-2", start_ms + 2000))
    assert {view["device_id"] for view in vehicles_of(frames)} == {"truck-2"}


async def test_coalescing_keeps_newest(live_server: Any) -> None:
    live = await live_server()
    start_ms = now_ms() - 60_000
    batches = [drive("truck-1", 1, start_ms + i * 1000) for i in range(10)]
    newest_ms = batches[-1][0]["ts"]
    async with connect(live.ws_url("interval_s=2")) as ws:
        await ws.recv()
        for batch in batches:
            await live.send(batch)
        frames = await collect(ws, has_vehicle("truck-1", newest_ms))
    views = [view for view in vehicles_of(frames) if view["device_id"] == "truck-1"]
    # Ten stored updates within about one interval reach the client as one or two
    # views (two when a flush falls between them), the newest last.
    assert len(views) < len(batches)
    assert views[-1]["last_ts_ms"] == newest_ms


async def test_events_in_id_order(live_server: Any) -> None:
    live = await live_server()
    start_ms = now_ms() - 300_000
    async with connect(live.ws_url("interval_s=0.1")) as ws:
        await ws.recv()
        for i in range(5):
            await live.send(drive(f"truck-{i}", 40, start_ms, toggle_ignition=True))
        stored = await live.stored_event_ids()
        frames = await collect(ws, has_event_ids(stored))
    received = [event["id"] for event in events_of(frames)]
    assert len(stored) > 50
    assert received == stored


async def test_resume_without_gap(live_server: Any) -> None:
    live = await live_server()
    start_ms = now_ms() - 300_000
    async with connect(live.ws_url("interval_s=0.1")) as ws:
        await ws.recv()
        await live.send(drive("truck-1", 20, start_ms, toggle_ignition=True))
        first = await live.stored_event_ids()
        frames = await collect(ws, has_event_ids(first))
    last_seen = max(event["id"] for event in events_of(frames))

    # Stored while the client is away, then live after it is back.
    await live.send(drive("truck-2", 20, start_ms, toggle_ignition=True))
    async with connect(live.ws_url(f"after_event_id={last_seen}&interval_s=0.1")) as ws:
        await ws.recv()
        await live.send(drive("truck-3", 20, start_ms, toggle_ignition=True))
        wanted = [i for i in await live.stored_event_ids() if i > last_seen]
        frames = await collect(ws, has_event_ids(wanted))
    received = [event["id"] for event in events_of(frames)]
    assert len(wanted) > 10
    assert received == wanted


async def test_resume_from_start(live_server: Any) -> None:
    live = await live_server()
    await live.send(drive("truck-1", 12, now_ms() - 60_000, toggle_ignition=True))
    stored = await live.stored_event_ids()
    async with connect(live.ws_url("after_event_id=0&types=ignition_off")) as ws:
        await ws.recv()
        frames = await collect(ws, lambda frames: len(frames) > 0)
    types = {event["type"] for event in events_of(frames)}
    offs = (await live.http.get("/v1/events", params={"type": "ignition_off"})).json()
    assert stored
    assert types == {"ignition_off"}
    assert [e["id"] for e in events_of(frames)] == sorted(e["id"] for e in offs["events"])


@pytest.mark.parametrize(
    "query",
    [
        "bbox=11,48,12",
        "bbox=12,48,11,49",
        "types=speeding",
        "interval_s=0.01",
        "interval_s=abc",
        "after_event_id=-3",
        "device_id=a,,b",
    ],
)
async def test_invalid_query_closes_1008(live_server: Any, query: str) -> None:
    live = await live_server()
    async with connect(live.ws_url(query)) as ws:
        frame = json.loads(await ws.recv())
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert frame["type"] == "error"
    assert frame["error"]["code"] == "invalid_parameter"
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008


@pytest.mark.parametrize(
    "message",
    [
        "not json",
        '{"type": "unsubscribe"}',
        '{"type": "subscribe", "bbox": [1, 2]}',
        '{"type": "subscribe", "types": ["speeding"]}',
        '{"type": "subscribe", "device": ["a"]}',
    ],
)
async def test_invalid_subscribe_closes_1008(live_server: Any, message: str) -> None:
    live = await live_server()
    async with connect(live.ws_url()) as ws:
        await ws.recv()
        await ws.send(message)
        frame = json.loads(await ws.recv())
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert frame["type"] == "error"
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008


async def test_max_clients_closes_1013(live_server: Any) -> None:
    live = await live_server(max_clients=1)
    async with connect(live.ws_url()) as first:
        await first.recv()
        async with connect(live.ws_url()) as second:
            frame = json.loads(await second.recv())
            with pytest.raises(ConnectionClosed) as closed:
                await second.recv()
    assert frame["error"]["code"] == "too_many_clients"
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1013


async def test_shutdown_closes_1001(live_server: Any) -> None:
    live = await live_server()
    async with connect(live.ws_url()) as ws:
        await ws.recv()
        await live.server.live.close()
        frame = json.loads(await ws.recv())
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert frame["type"] == "error"
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1001
    assert live.server.live.session_count == 0


async def test_overspeed_update_same_id(live_server: Any) -> None:
    live = await live_server()
    start_ms = now_ms() - 300_000
    records = drive("truck-1", 40, start_ms)
    for i, record in enumerate(records):
        record["speed_kmh"] = 140.0 if 5 <= i < 25 else 50.0
    async with connect(live.ws_url("types=overspeed&interval_s=0.1")) as ws:
        await ws.recv()
        await live.send(records[:20])
        await live.send(records[20:])

        def final_seen(frames: list[Frame]) -> bool:
            return any(e["details"].get("ongoing") is False for e in events_of(frames))

        frames = await collect(ws, final_seen)
    received = events_of(frames)
    assert len({event["id"] for event in received}) == 1
    assert received[0]["details"]["ongoing"] is True
    assert received[-1]["details"]["ongoing"] is False


async def test_app_without_hub_closes_1011(live_server: Any) -> None:
    live = await live_server()
    sock = socket.create_server(("127.0.0.1", 0))
    config = uvicorn.Config(create_app(live.server.context), log_config=None, lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        port = sock.getsockname()[1]
        async with connect(f"ws://127.0.0.1:{port}/v1/live") as ws:
            frame = json.loads(await ws.recv())
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
    finally:
        server.should_exit = True
        await serving
        sock.close()
    assert frame["error"]["code"] == "unavailable"
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1011
