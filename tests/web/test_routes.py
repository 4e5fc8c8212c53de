"""The dashboard routes through the ASGI app of an in-process pipeline: no browser needed."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import msgspec
import pytest

from fleetpulse.config import Geofence, WebSettings, load_settings
from fleetpulse.server import EmbeddedServer
from fleetpulse.web import STATIC_DIR

TILE_URL = "http://127.0.0.1:9999/{z}/{x}/{y}.png"
CIRCLE = Geofence(id="depot", name="Depot", lat=48.10, lon=11.50, radius_m=300.0)
POLYGON = Geofence(id="zone", polygon=[(48.0, 11.0), (48.0, 11.1), (48.1, 11.1)])
# src="..." and href="..." of the page's own files.
_LOCAL_ASSET = re.compile(r'(?:src|href)="(/static/[^"]+)"')
_MODULE_IMPORT = re.compile(r'from "\./([a-z]+\.js)"')


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = load_settings(environ={}, overrides={"server": {"data_dir": str(tmp_path)}})
    settings = msgspec.structs.replace(
        settings, geofences=[CIRCLE, POLYGON], web=WebSettings(tile_url=TILE_URL)
    )
    server = EmbeddedServer(settings)
    await server.start()
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fleetpulse") as http:
        yield http
    await server.close()


async def test_index_served(client: httpx.AsyncClient) -> None:
    answer = await client.get("/")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert 'id="map"' in answer.text


async def test_index_assets_resolve(client: httpx.AsyncClient) -> None:
    page = (await client.get("/")).text
    assets = _LOCAL_ASSET.findall(page)
    assert "/static/js/main.js" in assets
    for asset in assets:
        answer = await client.get(asset)
        assert answer.status_code == 200, asset


async def test_module_imports_resolve(client: httpx.AsyncClient) -> None:
    for module in sorted((STATIC_DIR / "js").glob("*.js")):
        for imported in _MODULE_IMPORT.findall(module.read_text(encoding="utf-8")):
            answer = await client.get(f"/static/js/{imported}")
            assert answer.status_code == 200, f"{module.name} imports {imported}"


async def test_geofences_listed(client: httpx.AsyncClient) -> None:
    body = (await client.get("/v1/geofences")).json()
    circle, polygon = body["geofences"]
    assert body["count"] == 2
    assert circle == {
        "id": "depot", "name": "Depot", "lat": 48.10, "lon": 11.50, "radius_m": 300.0,
        "polygon": None,
    }
    assert polygon["polygon"] == [[48.0, 11.0], [48.0, 11.1], [48.1, 11.1]]
    assert polygon["radius_m"] is None


async def test_config_has_tile_url(client: httpx.AsyncClient) -> None:
    body = (await client.get("/dashboard/config.json")).json()
    assert body["tile_url"] == TILE_URL
    assert body["offline_after_s"] == 600.0
    assert isinstance(body["live_available"], bool)


async def test_api_routes_win(client: httpx.AsyncClient) -> None:
    answer = await client.get("/v1/nothing")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


async def test_missing_static_404(client: httpx.AsyncClient) -> None:
    answer = await client.get("/static/js/missing.js")
    assert answer.status_code == 404


def test_vendor_licenses_kept() -> None:
    for library in ("leaflet", "leaflet.markercluster"):
        assert (STATIC_DIR / "vendor" / library / "LICENSE").is_file(), library
