"""The query API over a real pipeline: records in through ingest, responses out of the store."""

from __future__ import annotations

import math
import time

import httpx

from fleetpulse.api.app import create_app
from tests.api.conftest import Pipeline

DEVICE = "van-1"
START_LAT, START_LON = 48.10, 11.50
# Metres per degree of longitude at 48.1 degrees north.
M_PER_DEG_LON = 111_320 * math.cos(math.radians(START_LAT))


def _drive(start_ms: int) -> list[dict[str, object]]:
    """Build a depot departure with one record a second.

    The van is parked, switches the ignition on, drives 150 s at 60 km/h and 20 s at
    140 km/h, stops, switches the ignition off and stays parked for 6 minutes.
    """
    records: list[dict[str, object]] = []
    lon = START_LON
    plan = [(0.0, False, 30), (0.0, True, 10), (60.0, True, 150), (140.0, True, 20),
            (60.0, True, 10), (0.0, True, 5), (0.0, False, 360)]
    t = 0
    for speed_kmh, ignition, seconds in plan:
        for _ in range(seconds):
            lon += speed_kmh / 3.6 / M_PER_DEG_LON
            records.append({
                "device_id": DEVICE, "ts": start_ms + t * 1000, "lat": START_LAT, "lon": lon,
                "speed_kmh": speed_kmh, "heading_deg": 90.0, "ignition": ignition,
                "fuel_pct": 55.0, "coolant_c": 88.0, "battery_v": 13.9 if ignition else 12.5,
            })
            t += 1
    return records


async def _load_drive(pipeline: Pipeline) -> list[dict[str, object]]:
    start_ms = int(time.time() * 1000) - 20 * 60_000
    records = _drive(start_ms)
    answer = await pipeline.post(records)
    assert answer.status_code == 202
    assert answer.json()["accepted"] == len(records)
    await pipeline.drain()
    return records


async def test_vehicles_lists_latest_state(pipeline: Pipeline) -> None:
    records = await _load_drive(pipeline)
    body = (await pipeline.client.get("/v1/vehicles")).json()
    assert body["count"] == 1
    vehicle = body["vehicles"][0]
    assert vehicle["device_id"] == DEVICE
    assert vehicle["last_ts_ms"] == records[-1]["ts"]
    assert vehicle["motion"] == "parked"
    assert vehicle["ignition"] is False


async def test_vehicle_unknown_is_404_json(pipeline: Pipeline) -> None:
    answer = await pipeline.client.get("/v1/vehicles/nobody")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "vehicle_not_found"
    assert "GET /v1/vehicles" in answer.json()["error"]["message"]


async def test_positions_paginate_in_order(pipeline: Pipeline) -> None:
    records = await _load_drive(pipeline)
    seen: list[int] = []
    first = await pipeline.client.get(f"/v1/vehicles/{DEVICE}/positions",
                                      params={"from": 0, "to": 2**62, "limit": 200})
    page = first.json()
    seen.extend(p["ts_ms"] for p in page["positions"])
    while page["next"] is not None:
        page = (await pipeline.client.get(page["next"])).json()
        seen.extend(p["ts_ms"] for p in page["positions"])
    assert seen == [r["ts"] for r in records]


async def test_positions_carry_enrichment(pipeline: Pipeline) -> None:
    await _load_drive(pipeline)
    page = (await pipeline.client.get(
        f"/v1/vehicles/{DEVICE}/positions", params={"from": 0, "to": 2**62, "limit": 10_000}
    )).json()
    fast = [p for p in page["positions"] if p["reported_speed_kmh"] == 140.0]
    assert fast
    assert {p["motion"] for p in fast} == {"moving"}
    assert any(p["status"] == "alert" and "overspeed" in p["reasons"] for p in fast)
    assert sum(p["distance_m"] for p in page["positions"]) > 2_000


async def test_trips_report_the_drive(pipeline: Pipeline) -> None:
    await _load_drive(pipeline)
    trips = (await pipeline.client.get(
        f"/v1/vehicles/{DEVICE}/trips", params={"from": 0, "to": 2**62}
    )).json()["trips"]
    assert len(trips) == 1
    trip = trips[0]
    # 150 s at 60 km/h + 20 s at 140 km/h + 10 s at 60 km/h = 3,444 m.
    assert abs(trip["distance_m"] - 3444) < 100
    assert trip["max_speed_kmh"] == 140.0
    assert trip["open"] is False


async def test_events_filter_by_type(pipeline: Pipeline) -> None:
    await _load_drive(pipeline)
    everything = (await pipeline.client.get(
        "/v1/events", params={"device_id": DEVICE, "from": 0, "to": 2**62, "limit": 1000}
    )).json()["events"]
    types = {e["type"] for e in everything}
    for expected in ("ignition_on", "ignition_off", "geofence_exit", "overspeed",
                     "trip_start", "trip_end"):
        assert expected in types, f"{expected} missing from {sorted(types)}"
    overspeed = (await pipeline.client.get(
        "/v1/events", params={"type": "overspeed", "from": 0, "to": 2**62}
    )).json()["events"]
    assert [e["type"] for e in overspeed] == ["overspeed"]


async def test_events_unknown_type_is_400(pipeline: Pipeline) -> None:
    answer = await pipeline.client.get("/v1/events", params={"type": "speeding"})
    assert answer.status_code == 400
    assert "overspeed" in answer.json()["error"]["message"]


