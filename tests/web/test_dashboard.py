"""The dashboard in headless Chromium against a ``fleetpulse run`` child and the simulator."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.web.conftest import SIMULATED_VEHICLES, ServerChild

pytestmark = pytest.mark.slow

# Waits for the page; generous because the simulator and the server share 2 cores in CI.
WAIT_MS = 20_000
SPEEDER = "speeder-1"
SPEEDER_KMH = 150.0
# Longer than the 10 s an overspeed must last before it is confirmed.
SPEEDING_S = 15


@pytest.fixture
def page(browser: Any, fleet_server: ServerChild) -> Iterator[Any]:
    """A fresh page on the dashboard, recording console errors and uncaught exceptions."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    dashboard = context.new_page()
    errors: list[str] = []
    dashboard.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    dashboard.on("pageerror", lambda exc: errors.append(str(exc)))
    dashboard.errors = errors
    dashboard.goto(fleet_server.url + "/")
    dashboard.wait_for_selector("body[data-ready=true]", timeout=WAIT_MS)
    yield dashboard
    context.close()


def speeding_records(device_id: str) -> list[dict[str, Any]]:
    """Records at 1 Hz ending now, driving east at SPEEDER_KMH for SPEEDING_S seconds."""
    now_ms = time.time_ns() // 1_000_000
    step_deg = SPEEDER_KMH / 3.6 / 75_000  # metres per second over metres per degree at 48° N
    return [
        {
            "device_id": device_id,
            "ts": now_ms - (SPEEDING_S - i) * 1000,
            "lat": 48.14,
            "lon": 11.56 + i * step_deg,
            "speed_kmh": SPEEDER_KMH,
            "heading_deg": 90.0,
            "ignition": True,
            "fuel_pct": 55.0,
            "coolant_c": 90.0,
            "battery_v": 13.9,
        }
        for i in range(SPEEDING_S + 1)
    ]


def test_page_loads_without_errors(page: Any) -> None:
    page.wait_for_timeout(2000)
    assert page.errors == []


def test_page_has_no_outside_requests(browser: Any, fleet_server: ServerChild) -> None:
    context = browser.new_context()
    dashboard = context.new_page()
    urls: list[str] = []
    dashboard.on("request", lambda request: urls.append(request.url))
    dashboard.goto(fleet_server.url + "/")
    dashboard.wait_for_selector("body[data-ready=true]", timeout=WAIT_MS)
    context.close()
    outside = [url for url in urls if not url.startswith(fleet_server.url)]
    assert outside == []


def test_vehicles_in_list_and_map(page: Any) -> None:
    page.wait_for_function(
        f"document.querySelectorAll('.vehicle-row').length >= {SIMULATED_VEHICLES}",
        timeout=WAIT_MS,
    )
    listed = page.locator(".vehicle-row").count()
    on_map = page.evaluate("window.fleetpulse.fleetMap.markers.size")
    drawn = page.locator(".vehicle-marker, .fleet-cluster").count()
    assert listed >= SIMULATED_VEHICLES
    assert on_map >= SIMULATED_VEHICLES
    assert drawn >= 1


def test_geofences_drawn(page: Any) -> None:
    assert page.evaluate("window.fleetpulse.fleetMap.geofences.getLayers().length") == 1


def test_kpis_filled(page: Any) -> None:
    page.wait_for_function(
        "document.querySelector('#kpis').dataset.updatedAt !== undefined", timeout=WAIT_MS
    )
    moving = page.locator('[data-kpi="moving"] .kpi-value').inner_text()
    total = sum(
        int(page.locator(f'[data-kpi="{motion}"] .kpi-value').inner_text().replace(",", ""))
        for motion in ("moving", "idle", "parked", "offline")
    )
    assert moving.replace(",", "").isdigit()
    assert total >= SIMULATED_VEHICLES


def test_search_narrows_list(page: Any) -> None:
    page.wait_for_function(
        f"document.querySelectorAll('.vehicle-row').length >= {SIMULATED_VEHICLES}",
        timeout=WAIT_MS,
    )
    first_id = page.locator(".vehicle-row").first.get_attribute("data-device-id")
    page.fill("#vehicle-search", first_id)
    ids = page.locator(".vehicle-row").evaluate_all("rows => rows.map(r => r.dataset.deviceId)")
    assert ids
    assert all(first_id in device_id for device_id in ids)


def test_overspeed_alert_opens_panel(page: Any, fleet_server: ServerChild) -> None:
    answer = fleet_server.post(speeding_records(SPEEDER))
    assert answer.status_code == 202

    alert = page.locator(f'.alert-item[data-type="overspeed"][data-device-id="{SPEEDER}"]')
    alert.first.wait_for(timeout=WAIT_MS)
    alert.first.click()

    panel = page.locator("#vehicle-panel")
    panel.wait_for(state="visible", timeout=WAIT_MS)
    assert page.locator("#panel-title").inner_text() == SPEEDER
    trip = page.locator("#panel-trips .trip")
    trip.first.wait_for(timeout=WAIT_MS)
    assert trip.count() >= 1


def test_trip_playback_moves_marker(page: Any, fleet_server: ServerChild) -> None:
    fleet_server.post(speeding_records("speeder-2"))
    page.wait_for_function(
        "window.fleetpulse.fleet.vehicles.has('speeder-2')", timeout=WAIT_MS
    )
    page.evaluate("window.fleetpulse.select('speeder-2')")
    page.locator("#panel-trips .trip").first.wait_for(timeout=WAIT_MS)
    page.locator("#panel-trips .trip").first.click()
    page.locator("#playback").wait_for(state="visible", timeout=WAIT_MS)

    start = page.evaluate("window.fleetpulse.fleetMap.playbackMarker.getLatLng().lng")
    last_index = int(page.locator("#playback-slider").get_attribute("max"))
    page.locator("#playback-slider").fill(str(last_index))
    end = page.evaluate("window.fleetpulse.fleetMap.playbackMarker.getLatLng().lng")
    route_points = page.evaluate("window.fleetpulse.fleetMap.route.getLayers().length")
    assert last_index >= SPEEDING_S // 2
    assert end > start
    assert route_points >= 3


def test_sort_by_speed(page: Any, fleet_server: ServerChild) -> None:
    fleet_server.post(speeding_records("speeder-3"))
    page.wait_for_function(
        "window.fleetpulse.fleet.vehicles.has('speeder-3')", timeout=WAIT_MS
    )
    page.select_option("#vehicle-sort", "speed")
    speeds = page.evaluate(
        "[...window.fleetpulse.fleet.vehicles.values()].map(v => v.speed_kmh ?? -1)"
    )
    first = page.locator(".vehicle-row").first.get_attribute("data-device-id")
    first_speed = page.evaluate(f"window.fleetpulse.fleet.vehicles.get('{first}').speed_kmh")
    assert first_speed == max(speeds)
