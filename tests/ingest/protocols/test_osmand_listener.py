"""The OsmAnd listener on a real socket, in front of a real EmbeddedServer pipeline."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fleetpulse.config import load_settings
from fleetpulse.ingest.protocols.osmand import OsmandListener
from fleetpulse.model.timestamps import now_ms
from fleetpulse.server import EmbeddedServer

# OC-1 to OC-5: requests from the test suite of the open-source Traccar server (OsmAnd
# protocol decoder), as listed in the project's device protocol cases.
OC_REQUESTS = [
    (
        "123456",
        "/?id=123456&timestamp=1377177267&lat=60.0&lon=30.0&speed=0.0&bearing=0.0&altitude=0&hdop=0.0",
    ),
    (
        "902064",
        "/?id=902064&lat=42.06288&lon=-88.23412&timestamp=2016-01-27T18%3A55%3A47Z&hdop=6.0&altitude=224.0&speed=0.0",
    ),
    (
        "902065",
        "/?id=902065&lat=42.06288&lon=-88.23412&timestamp=1442068686579&hdop=6.0&altitude=224.0&speed=0.0",
    ),
    ("123457", "/?id=123457&timestamp=1377177267&location=60.0,30.0"),
    (
        "861001000719969",
        "/?id=861001000719969&lat=41.666667&lon=-0.883333&altitude=350.059479&speed=0.000000&batt=87",
    ),
]
# The OC vectors date from 2013 on; validation must accept them for this test.
MAX_AGE_DAYS = 20_000


@dataclass
class OsmandPipeline:
    server: EmbeddedServer
    device: httpx.AsyncClient
    api: httpx.AsyncClient

    async def positions(self, device_id: str) -> list[dict[str, Any]]:
        assert await self.server.processor.drain(10.0), "processor did not catch up in 10 s"
        response = await self.api.get(
            f"/v1/vehicles/{device_id}/positions", params={"from": "1970-01-01T00:00:00Z"}
        )
        assert response.status_code == 200, response.text
        positions: list[dict[str, Any]] = response.json()["positions"]
        return positions

    async def dead_letters(self) -> list[dict[str, Any]]:
        letters: list[dict[str, Any]] = (await self.api.get("/v1/dead-letters")).json()[
            "dead_letters"
        ]
        return letters


async def open_pipeline(
    data_dir: Path, capacity_records: int = 1000, **osmand: Any
) -> AsyncIterator[OsmandPipeline]:
    settings = load_settings(
        environ={},
        overrides={
            "server": {"data_dir": str(data_dir), "port": 0},
            "ingest": {"max_age_days": MAX_AGE_DAYS},
            "queue": {"capacity_records": capacity_records},
            "osmand": {"enabled": True, "port": 0, **osmand},
        },
    )
    server = EmbeddedServer(settings)
    await server.start()
    listener = next(item for item in server.listeners if isinstance(item, OsmandListener))
    host, port = listener.address
    async with (
        httpx.AsyncClient(base_url=f"http://{host}:{port}") as device,
        httpx.AsyncClient(base_url=server.url) as api,
    ):
        yield OsmandPipeline(server, device, api)
    await server.close()


@pytest.fixture
async def pipeline(tmp_path: Path) -> AsyncIterator[OsmandPipeline]:
    async for opened in open_pipeline(tmp_path / "data"):
        yield opened


@pytest.mark.parametrize(("device_id", "url"), OC_REQUESTS)
async def test_oc_request_stored(pipeline: OsmandPipeline, device_id: str, url: str) -> None:
    response = await pipeline.device.get(url)
    assert response.status_code == 200, response.text
    positions = await pipeline.positions(device_id)
    assert len(positions) == 1
    assert positions[0]["source"] == "osmand"


async def test_position_fields_stored(pipeline: OsmandPipeline) -> None:
    ts_s = now_ms() // 1000
    url = f"/?id=car-1&timestamp={ts_s}&lat=48.1&lon=11.5&speed=10&bearing=90&batt=55&charge=true"
    assert (await pipeline.device.get(url)).status_code == 200
    (position,) = await pipeline.positions("car-1")
    assert position["ts_ms"] == ts_s * 1000
    assert (position["lat"], position["lon"]) == (48.1, 11.5)
    assert position["reported_speed_kmh"] == pytest.approx(18.52)
    assert position["heading_deg"] == 90.0
    assert position["attributes"] == {"battery_pct": 55.0, "charge": True}


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_form_body(pipeline: OsmandPipeline, method: str) -> None:
    body = f"id=form-{method}&lat=1.5&lon=2.5&timestamp={now_ms()}"
    response = await pipeline.device.request(
        method,
        "/",
        content=body,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    (position,) = await pipeline.positions(f"form-{method}")
    assert (position["lat"], position["lon"]) == (1.5, 2.5)


async def test_json_body(pipeline: OsmandPipeline) -> None:
    body = {
        "device_id": "phone-9",
        "location": {
            "timestamp": "2024-05-01T10:00:00.000Z",
            "coords": {
                "latitude": 60.0,
                "longitude": 30.0,
                "speed": 2.0,
                "heading": 45.0,
                "accuracy": 3.0,
                "altitude": 12.0,
            },
            "battery": {"level": 0.5, "is_charging": True},
        },
    }
    response = await pipeline.device.post("/", json=body)
    assert response.status_code == 200, response.text
    (position,) = await pipeline.positions("phone-9")
    assert position["reported_speed_kmh"] == pytest.approx(7.2)
    assert position["attributes"] == {"battery_pct": 50.0, "charging": True}


@pytest.mark.parametrize(
    "timestamp", ["1714557600", "1714557600000", "2024-05-01T10:00:00Z", "2024-05-01 10:00:00"]
)
async def test_timestamp_forms(pipeline: OsmandPipeline, timestamp: str) -> None:
    response = await pipeline.device.get(
        "/", params={"id": "ts", "lat": 1, "lon": 2, "timestamp": timestamp}
    )
    assert response.status_code == 200, response.text
    (position,) = await pipeline.positions("ts")
    assert position["ts_ms"] == 1_714_557_600_000


async def test_missing_id_400(pipeline: OsmandPipeline) -> None:
    response = await pipeline.device.get("/?lat=1&lon=2")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_field"
    letters = await pipeline.dead_letters()
    assert [letter["reason"] for letter in letters] == ["missing_field"]
    assert letters[0]["source"] == "osmand"


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("id=bad1&lat=95&lon=2", "out_of_range"),
        ("id=bad2&lat=x&lon=2", "invalid_type"),
        ("id=bad3&lat=1&lon=2&timestamp=soon", "ts_invalid"),
        ("id=bad4&lat=1&lon=2&speed=nan", "not_finite"),
        ("id=bad5&lat=1&lon=2&timestamp=1000", "ts_too_old"),
    ],
)
async def test_bad_value_400_dead_letter(pipeline: OsmandPipeline, query: str, reason: str) -> None:
    response = await pipeline.device.get(f"/?{query}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == reason
    assert error["message"]
    (letter,) = await pipeline.dead_letters()
    assert letter["reason"] == reason
    assert letter["raw"] == query
    assert letter["device_id"] == query.split("&")[0].removeprefix("id=")
    assert await pipeline.positions(letter["device_id"]) == []


async def test_queue_full_503(tmp_path: Path) -> None:
    # A capacity of 0 makes the real SQLite queue reject every publish as full.
    async for pipeline in open_pipeline(tmp_path / "data", capacity_records=0):
        response = await pipeline.device.get(f"/?id=full&lat=1&lon=2&timestamp={now_ms()}")
        assert response.status_code == 503
        assert response.headers["retry-after"] == "1"
        assert await pipeline.positions("full") == []


async def test_frame_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="fleetpulse.ingest.protocols.osmand.listener")
    async for pipeline in open_pipeline(tmp_path / "data", log_frames=True):
        await pipeline.device.get("/?id=hex&lat=1&lon=2")
    assert b"id=hex".hex() in caplog.text


async def test_describe_names_port(pipeline: OsmandPipeline) -> None:
    listener = pipeline.server.listeners[0]
    assert isinstance(listener, OsmandListener)
    assert f":{listener.address[1]}/" in listener.describe()