async def test_bad_time_parameter_is_400(pipeline: Pipeline) -> None:
    answer = await pipeline.client.get(f"/v1/vehicles/{DEVICE}/positions",
                                       params={"from": "yesterday"})
    assert answer.status_code == 400
    assert "RFC 3339" in answer.json()["error"]["message"]


async def test_time_parameter_accepts_rfc3339(pipeline: Pipeline) -> None:
    await _load_drive(pipeline)
    answer = await pipeline.client.get(f"/v1/vehicles/{DEVICE}/positions",
                                       params={"from": "2000-01-01T00:00:00Z", "limit": 5})
    assert answer.status_code == 200
    assert answer.json()["count"] == 5


async def test_fleet_summary_counts(pipeline: Pipeline) -> None:
    await _load_drive(pipeline)
    summary = (await pipeline.client.get("/v1/fleet/summary")).json()
    assert summary["vehicles"]["total"] == 1
    assert summary["vehicles"]["parked"] == 1
    assert summary["events_last_hour"]["overspeed"] == 1
    assert summary["distance_today_m"] > 0 or time.gmtime().tm_hour == 0


async def test_dead_letters_keep_rejects(pipeline: Pipeline) -> None:
    answer = await pipeline.post([{"device_id": DEVICE, "ts": 1, "lat": 91, "lon": 0}])
    assert answer.json()["rejected"] == 1
    letters = (await pipeline.client.get("/v1/dead-letters")).json()["dead_letters"]
    assert len(letters) == 1
    assert letters[0]["device_id"] == DEVICE
    assert letters[0]["reason"] in {"out_of_range", "ts_too_old"}


async def test_healthz_reports_ok(pipeline: Pipeline) -> None:
    answer = await pipeline.client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"


async def test_metrics_expose_pipeline_counters(pipeline: Pipeline) -> None:
    await _load_drive(pipeline)
    text = (await pipeline.client.get("/metrics")).text
    for name in ("fleetpulse_records_accepted_total", "fleetpulse_records_rejected_total",
                 "fleetpulse_queue_depth_records", "fleetpulse_processing_lag_seconds",
                 "fleetpulse_stage_seconds_bucket"):
        assert name in text, name


async def test_unknown_path_is_404_json(pipeline: Pipeline) -> None:
    answer = await pipeline.client.get("/v1/nothing-here")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


async def test_openapi_documents_every_route(pipeline: Pipeline) -> None:
    document = (await pipeline.client.get("/openapi.json")).json()
    app = create_app(pipeline.server.context, extra_routes=[])
    paths = {getattr(route, "path", "").replace(":path", "") for route in app.routes}
    paths.add("/v1/telemetry")
    assert paths == set(document["paths"])


async def test_ingest_over_asgi_rejects_unknown_media_type(pipeline: Pipeline) -> None:
    answer = await pipeline.client.post("/v1/telemetry", content=b"id=1",
                                        headers={"Content-Type": "text/plain"})
    assert answer.status_code == 415
    assert isinstance(answer, httpx.Response)


async def test_device_id_with_slash_is_queryable(pipeline: Pipeline) -> None:
    now_ms = int(time.time() * 1000)
    record = {"device_id": "depot 1/van a", "ts": now_ms, "lat": 48.1, "lon": 11.5}
    assert (await pipeline.post([record])).json()["accepted"] == 1
    await pipeline.drain()
    vehicle = await pipeline.client.get("/v1/vehicles/depot%201%2Fvan%20a")
    assert vehicle.status_code == 200
    assert vehicle.json()["device_id"] == "depot 1/van a"
    positions = await pipeline.client.get("/v1/vehicles/depot%201%2Fvan%20a/positions")
    assert positions.json()["count"] == 1


async def test_fleet_alert_total_covers_every_vehicle(pipeline: Pipeline) -> None:
    now_ms = int(time.time() * 1000) - 60_000
    # Twelve vehicles each report an overheating engine: more than the top-10 list shows.
    records = [
        {"device_id": f"hot-{i:02d}", "ts": now_ms + t * 1000, "lat": 48.1, "lon": 11.5,
         "coolant_c": 90.0 if t == 0 else 115.0, "ignition": True}
        for i in range(12) for t in range(3)
    ]
    assert (await pipeline.post(records)).json()["accepted"] == len(records)
    await pipeline.drain()
    summary = (await pipeline.client.get("/v1/fleet/summary")).json()
    assert len(summary["top_alert_vehicles"]) == 10
    assert summary["alerts_last_hour"] >= 12


async def test_huge_numbers_in_query_are_400(pipeline: Pipeline) -> None:
    huge = "9" * 30
    for path, params in [
        (f"/v1/vehicles/{DEVICE}/positions", {"from": "-" + huge}),
        (f"/v1/vehicles/{DEVICE}/positions", {"to": huge}),
        ("/v1/events", {"after_id": huge}),
        ("/v1/dead-letters", {"after_id": huge}),
        ("/v1/events", {"limit": "\uff11"}),
    ]:
        answer = await pipeline.client.get(path, params=params)
        assert answer.status_code == 400, (path, params, answer.text)
        assert answer.json()["error"]["code"] == "invalid_parameter"
