"""The report endpoints on a real SQLite store, in JSON, CSV and Parquet, and their errors."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from fleetpulse.api.app import create_app
from fleetpulse.api.context import ApiContext
from fleetpulse.config import load_settings
from tests.reports.fixtures import DAY0_MS, DAY1_MS, fixed_batch, open_sqlite

DAY_S = 86_400


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    data_dir = tmp_path / "data"
    settings = load_settings(environ={}, overrides={"server": {"data_dir": str(data_dir)}})
    store = await open_sqlite(data_dir)
    await store.write(fixed_batch())
    app = create_app(ApiContext(settings=settings, store=store))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fleetpulse") as http:
        yield http
    await store.close()


async def test_vehicle_day_json(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/reports/vehicles/v1", params={"from": "2026-11-02"})

    assert response.status_code == 200
    body = response.json()
    assert body["from_ms"] == DAY0_MS
    assert body["to_ms"] == DAY1_MS
    totals = body["totals"]
    assert totals["distance_m"] == 40_000
    assert totals["driving_s"] == 2_700
    assert totals["idle_s"] == 300
    assert totals["trips"] == 2
    assert totals["stops"] == 1
    assert totals["max_speed_kmh"] == 130
    assert totals["overspeed_count"] == 1
    assert totals["overspeed_s"] == 90
    assert totals["harsh_braking_count"] == 1
    assert totals["harsh_acceleration_count"] == 1
    # 2 harsh events over 40 km, 1.5 overspeed minutes over 40 km.
    assert totals["harsh_per_100km"] == 5.0
    assert totals["overspeed_min_per_100km"] == 3.75
    assert totals["utilization"] == 2_700 / DAY_S
    assert totals["safety_score"] == 100 - 5 * 5.0 - 2 * 3.75
    assert [day["day"] for day in body["days"]] == ["2026-11-02"]


async def test_vehicle_range_days(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/reports/vehicles/v1", params={"from": "2026-11-02", "to": "2026-11-03"}
    )

    body = response.json()
    assert [day["distance_m"] for day in body["days"]] == [40_000, 10_000]
    assert [day["driving_s"] for day in body["days"]] == [2_700, 840]
    totals = body["totals"]
    assert totals["distance_m"] == 50_000
    assert totals["trips"] == 3
    assert totals["stops"] == 2
    assert totals["utilization"] == (2_700 + 840) / (2 * DAY_S)
    # 2 harsh events and 1.5 overspeed minutes over 50 km: 4 and 3 per 100 km.
    assert totals["safety_score"] == 100 - 5 * 4 - 2 * 3


async def test_vehicle_tz_moves_days(client: httpx.AsyncClient) -> None:
    # In Tokyo (UTC+9) 2026-11-02 runs from 11-01 15:00 UTC to 11-02 15:00 UTC, so it
    # contains the trip of 08:00 UTC and not the one of 17:00 UTC.
    response = await client.get(
        "/v1/reports/vehicles/v1", params={"from": "2026-11-02", "tz": "Asia/Tokyo"}
    )

    body = response.json()
    assert body["from_ms"] == DAY0_MS - 9 * 3_600_000
    assert body["totals"]["distance_m"] == 25_000
    assert body["totals"]["trips"] == 1


async def test_fleet_json(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/reports/fleet", params={"from": "2026-11-02", "to": "2026-11-03"}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["vehicle_count"] == 3
    rows = {row["device_id"]: row for row in body["vehicles"]}
    assert list(rows) == ["v1", "v2", "v3"]
    # v2 drove 5 km: too little for a score.
    assert rows["v2"]["safety_score"] is None
    assert rows["v2"]["harsh_per_100km"] == 0.0
    assert rows["v3"]["distance_m"] == 0
    assert rows["v3"]["harsh_per_100km"] is None
    totals = body["totals"]
    assert totals["distance_m"] == 55_000
    assert totals["driving_s"] == 2_700 + 840 + 600
    assert totals["utilization"] == (2_700 + 840 + 600) / (3 * 2 * DAY_S)
    # 2 harsh events and 1.5 overspeed minutes over 55 km.
    expected_score = 100 - 5 * (2 * 100 / 55) - 2 * (1.5 * 100 / 55)
    assert totals["safety_score"] == round(expected_score, 1)


async def test_vehicle_csv(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/reports/vehicles/v1",
        params={"from": "2026-11-02", "to": "2026-11-03", "format": "csv"},
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "report-v1-2026-11-02-2026-11-03.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["row"] for row in rows] == ["day", "day", "total"]
    assert [row["day"] for row in rows] == ["2026-11-02", "2026-11-03", ""]
    assert float(rows[2]["distance_m"]) == 50_000
    assert float(rows[2]["safety_score"]) == 74.0


async def test_fleet_csv_null_cells(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/reports/fleet", params={"from": "2026-11-02", "format": "csv"})

    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["device_id"] for row in rows] == ["v1", "v2", "v3", ""]
    assert rows[2]["safety_score"] == ""
    assert rows[3]["row"] == "total"


async def test_fleet_parquet(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/reports/fleet", params={"from": "2026-11-02", "to": "2026-11-03", "format": "parquet"}
    )

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(response.content))
    assert table.column("device_id").to_pylist() == ["v1", "v2", "v3", None]
    assert table.column("distance_m").to_pylist() == [50_000, 5_000, 0, 55_000]
    assert table.column("trips").to_pylist() == [3, 1, 0, 4]
    assert table.schema.metadata[b"tz"] == b"UTC"


async def test_vehicle_parquet(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/v1/reports/vehicles/v1", params={"from": "2026-11-02", "format": "parquet"}
    )

    table = pq.read_table(io.BytesIO(response.content))
    assert table.column("row").to_pylist() == ["day", "total"]
    assert table.column("safety_score").to_pylist() == [67.5, 67.5]


async def test_unknown_vehicle_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/reports/vehicles/nope", params={"from": "2026-11-02"})

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "vehicle_not_found"


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "from is missing"),
        ({"from": "2026-11-31"}, "is not a day"),
        ({"from": "2026-11-03", "to": "2026-11-02"}, "is before from"),
        ({"from": "2026-01-01", "to": "2027-12-31"}, "more than 366"),
        ({"from": "2026-11-02", "tz": "Asia/Kolkata"}, "whole UTC hour"),
        ({"from": "2026-11-02", "tz": "Nowhere/City"}, "not a known time zone"),
        ({"from": "2026-11-02", "format": "xlsx"}, "not supported"),
    ],
)
async def test_bad_parameters_400(
    client: httpx.AsyncClient, params: dict[str, str], message: str
) -> None:
    response = await client.get("/v1/reports/fleet", params=params)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert message in error["message"]
